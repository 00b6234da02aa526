//! `OpenAiModel`: core's `ImageModel` port over OpenAI's HTTP APIs. Plain renders go to the Images
//! API, refinements to the Responses API's `image_generation` tool, moderation to
//! `omni-moderation-latest`, and alt text to a vision model through the Responses API.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use imagemcp_core::catalog::{self, RenderParams};
use imagemcp_core::image_params::{Background, ImageSize, ModerationLevel, OutputFormat, Quality};
use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Refinement, Rendered,
    RenderedImage, Usage,
};
use imagemcp_core::{Error, Result};
use reqwest::multipart::{Form, Part};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::config::{EMBEDDING_MODEL, MODERATION_MODEL, OpenAiConfig};
use crate::retry::Sleeper;
use crate::transport::{Answer, Call, Payload, Transport};
use crate::wire::{ImagesResponse, ResponseObject};

/// The most images one edit takes.
const MAX_EDIT_IMAGES: usize = 16;

/// What the vision model is asked, once, so every alt text has the same shape.
const ALT_TEXT_INSTRUCTIONS: &str = "You write alt text for images. Reply with one or two plain sentences that describe what the image shows, for someone who cannot see it. No preamble, no markdown, no quotes.";

/// The OpenAI adapter. Cheap to share: hold it in an `Arc`; it keeps one connection pool.
#[derive(Debug)]
pub struct OpenAiModel {
    config: OpenAiConfig,
    transport: Transport,
}

