//! The adapters of the embedded default, which needs no cloud and no API key: the `Table` and a
//! durable `Queue` on SQLite, the `BlobStore` on the filesystem, the `Cache` in memory, and the
//! offline `ImageModel` that draws deterministic procedural images.

pub mod blob;
pub mod cache;
pub mod consumer;
mod db;
pub mod offline;
pub mod queue;
pub mod system;
pub mod table;

pub use blob::FsBlobStore;
pub use cache::MemoryCache;
pub use consumer::{ConsumerHandle, ConsumerOptions, ConsumerProgress, spawn_consumer};
pub use queue::{QueueCounts, SqliteQueue};
pub use system::{SystemClock, UuidV7Ids};
pub use table::SqliteTable;
