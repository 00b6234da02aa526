//! imagemcp's domain: the types and rules every runtime shares, and the ports (traits) that adapters
//! implement. This crate knows nothing of HTTP, AWS, Workers, SQLite or rmcp, performs no I/O and
//! compiles for `wasm32-unknown-unknown` as well as native targets.

pub mod blob;
pub mod bounded;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod embed;
pub mod error;
pub mod fetch;
pub mod ids;
pub mod image_params;
pub mod model;
pub mod modes;
pub mod money;
pub mod payments;
pub mod prompt;
pub mod queue;
pub mod quota;
pub mod rbac;
pub mod table;
pub mod tier;
pub mod timer;

#[cfg(feature = "contract")]
pub mod contract;

pub use error::{Error, Result};

/// `Send + Sync` on every target; every port trait has this as its supertrait. On wasm32 too: the
/// shared router is axum's, whose state and handler futures must be `Send`, so the Worker's adapters
/// wrap their JavaScript handles and futures in `worker::send` (sound there: an isolate runs one
/// thread). The name stays so the bound is spelled in one place.
pub trait MaybeSendSync: Send + Sync {}
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// Re-exported so adapters annotate their impls with the same `async_trait` the ports use.
pub use async_trait::async_trait;