impl OpenAiModel {
    /// Checks the config and builds the HTTP client once.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let base = config.validate()?;
        let transport = Transport::new(
            &base,
            config.api_key.clone(),
            config.retry,
            crate::retry::default_sleeper(),
        )?;
        Ok(Self { config, transport })
    }

    /// Replaces how retries wait (tests inject a sleeper that records instead of sleeping).
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.transport.set_sleeper(sleeper);
        self
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &'static str,
        model: &str,
        timeout: Duration,
        body: &Value,
    ) -> Result<(T, Answer)> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::internal(format!("encoding the request: {e}")))?;
        let call = Call {
            path,
            model,
            timeout,
            payload: Payload::Json(Bytes::from(bytes)),
        };
        let answer = self.transport.send(&call).await?;
        Ok((parse(path, &answer)?, answer))
    }

    /// One render through the Images API.
    async fn generate_image(&self, req: &GenerateRequest) -> Result<Rendered> {
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model));
        body.insert("prompt".into(), json!(req.prompt));
        body.insert("n".into(), json!(1));
        for (k, v) in image_fields(&req.params) {
            body.insert(k.into(), v);
        }
        if req.moderation == ModerationLevel::Low {
            body.insert("moderation".into(), json!("low"));
        }
        if let Some(id) = &req.safety_identifier {
            body.insert("safety_identifier".into(), json!(id));
        }
        let path = "/images/generations";
        let (resp, answer): (ImagesResponse, _) = self
            .post_json(
                path,
                &req.model,
                self.config.image_timeout,
                &Value::Object(body),
            )
            .await?;
        self.rendered_from_images(path, &req.model, &req.params, resp, &answer)
    }

    fn rendered_from_images(
        &self,
        path: &str,
        model: &str,
        params: &RenderParams,
        resp: ImagesResponse,
        answer: &Answer,
    ) -> Result<Rendered> {
        let usage = resp.usage.as_ref().map(|u| u.to_core()).unwrap_or_default();
        log_usage(path, model, answer, &usage);
        let first = resp
            .data
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("OpenAI returned no image (empty `data`)"))?;
        let b64 = first
            .b64_json
            .ok_or_else(|| Error::internal("OpenAI returned an image without `b64_json`"))?;
        if let Some(declared) = resp.output_format.as_deref()
            && !declared.eq_ignore_ascii_case(params.format.as_str())
        {
            return Err(Error::internal(format!(
                "OpenAI returned {declared} although {} was requested",
                params.format
            )));
        }
        let image = decode_image(
            &b64,
            params.format,
            resp.size.as_deref(),
            first.revised_prompt,
        )?;
        Ok(Rendered {
            image,
            model: model.to_owned(),
            usage,
            response_id: None,
        })
    }

    /// One refinement through the Responses API's image tool.
    async fn refine(&self, req: &GenerateRequest, refine: &Refinement) -> Result<Rendered> {
        match self
            .refine_once(req, refine, refine.previous_response_id.as_deref())
            .await
        {
            // A conversation older than OpenAI keeps responses for cannot be continued by id; the
            // previous image, when we have it, carries the same context.
            Err(Error::Invalid { field, reason })
                if field == "previous_response_id" && refine.previous_image.is_some() =>
            {
                tracing::warn!(reason = %reason, "previous response is gone; refining from the previous image instead");
                self.refine_once(req, refine, None).await
            }
            other => other,
        }
    }

    async fn refine_once(
        &self,
        req: &GenerateRequest,
        refine: &Refinement,
        previous_id: Option<&str>,
    ) -> Result<Rendered> {
        let mut content = vec![json!({"type": "input_text", "text": req.prompt})];
        if previous_id.is_none() {
            if let Some(image) = &refine.previous_image {
                content.push(json!({"type": "input_image", "image_url": data_url(image)?}));
            }
            if let Some(previous) = &refine.previous_prompt {
                content.insert(0, json!({"type": "input_text", "text": format!("The previous image was made from this prompt: {previous}")}));
            }
        }
        let mut tool = Map::new();
        tool.insert("type".into(), json!("image_generation"));
        tool.insert("model".into(), json!(req.model));
        for (k, v) in image_fields(&req.params) {
            tool.insert(k.into(), v);
        }
        if req.moderation == ModerationLevel::Low {
            tool.insert("moderation".into(), json!("low"));
        }
        let mut body = json!({
            "model": self.config.mainline_model,
            "input": [{"role": "user", "content": content}],
            "tools": [Value::Object(tool)],
            "tool_choice": {"type": "image_generation"},
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(id) = previous_id {
                obj.insert("previous_response_id".into(), json!(id));
            }
            if let Some(id) = &req.safety_identifier {
                obj.insert("safety_identifier".into(), json!(id));
            }
        }
        let path = "/responses";
        let (resp, answer): (ResponseObject, _) = self
            .post_json(path, &req.model, self.config.image_timeout, &body)
            .await?;
        fail_if_unfinished(&resp)?;
        let Some(call) = resp.image_call() else {
            let said = resp.output_text();
            return Err(Error::PolicyViolation {
                reason: format!(
                    "the model replied without drawing an image (\"{}\"); rephrase the prompt",
                    truncate(&said, 300)
                ),
                categories: vec![],
            });
        };
        if call.get("status").and_then(Value::as_str) == Some("failed") {
            return Err(Error::Unavailable(
                "OpenAI's image generation step failed; try again".into(),
            ));
        }
        let b64 = call
            .get("result")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::internal("the image_generation_call has no `result`"))?;
        let revised = call
            .get("revised_prompt")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let size = call.get("size").and_then(Value::as_str);
        let image = decode_image(b64, req.params.format, size, revised)?;
        let mut usage = resp.text_usage();
        match resp.tool_usage.as_ref().and_then(|t| t.image_gen.as_ref()) {
            Some(image_gen) => usage.add(&image_gen.to_core()),
            None => {
                // Without the tool's own usage, bill the catalog's estimate for what was rendered,
                // so a refinement is never recorded as free.
                let tokens = catalog::lookup(&req.model).map_or(0, |spec| {
                    spec.estimate_output_tokens(
                        ImageSize::Fixed {
                            width: image.width,
                            height: image.height,
                        },
                        req.params.quality,
                    )
                });
                usage.add(&Usage {
                    output_image_tokens: tokens,
                    total_tokens: tokens,
                    ..Usage::default()
                });
            }
        }
        log_usage(path, &req.model, &answer, &usage);
        Ok(Rendered {
            image,
            model: req.model.clone(),
            usage,
            response_id: Some(resp.id),
        })
    }

    fn edit_form(req: &EditRequest) -> Result<Form> {
        let mut form = Form::new()
            .text("model", req.model.clone())
            .text("prompt", req.prompt.clone())
            .text("n", "1");
        for (k, v) in image_fields(&req.params) {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            form = form.text(k, text);
        }
        if let Some(id) = &req.safety_identifier {
            form = form.text("safety_identifier", id.clone());
        }
        for (i, image) in req.images.iter().enumerate() {
            let format = checked_format(image, "images")?;
            let part = Part::bytes(image.bytes.clone())
                .file_name(format!("image_{i}.{}", format.extension()));
            let part = part
                .mime_str(format.mime())
                .map_err(|e| Error::internal(format!("multipart: {e}")))?;
            form = form.part("image[]", part);
        }
        if let Some(mask) = &req.mask {
            if OutputFormat::sniff(mask) != Some(OutputFormat::Png) {
                return Err(Error::invalid("mask", "the mask must be a PNG"));
            }
            let part = Part::bytes(mask.clone())
                .file_name("mask.png")
                .mime_str("image/png")
                .map_err(|e| Error::internal(format!("multipart: {e}")))?;
            form = form.part("mask", part);
        }
        Ok(form)
    }
}

