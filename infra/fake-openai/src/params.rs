//! Reading and checking request fields the way the real API does: unknown parameters, wrong types,
//! missing values, and every per-model rule taken from `imagemcp_core::catalog`, so the fake and the
//! app's own validation can never disagree.

use imagemcp_core::catalog::{self, Lifecycle, ModelSpec, RenderParams};
use imagemcp_core::image_params::{Background, ImageSize, ModerationLevel, OutputFormat, Quality};
use imagemcp_core::prompt::MAX_PROMPT_CHARS;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Request fields from a JSON object or from multipart text fields (where every value is a string,
/// so numbers and booleans are parsed from text).
#[derive(Clone, Debug)]
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    from_form: bool,
    /// Prepended to `param` in errors (`tools[0].` for the image tool).
    prefix: String,
}

impl<'a> Fields<'a> {
    pub(crate) fn json(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            from_form: false,
            prefix: String::new(),
        }
    }

    pub(crate) fn form(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            from_form: true,
            prefix: String::new(),
        }
    }

    pub(crate) fn nested(map: &'a Map<String, Value>, prefix: &str) -> Self {
        Self {
            map,
            from_form: false,
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn param(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Refuses any field not in `allowed`, as the real API does (`Unknown parameter: 'seed'.`).
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::unknown_parameter(&self.param(k))),
            None => Ok(()),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::invalid_type(&self.param(name), "a string", other)),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::String(s)) if self.from_form => s.trim().parse().map(Some).map_err(|_| {
                ApiError::invalid_type(&self.param(name), "an integer", &Value::String(s.clone()))
            }),
            Some(other) => Err(ApiError::invalid_type(
                &self.param(name),
                "an integer",
                other,
            )),
        }
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if self.from_form && (s == "true" || s == "false") => {
                Ok(Some(s == "true"))
            }
            Some(other) => Err(ApiError::invalid_type(
                &self.param(name),
                "a boolean",
                other,
            )),
        }
    }

    /// An integer within `min..=max`, with the real API's messages.
    pub(crate) fn int_in(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.int(name)? else {
            return Ok(None);
        };
        let param = self.param(name);
        if v < min {
            return Err(ApiError::invalid(
                &param,
                "integer_below_min_value",
                format!(
                    "Invalid '{param}': integer below minimum value. Expected a value >= {min}, but got {v} instead."
                ),
            ));
        }
        if v > max {
            return Err(ApiError::invalid(
                &param,
                "integer_above_max_value",
                format!(
                    "Invalid '{param}': integer above maximum value. Expected a value <= {max}, but got {v} instead."
                ),
            ));
        }
        Ok(Some(v))
    }

    /// A string field parsed by one of core's parsers, whose errors name the field.
    fn parsed<T>(
        &self,
        name: &str,
        parse: fn(&str) -> imagemcp_core::Result<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.str(name)? {
            None => Ok(None),
            Some(s) => parse(s).map(Some).map_err(|e| {
                let reason = match e {
                    imagemcp_core::Error::Invalid { reason, .. } => reason,
                    other => other.to_string(),
                };
                let param = self.param(name);
                ApiError::invalid_value(&param, format!("Invalid value for '{param}': {reason}."))
            }),
        }
    }
}

/// The image model a request names: a 400 when it is missing or unknown, a 404 `model_not_found`
/// when it has been shut down (as the real API answers for retired models).
pub(crate) fn image_model(
    fields: &Fields<'_>,
    default: Option<&str>,
) -> Result<&'static ModelSpec, ApiError> {
    let param = fields.param("model");
    let Some(id) = fields.str("model")?.or(default) else {
        return Err(ApiError::invalid(
            &param,
            "missing_required_parameter",
            "You must provide a model parameter.",
        ));
    };
    match catalog::lookup(id) {
        Some(spec) if matches!(spec.lifecycle, Lifecycle::ShutDown { .. }) => Err(ApiError {
            param: Some(param),
            ..ApiError::model_not_found(id)
        }),
        Some(spec) if !spec.offline => Ok(spec),
        _ => {
            let served: Vec<String> = catalog::MODELS
                .iter()
                .filter(|m| !m.offline && !matches!(m.lifecycle, Lifecycle::ShutDown { .. }))
                .flat_map(|m| std::iter::once(m.id).chain(m.aliases.iter().copied()))
                .map(|id| format!("'{id}'"))
                .collect();
            Err(ApiError::invalid_value(
                &param,
                format!(
                    "Invalid value: '{id}'. Supported values are: {}.",
                    served.join(", ")
                ),
            ))
        }
    }
}

