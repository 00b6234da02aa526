//! The `Transport` a [`DynamoTable`](crate::DynamoTable) or [`DynamoCache`](crate::DynamoCache)
//! sends its requests through: one method per DynamoDB operation they use, taking and returning
//! neutral request and response types.
//!
//! The types are the DynamoDB API's own shapes, limited to the fields this crate sets, and they
//! serialize (requests) and deserialize (responses) exactly as its JSON protocol
//! (`application/x-amz-json-1.0`) does: a transport speaking that protocol sends `serde_json` of the
//! request and parses the reply; one on an SDK copies the fields into its builders.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::DynamoError;
use crate::value::Attributes;

/// The placeholders (`#name` → attribute name, `:value` → value) of a request's expressions:
/// exactly those they use, since DynamoDB rejects unused ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Placeholders {
    #[serde(
        rename = "ExpressionAttributeNames",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub names: HashMap<String, String>,
    #[serde(
        rename = "ExpressionAttributeValues",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub values: Attributes,
}

/// `GetItem`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetItemInput {
    pub table_name: String,
    pub key: Attributes,
    pub consistent_read: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetItemOutput {
    /// `None` when no item has the key.
    #[serde(default)]
    pub item: Option<Attributes>,
}

/// `PutItem`, and a transaction's `Put`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutItemInput {
    pub table_name: String,
    pub item: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_expression: Option<String>,
    #[serde(flatten)]
    pub placeholders: Placeholders,
}

/// `DeleteItem`, and a transaction's `Delete`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteItemInput {
    pub table_name: String,
    pub key: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_expression: Option<String>,
    #[serde(flatten)]
    pub placeholders: Placeholders,
}

/// `UpdateItem`, and a transaction's `Update` (which has no `ReturnValues`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateItemInput {
    pub table_name: String,
    pub key: Attributes,
    pub update_expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_expression: Option<String>,
    #[serde(flatten)]
    pub placeholders: Placeholders,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_values: Option<ReturnValues>,
}

/// What an `UpdateItem` answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReturnValues {
    /// The updated attributes, as they are after the update.
    #[serde(rename = "UPDATED_NEW")]
    UpdatedNew,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateItemOutput {
    #[serde(default)]
    pub attributes: Option<Attributes>,
}

/// `Query` on the table's primary key.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryInput {
    pub table_name: String,
    pub key_condition_expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    #[serde(flatten)]
    pub placeholders: Placeholders,
    pub scan_index_forward: bool,
    pub consistent_read: bool,
    /// Items to evaluate (before the filter), at most.
    pub limit: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_start_key: Option<Attributes>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryOutput {
    #[serde(default)]
    pub items: Vec<Attributes>,
    /// Set when the range may hold more items after these.
    #[serde(default)]
    pub last_evaluated_key: Option<Attributes>,
}

/// `TransactWriteItems`: all of them or none.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactWriteItemsInput {
    pub transact_items: Vec<TransactWriteItem>,
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum TransactWriteItem {
    ConditionCheck(ConditionCheck),
    Put(PutItemInput),
    Delete(DeleteItemInput),
    Update(UpdateItemInput),
}

/// A transaction's condition on an item it does not write.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConditionCheck {
    pub table_name: String,
    pub key: Attributes,
    pub condition_expression: String,
    #[serde(flatten)]
    pub placeholders: Placeholders,
}

/// How requests reach DynamoDB. Errors are [`DynamoError`]s: DynamoDB's own answers as their code
/// and message (the table decides what each means), anything else as the core error already.
#[async_trait::async_trait]
pub trait Transport: imagemcp_core::MaybeSendSync {
    async fn get_item(&self, input: GetItemInput) -> Result<GetItemOutput, DynamoError>;
    async fn put_item(&self, input: PutItemInput) -> Result<(), DynamoError>;
    async fn update_item(&self, input: UpdateItemInput) -> Result<UpdateItemOutput, DynamoError>;
    async fn delete_item(&self, input: DeleteItemInput) -> Result<(), DynamoError>;
    async fn query(&self, input: QueryInput) -> Result<QueryOutput, DynamoError>;
    async fn transact_write_items(&self, input: TransactWriteItemsInput)
    -> Result<(), DynamoError>;
}
