//! The `/mcp` route: Streamable HTTP in front of the runtime-agnostic handler in `crate::mcp`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;

use crate::App;
use crate::auth::Caller;
use crate::mcp::{McpBody, handle};

pub(super) fn routes() -> Router<App> {
    Router::new().route("/mcp", any(mcp))
}

/// Whether a browser `Origin` may call us: our own public origin, a configured one, or (for a
/// server on loopback) a loopback origin. Anything else is refused before authentication, which
/// stops DNS-rebinding pages from driving a local server.
fn origin_allowed(app: &App, origin: &str) -> bool {
    let own = app.config.public_url.trim_end_matches('/');
    if origin == own || app.config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    is_loopback_url(own) && is_loopback_url(origin)
}

fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

async fn mcp(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    caller: Result<Caller, super::ApiError>,
    body: Bytes,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !origin_allowed(&app, origin)
    {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let reply = handle(&app, &caller, &method, &headers, body).await;
    let mut response = match reply.body {
        McpBody::Empty => reply.status.into_response(),
        McpBody::Json(message) => (reply.status, axum::Json(message)).into_response(),
        McpBody::Stream(stream) => {
            let frames = stream.map(|message| {
                Ok::<_, std::convert::Infallible>(format!("event: message\ndata: {message}\n\n"))
            });
            let mut r = Response::new(Body::from_stream(frames));
            *r.status_mut() = reply.status;
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
    };
    response.headers_mut().extend(reply.headers);
    response
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn loopback_urls() {
        assert!(is_loopback_url("http://127.0.0.1:8787"));
        assert!(is_loopback_url("http://localhost"));
        assert!(is_loopback_url("http://[::1]:3000"));
        assert!(!is_loopback_url("http://evil.example"));
        assert!(!is_loopback_url("http://127.0.0.1.evil.example:80"));
        assert!(!is_loopback_url("null"));
    }
}