/// The prompt: required, 1 to 32,000 characters.
pub(crate) fn prompt(fields: &Fields<'_>) -> Result<String, ApiError> {
    let param = fields.param("prompt");
    let Some(p) = fields.str("prompt")? else {
        return Err(ApiError::missing(&param));
    };
    check_prompt(&param, p)?;
    Ok(p.to_owned())
}

pub(crate) fn check_prompt(param: &str, p: &str) -> Result<(), ApiError> {
    let len = p.chars().count();
    if len == 0 {
        return Err(ApiError::invalid(
            param,
            "string_below_min_length",
            format!(
                "Invalid '{param}': string too short. Expected a string with minimum length 1, but got an empty string instead."
            ),
        ));
    }
    if len > MAX_PROMPT_CHARS {
        return Err(ApiError::invalid(
            param,
            "string_above_max_length",
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length {MAX_PROMPT_CHARS}, but got a string with length {len} instead."
            ),
        ));
    }
    Ok(())
}

/// The image settings of one request, checked against its model.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImageJob {
    pub(crate) spec: &'static ModelSpec,
    pub(crate) params: RenderParams,
    pub(crate) moderation: ModerationLevel,
    pub(crate) n: u32,
    pub(crate) partial_images: u32,
    pub(crate) stream: bool,
}

/// Which endpoint the settings arrived on: a few fields exist on some only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Generations,
    Edits,
    Tool,
}

pub(crate) fn image_job(
    fields: &Fields<'_>,
    spec: &'static ModelSpec,
    endpoint: Endpoint,
) -> Result<ImageJob, ApiError> {
    let params = RenderParams {
        size: fields.parsed("size", ImageSize::parse)?.unwrap_or_default(),
        quality: fields
            .parsed("quality", Quality::parse)?
            .unwrap_or_default(),
        background: fields
            .parsed("background", Background::parse)?
            .unwrap_or_default(),
        format: fields
            .parsed("output_format", OutputFormat::parse)?
            .unwrap_or_default(),
        compression: fields
            .int_in("output_compression", 0, 100)?
            .map(|c| u8::try_from(c).unwrap_or(100)),
    };
    // The one rule table: core's catalog decides what this model accepts.
    spec.validate(&params).map_err(|e| match e {
        imagemcp_core::Error::Invalid { field, reason } => {
            let param = fields.param(&field);
            ApiError::invalid_value(&param, format!("Invalid value for '{param}': {reason}."))
        }
        other => ApiError::from_core(other),
    })?;
    let moderation = fields
        .parsed("moderation", ModerationLevel::parse)?
        .unwrap_or_default();
    if fields.get("complexity").is_some() {
        if !spec.complexity {
            return Err(ApiError::invalid_value(
                &fields.param("complexity"),
                format!(
                    "'complexity' is not supported on {}; it exists on the GPT Image 2.6 models only.",
                    spec.id
                ),
            ));
        }
        match fields.str("complexity")? {
            Some("low" | "medium" | "high") => {}
            _ => {
                return Err(ApiError::invalid_value(
                    &fields.param("complexity"),
                    "Invalid value for 'complexity': expected one of 'low', 'medium', 'high'.",
                ));
            }
        }
    }
    if endpoint != Endpoint::Generations && fields.get("input_fidelity").is_some() {
        if !spec.input_fidelity {
            return Err(ApiError::invalid_value(
                &fields.param("input_fidelity"),
                format!(
                    "'input_fidelity' is not supported on {}; omit this parameter.",
                    spec.id
                ),
            ));
        }
        if !matches!(fields.str("input_fidelity")?, Some("high" | "low")) {
            return Err(ApiError::invalid_value(
                &fields.param("input_fidelity"),
                "Expected 'high' or 'low'.",
            ));
        }
    }
    let n = match endpoint {
        Endpoint::Tool => 1,
        _ => fields.int_in("n", 1, 10)?.unwrap_or(1),
    };
    let partial_images = fields.int_in("partial_images", 0, 3)?.unwrap_or(0);
    let stream = if endpoint == Endpoint::Tool {
        false
    } else {
        fields.bool("stream")?.unwrap_or(false)
    };
    for name in ["user", "safety_identifier"] {
        if let Some(s) = fields.str(name)?
            && s.chars().count() > 128
        {
            let param = fields.param(name);
            return Err(ApiError::invalid(
                &param,
                "string_above_max_length",
                format!(
                    "Invalid '{param}': string too long. Expected a string with maximum length 128."
                ),
            ));
        }
    }
    Ok(ImageJob {
        spec,
        params,
        moderation,
        n: u32::try_from(n).unwrap_or(1),
        partial_images: u32::try_from(partial_images).unwrap_or(0),
        stream,
    })
}

