//! The one place where domain errors become HTTP statuses, REST error bodies and MCP errors.

use imagemcp_core::Error;
use serde_json::{Value, json};

/// A stable, machine-readable code for an error (the REST `error.code`, the MCP `data.code`).
pub fn code(err: &Error) -> &'static str {
    match err {
        Error::Invalid { .. } => "invalid_argument",
        Error::NotFound { .. } => "not_found",
        Error::Gone { .. } => "gone",
        Error::Conflict(_) => "conflict",
        Error::Unauthenticated(_) => "unauthenticated",
        Error::Forbidden(_) => "forbidden",
        Error::PolicyViolation { .. } => "content_policy",
        Error::RateLimited { .. } => "rate_limited",
        Error::QuotaExhausted(_) => "upstream_quota_exhausted",
        Error::PlanLimit { .. } => "plan_limit",
        Error::Unavailable(_) => "unavailable",
        _ => "internal",
    }
}

/// The HTTP status of an error.
pub fn status(err: &Error) -> u16 {
    match err {
        Error::Invalid { .. } => 400,
        Error::Unauthenticated(_) => 401,
        Error::Forbidden(_) => 403,
        Error::NotFound { .. } => 404,
        Error::Conflict(_) => 409,
        Error::Gone { .. } => 410,
        Error::PolicyViolation { .. } => 422,
        Error::RateLimited { .. } => 429,
        Error::QuotaExhausted(_) => 503,
        Error::PlanLimit { .. } => 402,
        Error::Unavailable(_) => 503,
        _ => 500,
    }
}

/// The message shown to a caller. Internal errors are logged in full and shown as a generic
/// sentence, so no detail of the system (or a secret in a source error) reaches a client.
pub fn public_message(err: &Error) -> String {
    match err {
        Error::Internal(source) => {
            tracing::error!(error = %source, "internal error");
            "internal error; the details were logged".to_owned()
        }
        other => other.to_string(),
    }
}

/// Extra machine-readable detail: the field at fault, the retry delay, the policy categories.
pub fn details(err: &Error) -> Value {
    let mut body = json!({ "code": code(err) });
    match err {
        Error::Invalid { field, .. } => body["field"] = json!(field),
        Error::RateLimited { retry_after } => {
            body["retry_after_ms"] =
                json!(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX))
        }
        Error::PolicyViolation { categories, .. } => body["categories"] = json!(categories),
        Error::PlanLimit {
            unlocking_tier,
            upgrade_url,
            ..
        } => {
            body["unlocking_tier"] = json!(unlocking_tier);
            body["upgrade_url"] = json!(upgrade_url);
        }
        _ => {}
    }
    body
}

/// The REST error body: `{"error": {"code", "message", …details}}`.
pub fn rest_body(err: &Error) -> Value {
    let mut inner = details(err);
    inner["message"] = json!(public_message(err));
    json!({ "error": inner })
}
