//! `POST /v1/embeddings`: deterministic vectors for the semantic cache's tests and benchmarks. The
//! vector of a text is core's local embedding at the requested dimensions (1536 by default, as
//! `text-embedding-3-small`), so a replay gives the same similarities every run.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{RequestId, serve_json};
use crate::params::Fields;
use crate::state::State;

const MODELS: &[(&str, i64)] = &[
    ("text-embedding-3-small", 1536),
    ("text-embedding-3-large", 3072),
];

pub(crate) async fn embeddings(
    AxumState(state): AxumState<Arc<State>>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Response {
    serve_json(&state, &request_id, &body, answer).await
}

fn answer(fields: &Fields<'_>) -> Result<Value, ApiError> {
    fields.only(&["input", "model", "dimensions", "encoding_format", "user"])?;
    let Some(model) = fields.str("model")? else {
        return Err(ApiError::missing("model"));
    };
    let Some(&(_, native)) = MODELS.iter().find(|(m, _)| *m == model) else {
        return Err(ApiError::model_not_found(model));
    };
    let dims = fields.int_in("dimensions", 1, native)?.unwrap_or(native) as usize;
    if let Some(format) = fields.str("encoding_format")?
        && format != "float"
    {
        return Err(ApiError::invalid_value(
            "encoding_format",
            "this fake answers `float` only",
        ));
    }
    let inputs: Vec<String> = match fields.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        }
        Some(other) => {
            return Err(ApiError::invalid_type(
                "input",
                "a string or an array of strings",
                other,
            ));
        }
        None => return Err(ApiError::missing("input")),
    };
    let mut tokens = 0usize;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += text.split_whitespace().count();
            json!({
                "object": "embedding",
                "index": i,
                "embedding": imagemcp_core::embed::local_vector(text, dims),
            })
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_at_the_requested_dimensions() {
        let body =
            json!({"model": "text-embedding-3-small", "input": "a red fox", "dimensions": 256});
        let map = body.as_object().unwrap().clone();
        let a = answer(&Fields::json(&map)).unwrap();
        let b = answer(&Fields::json(&map)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["data"][0]["embedding"].as_array().unwrap().len(), 256);
        let bad = json!({"model": "nope", "input": "x"});
        assert!(answer(&Fields::json(bad.as_object().unwrap())).is_err());
    }
}
