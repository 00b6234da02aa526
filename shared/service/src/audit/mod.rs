//! The audit log: the chain and its commits (`imagemcp_tenancy::audit`) and its reading side
//! (`imagemcp_accounts::audit_log`, which names the organisation's members).

pub use imagemcp_accounts::audit_log as read;
pub use imagemcp_tenancy::audit::*;