#[async_trait::async_trait]
impl ImageModel for OpenAiModel {
    fn default_model(&self) -> &str {
        &self.config.image_model
    }

    async fn generate(&self, req: GenerateRequest) -> Result<Rendered> {
        match &req.refine {
            Some(refine) => self.refine(&req, refine).await,
            None => self.generate_image(&req).await,
        }
    }

    async fn edit(&self, req: EditRequest) -> Result<Rendered> {
        if req.images.is_empty() || req.images.len() > MAX_EDIT_IMAGES {
            return Err(Error::invalid(
                "images",
                format!(
                    "an edit takes 1 to {MAX_EDIT_IMAGES} images, not {}",
                    req.images.len()
                ),
            ));
        }
        // Check the inputs before any call: a bad upload is the caller's to fix, not a retry.
        Self::edit_form(&req)?;
        let build = || Self::edit_form(&req);
        let path = "/images/edits";
        let call = Call {
            path,
            model: &req.model,
            timeout: self.config.image_timeout,
            payload: Payload::Multipart(&build),
        };
        let answer = self.transport.send(&call).await?;
        let resp: ImagesResponse = parse(path, &answer)?;
        self.rendered_from_images(path, &req.model, &req.params, resp, &answer)
    }

    async fn moderate(&self, text: &str) -> Result<Moderation> {
        let body = json!({"model": MODERATION_MODEL, "input": text});
        let path = "/moderations";
        let (resp, _): (Value, _) = self
            .post_json(path, MODERATION_MODEL, self.config.text_timeout, &body)
            .await?;
        let result = resp
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .ok_or_else(|| Error::internal("OpenAI's moderation answer has no results"))?;
        let flagged = result
            .get("flagged")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let categories = result
            .get("categories")
            .and_then(Value::as_object)
            .map(|c| {
                c.iter()
                    .filter(|(_, v)| v.as_bool() == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Moderation {
            flagged,
            categories,
        })
    }

    async fn embed(&self, text: &str) -> Result<imagemcp_core::embed::Embedding> {
        use imagemcp_core::embed::{DIMS, Embedding, normalize};
        let body = json!({
            "model": EMBEDDING_MODEL,
            "input": text,
            "dimensions": DIMS,
            "encoding_format": "float",
        });
        let path = "/embeddings";
        let (resp, _): (Value, _) = self
            .post_json(path, EMBEDDING_MODEL, self.config.text_timeout, &body)
            .await?;
        let mut vector: Vec<f32> = resp
            .pointer("/data/0/embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Unavailable("OpenAI's embeddings answer has no vector".into()))?
            .iter()
            .map(|x| x.as_f64().unwrap_or(0.0) as f32)
            .collect();
        if vector.len() != DIMS {
            return Err(Error::Unavailable(format!(
                "OpenAI returned an embedding of {} dimensions, not {DIMS}",
                vector.len()
            )));
        }
        normalize(&mut vector);
        Ok(Embedding {
            model: EMBEDDING_MODEL.to_owned(),
            vector,
        })
    }

    async fn describe(&self, image: &InputImage) -> Result<String> {
        let body = json!({
            "model": self.config.vision_model,
            "instructions": ALT_TEXT_INSTRUCTIONS,
            "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "Write the alt text for this image."},
                {"type": "input_image", "image_url": data_url(image)?, "detail": "low"},
            ]}],
            "reasoning": {"effort": "low"},
            "max_output_tokens": 1000,
            "store": false,
        });
        let path = "/responses";
        let (resp, answer): (ResponseObject, _) = self
            .post_json(
                path,
                &self.config.vision_model,
                self.config.text_timeout,
                &body,
            )
            .await?;
        fail_if_unfinished(&resp)?;
        log_usage(path, &self.config.vision_model, &answer, &resp.text_usage());
        let text = resp.output_text();
        if text.is_empty() {
            return Err(Error::Unavailable(
                "OpenAI's vision model returned no alt text; try again".into(),
            ));
        }
        Ok(text)
    }
}

