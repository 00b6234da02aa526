//! API keys (`imagemcp_accounts::keys`) and the authenticated caller (`imagemcp_tenancy::Caller`),
//! under the name the services and routes use.

pub use imagemcp_accounts::keys::*;