impl ImageJob {
    /// The pixel size the image is rendered at (`auto` renders at core's `AUTO_DIMENSIONS`).
    pub(crate) fn dimensions(&self) -> (u32, u32) {
        self.params.size.dimensions()
    }

    /// The quality actually rendered: `auto` resolves to the catalog's `auto_quality` for the
    /// model (`high`, as the real API reports it).
    pub(crate) fn resolved_quality(&self) -> Quality {
        match self.params.quality {
            Quality::Auto => self.spec.auto_quality,
            q => q,
        }
    }

    pub(crate) fn transparent(&self) -> bool {
        self.params.background == Background::Transparent
    }

    /// The `background`, `output_format`, `size` and `quality` the response reports.
    pub(crate) fn echo(&self) -> Value {
        let (w, h) = self.dimensions();
        json!({
            "background": if self.transparent() { "transparent" } else { "opaque" },
            "output_format": self.params.format.as_str(),
            "size": format!("{w}x{h}"),
            "quality": self.resolved_quality().as_str(),
        })
    }

    /// Image output tokens of one image, from the catalog's estimator, plus 100 per partial image.
    pub(crate) fn output_tokens_per_image(&self) -> u64 {
        let (width, height) = self.dimensions();
        let size = ImageSize::Fixed { width, height };
        self.spec
            .estimate_output_tokens(size, self.resolved_quality())
            + 100 * u64::from(self.partial_images)
    }
}

/// Text tokens, estimated as OpenAI's rule of thumb: about four characters per token.
pub(crate) fn text_tokens(text: &str) -> u64 {
    u64::try_from(text.chars().count())
        .unwrap_or(u64::MAX)
        .div_ceil(4)
}

/// Input tokens of one image, estimated the way OpenAI's vision models count tiles: fit in 2048,
/// shorten the short side to 768, then 170 tokens per 512-px tile plus 85.
pub(crate) fn image_tokens(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    // Integer scaling: tokens are counts, so no floats are involved.
    let long = w.max(h);
    if long > 2048 {
        (w, h) = ((w * 2048).div_ceil(long), (h * 2048).div_ceil(long));
    }
    let short = w.min(h);
    if short > 768 {
        (w, h) = ((w * 768).div_ceil(short), (h * 768).div_ceil(short));
    }
    85 + 170 * w.div_ceil(512) * h.div_ceil(512)
}

