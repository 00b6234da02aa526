//! The AWS adapters: the `Table` and `Cache` ports on one DynamoDB table (single-table design),
//! the `BlobStore` on S3 and the `Queue`/`PullQueue` on SQS with a dead-letter queue.
//!
//! Clients are configured the way the AWS SDK is everywhere (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, …, or the Lambda execution role); our own settings (table, bucket, queue)
//! come from [`AwsSettings`]. SDK types stay inside this crate: every error leaves as
//! [`imagemcp_core::Error`].

mod attr;
pub mod blob;
pub mod cache;
mod error;
pub mod provision;
pub mod queue;
pub mod secrets;
pub mod settings;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use blob::{S3BlobStore, Sse};
pub use cache::DynamoCache;
pub use queue::SqsQueue;
pub use secrets::Secrets;
pub use settings::{AwsSettings, Clients};
pub use table::DynamoTable;

/// The attribute names the adapters reserve on every DynamoDB item: the keys and the TTL.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const EXPIRES_AT: &str = "expires_at";
