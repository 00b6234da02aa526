//! Injected faults: error statuses, hangs (client timeouts) and standing latency, queued through the
//! control API or in-process, and consumed by the OpenAI endpoints in the order they were queued.

use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;

/// One fault. Exactly one of `status`, `hang_ms` or `latency_ms` says what it does (`hang_ms` may be
/// combined with `status` for a slow failure):
///
/// - `{"status":429,"retry_after_s":1,"times":2}`: answer the next two calls with a 429.
/// - `{"status":500,"times":3}`: three 500s.
/// - `{"hang_ms":30000}`: hold the next call for 30 s before answering it normally (a client timeout).
/// - `{"latency_ms":1000}`: add 1 s to every later model call until reset (for benchmarks).
/// - `{"status":400,"code":"moderation_blocked"}`: a safety-system refusal.
///
/// `times` defaults to 1 for status and hang faults and to "always" for latency. `path` limits the
/// fault to one endpoint (`/images/generations`, with or without `/v1`); without it a status or hang
/// fault hits any OpenAI endpoint, and latency hits every endpoint but `/moderations`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error `code`; defaults from the status (`rate_limit_exceeded` for 429, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The error `type`; defaults from the code and status.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Sent as the `retry-after` header, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// Sent as the `retry-after-ms` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Sent as the `x-should-retry` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should_retry: Option<bool>,
    /// Safety categories for a `moderation_blocked` fault's `moderation_details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Fault {
    /// An error response with this HTTP status.
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Holds the call this long before answering.
    pub fn hang(duration: Duration) -> Self {
        Self {
            hang_ms: Some(millis(duration)),
            ..Self::default()
        }
    }

    /// Adds this much latency to every later model call.
    pub fn latency(duration: Duration) -> Self {
        Self {
            latency_ms: Some(millis(duration)),
            ..Self::default()
        }
    }

    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.to_owned());
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    pub fn retry_after_s(mut self, secs: u64) -> Self {
        self.retry_after_s = Some(secs);
        self
    }

    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    pub fn should_retry(mut self, yes: bool) -> Self {
        self.should_retry = Some(yes);
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// Checks that the fault says one coherent thing.
    pub fn check(&self) -> Result<(), String> {
        match (self.status, self.hang_ms, self.latency_ms) {
            (None, None, None) => Err("a fault needs one of status, hang_ms or latency_ms".into()),
            (_, _, Some(_)) if self.status.is_some() || self.hang_ms.is_some() => Err(
                "latency_ms is a standing delay and cannot be combined with status or hang_ms"
                    .into(),
            ),
            (Some(s), _, _) if StatusCode::from_u16(s).is_err() || s < 400 => {
                Err(format!("status {s} is not an HTTP error status"))
            }
            _ if self.times == Some(0) => {
                Err("times must be at least 1 (omit it for the default)".into())
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn is_latency(&self) -> bool {
        self.latency_ms.is_some()
    }

    /// Whether this fault applies to a call on `path` (a request path, with or without `/v1`).
    pub(crate) fn matches(&self, path: &str) -> bool {
        let path = normalize_path(path);
        match &self.path {
            Some(p) => normalize_path(p) == path,
            None if self.is_latency() => path != "/moderations",
            None => true,
        }
    }

    /// The error response of a status fault.
    pub(crate) fn error(&self) -> Option<ApiError> {
        let status = StatusCode::from_u16(self.status?).ok()?;
        let code = self
            .code
            .clone()
            .or_else(|| default_code(status).map(str::to_owned));
        let kind = self
            .kind
            .clone()
            .unwrap_or_else(|| default_kind(status, code.as_deref()).to_owned());
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| default_message(status, code.as_deref()));
        let mut err = ApiError::new(status, &kind, message);
        err.code = code.clone();
        err.param = self.param.clone();
        if code.as_deref() == Some("moderation_blocked") {
            let categories = self
                .categories
                .clone()
                .unwrap_or_else(|| vec!["violence".to_owned()]);
            err = err.extra(
                "moderation_details",
                json!({"moderation_stage": "input", "categories": categories}),
            );
        }
        if let Some(s) = self.retry_after_s {
            err = err.header("retry-after", s.to_string());
        }
        if let Some(ms) = self.retry_after_ms {
            err = err.header("retry-after-ms", ms.to_string());
        }
        if let Some(yes) = self.should_retry {
            err = err.header("x-should-retry", yes.to_string());
        }
        Some(err)
    }
}

/// `/v1/images/edits` and `images/edits` both become `/images/edits`.
pub(crate) fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let rest = trimmed.strip_prefix("/v1").unwrap_or(trimmed);
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn default_code(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        401 => Some("invalid_api_key"),
        429 => Some("rate_limit_exceeded"),
        404 => Some("model_not_found"),
        s if s >= 500 => Some("server_error"),
        _ => None,
    }
}

fn default_kind(status: StatusCode, code: Option<&str>) -> &'static str {
    match code {
        Some("moderation_blocked") => "image_generation_user_error",
        Some(
            "insufficient_quota"
            | "credit_balance_exhausted"
            | "organization_spend_limit_exceeded"
            | "project_spend_limit_exceeded"
            | "organization_usage_limit_exceeded",
        ) => "insufficient_quota",
        Some("rate_limit_exceeded") => "requests",
        _ if status.is_server_error() => "server_error",
        _ => "invalid_request_error",
    }
}

