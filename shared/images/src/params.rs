//! The arguments of the image tools and routes, parsed at the edge. The same structs are the MCP
//! tools' input schemas (through schemars) and the REST request bodies, so the two surfaces cannot
//! drift apart. Settings arrive as the core's types (`ImageSize`, `Quality`, …), parsed here by
//! their own parsers, so a bad value is refused at the edge with the same words on every surface,
//! and the allowed values a schema lists are those types' wire names (`Quality::NAMES`, …).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use imagemcp_core::Error;
use imagemcp_core::image_params::{Background, ImageSize, OutputFormat, Quality, Style};
use imagemcp_core::modes::Mode;

/// The most variations one request may ask for.
pub const MAX_VARIATIONS: u8 = 4;

/// Deserializes tool arguments or a request body, naming the offending field on error. Only a
/// JSON object (or nothing: `null`) is arguments: serde would fill a struct from an array in field
/// order, which no caller means and which would slip past every check keyed by field name.
pub fn parse_args<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, Error> {
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => args,
        other => {
            return Err(Error::invalid(
                "arguments",
                format!("must be a JSON object, not {}", json_kind(&other)),
            ));
        }
    };
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "arguments".to_owned()
        } else {
            path
        };
        let reason = e.into_inner().to_string();
        // serde names unknown fields in its message; lift the name into `field` for clients.
        let field = match reason
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((name, _)) => name.to_owned(),
            None => field,
        };
        Error::invalid(field, reason)
    })
}

/// A core value the arguments carry by its wire name, parsed by the type's own parser.
trait Wire: Sized {
    fn parse_wire(s: &str) -> Result<Self, Error>;
}

macro_rules! wire_types {
    ($($t:ty),+) => {
        $(impl Wire for $t {
            fn parse_wire(s: &str) -> Result<Self, Error> {
                <$t>::parse(s)
            }
        })+
    };
}
wire_types!(ImageSize, Quality, Background, OutputFormat, Style, Mode);

/// Deserializes an optional [`Wire`] value; the parser's reason becomes serde's, which
/// [`parse_args`] reports under the field's name.
fn wire<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Wire,
{
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    T::parse_wire(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(match e {
            Error::Invalid { reason, .. } => reason,
            other => other.to_string(),
        })
    })
}

/// What kind of JSON value `value` is, with its article, for error messages ("an array").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateArgs {
    /// What to draw, in plain language (1 to 32,000 characters).
    pub prompt: String,
    /// `auto`, `1024x1024`, `1536x1024` (landscape), `1024x1536` (portrait), or any `WxH` the model allows
    /// (GPT Image 2.5: edges multiples of 16, at most 3840 px, long:short at most 3:1).
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", example = "1024x1024")]
    pub size: Option<ImageSize>,
    /// Rendering quality: `low`, `medium`, `high`, `xhigh`, `max` or `auto` (default).
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = Quality::NAMES))]
    pub quality: Option<Quality>,
    /// `transparent` (needs png or webp), `opaque` or `auto` (default).
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = Background::NAMES))]
    pub background: Option<Background>,
    /// `png` (default), `jpeg` or `webp`.
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = OutputFormat::NAMES))]
    pub output_format: Option<OutputFormat>,
    /// JPEG/WebP compression level, 0-100.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub output_compression: Option<u8>,
    /// How many variations to generate in parallel, 1 to 4 (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 4))]
    pub n: Option<u8>,
    /// A style preset added to the prompt.
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = Style::NAMES))]
    pub style: Option<Style>,
    /// Refine the latest image of this conversation (from a previous result's `conversation_id`).
    /// The refinement keeps that image's size, format and background unless this call sets them.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The image model; defaults to the server's configured model.
    #[serde(default)]
    pub model: Option<String>,
    /// A budget for the request: `quick` (10 s, $0.05), `explorer` (15 s, $0.15) or `guided` (20 s,
    /// $0.20). A request estimated over its mode's budget is refused before any image is made.
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = Mode::NAMES))]
    pub mode: Option<Mode>,
    /// `true` makes new images even when the cache holds a result for this request (by default
    /// a repeated or near-identical request returns the stored images, free of quota).
    #[serde(default)]
    pub fresh: Option<bool>,
    /// The campaign a batch item belongs to: set by the campaign consumer, never by a caller (not
    /// in the schema; `deny_unknown_fields` refuses it), so its cost is attributed to the campaign.
    #[serde(skip)]
    #[schemars(skip)]
    pub campaign: Option<String>,
    /// The job item a queued generation is for: set by the job consumer, never by a caller (like
    /// `campaign`), so the item is recorded in the transaction that stores its images.
    #[serde(skip)]
    #[schemars(skip)]
    pub job_item: Option<crate::job_item::JobItem>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    /// What to change, in plain language.
    pub prompt: String,
    /// Ids of stored images to edit (the first is the one the mask applies to).
    #[serde(default)]
    pub image_ids: Vec<String>,
    /// Images to edit, base64-encoded PNG, JPEG or WebP (or `data:` URLs), at most 25 MB each.
    #[serde(default)]
    pub images_base64: Vec<String>,
    /// Optional PNG mask, base64, same dimensions as the first image: transparent pixels mark where to edit.
    #[serde(default)]
    pub mask_base64: Option<String>,
    /// Output size; `auto` (default) keeps the first image's size where the model allows.
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>")]
    pub size: Option<ImageSize>,
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = Quality::NAMES))]
    pub quality: Option<Quality>,
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = Background::NAMES))]
    pub background: Option<Background>,
    #[serde(default, deserialize_with = "wire")]
    #[schemars(with = "Option<String>", extend("enum" = OutputFormat::NAMES))]
    pub output_format: Option<OutputFormat>,
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub output_compression: Option<u8>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageIdArgs {
    /// The image's id (`img_…`).
    pub image_id: String,
}

