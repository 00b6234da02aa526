//! The HTTP surface as one axum `Router`: `/mcp`, the REST API under `/v1`, the OAuth endpoints,
//! the pages a person acts on, the Stripe webhook and `/healthz`. Authentication and the error
//! mapping happen here, once, for every route. The only application crate that knows axum.

mod auth;
mod billing;
mod confirm;
mod engine;
mod extract;
mod manage;
mod mcp;
mod oauth;
mod pages;
mod rest;
mod reveal;
mod webhooks;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::Error;

use imagemcp_service::App;
use imagemcp_service::auth::{Caller, bearer};

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
        .merge(reveal::routes())
        // Unknown routes and methods answer with the REST error body too.
        .fallback(extract::no_route)
        .method_not_allowed_fallback(extract::method_not_allowed)
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
        let status = StatusCode::from_u16(imagemcp_service::error::status(&self.0))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            axum::Json(imagemcp_service::error::rest_body(&self.0)),
        )
            .into_response();
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
pub(crate) struct Authed(pub(crate) Caller);

impl FromRequestParts<App> for Authed {
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
        let result = if imagemcp_service::sessions::looks_like_jwt(token) {
            app.sessions().authenticate(token).await
        } else {
            app.keys().authenticate(token).await
        };
        result.map(Authed).map_err(|error| AuthRejection {
            error,
            challenge: bearer_challenge(app, Some("invalid_token"), CHALLENGE_SCOPES),
        })
    }
}

/// Lets handlers take the app as `State(app)`.
pub type AppState = State<App>;

#[cfg(test)]
mod docs_tests {
    //! `docs/rest.md` documents every route of [`super::router`]: the routes are read from the
    //! sources of this module (each `.route("/path", get(…).post(…))` call), so a route added
    //! anywhere here without its documentation fails the test.

    use std::collections::BTreeSet;

    const DOC: &str = include_str!("../../../docs/rest.md");

    /// This module and every submodule it declares, by file name.
    const SOURCES: &[(&str, &str)] = &[
        ("lib.rs", include_str!("lib.rs")),
        ("auth.rs", include_str!("auth.rs")),
        ("billing.rs", include_str!("billing.rs")),
        ("confirm.rs", include_str!("confirm.rs")),
        ("engine.rs", include_str!("engine.rs")),
        ("extract.rs", include_str!("extract.rs")),
        ("manage.rs", include_str!("manage.rs")),
        ("mcp.rs", include_str!("mcp.rs")),
        ("oauth.rs", include_str!("oauth.rs")),
        ("pages.rs", include_str!("pages.rs")),
        ("rest.rs", include_str!("rest.rs")),
        ("reveal.rs", include_str!("reveal.rs")),
        ("webhooks.rs", include_str!("webhooks.rs")),
    ];

    /// Routes a runtime serves besides the app's router, documented in `docs/rest.md` too.
    const OUTSIDE_THE_ROUTER: &[(&str, &str)] = &[("GET", "/files/{*key}")];