fn default_message(status: StatusCode, code: Option<&str>) -> String {
    match code {
        Some("moderation_blocked") => "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID.".into(),
        Some("rate_limit_exceeded") => "Rate limit reached for images per min (IPM): Limit 5, Used 5, Requested 1. Please try again later.".into(),
        Some("insufficient_quota") => "You exceeded your current quota, please check your plan and billing details.".into(),
        Some("invalid_api_key") => "Incorrect API key provided.".into(),
        _ if status.is_server_error() => "The server had an error while processing your request. Sorry about that!".into(),
        _ => format!("Injected fault: HTTP {}.", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_the_documented_json() {
        let list: Vec<Fault> = serde_json::from_str(
            r#"[{"status":429,"retry_after_s":1,"times":2},{"hang_ms":30000,"times":1},{"latency_ms":1000}]"#,
        )
        .unwrap();
        assert_eq!(list[0], Fault::status(429).retry_after_s(1).times(2));
        assert!(list.iter().all(|f| f.check().is_ok()));
        assert!(
            serde_json::from_str::<Fault>(r#"{"stauts":500}"#).is_err(),
            "typos are refused"
        );
        assert!(Fault::default().check().is_err());
        assert!(Fault::status(200).check().is_err());
        assert!(
            Fault {
                latency_ms: Some(1),
                status: Some(500),
                ..Fault::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn status_faults_get_realistic_bodies_and_headers() {
        let err = Fault::status(429).retry_after_ms(250).error().unwrap();
        assert_eq!(err.code.as_deref(), Some("rate_limit_exceeded"));
        assert!(
            err.headers()
                .iter()
                .any(|(n, v)| n == "retry-after-ms" && v == "250")
        );
        let quota = Fault::status(429)
            .code("insufficient_quota")
            .error()
            .unwrap();
        assert_eq!(quota.kind, "insufficient_quota");
        let blocked = Fault::status(400)
            .code("moderation_blocked")
            .error()
            .unwrap();
        assert_eq!(blocked.kind, "image_generation_user_error");
        assert_eq!(
            blocked.body()["error"]["moderation_details"]["categories"][0],
            "violence"
        );
    }

    #[test]
    fn paths_match_with_or_without_v1() {
        let f = Fault::status(500).path("images/generations");
        assert!(f.matches("/v1/images/generations"));
        assert!(f.matches("/images/generations"));
        assert!(!f.matches("/v1/images/edits"));
        assert!(Fault::latency(Duration::from_millis(5)).matches("/v1/responses"));
        assert!(!Fault::latency(Duration::from_millis(5)).matches("/v1/moderations"));
    }
}
