//! An OpenAI error answer: parsed from the `{"error":{…}}` envelope, judged retryable or not, and
//! mapped into `imagemcp_core::Error` with a message a user can act on. Server text is scrubbed of
//! the API key before it goes anywhere.

use std::time::Duration;

use imagemcp_core::Error;
use imagemcp_core::catalog::{self, Lifecycle};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

/// The `code`s of a 429 that mean the account is out of money, not busy: never retried.
const QUOTA_CODES: &[&str] = &[
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
];

/// The `code`s of a safety refusal (the last two are the DALL·E-era and Responses names).
const POLICY_CODES: &[&str] = &[
    "moderation_blocked",
    "content_policy_violation",
    "image_content_policy_violation",
];

#[derive(Debug, Default, Deserialize)]
struct Envelope {
    error: Option<WireError>,
}

/// The `error` object. `code` and `param` are read loosely (a number or null is tolerated).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct WireError {
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    param: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    moderation_details: Option<ModerationDetails>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ModerationDetails {
    #[serde(default)]
    categories: Vec<String>,
}

impl WireError {
    /// Parses an error body; anything that is not an envelope gives an empty error (the status
    /// still decides what happens).
    pub(crate) fn parse(body: &[u8]) -> WireError {
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|e| e.error)
            .unwrap_or_default()
    }

    pub(crate) fn code(&self) -> Option<String> {
        value_text(self.code.as_ref())
    }

    pub(crate) fn param(&self) -> Option<String> {
        value_text(self.param.as_ref())
    }
}

fn value_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One failed answer.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) error: WireError,
    pub(crate) request_id: Option<String>,
    /// The wait the server asked for.
    pub(crate) retry_after: Option<Duration>,
    /// `x-should-retry`, when sent.
    pub(crate) should_retry: Option<bool>,
}

impl Failure {
    fn code_is(&self, codes: &[&str]) -> bool {
        self.error
            .code()
            .is_some_and(|c| codes.contains(&c.as_str()))
    }

    pub(crate) fn is_quota(&self) -> bool {
        self.error.kind.as_deref() == Some("insufficient_quota") || self.code_is(QUOTA_CODES)
    }

    pub(crate) fn is_policy(&self) -> bool {
        self.error.kind.as_deref() == Some("image_generation_user_error")
            || self.code_is(POLICY_CODES)
    }

    /// Whether trying again may help: never for an empty account or a refused prompt, else as the
    /// server says in `x-should-retry`, else for 408, 409, 429 and 5xx.
    pub(crate) fn retryable(&self) -> bool {
        if self.is_quota() || self.is_policy() {
            return false;
        }
        if let Some(yes) = self.should_retry {
            return yes;
        }
        matches!(self.status.as_u16(), 408 | 409 | 429) || self.status.is_server_error()
    }

    /// The core error for this answer, after `attempts` calls; `key` is scrubbed from server text.
    pub(crate) fn into_error(self, key: &str, attempts: u32, fallback_wait: Duration) -> Error {
        let message = redact(self.error.message.as_deref().unwrap_or(""), key);
        let message = if message.trim().is_empty() {
            format!("HTTP {}", self.status.as_u16())
        } else {
            message
        };
        let rid = self
            .request_id
            .as_deref()
            .map(|r| format!(" (request id {r})"))
            .unwrap_or_default();
        let tries = if attempts > 1 {
            format!(" after {attempts} attempts")
        } else {
            String::new()
        };
        if self.is_policy() {
            let categories = self
                .error
                .moderation_details
                .clone()
                .map(|d| d.categories)
                .unwrap_or_default();
            let flagged = if categories.is_empty() {
                String::new()
            } else {
                format!(" (flagged: {})", categories.join(", "))
            };
            return Error::PolicyViolation {
                reason: format!(
                    "OpenAI's safety system rejected the request{flagged}; rephrase the prompt and try again{rid}"
                ),
                categories,
            };
        }
        if self.is_quota() {
            return Error::QuotaExhausted(format!(
                "the OpenAI account is out of credit or over its spend limit ({message}); add credit or raise the limit in the OpenAI dashboard{rid}"
            ));
        }
        match self.status.as_u16() {
            // OpenAI's 401 text echoes part of the key, so it is not passed on.
            401 => Error::Unauthenticated(format!(
                "OpenAI rejected the API key (HTTP 401); check OPENAI_API_KEY{rid}"
            )),
            403 => Error::Forbidden(format!("OpenAI refused access (HTTP 403): {message}{rid}")),
            404 if self.error.code().as_deref() == Some("model_not_found") => {
                model_not_found(&message, &rid)
            }
            404 => Error::Unavailable(format!(
                "OpenAI answered 404 Not Found: {message}; check the base URL (OPENAI_BASE_URL){rid}"
            )),
            413 => Error::invalid(
                "image",
                format!("the request is too large for OpenAI: {message}"),
            ),
            429 => Error::RateLimited {
                retry_after: self.retry_after.unwrap_or(fallback_wait),
            },
            408 | 409 => Error::Unavailable(format!(
                "OpenAI answered HTTP {}{tries}: {message}{rid}",
                self.status.as_u16()
            )),
            s if s >= 500 => Error::Unavailable(format!(
                "OpenAI failed with HTTP {s}{tries}: {message}{rid}"
            )),
            _ => Error::Invalid {
                field: field_name(self.error.param().as_deref()),
                reason: format!("{message}{rid}"),
            },
        }
    }
}

