//! `POST /v1/responses`: the Responses API with the `image_generation` tool (multi-turn through
//! `previous_response_id`), and plain answers about input images (alt text) when no tool is given.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imagemcp_core::catalog;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{RequestId, parse_json_object, random_hex, summarize};
use crate::images::{now_secs, render_all};
use crate::moderation::{blocked, classify};
use crate::params::{self, Endpoint, Fields, ImageJob, image_tokens, images_usage, text_tokens};
use crate::render::{describe, seed};
use crate::state::{RecordedRequest, State, StoredResponse};
use crate::upload::{self, Upload};

const RESPONSE_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "previous_response_id",
    "store",
    "stream",
    "max_output_tokens",
    "reasoning",
    "text",
    "metadata",
    "safety_identifier",
    "user",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "include",
    "truncation",
    "prompt_cache_key",
    "service_tier",
];

const TOOL_FIELDS: &[&str] = &[
    "type",
    "model",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "partial_images",
    "input_fidelity",
    "input_image_mask",
    "action",
];

/// The tool's model when a request names none: OpenAI's documented default, which is shut down, so
/// a client that forgets to set it gets the same error it would get from the real API.
const TOOL_DEFAULT_MODEL: &str = "gpt-image-1";

/// The longest revised prompt the fake builds up over a conversation.
const MAX_REVISED_CHARS: usize = 4000;

/// What the request's `input` holds.
#[derive(Default)]
struct Input {
    /// The user's text parts, in order.
    texts: Vec<String>,
    images: Vec<Upload>,
    /// `image_generation_call` items referring to earlier images.
    image_calls: Vec<String>,
}

/// The image tool of a request.
#[derive(Debug)]
struct Tool {
    job: ImageJob,
    action: String,
}

