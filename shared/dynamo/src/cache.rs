//! `DynamoCache`: the `Cache` port as TTL items in the application's DynamoDB table, over any
//! [`Transport`].
//!
//! An entry is the item `pk = CACHE#<key>`, `sk = V`, with the bytes in `v` (B) and the expiry in
//! the table's TTL attribute. DynamoDB removes expired items within days, so reads compare the
//! expiry with the injected clock themselves. Keys longer than fit a partition key comfortably are
//! replaced by their SHA-256.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::cache::Cache;
use imagemcp_core::clock::Clock;
use imagemcp_core::table::Key;
use imagemcp_core::{Error, Result};
use sha2::{Digest, Sha256};

use crate::item::{self, EXPIRES_AT, key_attrs};
use crate::table::DynamoTable;
use crate::transport::{DeleteItemInput, GetItemInput, PutItemInput, Transport};
use crate::value::AttributeValue;

/// The attribute holding an entry's bytes.
const VALUE: &str = "v";

/// Keys up to this many bytes are stored as they are (a partition key may hold 2048).
const MAX_RAW_KEY: usize = 1024;

/// The `Cache` port on DynamoDB through `T`. Cheap to clone when `T` is.
#[derive(Clone)]
pub struct DynamoCache<T> {
    /// The table the entries live in, as items.
    items: DynamoTable<T>,
}

impl<T> std::fmt::Debug for DynamoCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoCache")
            .field("table", &self.items.table)
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

impl<T: Transport> DynamoCache<T> {
    /// A cache in `table` (the same table as the `DynamoTable`; its keys start with `CACHE#`).
    pub fn new(transport: impl Into<T>, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            items: DynamoTable::new(transport, table, clock),
        }
    }
}

#[async_trait::async_trait]
impl<T: Transport> Cache for DynamoCache<T> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // Eventually consistent: a cache may serve a value a moment old, at half the cost.
        let out = self
            .items
            .transport
            .get_item(GetItemInput {
                table_name: self.items.table.clone(),
                key: key_attrs(&item_key(key)),
                consistent_read: false,
            })
            .await
            .map_err(|e| e.into_error("DynamoDB GetItem"))?;
        let Some(mut raw) = out.item else {
            return Ok(None);
        };
        let now_ms = self.items.clock.now_ms();
        match item::expires_at(&raw)? {
            Some(at) if at.saturating_mul(1000) <= now_ms => return Ok(None),
            _ => {}
        }
        match raw.remove(VALUE) {
            Some(AttributeValue::B(bytes)) => Ok(Some(bytes)),
            _ => Err(Error::internal("a cache entry has no binary value")),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let mut item = key_attrs(&item_key(key));
        item.insert(VALUE.to_owned(), AttributeValue::B(value));
        item.insert(
            EXPIRES_AT.to_owned(),
            AttributeValue::int(expiry_secs(self.items.clock.now_ms(), ttl)),
        );
        self.items
            .transport
            .put_item(PutItemInput {
                table_name: self.items.table.clone(),
                item,
                condition_expression: None,
                placeholders: Default::default(),
            })
            .await
            .map_err(|e| e.into_error("DynamoDB PutItem"))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.items
            .transport
            .delete_item(DeleteItemInput {
                table_name: self.items.table.clone(),
                key: key_attrs(&item_key(key)),
                condition_expression: None,
                placeholders: Default::default(),
            })
            .await
            .map_err(|e| e.into_error("DynamoDB DeleteItem"))
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
