//! The `/mcp` route: Streamable HTTP in front of the runtime-agnostic handler in `imagemcp_mcp`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;

use crate::App;
use imagemcp_mcp::{McpBody, handle};
use imagemcp_service::auth::Caller;

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
    caller: Result<super::Authed, super::AuthRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !origin_allowed(&app, origin)
    {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let caller = match caller {
        Ok(super::Authed(c)) => c,
        Err(e) => return e.into_response(),
    };
    // A body over the limit or unreadable is answered as JSON-RPC, like any other bad request.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let (status, why) = super::extract::body_problem(&rejection);
            let error = imagemcp_mcp::protocol::RpcError::new(
                imagemcp_mcp::protocol::INVALID_REQUEST,
                format!("Invalid Request: the request body {why}"),
            );
            return (
                status,
                axum::Json(error.to_message(&serde_json::Value::Null)),
            )
                .into_response();
        }
    };
    // A tool the caller's role allows but whose scope the credential lacks: answer with the HTTP
    // challenge (403 insufficient_scope) so the client can ask the user for more; a role that
    // falls short stays a tool error, since no new token would help.
    if method == Method::POST
        && let Some(scope) = scope_shortfall(&caller, &body)
    {
        return super::insufficient_scope(&app, scope);
    }
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

/// The scope a `tools/call` needs that the caller's credential lacks (when its role would allow it).
fn scope_shortfall(caller: &Caller, body: &[u8]) -> Option<imagemcp_core::rbac::Scope> {
    let message: serde_json::Value = serde_json::from_slice(body).ok()?;
    if message.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    let name = message.get("params")?.get("name")?.as_str()?;
    imagemcp_mcp::tools::missing_scope(caller, name)
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
