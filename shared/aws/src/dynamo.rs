//! The DynamoDB `Transport` on the AWS SDK: the neutral requests of `imagemcp-dynamo` copied into
//! the SDK's builders, its attribute values and errors copied back. The item mapping, expressions,
//! add planning and transactions are `imagemcp_dynamo`'s, shared with the Worker.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{self as sdk, ReturnValue};
use imagemcp_core::Error;
use imagemcp_dynamo::error::{DynamoError, ServiceError};
use imagemcp_dynamo::transport::{
    DeleteItemInput, GetItemInput, GetItemOutput, Placeholders, PutItemInput, QueryInput,
    QueryOutput, ReturnValues, TransactWriteItem, TransactWriteItemsInput, Transport,
    UpdateItemInput, UpdateItemOutput,
};
use imagemcp_dynamo::{AttributeValue, Attributes};

use crate::error::sdk_failure;

/// The `Table` port on DynamoDB through the SDK. Cheap to clone.
pub type DynamoTable = imagemcp_dynamo::DynamoTable<SdkTransport>;

/// The `Cache` port on DynamoDB through the SDK. Cheap to clone.
pub type DynamoCache = imagemcp_dynamo::DynamoCache<SdkTransport>;

/// DynamoDB requests sent with the SDK's client (its retries, timeouts and credentials).
#[derive(Clone, Debug)]
pub struct SdkTransport {
    client: Client,
}

impl From<Client> for SdkTransport {
    fn from(client: Client) -> Self {
        Self { client }
    }
}

fn to_sdk(value: AttributeValue) -> sdk::AttributeValue {
    match value {
        AttributeValue::S(s) => sdk::AttributeValue::S(s),
        AttributeValue::N(n) => sdk::AttributeValue::N(n),
        AttributeValue::Bool(b) => sdk::AttributeValue::Bool(b),
        AttributeValue::Null(b) => sdk::AttributeValue::Null(b),
        AttributeValue::L(items) => sdk::AttributeValue::L(items.into_iter().map(to_sdk).collect()),
        AttributeValue::M(map) => sdk::AttributeValue::M(attrs_to_sdk(map)),
        AttributeValue::B(bytes) => sdk::AttributeValue::B(Blob::new(bytes)),
    }
}

fn attrs_to_sdk(attrs: Attributes) -> HashMap<String, sdk::AttributeValue> {
    attrs.into_iter().map(|(k, v)| (k, to_sdk(v))).collect()
}

/// The neutral value of an SDK one; sets are never written, so meeting one means the table holds
/// something foreign.
fn from_sdk(value: sdk::AttributeValue) -> Result<AttributeValue, DynamoError> {
    Ok(match value {
        sdk::AttributeValue::S(s) => AttributeValue::S(s),
        sdk::AttributeValue::N(n) => AttributeValue::N(n),
        sdk::AttributeValue::Bool(b) => AttributeValue::Bool(b),
        sdk::AttributeValue::Null(b) => AttributeValue::Null(b),
        sdk::AttributeValue::L(items) => {
            AttributeValue::L(items.into_iter().map(from_sdk).collect::<Result<_, _>>()?)
        }
        sdk::AttributeValue::M(map) => AttributeValue::M(attrs_from_sdk(map)?),
        sdk::AttributeValue::B(blob) => AttributeValue::B(blob.into_inner()),
        _ => return Err(DynamoError::Other(imagemcp_dynamo::value::foreign())),
    })
}

fn attrs_from_sdk(attrs: HashMap<String, sdk::AttributeValue>) -> Result<Attributes, DynamoError> {
    attrs
        .into_iter()
        .map(|(k, v)| Ok((k, from_sdk(v)?)))
        .collect()
}

fn opt_attrs(
    attrs: Option<HashMap<String, sdk::AttributeValue>>,
) -> Result<Option<Attributes>, DynamoError> {
    attrs.map(attrs_from_sdk).transpose()
}

/// The names and values of `placeholders`, as the SDK's optional maps (absent when empty).
type SdkPlaceholders = (
    Option<HashMap<String, String>>,
    Option<HashMap<String, sdk::AttributeValue>>,
);

fn placeholders(p: Placeholders) -> SdkPlaceholders {
    (
        (!p.names.is_empty()).then_some(p.names),
        (!p.values.is_empty()).then(|| attrs_to_sdk(p.values)),
    )
}

fn built(e: aws_sdk_dynamodb::error::BuildError) -> DynamoError {
    DynamoError::Other(Error::internal(e))
}

