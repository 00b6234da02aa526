//! The DynamoDB `Transport` of the Worker: each neutral request of `imagemcp-dynamo` sent as its
//! JSON-protocol body over the signed `fetch` of `aws`, and the reply read back by
//! `imagemcp_dynamo::json`. The item mapping, expressions, add planning and transactions are
//! `imagemcp_dynamo`'s, shared with the Lambda functions, so a Worker and the Lambda functions can
//! share one table.

use std::sync::Arc;

use imagemcp_core::Error;
use imagemcp_dynamo::error::DynamoError;
use imagemcp_dynamo::json;
use imagemcp_dynamo::transport::{
    DeleteItemInput, GetItemInput, GetItemOutput, PutItemInput, QueryInput, QueryOutput,
    TransactWriteItemsInput, Transport, UpdateItemInput, UpdateItemOutput,
};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::aws::{AwsTarget, Reply};

/// The `Table` port on DynamoDB over `fetch`. Cheap to clone.
pub type DynamoTable = imagemcp_dynamo::DynamoTable<FetchTransport>;

/// DynamoDB's JSON protocol over the Worker's signed `fetch`.
#[derive(Clone, Debug)]
pub struct FetchTransport {
    aws: Arc<AwsTarget>,
}

impl From<Arc<AwsTarget>> for FetchTransport {
    fn from(aws: Arc<AwsTarget>) -> Self {
        Self { aws }
    }
}

impl FetchTransport {
    /// One call of `operation` with `input` as its body, its answer read as `O`.
    async fn call<O: DeserializeOwned>(
        &self,
        operation: &str,
        input: &impl Serialize,
    ) -> Result<O, DynamoError> {
        let reply = self.send(operation, json::body(input)?).await?;
        json::reply(operation, reply.status, &reply.body)
    }

    /// Signs and sends one request of `operation` (not generic, so its future is compiled once).
    async fn send(&self, operation: &str, body: Vec<u8>) -> Result<Reply, DynamoError> {
        let request = http::Request::post(format!(
            "{}/",
            self.aws.dynamodb_endpoint.trim_end_matches('/')
        ))
        .header("content-type", json::CONTENT_TYPE)
        .header("x-amz-target", json::target(operation))
        .body(body)
        .map_err(Error::internal)?;
        Ok(self.aws.send("dynamodb", request).await?)
    }
}

#[async_trait::async_trait]
impl Transport for FetchTransport {
    async fn get_item(&self, input: GetItemInput) -> Result<GetItemOutput, DynamoError> {
        self.call("GetItem", &input).await
    }

    async fn put_item(&self, input: PutItemInput) -> Result<(), DynamoError> {
        self.call::<IgnoredAny>("PutItem", &input).await.map(drop)
    }

    async fn update_item(&self, input: UpdateItemInput) -> Result<UpdateItemOutput, DynamoError> {
        self.call("UpdateItem", &input).await
    }

    async fn delete_item(&self, input: DeleteItemInput) -> Result<(), DynamoError> {
        self.call::<IgnoredAny>("DeleteItem", &input)
            .await
            .map(drop)
    }

    async fn query(&self, input: QueryInput) -> Result<QueryOutput, DynamoError> {
        self.call("Query", &input).await
    }

    async fn transact_write_items(
        &self,
        input: TransactWriteItemsInput,
    ) -> Result<(), DynamoError> {
        self.call::<IgnoredAny>("TransactWriteItems", &input)
            .await
            .map(drop)
    }
}
