//! The one error type of the domain and its ports. Variants are named for what a caller can do about
//! them; the HTTP and MCP mappings are written once, at the edge, in `imagemcp-app`.

use std::time::Duration;

/// A boxed source error from an adapter (SDK errors never appear in core signatures).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of every port and domain operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was rejected; `field` names the argument at fault.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{what} not found")]
    NotFound { what: String },
    /// The thing asked for existed and was deleted.
    #[error("{what} was deleted")]
    Gone { what: String },
    /// A conditional write lost: the item exists, is missing, or changed since it was read.
    #[error("conflict: {0}")]
    Conflict(String),
    /// No or bad credentials.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The content policy (ours or the model's) refused the request; rephrasing may help.
    #[error("refused by the content policy: {reason}")]
    PolicyViolation {
        reason: String,
        categories: Vec<String>,
    },
    /// Too many requests: retry after the given time.
    #[error("rate limited; retry after {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    /// The upstream account is out of credit or over its spend limit: retrying will not help.
    #[error("upstream quota exhausted: {0}")]
    QuotaExhausted(String),
    /// The organisation's plan does not include this, or its allowance is used up. Names the
    /// cheapest tier that unlocks it (if any does) and where to upgrade.
    #[error("{reason}{}; upgrade at {upgrade_url}", unlocking_tier.as_deref().map(|t| format!(" (the {t} plan includes it)")).unwrap_or_default())]
    PlanLimit {
        reason: String,
        unlocking_tier: Option<String>,
        upgrade_url: String,
    },
    /// A dependency is down, timed out or failed; the request may be retried later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl Error {
    /// An `Invalid` error for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A `NotFound` error for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// An `Internal` error from any displayable cause.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Error::Internal(cause.into())
    }
}