pub(crate) async fn create(
    AxumState(state): AxumState<Arc<State>>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = parse_json_object(&body)?;
    let fields = Fields::json(&map);
    let record = RecordedRequest {
        request_id: request_id.id.clone(),
        method: "POST".into(),
        path: request_id.path.as_str().to_owned(),
        model: fields.str("model").ok().flatten().map(str::to_owned),
        fields: summarize(Value::Object(map.clone())),
        files: vec![],
        status: None,
    };
    state.admit(record).await?;
    fields.only(RESPONSE_FIELDS)?;
    let model = match fields.str("model")? {
        None => return Err(ApiError::missing("model")),
        Some("") => {
            return Err(ApiError::invalid_value(
                "model",
                "Invalid 'model': empty string.",
            ));
        }
        Some(m) if catalog::lookup(m).is_some() => {
            return Err(ApiError::invalid_value(
                "model",
                format!(
                    "'{m}' is an image model: set a mainline model (such as gpt-6-astra) as 'model' and the image model in the image_generation tool's 'model'."
                ),
            ));
        }
        Some(m) => m.to_owned(),
    };
    if fields.bool("stream")? == Some(true) {
        return Err(ApiError::invalid_value(
            "stream",
            "The fake OpenAI server does not stream Responses; omit 'stream'.",
        ));
    }
    let previous = match fields.str("previous_response_id")? {
        None => None,
        Some(id) => Some(state.response(id).ok_or_else(|| {
            ApiError::invalid(
                "previous_response_id",
                "previous_response_not_found",
                format!("Previous response with id '{id}' not found."),
            )
        })?),
    };
    let input = read_input(&fields, &state)?;
    let tool = read_tool(&fields)?;
    let tool_choice = read_tool_choice(&fields, tool.is_some())?;
    let instructions = fields.str("instructions")?.unwrap_or_default().to_owned();
    let prompt = input.texts.join("\n");
    let input_image_tokens: u64 = input
        .images
        .iter()
        .map(|u| image_tokens(u.info.width, u.info.height))
        .sum();
    let input_text_tokens = text_tokens(&instructions)
        + text_tokens(&prompt)
        + previous
            .as_ref()
            .and_then(|p| p.revised_prompt.as_deref())
            .map_or(0, text_tokens);

    let id = format!("resp_{}", random_hex(48));
    let mut output = Vec::new();
    let mut tool_usage = None;
    let mut stored = StoredResponse {
        revised_prompt: previous.as_ref().and_then(|p| p.revised_prompt.clone()),
        image_call_id: None,
    };
    let reply = match tool.filter(|_| tool_choice != "none") {
        Some(tool) => {
            params::check_prompt("input", &prompt)?;
            let has_context_image = !input.images.is_empty()
                || !input.image_calls.is_empty()
                || previous.as_ref().is_some_and(|p| p.image_call_id.is_some());
            if tool.action == "edit" && !has_context_image {
                return Err(ApiError::invalid_value(
                    "tools[0].action",
                    "The image_generation tool's action is 'edit' but there is no image in the context to edit.",
                ));
            }
            let categories = classify(&prompt);
            if !categories.is_empty()
                && tool.job.moderation != imagemcp_core::image_params::ModerationLevel::Low
            {
                return Err(blocked(&categories));
            }
            state.model_latency(request_id.path.as_str()).await;
            let revised = revise(stored.revised_prompt.as_deref(), &prompt);
            let context: Vec<u8> = input
                .images
                .iter()
                .flat_map(|u| seed(&[&u.bytes]).to_le_bytes())
                .collect();
            let image = render_all(
                tool.job,
                seed(&[tool.job.spec.id.as_bytes(), revised.as_bytes(), &context]),
            )
            .await?;
            let call_id = format!("ig_{}", random_hex(48));
            let mut item = json!({
                "id": call_id,
                "type": "image_generation_call",
                "status": "completed",
                "revised_prompt": revised,
                "result": image.first().map(|b| STANDARD.encode(b)),
            });
            if let (Some(item), Some(echo)) = (item.as_object_mut(), tool.job.echo().as_object()) {
                item.extend(echo.clone());
            }
            output.push(item);
            // An earlier image in context is read again as input, at the size it was rendered.
            let earlier = if has_context_image && input.images.is_empty() {
                image_tokens(1024, 1024)
            } else {
                0
            };
            tool_usage = Some(json!({"image_gen": images_usage(
                text_tokens(&revised),
                input_image_tokens + earlier,
                tool.job.output_tokens_per_image(),
            )}));
            stored = StoredResponse {
                revised_prompt: Some(revised),
                image_call_id: Some(call_id),
            };
            "Here is the image you asked for.".to_owned()
        }
        None => {
            state.model_latency(request_id.path.as_str()).await;
            match input.images.first() {
                Some(upload) => describe(&upload.bytes).map_err(|why| {
                    ApiError::invalid_value("input", format!("Invalid image in 'input': {why}"))
                })?,
                None => format!("You said: {}", prompt.chars().take(200).collect::<String>()),
            }
        }
    };
    let output_text_tokens = text_tokens(&reply)
        + output
            .first()
            .and_then(|i| i["revised_prompt"].as_str())
            .map_or(0, text_tokens);
    output.push(json!({
        "id": format!("msg_{}", random_hex(48)),
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": reply, "annotations": []}],
    }));
    if fields.bool("store")? != Some(false) {
        state.remember_response(id.clone(), stored);
    }
    let mut body = json!({
        "id": id,
        "object": "response",
        "created_at": now_secs(),
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "model": model,
        "instructions": fields.get("instructions"),
        "previous_response_id": fields.get("previous_response_id"),
        "tools": fields.get("tools").cloned().unwrap_or(json!([])),
        "tool_choice": fields.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "output": output,
        "usage": {
            "input_tokens": input_text_tokens + input_image_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_text_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_text_tokens + input_image_tokens + output_text_tokens,
        },
        "metadata": fields.get("metadata").cloned().unwrap_or(json!({})),
    });
    if let (Some(obj), Some(tool_usage)) = (body.as_object_mut(), tool_usage) {
        obj.insert("tool_usage".into(), tool_usage);
    }
    Ok(axum::Json(body).into_response())
}