    const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "any"];

    /// A source file without its tests (whose text may mention routes).
    fn code(source: &str) -> &str {
        source.split("#[cfg(test)]").next().unwrap_or(source)
    }

    /// The `(method, path)` pairs of one file's `.route(…)` calls; `any` stands for every method.
    fn routes_in(file: &str, source: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let code = code(source);
        if let Some(other) = [".nest(", ".nest_service(", ".route_service("]
            .into_iter()
            .find(|call| code.contains(call))
        {
            return Err(format!(
                "{file}: `{other}` adds routes this test cannot read"
            ));
        }
        let mut rest = code;
        while let Some(at) = rest.find(".route(") {
            let after = &rest[at + ".route(".len()..];
            let mut depth = 1;
            let end = after
                .char_indices()
                .find_map(|(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                })
                .ok_or_else(|| format!("{file}: a `.route(` is not closed"))?;
            let args = &after[..end];
            let path = args
                .split('"')
                .nth(1)
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| format!("{file}: a route's path is not a literal: {args}"))?;
            // Each `name(` whose name is a method router: `get(…)`, `.post(…)`.
            let methods: Vec<String> = args
                .match_indices('(')
                .filter_map(|(i, _)| {
                    let before = &args[..i];
                    let start = before
                        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(0, |j| j + 1);
                    let name = &before[start..];
                    METHODS.contains(&name).then(|| name.to_ascii_uppercase())
                })
                .collect();
            if methods.is_empty() {
                return Err(format!("{file}: no method found for {path}"));
            }
            out.extend(methods.into_iter().map(|m| (m, path.to_owned())));
            rest = &after[end..];
        }
        Ok(out)
    }

    /// Every route of the router, from the sources.
    fn router_routes() -> BTreeSet<(String, String)> {
        let declared: BTreeSet<String> = code(SOURCES[0].1)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("mod "))
            .filter_map(|l| l.strip_suffix(';'))
            .map(|m| format!("{m}.rs"))
            .collect();
        let read: BTreeSet<String> = SOURCES[1..].iter().map(|(f, _)| (*f).to_owned()).collect();
        assert_eq!(declared, read, "every routes module is read by this test");
        let mut all = BTreeSet::new();
        for (file, source) in SOURCES {
            all.extend(routes_in(file, source).unwrap_or_else(|e| panic!("{e}")));
        }
        all
    }

    /// The `METHOD /path` spans of the document (without their query strings).
    fn documented() -> BTreeSet<(String, String)> {
        DOC.split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|span| span.split_once(' '))
            .filter(|(method, path)| {
                path.starts_with('/') && METHODS.contains(&method.to_ascii_lowercase().as_str())
            })
            .map(|(method, path)| {
                let path = path.split(['?', ' ']).next().unwrap_or(path);
                (method.to_owned(), path.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented() {
        let routes = router_routes();
        assert!(routes.len() > 40, "the sources were read: {routes:?}");
        let documented = documented();
        let missing: Vec<String> = routes
            .iter()
            .filter(|(method, path)| {
                if method == "ANY" {
                    !documented.iter().any(|(_, p)| p == path)
                } else {
                    !documented.contains(&(method.clone(), path.clone()))
                }
            })
            .map(|(method, path)| format!("`{method} {path}`"))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/rest.md does not document: {}",
            missing.join(", ")
        );
    }

    #[test]
    fn every_documented_route_exists() {
        let routes = router_routes();
        let extra: Vec<String> = documented()
            .into_iter()
            .filter(|(method, path)| {
                !routes.contains(&(method.clone(), path.clone()))
                    && !routes.contains(&("ANY".to_owned(), path.clone()))
                    && !OUTSIDE_THE_ROUTER.contains(&(method.as_str(), path.as_str()))
            })
            .map(|(method, path)| format!("`{method} {path}`"))
            .collect();
        assert!(
            extra.is_empty(),
            "docs/rest.md documents routes the router does not have: {}",
            extra.join(", ")
        );
    }

    #[test]
    fn routes_are_read_from_chained_and_wrapped_calls() {
        let source = r#"Router::new()
            .route("/a", get(x).post(y))
            .route(
                "/b/{id}",
                delete(z),
            )
            .route("/c", any(w))
            .layer(l)"#;
        let got = routes_in("t.rs", source).unwrap();
        let want = [
            ("GET", "/a"),
            ("POST", "/a"),
            ("DELETE", "/b/{id}"),
            ("ANY", "/c"),
        ];
        assert_eq!(
            got,
            want.map(|(m, p)| (m.to_owned(), p.to_owned())).to_vec()
        );
        assert!(routes_in("t.rs", r#".route(PATH, get(x))"#).is_err());
        assert!(routes_in("t.rs", r#".nest("/v2", v2())"#).is_err());
    }
}
