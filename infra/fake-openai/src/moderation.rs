//! `POST /v1/moderations` and the word-list classifier behind it, which the image endpoints also use
//! to refuse prompts with `moderation_blocked` the way the real safety system does.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{RequestId, serve_json};
use crate::params::Fields;
use crate::state::State;

/// The 13 categories of `omni-moderation-latest`, in the order the API lists them.
pub(crate) const CATEGORIES: [&str; 13] = [
    "hate",
    "hate/threatening",
    "harassment",
    "harassment/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// The categories that also apply to image input.
const IMAGE_CATEGORIES: [&str; 6] = [
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "violence",
    "violence/graphic",
];

/// Trigger words and the categories each flags. Whole words only, so "skill" is not "kill".
const WORDS: &[(&str, &[&str])] = &[
    ("gore", &["violence", "violence/graphic"]),
    ("gory", &["violence", "violence/graphic"]),
    ("murder", &["violence"]),
    ("nsfw", &["sexual"]),
    ("nude", &["sexual"]),
    ("porn", &["sexual"]),
    ("suicide", &["self-harm"]),
    ("bomb", &["illicit", "illicit/violent"]),
    ("slur", &["hate", "harassment"]),
];

/// The categories `text` trips, in the API's order; empty when it is clean.
pub(crate) fn classify(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    CATEGORIES
        .into_iter()
        .filter(|cat| {
            WORDS
                .iter()
                .any(|(w, cats)| cats.contains(cat) && words.contains(w))
        })
        .collect()
}

/// The 400 the image endpoints answer when the safety system refuses a prompt.
pub(crate) fn blocked(categories: &[&str]) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "image_generation_user_error",
        format!(
            "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID. safety_violations=[{}].",
            categories.join(", ")
        ),
    )
    .code("moderation_blocked")
    .extra("moderation_details", json!({"moderation_stage": "input", "categories": categories}))
}

/// One input of a moderation request: text, or an image (which the word list cannot read).
enum Input {
    Text(String),
    Image,
}

fn inputs(fields: &Fields<'_>) -> Result<Vec<Vec<Input>>, ApiError> {
    let Some(input) = fields.get("input") else {
        return Err(ApiError::missing("input"));
    };
    match input {
        Value::String(s) => Ok(vec![vec![Input::Text(s.clone())]]),
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .map(|s| vec![Input::Text(s.as_str().unwrap_or_default().to_owned())])
            .collect()),
        // A multi-modal array is one input made of several parts, with one result.
        Value::Array(items) => {
            let mut parts = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.get("type").and_then(Value::as_str) {
                    Some("text") => match item.get("text").and_then(Value::as_str) {
                        Some(t) => parts.push(Input::Text(t.to_owned())),
                        None => return Err(ApiError::missing(&format!("input[{i}].text"))),
                    },
                    Some("image_url") => parts.push(Input::Image),
                    _ => {
                        return Err(ApiError::invalid_value(
                            &format!("input[{i}].type"),
                            "Expected 'text' or 'image_url'.",
                        ));
                    }
                }
            }
            Ok(vec![parts])
        }
        other => Err(ApiError::invalid_type(
            "input",
            "a string or an array",
            other,
        )),
    }
}

fn result(parts: &[Input]) -> Value {
    let text: Vec<&str> = parts
        .iter()
        .filter_map(|p| {
            if let Input::Text(t) = p {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    let has_image = parts.iter().any(|p| matches!(p, Input::Image));
    let flagged_cats = classify(&text.join(" "));
    let mut categories = Map::new();
    let mut scores = Map::new();
    let mut applied = Map::new();
    for cat in CATEGORIES {
        let hit = flagged_cats.contains(&cat);
        categories.insert(cat.to_owned(), json!(hit));
        scores.insert(cat.to_owned(), json!(if hit { 0.97 } else { 0.000_12 }));
        let mut types = vec!["text"];
        if has_image && IMAGE_CATEGORIES.contains(&cat) {
            types.push("image");
        }
        applied.insert(cat.to_owned(), json!(types));
    }
    json!({
        "flagged": !flagged_cats.is_empty(),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    })
}

pub(crate) async fn moderations(
    AxumState(state): AxumState<Arc<State>>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Response {
    serve_json(&state, &request_id, &body, answer).await
}

fn answer(fields: &Fields<'_>) -> Result<Value, ApiError> {
    fields.only(&["input", "model"])?;
    let model = fields.str("model")?.unwrap_or("omni-moderation-latest");
    let resolved = match model {
        "omni-moderation-latest" | "omni-moderation-2024-09-26" => "omni-moderation-2024-09-26",
        m if m.starts_with("text-moderation") => return Err(ApiError::model_not_found(m)),
        other => {
            return Err(ApiError::invalid_value(
                "model",
                format!(
                    "Invalid value: '{other}'. Supported values are: 'omni-moderation-latest', 'omni-moderation-2024-09-26'."
                ),
            ));
        }
    };
    let results: Vec<Value> = inputs(fields)?.iter().map(|parts| result(parts)).collect();
    Ok(json!({
        "id": format!("modr-{}", crate::http::random_hex(24)),
        "model": resolved,
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_for(body: Value) -> Result<Value, ApiError> {
        let map = body.as_object().unwrap().clone();
        answer(&Fields::json(&map))
    }

    #[test]
    fn flags_trigger_words_only_as_whole_words() {
        assert_eq!(
            classify("a GORY battle"),
            vec!["violence", "violence/graphic"]
        );
        assert!(classify("a skilled gorilla").is_empty());
        assert_eq!(classify("nsfw"), vec!["sexual"]);
    }

    #[test]
    fn response_has_the_real_shape() {
        let body = answer_for(
            json!({"model": "omni-moderation-latest", "input": ["a cat", "so much gore"]}),
        )
        .unwrap();
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["flagged"], false);
        assert_eq!(results[1]["flagged"], true);
        assert_eq!(results[1]["categories"].as_object().unwrap().len(), 13);
        assert_eq!(results[1]["categories"]["violence/graphic"], true);
        assert!(results[1]["category_scores"]["violence"].as_f64().unwrap() > 0.5);
        assert_eq!(
            results[0]["category_applied_input_types"]["sexual"],
            json!(["text"])
        );
    }

    #[test]
    fn multimodal_input_is_one_result() {
        let body = answer_for(json!({"input": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:"}}]}))
            .unwrap();
        assert_eq!(body["results"].as_array().unwrap().len(), 1);
        assert_eq!(
            body["results"][0]["category_applied_input_types"]["violence"],
            json!(["text", "image"])
        );
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(
            answer_for(json!({"model": "omni-moderation-latest"}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
        assert_eq!(
            answer_for(json!({"input": "x", "model": "text-moderation-007"}))
                .unwrap_err()
                .status
                .as_u16(),
            404
        );
        assert_eq!(
            answer_for(json!({"input": 5}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
    }
}
