//! `KvCache`: the `Cache` port on a Workers KV namespace.
//!
//! Each entry carries its expiry (milliseconds on the injected clock) in KV's metadata, and reads
//! compare it with the clock, so an entry lives exactly its TTL; KV's own `expirationTtl` (at least
//! 60 seconds, KV's minimum) only collects it afterwards. KV keys are at most 512 bytes: longer
//! cache keys are replaced by their SHA-256. KV is eventually consistent across locations (a write is visible elsewhere within about
//! 60 s), which suits a cache and nothing else: every fact that needs atomicity is in the `Table`.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::cache::Cache;
use imagemcp_core::clock::Clock;
use imagemcp_core::{Error, Result};
use sha2::{Digest, Sha256};
use worker::send::SendFuture;

/// KV's shortest TTL.
pub const MIN_TTL: Duration = Duration::from_secs(60);

/// Keys up to this many bytes are used as they are (KV's limit is 512).
const MAX_RAW_KEY: usize = 480;

/// The `Cache` port on a KV namespace binding.
pub struct KvCache {
    kv: worker::KvStore,
    clock: Arc<dyn Clock>,
}

impl KvCache {
    pub fn new(kv: worker::KvStore, clock: Arc<dyn Clock>) -> Self {
        Self { kv, clock }
    }
}

/// An entry's metadata.
#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    expires_at_ms: i64,
}

/// The KV key of a cache key.
pub fn kv_key(key: &str) -> String {
    if key.len() <= MAX_RAW_KEY {
        key.to_owned()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
    }
}

fn kv_error(op: &str, e: worker::KvError) -> Error {
    Error::Unavailable(format!("KV {op} failed: {e}"))
}

#[async_trait::async_trait]
impl Cache for KvCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = kv_key(key);
        let (bytes, meta) =
            SendFuture::new(async { self.kv.get(&key).bytes_with_metadata::<Meta>().await })
                .await
                .map_err(|e| kv_error("get", e))?;
        // An entry without metadata was not written by this adapter: treat it as absent.
        match meta {
            Some(meta) if meta.expires_at_ms > self.clock.now_ms() => Ok(bytes),
            _ => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let key = kv_key(key);
        let meta = Meta {
            expires_at_ms: self
                .clock
                .now_ms()
                .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        };
        let ttl = ttl.max(MIN_TTL);
        // Whole seconds, rounded up, so an entry never expires before its TTL.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        SendFuture::new(async {
            self.kv
                .put_bytes(&key, &value)?
                .metadata(meta)?
                .expiration_ttl(secs)
                .execute()
                .await
        })
        .await
        .map_err(|e| kv_error("put", e))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = kv_key(key);
        SendFuture::new(async { self.kv.delete(&key).await })
            .await
            .map_err(|e| kv_error("delete", e))
    }
}
