//! OpenAI's response bodies as this adapter reads them (lenient: unknown fields are ignored and
//! optional ones may be missing), and their token usage mapped into core's `Usage`.

use imagemcp_core::model::Usage;
use serde::Deserialize;
use serde_json::Value;

/// `POST /images/generations` and `/images/edits`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImagesResponse {
    #[serde(default)]
    pub(crate) data: Vec<ImageData>,
    #[serde(default)]
    pub(crate) output_format: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<String>,
    #[serde(default)]
    pub(crate) usage: Option<ImagesUsage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImageData {
    #[serde(default)]
    pub(crate) b64_json: Option<String>,
    #[serde(default)]
    pub(crate) revised_prompt: Option<String>,
}

/// The Images API's `usage` (also the Responses `tool_usage.image_gen`).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ImagesUsage {
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<TokenDetails>,
    #[serde(default)]
    output_tokens_details: Option<TokenDetails>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct TokenDetails {
    #[serde(default)]
    text_tokens: Option<u64>,
    #[serde(default)]
    image_tokens: Option<u64>,
}

impl ImagesUsage {
    /// Splits input into text and image and output into image and text. When a breakdown is
    /// missing, the rest of the total is put where it almost always is (input is text, output is
    /// image), so nothing billed is dropped.
    pub(crate) fn to_core(&self) -> Usage {
        let input = self.input_tokens.unwrap_or(0);
        let output = self.output_tokens.unwrap_or(0);
        let din = self.input_tokens_details.clone().unwrap_or_default();
        let dout = self.output_tokens_details.clone().unwrap_or_default();
        let input_image = din.image_tokens.unwrap_or(0);
        let input_text = din.text_tokens.unwrap_or(input.saturating_sub(input_image));
        let output_text = dout.text_tokens.unwrap_or(0);
        let output_image = dout
            .image_tokens
            .unwrap_or(output.saturating_sub(output_text));
        let sum = input_text + input_image + output_image + output_text;
        Usage {
            input_text_tokens: input_text,
            input_image_tokens: input_image,
            output_image_tokens: output_image,
            output_text_tokens: output_text,
            total_tokens: self.total_tokens.unwrap_or(sum).max(sum),
        }
    }
}

/// `POST /responses`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponseObject {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
    #[serde(default)]
    pub(crate) output: Vec<Value>,
    #[serde(default)]
    pub(crate) usage: Option<ResponsesUsage>,
    /// Hosted tools' own usage; the image tool's tokens are in `image_gen`.
    #[serde(default)]
    pub(crate) tool_usage: Option<ToolUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolUsage {
    #[serde(default)]
    pub(crate) image_gen: Option<ImagesUsage>,
}

impl ResponseObject {
    /// The mainline model's tokens (all text as far as core is concerned).
    pub(crate) fn text_usage(&self) -> Usage {
        let u = self.usage.as_ref();
        let (input, output) = (
            u.map_or(0, |u| u.input_tokens),
            u.map_or(0, |u| u.output_tokens),
        );
        Usage {
            input_text_tokens: input,
            output_text_tokens: output,
            total_tokens: input + output,
            ..Usage::default()
        }
    }

    /// The first `image_generation_call` item.
    pub(crate) fn image_call(&self) -> Option<&Value> {
        self.output
            .iter()
            .find(|item| item.get("type").and_then(Value::as_str) == Some("image_generation_call"))
    }

    /// The concatenated `output_text` of the message items.
    pub(crate) fn output_text(&self) -> String {
        let mut text = String::new();
        for item in self
            .output
            .iter()
            .filter(|i| i.get("type").and_then(Value::as_str) == Some("message"))
        {
            for part in item
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if part.get("type").and_then(Value::as_str) == Some("output_text")
                    && let Some(t) = part.get("text").and_then(Value::as_str)
                {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(t.trim());
                }
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(v: Value) -> Usage {
        serde_json::from_value::<ImagesUsage>(v).unwrap().to_core()
    }

    #[test]
    fn images_usage_splits_text_and_image() {
        let u = usage(
            json!({"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}}),
        );
        assert_eq!(
            (
                u.input_text_tokens,
                u.input_image_tokens,
                u.output_image_tokens,
                u.output_text_tokens,
                u.total_tokens
            ),
            (10, 40, 50, 0, 100)
        );
        let bare = usage(json!({"input_tokens": 7, "output_tokens": 1056}));
        assert_eq!(
            (
                bare.input_text_tokens,
                bare.output_image_tokens,
                bare.total_tokens
            ),
            (7, 1056, 1063)
        );
        assert_eq!(usage(json!({})), Usage::default());
    }

    #[test]
    fn responses_are_read_leniently() {
        let r: ResponseObject = serde_json::from_value(json!({
            "id": "resp_1", "surprise": true,
            "output": [
                {"type": "reasoning", "id": "rs_1"},
                {"type": "image_generation_call", "id": "ig_1", "result": "AAAA"},
                {"type": "message", "content": [{"type": "output_text", "text": " A red fox. "}, {"type": "output_text", "text": "In snow."}]}
            ],
            "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
            "tool_usage": {"image_gen": {"output_tokens": 7024, "output_tokens_details": {"image_tokens": 7024}}}
        }))
        .unwrap();
        assert_eq!(r.image_call().unwrap()["id"], "ig_1");
        assert_eq!(r.output_text(), "A red fox. In snow.");
        assert_eq!(r.text_usage().total_tokens, 15);
        assert_eq!(
            r.tool_usage
                .unwrap()
                .image_gen
                .unwrap()
                .to_core()
                .output_image_tokens,
            7024
        );
    }
}