/// The wire fields of a render's parameters. `auto` values are left out (they are the API's
/// defaults); `output_format` is always sent, so the answer's format is never a surprise.
fn image_fields(p: &RenderParams) -> Vec<(&'static str, Value)> {
    let mut fields = Vec::new();
    if p.size != ImageSize::Auto {
        fields.push(("size", json!(p.size.to_string())));
    }
    if p.quality != Quality::Auto {
        fields.push(("quality", json!(p.quality.as_str())));
    }
    if p.background != Background::Auto {
        fields.push(("background", json!(p.background.as_str())));
    }
    fields.push(("output_format", json!(p.format.as_str())));
    if let Some(c) = p.compression {
        fields.push(("output_compression", json!(c)));
    }
    fields
}

fn parse<T: DeserializeOwned>(path: &str, answer: &Answer) -> Result<T> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        Error::internal(format!(
            "OpenAI's answer to {path} was not the expected JSON: {e}"
        ))
    })
}

/// A response that did not complete (`failed`, `incomplete`) is an upstream failure.
fn fail_if_unfinished(resp: &ResponseObject) -> Result<()> {
    match resp.status.as_deref() {
        None | Some("completed") => Ok(()),
        Some(status) => {
            let why = resp
                .error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            Err(Error::Unavailable(format!(
                "OpenAI's response ended {status}: {why}"
            )))
        }
    }
}

/// The declared format of an input, checked against its bytes.
fn checked_format(image: &InputImage, field: &str) -> Result<OutputFormat> {
    match OutputFormat::sniff(&image.bytes) {
        Some(f) => Ok(f),
        None => Err(Error::invalid(field, "not a PNG, JPEG or WebP image")),
    }
}

fn data_url(image: &InputImage) -> Result<String> {
    let format = checked_format(image, "image")?;
    Ok(format!(
        "data:{};base64,{}",
        format.mime(),
        STANDARD.encode(&image.bytes)
    ))
}

