//! Tenancy: who is calling and where a tenant's data lives, written once for every feature.
//!
//! - [`Caller`]: the authenticated user, organisation, team, role and scopes;
//! - [`Ports`]: the adapters an application runs on;
//! - [`items`]: records as `Table` items and the time stamps they carry;
//! - [`keys`]: where a tenant's records live in the `Table`;
//! - [`crypto`]: envelope encryption at rest (per-owner data keys under the runtime's KEKs);
//! - [`audit`]: the per-organisation hash chain every action is recorded in with its writes;
//! - [`error`]: the public face of an error (its code, HTTP status, safe message and details).

pub mod audit;
pub mod caller;
pub mod crypto;
pub mod error;
pub mod items;
pub mod keys;
pub mod ports;

pub use caller::Caller;
pub use ports::Ports;
