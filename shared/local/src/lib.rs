//! The adapters of the embedded default, which needs no cloud and no API key: the `Table` and a
//! durable `Queue` on SQLite, the `BlobStore` on the filesystem and the `Cache` in memory. (The
//! offline `ImageModel` is `imagemcp-offline`; the system clock and ids are `imagemcp-native`.)

pub mod blob;
pub mod cache;
pub mod consumer;
mod db;
pub mod queue;
pub mod table;

pub use blob::FsBlobStore;
pub use cache::MemoryCache;
pub use consumer::{ConsumerHandle, ConsumerOptions, ConsumerProgress, spawn_consumer};
pub use queue::{QueueCounts, SqliteQueue};
pub use table::SqliteTable;

/// Milliseconds in `d`, saturating rather than wrapping for absurd durations.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