/// The Images API `usage` block.
pub(crate) fn images_usage(text_in: u64, image_in: u64, image_out: u64) -> Value {
    json!({
        "total_tokens": text_in + image_in + image_out,
        "input_tokens": text_in + image_in,
        "output_tokens": image_out,
        "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in},
        "output_tokens_details": {"image_tokens": image_out, "text_tokens": 0},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(body: Value) -> Result<ImageJob, ApiError> {
        let map = body.as_object().unwrap().clone();
        let fields = Fields::json(&map);
        let spec = image_model(&fields, None)?;
        prompt(&fields)?;
        image_job(&fields, spec, Endpoint::Generations)
    }

    fn rejects(body: Value, param: &str) {
        let err = job(body.clone()).expect_err(&body.to_string());
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
        assert!(err.status.is_client_error());
    }

    #[test]
    fn rejects_what_the_real_api_rejects() {
        let m = catalog::DEFAULT_MODEL;
        rejects(
            json!({"model": m, "prompt": "x", "background": "transparent", "output_format": "jpeg"}),
            "background",
        );
        rejects(
            json!({"model": m, "prompt": "x", "size": "1000x1000"}),
            "size",
        );
        rejects(
            json!({"model": "gpt-image-1.5", "prompt": "x", "size": "2048x2048"}),
            "size",
        );
        rejects(json!({"model": m, "prompt": "x", "n": 11}), "n");
        rejects(json!({"model": m, "prompt": "x", "n": 0}), "n");
        rejects(json!({"model": m, "prompt": ""}), "prompt");
        rejects(json!({"model": m, "prompt": "a".repeat(32_001)}), "prompt");
        rejects(json!({"model": m}), "prompt");
        rejects(json!({"prompt": "x"}), "model");
        rejects(
            json!({"model": "gpt-image-2", "prompt": "x", "quality": "xhigh"}),
            "quality",
        );
        rejects(
            json!({"model": m, "prompt": "x", "quality": "hd"}),
            "quality",
        );
        rejects(
            json!({"model": m, "prompt": "x", "output_format": "gif"}),
            "output_format",
        );
        rejects(
            json!({"model": m, "prompt": "x", "output_format": "jpeg", "output_compression": 101}),
            "output_compression",
        );
        rejects(
            json!({"model": m, "prompt": "x", "moderation": "off"}),
            "moderation",
        );
        rejects(json!({"model": m, "prompt": "x", "n": "2"}), "n");
        rejects(
            json!({"model": m, "prompt": "x", "complexity": "low"}),
            "complexity",
        );
        rejects(json!({"model": "offline", "prompt": "x"}), "model");
        rejects(json!({"model": "dall-e-2", "prompt": "x"}), "model");
    }

    #[test]
    fn dead_models_are_404_model_not_found() {
        let err = job(json!({"model": "gpt-image-1", "prompt": "x"})).unwrap_err();
        assert_eq!(err.status.as_u16(), 404);
        assert_eq!(err.code.as_deref(), Some("model_not_found"));
    }

    #[test]
    fn accepts_and_resolves_valid_requests() {
        let j = job(json!({"model": "gpt-image-2.5-flare", "prompt": "x", "size": "2048x1152", "quality": "auto",
            "background": "transparent", "output_format": "webp", "n": 10, "moderation": "low"}))
        .unwrap();
        assert_eq!(j.dimensions(), (2048, 1152));
        assert_eq!(j.resolved_quality(), Quality::High);
        assert_eq!(j.echo()["background"], "transparent");
        assert_eq!(j.n, 10);
        let j26 =
            job(json!({"model": "gpt-image-2.6-sunburst", "prompt": "x", "complexity": "low"}))
                .unwrap();
        assert_eq!(j26.echo()["size"], "1024x1024");
    }

    #[test]
    fn form_fields_parse_numbers_from_text() {
        let map = json!({"n": "3", "stream": "true"})
            .as_object()
            .unwrap()
            .clone();
        let f = Fields::form(&map);
        assert_eq!(f.int("n").unwrap(), Some(3));
        assert_eq!(f.bool("stream").unwrap(), Some(true));
    }

    #[test]
    fn token_estimates() {
        assert_eq!(text_tokens("abcde"), 2);
        assert_eq!(image_tokens(1024, 1024), 85 + 170 * 4);
        assert_eq!(image_tokens(512, 512), 85 + 170);
        assert_eq!(
            image_tokens(4096, 2048),
            85 + 170 * 6,
            "fit 2048x1024, then 1536x768: 3x2 tiles"
        );
        let usage = images_usage(10, 40, 50);
        assert_eq!(usage["total_tokens"], 100);
        assert_eq!(usage["input_tokens"], 50);
    }
}
