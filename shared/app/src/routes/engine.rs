//! The engine's REST routes: `GET /v1/metrics` (this instance's generation metrics for the caller's
//! organisation, admins only) and `GET`/`PUT /v1/settings/cache` (whether the organisation's
//! requests are answered from the cache).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::App;
use crate::auth::Caller;
use crate::images::params::parse_args;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/metrics", get(metrics))
        .route("/v1/settings/cache", get(cache_setting).put(set_cache))
}

type ApiResult = Result<Response, ApiError>;

async fn metrics(State(app): State<App>, caller: Caller) -> ApiResult {
    let view = crate::engine::metrics_summary(&app, &caller)?;
    Ok(axum::Json(view).into_response())
}

async fn cache_setting(State(app): State<App>, caller: Caller) -> ApiResult {
    caller.authorize(Action::ViewUsage)?;
    let enabled = crate::engine::cache::enabled(&app, &caller.org).await?;
    Ok(axum::Json(json!({ "enabled": enabled })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSetting {
    enabled: bool,
}

async fn set_cache(State(app): State<App>, caller: Caller, bytes: Bytes) -> ApiResult {
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?;
    let setting: CacheSetting = parse_args(value)?;
    let enabled = crate::engine::cache::set_enabled(&app, &caller, setting.enabled).await?;
    Ok(axum::Json(json!({ "enabled": enabled })).into_response())
}
