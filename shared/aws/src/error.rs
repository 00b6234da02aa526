//! SDK errors into the one core `Error`, written once for DynamoDB, S3 and SQS (they share the
//! smithy error types). Variants follow what a caller can do: a lost condition is `Conflict`,
//! throttling that outlived the SDK's retries is `RateLimited`, an outage or timeout is
//! `Unavailable`, and a misconfiguration (missing table, denied access) is `Internal`.

use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use imagemcp_core::Error;

/// How long a throttled caller is asked to wait: the SDK has already retried with backoff, so
/// the table or queue is saturated for longer than a few hundred milliseconds.
pub(crate) const THROTTLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Maps a failed SDK call; `op` names it ("DynamoDB PutItem") for the logs and the message.
pub(crate) fn map_sdk<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            classify(op, e.code(), e.message())
        }
        SdkError::TimeoutError(_) => Error::Unavailable(format!("{op} timed out")),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Unavailable(format!("{op} failed: {}", DisplayErrorContext(&err)))
        }
        _ => Error::internal(format!("{op} failed: {}", DisplayErrorContext(&err))),
    }
}

/// The core error for a service error code (the same codes across the three services).
pub(crate) fn classify(op: &str, code: Option<&str>, message: Option<&str>) -> Error {
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
            "SlowDown",
        ] {
            let e = classify("op", Some(code), Some("slow down"));
            assert!(matches!(e, Error::RateLimited { .. }), "{code}: {e:?}");
        }
        let e = classify("op", Some("ValidationException"), Some("bad type"));
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        let e = classify("op", Some("InternalServerError"), None);
        assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
        let e = classify("op", Some("ResourceNotFoundException"), Some("no table"));
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }
}
