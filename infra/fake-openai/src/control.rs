//! The control API under `/_fake` (not part of OpenAI's surface): queue faults, reset, and read back
//! the requests the fake received. It needs no API key.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::faults::{Fault, normalize_path};
use crate::state::State;

pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/faults", post(push_faults).get(list_faults))
        .route("/reset", post(reset))
        .route("/requests", get(requests))
        .route("/health", get(|| async { "ok" }))
}

/// Takes one fault object or a list of them; refuses the whole batch if any is malformed.
async fn push_faults(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    let parsed: Result<Vec<Fault>, String> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .collect(),
        Ok(single @ Value::Object(_)) => serde_json::from_value(single)
            .map(|f| vec![f])
            .map_err(|e| e.to_string()),
        Ok(_) => Err("expected a fault object or a list of them".into()),
        Err(e) => Err(e.to_string()),
    };
    let faults = match parsed.and_then(|faults| {
        faults.iter().try_for_each(Fault::check)?;
        Ok(faults)
    }) {
        Ok(faults) => faults,
        Err(why) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", why)
                .param("faults")
                .into_response();
        }
    };
    let queued = faults.len();
    state.push_faults(faults);
    axum::Json(json!({"queued": queued, "faults": state.faults()})).into_response()
}

async fn list_faults(AxumState(state): AxumState<Arc<State>>) -> Response {
    axum::Json(state.faults()).into_response()
}

async fn reset(AxumState(state): AxumState<Arc<State>>) -> Response {
    state.reset();
    axum::Json(json!({"reset": true})).into_response()
}

#[derive(Deserialize)]
struct RequestFilter {
    /// Only requests to this endpoint (`/images/generations`, with or without `/v1`).
    path: Option<String>,
}

async fn requests(
    AxumState(state): AxumState<Arc<State>>,
    Query(filter): Query<RequestFilter>,
) -> Response {
    let mut list = state.requests();
    if let Some(path) = filter.path {
        let wanted = normalize_path(&path);
        list.retain(|r| normalize_path(&r.path) == wanted);
    }
    axum::Json(list).into_response()
}
