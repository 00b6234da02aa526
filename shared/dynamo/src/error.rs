//! Failed requests into the one core `Error`. Variants follow what a caller can do: a lost condition
//! is `Conflict`, throttling (after whatever retries the transport made) is `RateLimited`, an
//! outage or timeout is `Unavailable`, and a misconfiguration (missing table, denied access) is
//! `Internal`.
//!
//! The error codes are AWS's: DynamoDB shares its vocabulary with S3 and SQS, so `imagemcp-aws`
//! maps those services' codes through the same [`classify`].

use std::time::Duration;

use imagemcp_core::Error;

/// How long a throttled caller is asked to wait: the transport has already retried with backoff,
/// so the table is saturated for longer than a few hundred milliseconds.
pub const THROTTLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A request that failed.
#[derive(Debug)]
pub enum DynamoError {
    /// DynamoDB answered with an error, which the table decides on.
    Service(ServiceError),
    /// No answer to decide on (unreachable, timed out, unreadable): already the core error.
    Other(Error),
}

/// An error answer: its code and message and, for a cancelled transaction, why each operation was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceError {
    /// `ConditionalCheckFailedException`, `TransactionCanceledException`, … (no namespace).
    pub code: String,
    pub message: Option<String>,
    /// For `TransactionCanceledException`, the reason code of each operation in order
    /// (`ConditionalCheckFailed`, `TransactionConflict`, …; `None` where it had none).
    pub cancellation_reasons: Vec<Option<String>>,
}

impl ServiceError {
    /// An answer with `code` and `message` and no cancellation reasons.
    pub fn new(code: impl Into<String>, message: Option<String>) -> Self {
        Self {
            code: code.into(),
            message,
            cancellation_reasons: Vec::new(),
        }
    }

    /// A `TransactionCanceledException` with each operation's reason code, in order (DynamoDB
    /// says `"None"` for an operation that did not fail, which this records as `None`).
    pub fn cancelled(
        message: Option<String>,
        codes: impl IntoIterator<Item = Option<String>>,
    ) -> Self {
        Self {
            code: "TransactionCanceledException".into(),
            message,
            cancellation_reasons: codes
                .into_iter()
                .map(|c| c.filter(|c| c != "None"))
                .collect(),
        }
    }
}

impl From<Error> for DynamoError {
    fn from(e: Error) -> Self {
        Self::Other(e)
    }
}

impl DynamoError {
    /// The core error of this failure of `op` ("DynamoDB PutItem").
    pub fn into_error(self, op: &str) -> Error {
        match self {
            Self::Service(e) => classify(op, Some(&e.code), e.message.as_deref()),
            Self::Other(e) => e,
        }
    }
}

/// The core error for a service error code of `op` (the same codes across DynamoDB, S3 and SQS).
pub fn classify(op: &str, code: Option<&str>, message: Option<&str>) -> Error {
    let message = message.unwrap_or("no message");
    match code.unwrap_or("") {
        "ConditionalCheckFailedException" | "TransactionConflictException" => {
            Error::Conflict(format!("{op}: the condition does not hold"))
        }
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "Throttling"
        | "ThrottlingError"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "SlowDown"
        | "TooManyRequestsException"
        | "OverLimit" => Error::RateLimited {
            retry_after: THROTTLE_RETRY_AFTER,
        },
        "ValidationException"
        | "InvalidParameterValue"
        | "InvalidArgument"
        | "InvalidAttributeValue"
        | "InvalidParameterCombination" => Error::invalid(op, message),
        "InternalServerError"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "RequestTimeout"
        | "" => Error::Unavailable(format!("{op} failed: {message}")),
        code => Error::internal(format!("{op} failed: {code}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_the_caller_can_do() {
        let conflict = classify("PutItem", Some("ConditionalCheckFailedException"), None);
        assert!(matches!(conflict, Error::Conflict(_)), "{conflict:?}");
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "SlowDown",
        ] {
            let e = classify("op", Some(code), Some("slow down"));
            assert!(
                matches!(e, Error::RateLimited { retry_after } if retry_after == THROTTLE_RETRY_AFTER),
                "{code}: {e:?}"
            );
        }
        let e = classify("op", Some("ValidationException"), Some("bad type"));
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        let e = classify("op", Some("InternalServerError"), None);
        assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
        let e = classify("op", Some("ResourceNotFoundException"), Some("no table"));
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }

    #[test]
    fn a_transport_failure_stays_what_it_was() {
        let e = DynamoError::Other(Error::Unavailable("timed out".into()));
        assert!(
            matches!(e.into_error("DynamoDB GetItem"), Error::Unavailable(m) if m == "timed out")
        );
        let e = DynamoError::Service(ServiceError::new("ResourceNotFoundException", None));
        let e = e.into_error("DynamoDB GetItem");
        assert!(
            matches!(&e, Error::Internal(m) if m.to_string().contains("DynamoDB GetItem")),
            "{e:?}"
        );
    }
}