/// The model in a `model_not_found` message, told with the catalog's shutdown date and replacement
/// when we know them.
fn model_not_found(message: &str, rid: &str) -> Error {
    let named = message.split('`').nth(1).filter(|m| !m.is_empty());
    let reason = match named.and_then(|m| catalog::lookup(m).map(|spec| (m, spec))) {
        Some((m, spec)) => match spec.lifecycle {
            Lifecycle::ShutDown { on, replacement } => {
                format!("`{m}` was shut down on {on}; use `{replacement}`")
            }
            Lifecycle::Deprecated {
                shutdown,
                replacement,
            } => {
                format!(
                    "`{m}` is deprecated (shutdown {shutdown}) and this account cannot use it; use `{replacement}`"
                )
            }
            Lifecycle::Active => format!("this OpenAI account has no access to `{m}`: {message}"),
        },
        None => format!("OpenAI does not serve this model: {message}"),
    };
    Error::Invalid {
        field: "model".into(),
        reason: format!("{reason}{rid}"),
    }
}

/// OpenAI's `param` as one of our field names: `tools[0].size` is `size`, `image[]` is `image`.
pub(crate) fn field_name(param: Option<&str>) -> String {
    let Some(param) = param.filter(|p| !p.is_empty()) else {
        return "request".into();
    };
    let last = param.rsplit('.').next().unwrap_or(param);
    let bare = last.split('[').next().unwrap_or(last);
    if bare.is_empty() {
        "request".into()
    } else {
        bare.to_owned()
    }
}

/// `text` with every occurrence of the key replaced, so no server echo can leak it.
pub(crate) fn redact(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failure(status: u16, body: Value) -> Failure {
        let status = StatusCode::from_u16(status).unwrap();
        Failure {
            status,
            error: WireError::parse(body.to_string().as_bytes()),
            request_id: Some("req_1".into()),
            retry_after: None,
            should_retry: None,
        }
    }

    fn err(code: &str, kind: &str) -> Value {
        json!({"error": {"message": "m", "type": kind, "param": null, "code": code}})
    }

    #[test]
    fn retry_decisions_follow_the_sdk() {
        assert!(failure(429, err("rate_limit_exceeded", "requests")).retryable());
        assert!(!failure(429, err("insufficient_quota", "insufficient_quota")).retryable());
        assert!(!failure(429, err("credit_balance_exhausted", "insufficient_quota")).retryable());
        assert!(failure(500, json!({})).retryable());
        assert!(failure(503, Value::Null).retryable());
        assert!(failure(408, json!({})).retryable());
        assert!(failure(409, json!({})).retryable());
        assert!(!failure(400, err("invalid_value", "invalid_request_error")).retryable());
        let mut blocked = failure(
            400,
            err("moderation_blocked", "image_generation_user_error"),
        );
        blocked.should_retry = Some(true);
        assert!(
            !blocked.retryable(),
            "a refused prompt is never retried, whatever the header says"
        );
        let mut told = failure(500, json!({}));
        told.should_retry = Some(false);
        assert!(!told.retryable());
    }

    #[test]
    fn errors_map_to_what_a_caller_can_do() {
        let key = "sk-secret";
        let e = failure(400, json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "tools[0].size", "code": "invalid_value"}}))
            .into_error(key, 1, Duration::ZERO);
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field == "size"),
            "{e:?}"
        );
        let e = failure(400, json!({"error": {"message": "no", "type": "image_generation_user_error", "param": null,
            "code": "moderation_blocked", "moderation_details": {"moderation_stage": "input", "categories": ["sexual"]}}}))
            .into_error(key, 1, Duration::ZERO);
        assert!(
            matches!(e, Error::PolicyViolation { ref categories, .. } if categories == &["sexual"]),
            "{e:?}"
        );
        let e = failure(401, json!({"error": {"message": "Incorrect API key provided: sk-se***cret", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}))
            .into_error(key, 1, Duration::ZERO);
        assert!(
            matches!(e, Error::Unauthenticated(_)) && !e.to_string().contains("sk-"),
            "{e}"
        );
        let e = failure(429, err("rate_limit_exceeded", "requests")).into_error(
            key,
            3,
            Duration::from_secs(4),
        );
        assert!(
            matches!(e, Error::RateLimited { retry_after } if retry_after == Duration::from_secs(4))
        );
        let e =
            failure(502, err("server_error", "server_error")).into_error(key, 3, Duration::ZERO);
        assert!(
            matches!(e, Error::Unavailable(ref m) if m.contains("502") && m.contains("3 attempts") && m.contains("req_1")),
            "{e}"
        );
        let e = failure(429, err("insufficient_quota", "insufficient_quota")).into_error(
            key,
            1,
            Duration::ZERO,
        );
        assert!(matches!(e, Error::QuotaExhausted(_)));
    }

    #[test]
    fn dead_models_name_their_replacement() {
        let e = failure(404, json!({"error": {"message": "The model `gpt-image-1` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}))
            .into_error("k", 1, Duration::ZERO);
        let text = e.to_string();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "model"));
        assert!(
            text.contains("shut down on 2026-10-23") && text.contains("gpt-image-2.5-sunburst"),
            "{text}"
        );
    }

    #[test]
    fn server_text_is_scrubbed_of_the_key() {
        let e = failure(400, json!({"error": {"message": "bad header sk-secret", "type": "invalid_request_error", "param": null, "code": null}}))
            .into_error("sk-secret", 1, Duration::ZERO);
        assert!(!format!("{e} {e:?}").contains("sk-secret"));
        assert_eq!(field_name(Some("image[]")), "image");
        assert_eq!(field_name(None), "request");
        assert_eq!(
            field_name(Some("input[0].content[1].image_url")),
            "image_url"
        );
    }
}