/// The conversation's prompt after this turn, as the mainline model would restate it.
fn revise(previous: Option<&str>, prompt: &str) -> String {
    let revised = match previous {
        Some(p) => format!("{p}. Then: {prompt}"),
        None => prompt.to_owned(),
    };
    revised.chars().take(MAX_REVISED_CHARS).collect()
}

fn read_input(fields: &Fields<'_>, state: &State) -> Result<Input, ApiError> {
    let mut input = Input::default();
    match fields.get("input") {
        None => return Err(ApiError::missing("input")),
        Some(Value::String(s)) => input.texts.push(s.clone()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                read_item(&format!("input[{i}]"), item, state, &mut input)?;
            }
        }
        Some(other) => {
            return Err(ApiError::invalid_type(
                "input",
                "a string or an array",
                other,
            ));
        }
    }
    Ok(input)
}

fn read_item(param: &str, item: &Value, state: &State, input: &mut Input) -> Result<(), ApiError> {
    let Some(obj) = item.as_object() else {
        return Err(ApiError::invalid_type(param, "an object", item));
    };
    let kind = obj.get("type").and_then(Value::as_str);
    match kind {
        Some("image_generation_call") => {
            let id = obj.get("id").and_then(Value::as_str).unwrap_or_default();
            if !state.knows_image_call(id) {
                return Err(ApiError::invalid_value(
                    &format!("{param}.id"),
                    format!("Image generation call with id '{id}' not found."),
                ));
            }
            input.image_calls.push(id.to_owned());
            Ok(())
        }
        None | Some("message") => {
            let role = obj.get("role").and_then(Value::as_str).unwrap_or_default();
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(ApiError::invalid_value(
                    &format!("{param}.role"),
                    "Expected one of 'user', 'assistant', 'system' or 'developer'.",
                ));
            }
            match obj.get("content") {
                Some(Value::String(s)) if role == "user" => input.texts.push(s.clone()),
                Some(Value::String(_)) => {}
                Some(Value::Array(parts)) => {
                    for (j, part) in parts.iter().enumerate() {
                        read_part(&format!("{param}.content[{j}]"), part, role, input)?;
                    }
                }
                Some(other) => {
                    return Err(ApiError::invalid_type(
                        &format!("{param}.content"),
                        "a string or an array",
                        other,
                    ));
                }
                None => return Err(ApiError::missing(&format!("{param}.content"))),
            }
            Ok(())
        }
        Some(other) => Err(ApiError::invalid_value(
            &format!("{param}.type"),
            format!("The fake OpenAI server does not take input items of type '{other}'."),
        )),
    }
}

fn read_part(param: &str, part: &Value, role: &str, input: &mut Input) -> Result<(), ApiError> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text") => {
            let text = part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::missing(&format!("{param}.text")))?;
            if role == "user" {
                input.texts.push(text.to_owned());
            }
            Ok(())
        }
        Some("output_text") => Ok(()),
        Some("input_image") => {
            let url_param = format!("{param}.image_url");
            match part.get("image_url").and_then(Value::as_str) {
                Some(url) => {
                    let bytes = upload::data_url(&url_param, url)?;
                    input.images.push(upload::image(&url_param, bytes)?);
                    Ok(())
                }
                None => Err(ApiError::invalid_value(
                    &url_param,
                    "The fake OpenAI server takes input images as data URLs in 'image_url' only.",
                )),
            }
        }
        _ => Err(ApiError::invalid_value(
            &format!("{param}.type"),
            "Expected 'input_text', 'input_image' or 'output_text'.",
        )),
    }
}

fn read_tool(fields: &Fields<'_>) -> Result<Option<Tool>, ApiError> {
    let tools = match fields.get("tools") {
        None => return Ok(None),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(ApiError::invalid_type("tools", "an array", other)),
    };
    let mut found = None;
    for (i, tool) in tools.iter().enumerate() {
        let prefix = format!("tools[{i}].");
        let Some(map) = tool.as_object() else {
            return Err(ApiError::invalid_type(
                &format!("tools[{i}]"),
                "an object",
                tool,
            ));
        };
        match map.get("type").and_then(Value::as_str) {
            Some("image_generation") if found.is_none() => {
                found = Some(read_image_tool(map, &prefix)?)
            }
            Some("image_generation") => {
                return Err(ApiError::invalid_value(
                    &format!("{prefix}type"),
                    "Only one image_generation tool may be given.",
                ));
            }
            _ => {
                return Err(ApiError::invalid_value(
                    &format!("{prefix}type"),
                    "The fake OpenAI server supports only the 'image_generation' tool.",
                ));
            }
        }
    }
    Ok(found)
}

