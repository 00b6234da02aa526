//! `POST /webhooks/stripe`: the signature is checked on the raw body before anything is parsed;
//! 404 when billing is off, so an unconfigured server exposes no webhook.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use imagemcp_core::Error;

use super::ApiError;
use crate::App;
use imagemcp_service::billing::{signature, webhook};

pub(super) fn routes() -> Router<App> {
    Router::new().route("/webhooks/stripe", post(stripe))
}

async fn stripe(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Some(billing) = app.config.billing.clone() else {
        return Err(Error::not_found("route").into());
    };
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    signature::verify(
        header,
        &body,
        &billing.webhook_secrets,
        app.ports.clock.now_secs(),
    )?;
    let outcome = webhook::process(&app.billing, &body).await?;
    let result = match outcome {
        webhook::Outcome::Applied => "applied".to_owned(),
        webhook::Outcome::Duplicate => "duplicate".to_owned(),
        webhook::Outcome::Ignored(why) => format!("ignored: {why}"),
    };
    Ok(axum::Json(
        serde_json::json!({ "received": true, "result": result }),
    ))
}
