//! Creates the table, bucket and queues the adapters expect, for development and tests against an
//! emulator. Production resources come from Terraform (`terraform/modules/imagemcp`), which
//! declares the same shapes: keep the two in step.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use imagemcp_core::{Error, Result};

use crate::error::map_sdk;
use crate::settings::Clients;
use crate::{EXPIRES_AT, PK, SK};

/// The generic secondary index, for look-ups by something other than the primary key (its key
/// attributes `gsi1pk`/`gsi1sk` are written by the domain where an access pattern needs them).
pub const GSI1: &str = "gsi1";

fn built(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal(e)
}

/// Creates the single table (on-demand, `pk`/`sk`, GSI1, TTL on `expires_at`).
pub async fn create_table(clients: &Clients, name: &str) -> Result<()> {
    let key = |attr: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(kind)
            .build()
            .map_err(built)
    };
    let string_attr = |attr: &str| {
        AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(built)
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(built)?;
    clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(string_attr(PK)?)
        .attribute_definitions(string_attr(SK)?)
        .attribute_definitions(string_attr("gsi1pk")?)
        .attribute_definitions(string_attr("gsi1sk")?)
        .global_secondary_indexes(gsi)
        .send()
        .await
        .map_err(|e| map_sdk("DynamoDB CreateTable", e))?;
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()
                .map_err(built)?,
        )
        .send()
        .await
        .map_err(|e| map_sdk("DynamoDB UpdateTimeToLive", e))?;
    Ok(())
}

/// Creates the bucket.
pub async fn create_bucket(clients: &Clients, name: &str) -> Result<()> {
    clients
        .s3
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(|e| map_sdk("S3 CreateBucket", e))?;
    Ok(())
}

/// The URLs of a queue and its dead-letter queue.
#[derive(Clone, Debug)]
pub struct QueueUrls {
    pub queue: String,
    pub dead_letters: String,
}

/// Creates `name` and `name-dlq`, with a redrive policy moving a message to the dead-letter queue
/// after `max_attempts` receives.
pub async fn create_queues(
    clients: &Clients,
    name: &str,
    max_attempts: u32,
    visibility: Duration,
) -> Result<QueueUrls> {
    let dlq_url = clients
        .sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| map_sdk("SQS CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::internal("CreateQueue returned no URL"))?;
    let dlq_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| map_sdk("SQS GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::internal("GetQueueAttributes returned no ARN"))?;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_attempts});
    let attributes = HashMap::from([
        (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        (
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().to_string(),
        ),
    ]);
    let queue_url = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| map_sdk("SQS CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::internal("CreateQueue returned no URL"))?;
    Ok(QueueUrls {
        queue: queue_url,
        dead_letters: dlq_url,
    })
}