fn read_image_tool(map: &Map<String, Value>, prefix: &str) -> Result<Tool, ApiError> {
    let fields = Fields::nested(map, prefix);
    fields.only(TOOL_FIELDS)?;
    let spec = params::image_model(&fields, Some(TOOL_DEFAULT_MODEL))?;
    let job = params::image_job(&fields, spec, Endpoint::Tool)?;
    let action = fields.str("action")?.unwrap_or("auto");
    if !matches!(action, "auto" | "generate" | "edit") {
        return Err(ApiError::invalid_value(
            &fields.param("action"),
            "Expected one of 'auto', 'generate' or 'edit'.",
        ));
    }
    Ok(Tool {
        job,
        action: action.to_owned(),
    })
}

/// `auto`, `required`, `none`, or `{"type":"image_generation"}`, reduced to one word.
fn read_tool_choice(fields: &Fields<'_>, has_tool: bool) -> Result<&'static str, ApiError> {
    let choice = match fields.get("tool_choice") {
        None => "auto",
        Some(Value::String(s)) => match s.as_str() {
            "auto" => "auto",
            "none" => "none",
            "required" => "required",
            _ => {
                return Err(ApiError::invalid_value(
                    "tool_choice",
                    "Expected 'auto', 'none', 'required' or a tool object.",
                ));
            }
        },
        Some(Value::Object(o))
            if o.get("type").and_then(Value::as_str) == Some("image_generation") =>
        {
            "required"
        }
        Some(other) => {
            return Err(ApiError::invalid_value(
                "tool_choice",
                format!("Unsupported tool_choice {other}."),
            ));
        }
    };
    if choice == "required" && !has_tool {
        return Err(ApiError::invalid_value(
            "tool_choice",
            "tool_choice requires a tool, but 'tools' has no image_generation tool.",
        ));
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_accumulate_and_stay_bounded() {
        assert_eq!(revise(None, "a fox"), "a fox");
        assert_eq!(
            revise(Some("a fox"), "make it red"),
            "a fox. Then: make it red"
        );
        assert_eq!(
            revise(Some(&"a".repeat(5000)), "b").chars().count(),
            MAX_REVISED_CHARS
        );
    }

    fn tool(body: Value) -> Result<Option<Tool>, ApiError> {
        let map = body.as_object().unwrap().clone();
        read_tool(&Fields::json(&map))
    }

    #[test]
    fn the_tool_is_checked_with_the_catalog() {
        let ok = tool(json!({"tools": [{"type": "image_generation", "model": "gpt-image-2.5-flare", "size": "1536x1024"}]})).unwrap().unwrap();
        assert_eq!(ok.job.dimensions(), (1536, 1024));
        let no_model = tool(json!({"tools": [{"type": "image_generation"}]})).unwrap_err();
        assert_eq!(
            no_model.code.as_deref(),
            Some("model_not_found"),
            "the SPEC default gpt-image-1 is dead"
        );
        let bad = tool(json!({"tools": [{"type": "image_generation", "model": "gpt-image-2", "quality": "max"}]})).unwrap_err();
        assert_eq!(bad.param.as_deref(), Some("tools[0].quality"));
        let unknown = tool(
            json!({"tools": [{"type": "image_generation", "model": "gpt-image-2", "seed": 1}]}),
        )
        .unwrap_err();
        assert_eq!(unknown.param.as_deref(), Some("tools[0].seed"));
        assert!(tool(json!({"tools": [{"type": "web_search"}]})).is_err());
    }
}