impl ListArgs {
    pub fn limit(&self) -> Result<usize, Error> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n as usize),
            Some(_) => Err(Error::invalid("limit", "must be 1 to 100")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_arrive_as_core_values_refused_in_the_core_parsers_words() {
        let args: GenerateArgs = parse_args(json!({"prompt": "a kite", "size": "1536x1024",
            "quality": "HIGH", "background": "transparent", "output_format": "webp",
            "style": "watercolor", "mode": "explorer"}))
        .expect("valid");
        assert_eq!(
            args.size,
            Some(ImageSize::Fixed {
                width: 1536,
                height: 1024
            })
        );
        assert_eq!(args.quality, Some(Quality::High));
        assert_eq!(args.background, Some(Background::Transparent));
        assert_eq!(args.output_format, Some(OutputFormat::Webp));
        assert_eq!(args.style, Some(Style::Watercolor));
        assert_eq!(args.mode, Some(Mode::Explorer));
        for (field, value, parsed) in [
            ("quality", "ultra", Quality::parse("ultra").map(|_| ())),
            ("size", "big", ImageSize::parse("big").map(|_| ())),
            ("mode", "slow", Mode::parse("slow").map(|_| ())),
        ] {
            let err = parse_args::<GenerateArgs>(json!({"prompt": "a kite", field: value}))
                .expect_err("refused");
            assert_eq!(
                format!("{err:?}"),
                format!("{:?}", parsed.expect_err("the core refuses it too")),
                "{field}: the same field and words as the core parser"
            );
        }
    }

    #[test]
    fn only_an_object_or_nothing_is_arguments() {
        // In field order an array would fill prompt, size, quality… and n.
        let array = json!([
            "four costly squares",
            "1024x1024",
            "high",
            null,
            null,
            null,
            4
        ]);
        for (value, kind) in [
            (array, "an array"),
            (json!("a prompt"), "a string"),
            (json!(4), "a number"),
            (json!(true), "a boolean"),
        ] {
            match parse_args::<GenerateArgs>(value) {
                Err(Error::Invalid { field, reason }) => {
                    assert_eq!(field, "arguments");
                    assert!(reason.ends_with(kind), "{reason}");
                }
                other => panic!("{kind} must be refused, got {other:?}"),
            }
        }
        assert!(parse_args::<ListArgs>(Value::Null).is_ok());
        let args: GenerateArgs = parse_args(json!({"prompt": "a kite", "n": 2})).unwrap();
        assert_eq!(args.n, Some(2));
    }
}
