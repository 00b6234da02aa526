//! The audit log: the chain and its commits live in tenancy (`imagemcp_tenancy::audit`); here is its
//! reading side, which names the organisation's members.

pub use imagemcp_tenancy::audit::*;

pub mod read;
