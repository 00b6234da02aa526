//! imagemcp's domain: the types and rules every runtime shares, and the ports (traits) that adapters
//! implement. This crate knows nothing of HTTP, AWS, Workers, SQLite or rmcp, performs no I/O and
//! compiles for `wasm32-unknown-unknown` as well as native targets.

pub mod blob;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod embed;
pub mod error;
pub mod ids;
pub mod image_params;
pub mod model;
pub mod money;
pub mod payments;
pub mod prompt;
pub mod queue;
pub mod quota;
pub mod rbac;
pub mod table;
pub mod tier;

#[cfg(feature = "contract")]
pub mod contract;

pub use error::{Error, Result};

/// `Send + Sync` on native targets, where the adapters are shared across the threads of a
/// multi-threaded runtime; nothing on wasm32, where a Worker is single-threaded and its futures and
/// handles are `!Send`. Every port trait has this as its supertrait.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// See the native definition: on wasm32 the ports carry no thread-safety bound.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// Re-exported so adapters annotate their impls with the same `async_trait` the ports use.
pub use async_trait::async_trait;
