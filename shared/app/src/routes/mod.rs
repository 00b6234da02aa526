//! The HTTP surface as one axum `Router`: `/mcp`, the REST API under `/v1`, and `/healthz`.
//! Authentication and the error mapping happen here, once, for every route.

mod mcp;
mod rest;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::Error;

use crate::App;
use crate::auth::{Caller, bearer};

/// The largest request body accepted: a 25 MB upload, base64-encoded, plus JSON framing.
pub const MAX_BODY_BYTES: usize = 36 * 1024 * 1024;

/// Builds the router serving every route of the application.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(mcp::routes())
        .merge(rest::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// An error as an HTTP response with the REST error body.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(crate::error::status(&self.0))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(crate::error::rest_body(&self.0))).into_response();
        match &self.0 {
            Error::Unauthenticated(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge());
            }
            Error::RateLimited { retry_after } => {
                let secs = retry_after.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

/// The `WWW-Authenticate` challenge of a 401.
fn challenge() -> HeaderValue {
    HeaderValue::from_static(
        r#"Bearer realm="imagemcp", error="invalid_token", error_description="a valid API key is required (Authorization: Bearer imk_...)""#,
    )
}

/// The authenticated caller of a request: extracting it fails with 401 when credentials are
/// missing or wrong.
impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or_else(|| Error::Unauthenticated("missing bearer token".into()))?;
        Ok(app.keys().authenticate(token).await?)
    }
}

/// Lets handlers take the app as `State(app)`.
pub type AppState = State<App>;
