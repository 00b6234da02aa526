//! SDK errors into the one core `Error`, written once for DynamoDB, S3, SQS and Secrets Manager
//! (they share the smithy error types). Service error codes go through `imagemcp_dynamo`'s
//! [`classify`], the one table of AWS codes; what never reached the service is `Unavailable`
//! (an outage or timeout) or `Internal` (a request the SDK could not build).

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use imagemcp_core::Error;
use imagemcp_dynamo::error::classify;

/// Maps a failed SDK call; `op` names it ("S3 PutObject") for the logs and the message.
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
