//! The `Cache` port: bytes by key with a time to live (Workers KV, DynamoDB TTL items, memory).

use std::time::Duration;

use crate::Result;

#[async_trait::async_trait]
pub trait Cache: crate::MaybeSendSync {
    /// The value, unless missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores the value for `ttl` (adapters may round up to their minimum, e.g. KV's 60 s).
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
}
