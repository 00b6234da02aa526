//! SDK errors into the one core `Error`, written once for DynamoDB, S3, SQS and Secrets Manager
//! (they share the smithy error types). A service's answer keeps its code and message, which
//! `imagemcp_dynamo`'s `classify`, the one table of AWS codes, maps; what never reached the service
//! is `Unavailable` (an outage or timeout) or `Internal` (a request the SDK could not build).

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use imagemcp_core::Error;
use imagemcp_dynamo::{DynamoError, ServiceError};

/// A failed SDK call of `op` ("DynamoDB PutItem"), its service answer not yet classified.
pub(crate) fn sdk_failure<E, R>(op: &str, err: SdkError<E, R>) -> DynamoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    DynamoError::Other(match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            return DynamoError::Service(ServiceError::new(
                e.code().unwrap_or(""),
                e.message().map(str::to_owned),
            ));
        }
        SdkError::TimeoutError(_) => Error::Unavailable(format!("{op} timed out")),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Unavailable(format!("{op} failed: {}", DisplayErrorContext(&err)))
        }
        _ => Error::internal(format!("{op} failed: {}", DisplayErrorContext(&err))),
    })
}

/// Maps a failed SDK call; `op` names it ("S3 PutObject") for the logs and the message.
pub(crate) fn map_sdk<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    sdk_failure(op, err).into_error(op)
}
