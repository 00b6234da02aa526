//! The DynamoDB item mapping, written once and free of any SDK: the `Table` and `Cache` ports on
//! one DynamoDB table (single-table design) over a [`Transport`], which the AWS SDK implements
//! natively (`imagemcp-aws`) and the Worker's signed `fetch` on wasm32 (`imagemcp-worker`).
//!
//! This crate owns everything both share: the item layout (`pk`/`sk`, JSON attributes as top-level
//! attributes with reserved names escaped, the `expires_at` TTL attribute; [`item`]), the exact
//! JSON ↔ attribute-value mapping ([`value`]), condition and update expressions evaluated against
//! the clock, the planning of adds and transactions, query paging, and the mapping of DynamoDB's
//! errors to the core `Error` ([`error`]). A transport only moves the neutral requests of
//! [`transport`] and reports failures as [`DynamoError`]s.

mod cache;
pub mod error;
mod expr;
pub mod item;
pub mod json;
#[cfg(test)]
mod scripted;
mod table;
pub mod transport;
pub mod value;

pub use cache::DynamoCache;
pub use error::{DynamoError, ServiceError};
pub use item::{EXPIRES_AT, PK, SK};
pub use table::DynamoTable;
pub use transport::Transport;
pub use value::{AttributeValue, Attributes};
