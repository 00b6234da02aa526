//! The port contract suites: one behaviour suite per port, written once and run by every adapter
//! (SQLite and the filesystem here, DynamoDB/S3/SQS against the AWS emulator, Workers KV inside
//! workerd), so that every adapter gives the domain the same guarantees.
//!
//! Each suite is a plain `async fn` generic over the adapter; it needs no runtime, so the adapter
//! crate's own test drives it (`#[tokio::test]` natively, the Worker's test harness on wasm32):
//!
//! ```text
//! #[tokio::test]
//! async fn sqlite_table_meets_the_contract() {
//!     contract::table_suite(async |clock| SqliteTable::open_in_memory(clock).unwrap()).await;
//! }
//! ```
//!
//! The suites call `make` once per check, with a fresh [`ManualClock`] starting at [`START_MS`].
//! Isolation: the checks of one suite touch disjoint keys (each Table check has its own partitions,
//! `T#<check>`; blob and cache checks their own keys), so one shared DynamoDB table, bucket or KV
//! namespace can serve a whole suite run, provided it starts without those keys (reset the emulator
//! first, or give each run its own table/bucket). Queues must be empty: give each `make` call its
//! own queue. Time only moves when a check advances the clock, so adapters must read time from the
//! `Clock` they were given (TTL, visibility, delays), never from the system. A broken promise
//! panics with a message that names the port, the check and what was expected.

mod blob;
mod cache;
mod queue;
mod quota;
mod table;

pub use blob::blob_store_suite;
pub use cache::cache_suite;
pub use queue::pull_queue_suite;
pub use quota::quota_suite;
pub use table::table_suite;

/// Where every check's clock starts: 2027-01-15, a plausible "now" (ms since the Unix epoch).
pub const START_MS: i64 = 1_800_000_000_000;

/// Whether a result is the `Conflict` a failed condition must give.
fn is_conflict<T>(r: &crate::Result<T>) -> bool {
    matches!(r, Err(crate::Error::Conflict(_)))
}

/// Whether a result is an `Invalid` rejection of the input.
fn is_invalid<T>(r: &crate::Result<T>) -> bool {
    matches!(r, Err(crate::Error::Invalid { .. }))
}

/// Unwraps a port call, panicking with the check's context when the adapter failed.
#[track_caller]
fn ok<T>(r: crate::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: the call failed: {e}"),
    }
}
