//! The engine's REST routes: `GET /v1/metrics` (this instance's generation metrics for the caller's
//! organisation, admins only) and `GET`/`PUT /v1/settings/cache` (whether the organisation's
//! requests are answered from the cache).

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::rbac::Action;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::Authed;
use super::extract::{Bytes, json_body};
use crate::App;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/metrics", get(metrics))
        .route("/v1/settings/cache", get(cache_setting).put(set_cache))
}

type ApiResult = Result<Response, ApiError>;

async fn metrics(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    let view = app.engine.metrics_summary(&caller)?;
    Ok(axum::Json(view).into_response())
}

async fn cache_setting(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    caller.authorize(Action::ViewUsage)?;
    let enabled = imagemcp_engine::cache::enabled(app.generation_cache(), &caller.org).await?;
    Ok(axum::Json(json!({ "enabled": enabled })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSetting {
    enabled: bool,
}

async fn set_cache(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let setting: CacheSetting = json_body(&bytes)?;
    let enabled =
        imagemcp_engine::cache::set_enabled(app.generation_cache(), &caller, setting.enabled)
            .await?;
    Ok(axum::Json(json!({ "enabled": enabled })).into_response())
}
