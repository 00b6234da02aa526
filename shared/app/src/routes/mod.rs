//! The HTTP surface as one axum `Router`: `/mcp`, the REST API under `/v1`, and `/healthz`.
//! Authentication and the error mapping happen here, once, for every route.

mod auth;
mod billing;
mod confirm;
mod engine;
mod manage;
mod mcp;
mod oauth;
mod pages;
mod rest;
mod webhooks;

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
        .merge(engine::routes())
        .merge(confirm::routes())
        .merge(manage::routes())
        .merge(oauth::routes())
        .merge(auth::routes())
        .merge(webhooks::routes())
        .merge(billing::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Only `POST /webhooks/stripe` and `/healthz`: what the Lambda `webhooks` function serves.
pub fn webhooks_router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(webhooks::routes())
        .layer(axum::extract::DefaultBodyLimit::max(WEBHOOK_MAX_BYTES))
        .with_state(app)
}

/// Stripe events are far smaller than this.
const WEBHOOK_MAX_BYTES: usize = 1024 * 1024;

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

/// The `resource_metadata` URL named in our challenges (RFC 9728 §5.1).
fn resource_metadata(app: &App) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        app.config.public_url
    )
}

/// A `WWW-Authenticate: Bearer …` challenge pointing clients at our metadata.
fn bearer_challenge(app: &App, error: Option<&str>, scope: &str) -> HeaderValue {
    let mut value = format!(
        r#"Bearer resource_metadata="{}", scope="{scope}""#,
        resource_metadata(app)
    );
    if let Some(error) = error {
        value.push_str(&format!(r#", error="{error}""#));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// A missing or refused credential: 401 with a challenge naming the resource metadata (and
/// `error="invalid_token"` when a token was presented).
pub struct AuthRejection {
    error: Error,
    challenge: HeaderValue,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let mut response = ApiError(self.error).into_response();
        if response.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, self.challenge);
        }
        response
    }
}

/// A 403 for a credential that lacks a scope (RFC 6750 §3.1), so a client can step up.
pub(crate) fn insufficient_scope(app: &App, scope: imagemcp_core::rbac::Scope) -> Response {
    let message = format!("this token lacks the `{scope}` scope");
    let mut response = ApiError(Error::Forbidden(message)).into_response();
    let value = format!(
        r#"Bearer error="insufficient_scope", scope="{scope}", resource_metadata="{}""#,
        resource_metadata(app)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// The scopes a client should ask for, named in 401 challenges: all of them, because what is
/// granted is capped by the user's role in the organisation they choose, so asking for all is
/// asking for whatever that role allows.
const CHALLENGE_SCOPES: &str = "images:read images:write admin";

/// The authenticated caller of a request: an API key (`imk_…`) or an access token (a JWT issued by
/// our authorization server). Extracting it fails with 401 when credentials are missing or wrong.
impl FromRequestParts<App> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AuthRejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let Some(token) = token else {
            return Err(AuthRejection {
                error: Error::Unauthenticated("missing bearer token".into()),
                challenge: bearer_challenge(app, None, CHALLENGE_SCOPES),
            });
        };
        let result = if crate::sessions::looks_like_jwt(token) {
            app.sessions().authenticate(token).await
        } else {
            app.keys().authenticate(token).await
        };
        result.map_err(|error| AuthRejection {
            error,
            challenge: bearer_challenge(app, Some("invalid_token"), CHALLENGE_SCOPES),
        })
    }
}

/// Lets handlers take the app as `State(app)`.
pub type AppState = State<App>;
