//! `DynamoCache`: the `Cache` port as TTL items in the application's DynamoDB table.
//!
//! An entry is the item `pk = CACHE#<key>`, `sk = V`, with the bytes in `v` (B) and the expiry in
//! the table's TTL attribute. DynamoDB removes expired items within days, so reads compare the
//! expiry with the injected clock themselves. Keys longer than fit a partition key comfortably are
//! replaced by their SHA-256.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use imagemcp_core::cache::Cache;
use imagemcp_core::clock::Clock;
use imagemcp_core::table::Key;
use imagemcp_core::{Error, Result};
use sha2::{Digest, Sha256};

use crate::EXPIRES_AT;
use crate::attr::{self, key_attrs};
use crate::error::map_sdk;

/// The attribute holding an entry's bytes.
const VALUE: &str = "v";

/// Keys up to this many bytes are stored as they are (a partition key may hold 2048).
const MAX_RAW_KEY: usize = 1024;

/// The `Cache` port on DynamoDB. Cheap to clone.
#[derive(Clone)]
pub struct DynamoCache {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoCache")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// The item key of a cache key.
fn item_key(key: &str) -> Key {
    let pk = if key.len() <= MAX_RAW_KEY {
        format!("CACHE#{key}")
    } else {
        format!(
            "CACHE#sha256:{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    };
    Key::new(pk, "V")
}

/// The expiry, in Unix seconds, of an entry written at `now_ms` for `ttl`: rounded up, so an entry
/// never expires before its TTL.
fn expiry_secs(now_ms: i64, ttl: Duration) -> i64 {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    now_ms
        .saturating_add(ttl_ms)
        .saturating_add(999)
        .div_euclid(1000)
}

impl DynamoCache {
    /// A cache in `table` (the same table as the `DynamoTable`; its keys start with `CACHE#`).
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }
}

#[async_trait::async_trait]
impl Cache for DynamoCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // Eventually consistent: a cache may serve a value a moment old, at half the cost.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&item_key(key))))
            .send()
            .await
            .map_err(|e| map_sdk("DynamoDB GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let now_ms = self.clock.now_ms();
        match attr::expires_at(&item)? {
            Some(at) if at.saturating_mul(1000) <= now_ms => return Ok(None),
            _ => {}
        }
        match item.get(VALUE) {
            Some(AttributeValue::B(blob)) => Ok(Some(blob.clone().into_inner())),
            _ => Err(Error::internal("a cache entry has no binary value")),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let mut item: HashMap<String, AttributeValue> = key_attrs(&item_key(key));
        item.insert(VALUE.to_owned(), AttributeValue::B(Blob::new(value)));
        item.insert(
            EXPIRES_AT.to_owned(),
            AttributeValue::N(expiry_secs(self.clock.now_ms(), ttl).to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| map_sdk("DynamoDB PutItem", e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&item_key(key))))
            .send()
            .await
            .map_err(|e| map_sdk("DynamoDB DeleteItem", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed_and_short_ones_kept() {
        assert_eq!(item_key("img:abc").pk, "CACHE#img:abc");
        let long = "k".repeat(5000);
        let pk = item_key(&long).pk;
        assert!(pk.len() < 100 && pk.starts_with("CACHE#sha256:"), "{pk}");
        assert_ne!(item_key(&long).pk, item_key(&"k".repeat(5001)).pk);
    }

    #[test]
    fn expiry_rounds_up() {
        assert_eq!(expiry_secs(1_000, Duration::from_secs(120)), 121);
        assert_eq!(expiry_secs(1_001, Duration::from_secs(120)), 122);
        assert_eq!(expiry_secs(0, Duration::from_millis(1)), 1);
    }
}