fn transact_item(item: TransactWriteItem) -> Result<sdk::TransactWriteItem, DynamoError> {
    let builder = sdk::TransactWriteItem::builder();
    Ok(match item {
        TransactWriteItem::Put(put) => {
            let (names, values) = placeholders(put.placeholders);
            builder.put(
                sdk::Put::builder()
                    .table_name(put.table_name)
                    .set_item(Some(attrs_to_sdk(put.item)))
                    .set_condition_expression(put.condition_expression)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(built)?,
            )
        }
        TransactWriteItem::Delete(delete) => {
            let (names, values) = placeholders(delete.placeholders);
            builder.delete(
                sdk::Delete::builder()
                    .table_name(delete.table_name)
                    .set_key(Some(attrs_to_sdk(delete.key)))
                    .set_condition_expression(delete.condition_expression)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(built)?,
            )
        }
        TransactWriteItem::ConditionCheck(check) => {
            let (names, values) = placeholders(check.placeholders);
            builder.condition_check(
                sdk::ConditionCheck::builder()
                    .table_name(check.table_name)
                    .set_key(Some(attrs_to_sdk(check.key)))
                    .condition_expression(check.condition_expression)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(built)?,
            )
        }
        TransactWriteItem::Update(update) => {
            let (names, values) = placeholders(update.placeholders);
            builder.update(
                sdk::Update::builder()
                    .table_name(update.table_name)
                    .set_key(Some(attrs_to_sdk(update.key)))
                    .update_expression(update.update_expression)
                    .set_condition_expression(update.condition_expression)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(built)?,
            )
        }
    }
    .build())
}

#[async_trait::async_trait]
impl Transport for SdkTransport {
    async fn get_item(&self, input: GetItemInput) -> Result<GetItemOutput, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(input.table_name)
            .set_key(Some(attrs_to_sdk(input.key)))
            .consistent_read(input.consistent_read)
            .send()
            .await
            .map_err(|e| sdk_failure("DynamoDB GetItem", e))?;
        Ok(GetItemOutput {
            item: opt_attrs(out.item)?,
        })
    }

    async fn put_item(&self, input: PutItemInput) -> Result<(), DynamoError> {
        let (names, values) = placeholders(input.placeholders);
        self.client
            .put_item()
            .table_name(input.table_name)
            .set_item(Some(attrs_to_sdk(input.item)))
            .set_condition_expression(input.condition_expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| sdk_failure("DynamoDB PutItem", e))?;
        Ok(())
    }

    async fn update_item(&self, input: UpdateItemInput) -> Result<UpdateItemOutput, DynamoError> {
        let (names, values) = placeholders(input.placeholders);
        let out = self
            .client
            .update_item()
            .table_name(input.table_name)
            .set_key(Some(attrs_to_sdk(input.key)))
            .update_expression(input.update_expression)
            .set_condition_expression(input.condition_expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_return_values(input.return_values.map(|r| match r {
                ReturnValues::UpdatedNew => ReturnValue::UpdatedNew,
            }))
            .send()
            .await
            .map_err(|e| sdk_failure("DynamoDB UpdateItem", e))?;
        Ok(UpdateItemOutput {
            attributes: opt_attrs(out.attributes)?,
        })
    }

    async fn delete_item(&self, input: DeleteItemInput) -> Result<(), DynamoError> {
        let (names, values) = placeholders(input.placeholders);
        self.client
            .delete_item()
            .table_name(input.table_name)
            .set_key(Some(attrs_to_sdk(input.key)))
            .set_condition_expression(input.condition_expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| sdk_failure("DynamoDB DeleteItem", e))?;
        Ok(())
    }

    async fn query(&self, input: QueryInput) -> Result<QueryOutput, DynamoError> {
        let (names, values) = placeholders(input.placeholders);
        let out = self
            .client
            .query()
            .table_name(input.table_name)
            .key_condition_expression(input.key_condition_expression)
            .set_filter_expression(input.filter_expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .scan_index_forward(input.scan_index_forward)
            .consistent_read(input.consistent_read)
            .limit(input.limit)
            .set_exclusive_start_key(input.exclusive_start_key.map(attrs_to_sdk))
            .send()
            .await
            .map_err(|e| sdk_failure("DynamoDB Query", e))?;
        Ok(QueryOutput {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(attrs_from_sdk)
                .collect::<Result<_, _>>()?,
            last_evaluated_key: opt_attrs(out.last_evaluated_key)?,
        })
    }

    async fn transact_write_items(
        &self,
        input: TransactWriteItemsInput,
    ) -> Result<(), DynamoError> {
        let items = input
            .transact_items
            .into_iter()
            .map(transact_item)
            .collect::<Result<Vec<_>, _>>()?;
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                Err(DynamoError::Service(ServiceError::cancelled(
                    e.message().map(str::to_owned),
                    e.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned)),
                )))
            }
            _ => Err(sdk_failure("DynamoDB TransactWriteItems", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_convert_both_ways() {
        let neutral = AttributeValue::M(Attributes::from([
            ("s".into(), AttributeValue::S("x".into())),
            ("n".into(), AttributeValue::N("-1.5".into())),
            ("b".into(), AttributeValue::Bool(false)),
            ("z".into(), AttributeValue::Null(true)),
            (
                "l".into(),
                AttributeValue::L(vec![AttributeValue::B(vec![0, 255])]),
            ),
        ]));
        assert_eq!(from_sdk(to_sdk(neutral.clone())).unwrap(), neutral);
        assert!(matches!(
            from_sdk(sdk::AttributeValue::Ss(vec!["a".into()])),
            Err(DynamoError::Other(Error::Internal(_)))
        ));
    }
}