/// Decodes a base64 image, checks it really is the requested format, and reads its size from its
/// header (falling back to the answer's `size`).
fn decode_image(
    b64: &str,
    format: OutputFormat,
    size: Option<&str>,
    revised_prompt: Option<String>,
) -> Result<RenderedImage> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|e| {
        Error::internal(format!(
            "OpenAI returned an image that is not valid base64: {e}"
        ))
    })?;
    match OutputFormat::sniff(&bytes) {
        Some(f) if f == format => {}
        Some(f) => {
            return Err(Error::internal(format!(
                "OpenAI returned a {f} image although {format} was requested"
            )));
        }
        None => {
            return Err(Error::internal(format!(
                "OpenAI returned bytes that are not a {format} image"
            )));
        }
    }
    let header = image::ImageReader::with_format(Cursor::new(&bytes), image_format(format))
        .into_dimensions()
        .ok();
    let from_size = size
        .and_then(|s| ImageSize::parse(s).ok())
        .and_then(|s| match s {
            ImageSize::Fixed { width, height } => Some((width, height)),
            ImageSize::Auto => None,
        });
    let (width, height) = header.or(from_size).ok_or_else(|| {
        Error::internal(format!(
            "OpenAI returned a {format} image whose size cannot be read"
        ))
    })?;
    Ok(RenderedImage {
        bytes,
        format,
        width,
        height,
        revised_prompt,
    })
}

fn image_format(f: OutputFormat) -> image::ImageFormat {
    match f {
        OutputFormat::Png => image::ImageFormat::Png,
        OutputFormat::Jpeg => image::ImageFormat::Jpeg,
        OutputFormat::Webp => image::ImageFormat::WebP,
    }
}

fn log_usage(path: &str, model: &str, answer: &Answer, usage: &Usage) {
    tracing::info!(
        path,
        model,
        request_id = answer.request_id.as_deref().unwrap_or(""),
        input_text_tokens = usage.input_text_tokens,
        input_image_tokens = usage.input_image_tokens,
        output_image_tokens = usage.output_image_tokens,
        output_text_tokens = usage.output_text_tokens,
        total_tokens = usage.total_tokens,
        "openai usage"
    );
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RenderParams {
        RenderParams {
            size: ImageSize::Auto,
            quality: Quality::Auto,
            background: Background::Auto,
            format: OutputFormat::Png,
            compression: None,
        }
    }

    #[test]
    fn auto_values_are_left_out_but_the_format_is_always_sent() {
        let names: Vec<&str> = image_fields(&params()).iter().map(|(k, _)| *k).collect();
        assert_eq!(names, vec!["output_format"]);
        let full = RenderParams {
            size: ImageSize::Fixed {
                width: 1536,
                height: 1024,
            },
            quality: Quality::XHigh,
            background: Background::Opaque,
            format: OutputFormat::Jpeg,
            compression: Some(80),
        };
        let fields: Map<String, Value> = image_fields(&full)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(
            Value::Object(fields),
            json!({"size": "1536x1024", "quality": "xhigh", "background": "opaque", "output_format": "jpeg", "output_compression": 80})
        );
    }

    #[test]
    fn decoded_images_must_be_what_was_asked_for() {
        let png = STANDARD.encode(b"\x89PNG\r\n\x1a\nnot really");
        let e = decode_image(&png, OutputFormat::Jpeg, Some("1024x1024"), None).unwrap_err();
        assert!(e.to_string().contains("png image although jpeg"), "{e}");
        let sized = decode_image(&png, OutputFormat::Png, Some("1024x1536"), None).unwrap();
        assert_eq!(
            (sized.width, sized.height),
            (1024, 1536),
            "falls back to the size field"
        );
        assert!(decode_image("%%%", OutputFormat::Png, None, None).is_err());
        assert!(decode_image(&STANDARD.encode(b"GIF89a"), OutputFormat::Png, None, None).is_err());
    }

    #[test]
    fn inputs_are_sniffed_not_trusted() {
        let bogus = InputImage {
            bytes: b"hello".to_vec(),
            format: OutputFormat::Png,
        };
        assert!(matches!(data_url(&bogus), Err(Error::Invalid { .. })));
        let jpeg = InputImage {
            bytes: vec![0xFF, 0xD8, 0xFF, 0xE0],
            format: OutputFormat::Png,
        };
        assert!(
            data_url(&jpeg)
                .unwrap()
                .starts_with("data:image/jpeg;base64,")
        );
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
