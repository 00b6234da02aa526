//! DynamoDB's JSON protocol (`application/x-amz-json-1.0`) for a transport that speaks it over
//! HTTP itself (the Worker's signed `fetch`): an operation's headers, its body, and its reply read
//! into the response or the [`DynamoError`].

use imagemcp_core::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DynamoError, ServiceError};

/// The `content-type` of every request.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The `x-amz-target` header of `operation` (`PutItem`, `Query`, …).
pub fn target(operation: &str) -> String {
    format!("DynamoDB_20120810.{operation}")
}

/// The request body of `input`.
pub fn body(input: &impl Serialize) -> Result<Vec<u8>, DynamoError> {
    serde_json::to_vec(input).map_err(|e| DynamoError::Other(Error::internal(e)))
}

/// The response of `operation` from its reply's status and body: success bodies parse into `O`
/// (use `serde::de::IgnoredAny` where the answer does not matter), a server error is
/// `Unavailable`, any other error answer is its code, message and cancellation reasons.
pub fn reply<O: DeserializeOwned>(
    operation: &str,
    status: u16,
    body: &[u8],
) -> Result<O, DynamoError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| {
            DynamoError::Other(if e.is_data() {
                Error::internal(format!(
                    "DynamoDB {operation} answered with what this adapter never writes: {e}"
                ))
            } else {
                Error::Unavailable(format!("DynamoDB {operation} answered with no JSON"))
            })
        });
    }
    if status >= 500 {
        return Err(DynamoError::Other(Error::Unavailable(format!(
            "DynamoDB {operation} failed with {status}"
        ))));
    }
    Err(DynamoError::Service(service_error(body)))
}

/// An error answer: `{"__type": "<namespace>#<code>", "message": …, "CancellationReasons":
/// [{"Code": …}, …]}` (an unreadable one has no code, which reads as an outage).
fn service_error(body: &[u8]) -> ServiceError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = parsed["__type"]
        .as_str()
        .and_then(|t| t.rsplit('#').next())
        .unwrap_or("");
    let message = parsed
        .get("message")
        .or_else(|| parsed.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match parsed["CancellationReasons"].as_array() {
        Some(reasons) if code == "TransactionCanceledException" => ServiceError::cancelled(
            message,
            reasons
                .iter()
                .map(|r| r["Code"].as_str().map(str::to_owned)),
        ),
        _ => ServiceError::new(code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{GetItemOutput, QueryOutput};
    use crate::value::AttributeValue;
    use serde::de::IgnoredAny;

    #[test]
    fn replies_parse_into_responses() {
        let out: GetItemOutput = reply(
            "GetItem",
            200,
            br#"{"Item": {"pk": {"S": "p"}, "n": {"N": "3"}}}"#,
        )
        .unwrap();
        let item = out.item.unwrap();
        assert_eq!(item["n"], AttributeValue::N("3".into()));
        let out: GetItemOutput = reply("GetItem", 200, b"{}").unwrap();
        assert_eq!(out.item, None);
        let out: QueryOutput = reply("Query", 200, br#"{"Count": 0, "Items": []}"#).unwrap();
        assert_eq!(out, QueryOutput::default());
        reply::<IgnoredAny>("PutItem", 200, b"{}").unwrap();
    }

    #[test]
    fn unreadable_replies_are_outages_and_foreign_ones_internal() {
        let e = reply::<IgnoredAny>("PutItem", 200, b"<html>").unwrap_err();
        assert!(
            matches!(e, DynamoError::Other(Error::Unavailable(_))),
            "{e:?}"
        );
        let e = reply::<GetItemOutput>("GetItem", 200, br#"{"Item": {"t": {"SS": ["a"]}}}"#)
            .unwrap_err();
        assert!(matches!(e, DynamoError::Other(Error::Internal(_))), "{e:?}");
        let e = reply::<IgnoredAny>("PutItem", 503, b"").unwrap_err();
        assert!(
            matches!(e, DynamoError::Other(Error::Unavailable(_))),
            "{e:?}"
        );
        let e = reply::<IgnoredAny>("PutItem", 400, b"not json").unwrap_err();
        assert!(
            matches!(&e, DynamoError::Service(s) if s.code.is_empty()),
            "{e:?}"
        );
    }

    #[test]
    fn error_answers_keep_their_code_message_and_reasons() {
        let e = reply::<IgnoredAny>(
            "PutItem",
            400,
            br#"{"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"}"#,
        )
        .unwrap_err();
        let DynamoError::Service(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            e,
            ServiceError::new(
                "ConditionalCheckFailedException",
                Some("The conditional request failed".into())
            )
        );
        let e = reply::<IgnoredAny>(
            "TransactWriteItems",
            400,
            br#"{"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException", "Message": "Transaction cancelled", "CancellationReasons": [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}]}"#,
        )
        .unwrap_err();
        let DynamoError::Service(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(e.code, "TransactionCanceledException");
        assert_eq!(e.message.as_deref(), Some("Transaction cancelled"));
        assert_eq!(
            e.cancellation_reasons,
            vec![None, Some("ConditionalCheckFailed".to_owned())]
        );
    }
}
