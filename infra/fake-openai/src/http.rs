//! The HTTP plumbing shared by every endpoint: the router, request ids and rate-limit headers, bearer
//! authentication, body parsing, and the redaction of image data from recorded requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::params::Fields;
use crate::state::{RecordedRequest, State};
use crate::{control, embeddings, images, moderation, responses};

/// The request being served, for handlers to record: its `x-request-id` and its path as the client
/// sent it (with `/v1`; the nested router strips that from the `Uri` handlers see).
#[derive(Clone, Debug)]
pub(crate) struct RequestId {
    pub(crate) id: String,
    pub(crate) path: String,
}

/// Builds the whole app: the OpenAI routes under `/v1` (and, for clients configured without `/v1`,
/// at the root too) and the control API under `/_fake`.
pub(crate) fn router(state: Arc<State>, max_body_bytes: usize) -> Router {
    let api: Router<Arc<State>> = Router::new()
        .route("/images/generations", post(images::generations))
        .route("/images/edits", post(images::edits))
        .route("/responses", post(responses::create))
        .route("/moderations", post(moderation::moderations))
        .route("/embeddings", post(embeddings::embeddings));
    Router::new()
        .nest("/v1", api.clone())
        .merge(api)
        .nest("/_fake", control::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), envelope))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!(
            "Invalid URL ({} {})",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Assigns the request id, checks the bearer token on OpenAI routes, adds the headers every OpenAI
/// response carries, and records the final status against the request.
async fn envelope(
    AxumState(state): AxumState<Arc<State>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = format!("req_{}", random_hex(32));
    let is_control = request.uri().path().starts_with("/_fake");
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(RequestId {
        id: id.clone(),
        path,
    });
    let mut response = match (is_control, authenticate(&state, &request)) {
        (false, Err(e)) => e.into_response(),
        _ => next.run(request).await,
    };
    state.set_status(&id, response.status().as_u16());
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("x-request-id", id);
    if !is_control {
        set("openai-version", "2020-10-01".into());
        set(
            "openai-processing-ms",
            started.elapsed().as_millis().to_string(),
        );
        set("x-ratelimit-limit-requests", "500".into());
        set("x-ratelimit-remaining-requests", "499".into());
        set("x-ratelimit-reset-requests", "120ms".into());
        set("x-ratelimit-limit-tokens", "800000".into());
        set("x-ratelimit-remaining-tokens", "795000".into());
        set("x-ratelimit-reset-tokens", "1s".into());
    }
    response
}

fn authenticate(state: &State, request: &Request) -> Result<(), ApiError> {
    let unauthorized = |message: String, code: Option<&str>| {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message);
        e.code = code.map(str::to_owned);
        e
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".into(),
            None,
        ));
    };
    match &state.api_key {
        Some(expected) if expected != token => Err(unauthorized(
            // The real API echoes a masked key; so does the fake, so clients are tested against it.
            format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask(token)
            ),
            Some("invalid_api_key"),
        )),
        _ => Ok(()),
    }
}

/// `sk-abc…wxyz` with the middle starred, as OpenAI shows a wrong key.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Parses a JSON body that must be an object, with OpenAI's error for anything else.
pub(crate) fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid_type("body", "an object", &other)),
        Err(e) => Err(ApiError::unparseable_body(e)),
    }
}

/// Serves a JSON endpoint whose answer depends on the body alone (embeddings, moderations): parse
/// the object, record the request, apply the injected faults, wait the model latency, answer.
pub(crate) async fn serve_json(
    state: &State,
    request_id: &RequestId,
    body: &[u8],
    answer: fn(&Fields<'_>) -> Result<Value, ApiError>,
) -> Response {
    let map = match parse_json_object(body) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    let fields = Fields::json(&map);
    let record = RecordedRequest {
        request_id: request_id.id.clone(),
        method: axum::http::Method::POST.to_string(),
        path: request_id.path.clone(),
        model: fields.str("model").ok().flatten().map(str::to_owned),
        fields: summarize(Value::Object(map.clone())),
        files: vec![],
        status: None,
    };
    if let Err(e) = state.admit(record).await {
        return e.into_response();
    }
    match answer(&fields) {
        Ok(body) => {
            state.model_latency(request_id.path.as_str()).await;
            axum::Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// A copy of a request body fit to record: data URLs and long base64 strings are replaced by a
/// summary, so the log stays small and tests can still see that an image was sent.
pub(crate) fn summarize(value: Value) -> Value {
    match value {
        Value::String(s) if s.starts_with("data:") => {
            let head = s.split(',').next().unwrap_or("data:");
            Value::String(format!("<{head}, {} chars>", s.len()))
        }
        Value::String(s) if s.len() > 1000 && !s.contains(char::is_whitespace) => {
            Value::String(format!("<base64, {} chars>", s.len()))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(summarize).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, summarize(v))).collect())
        }
        other => other,
    }
}

/// `n` hex digits, unique within the process: ids need not be secret, only distinct.
pub(crate) fn random_hex(n: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut out = String::with_capacity(n + 16);
    let mut round = 0u64;
    while out.len() < n {
        let h = crate::render::seed(&[
            &count.to_le_bytes(),
            &nanos.to_le_bytes(),
            &round.to_le_bytes(),
        ]);
        out.push_str(&format!("{h:016x}"));
        round += 1;
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_data_is_summarized_but_prompts_are_kept() {
        let body = json!({"prompt": "a fox", "images": [{"image_url": format!("data:image/png;base64,{}", "A".repeat(5000))}]});
        let s = summarize(body);
        assert_eq!(s["prompt"], "a fox");
        assert_eq!(
            s["images"][0]["image_url"],
            "<data:image/png;base64, 5022 chars>"
        );
    }

    #[test]
    fn ids_are_distinct_and_sized() {
        let (a, b) = (random_hex(32), random_hex(32));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_keys_are_masked() {
        assert_eq!(mask("sk-test-0123456789"), "sk-***********6789");
        assert_eq!(mask("short"), "*****");
    }
}
