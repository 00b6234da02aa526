//! The AWS adapters: the `Table` and `Cache` ports on one DynamoDB table (single-table design),
//! the `BlobStore` on S3 and the `Queue`/`PullQueue` on SQS with a dead-letter queue.
//!
//! Clients are configured the way the AWS SDK is everywhere (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, …, or the Lambda execution role); our own settings (table, bucket, queue)
//! come from [`AwsSettings`]. The DynamoDB item mapping is `imagemcp-dynamo`'s (shared with the
//! Worker); this crate gives it the SDK as its transport. SDK types stay inside this crate: every
//! error leaves as [`imagemcp_core::Error`].

pub mod blob;
pub mod dynamo;
mod error;
pub mod provision;
pub mod queue;
pub mod secrets;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use blob::{S3BlobStore, Sse};
pub use dynamo::{DynamoCache, DynamoTable, SdkTransport};
/// The attribute names every DynamoDB item reserves: the keys and the TTL.
pub use imagemcp_dynamo::{EXPIRES_AT, PK, SK};
pub use queue::SqsQueue;
pub use secrets::Secrets;
pub use settings::{AwsSettings, Clients};
