//! The Cloudflare Workers runtime: `fetch` events go to the shared router, `queue` batches to the
//! shared batch consumer. Only adapters and wiring live here: KV for the `Cache`, a Queue binding
//! for the `Queue`, DynamoDB and S3 over `fetch` with SigV4 for the `Table` and `BlobStore`, and
//! JavaScript's clock, random source and timers.
//!
//! Configuration is the Worker's bindings (see `wrangler.toml` and `docs/deploy-cloudflare.md`):
//! vars and secrets, read by [`settings`] (every variable in `docs/settings.md`); the KV namespace
//! `CACHE` and the queue producer `JOBS`.
//!
//! Everything but [`settings`] lives behind wasm32: natively the crate is that pure module alone
//! (built and tested on the host), so `cargo build --workspace` never links wasm-bindgen imports.

pub mod settings;

#[cfg(target_arch = "wasm32")]
pub mod aws;
#[cfg(target_arch = "wasm32")]
mod cimd;
#[cfg(all(target_arch = "wasm32", feature = "contract"))]
mod contract;
#[cfg(target_arch = "wasm32")]
pub mod dynamo;
#[cfg(target_arch = "wasm32")]
pub mod kv;
#[cfg(target_arch = "wasm32")]
mod model;
#[cfg(target_arch = "wasm32")]
pub mod platform;
#[cfg(target_arch = "wasm32")]
pub mod queue;
// Public because its `queue` export must be: wasm-bindgen exports it to the JavaScript shim.
#[cfg(target_arch = "wasm32")]
pub mod runtime;
#[cfg(target_arch = "wasm32")]
pub mod s3;
