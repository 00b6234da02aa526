//! Who a request is: browser sign-in sessions, JWT access and refresh tokens (`sessions`), and the
//! OAuth 2.1 authorization server's logic (`oauth`: registered clients, Client ID Metadata
//! Documents through the runtime's guarded fetcher, authorization codes with PKCE). The pages and
//! endpoints that put a face on it are the HTTP crate's; API keys are `imagemcp_accounts::keys`.
//!
//! Runs on an [`Identity`] context (the ports and what identity is configured with), never on the
//! whole application.

pub mod oauth;
pub mod sessions;

use std::sync::Arc;

use imagemcp_tenancy::Ports;

// The names the modules use for the crates below.
use imagemcp_accounts as accounts;
use imagemcp_accounts::keys as auth;
use imagemcp_tenancy::audit;

/// Identity's context: the ports and its settings. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    pub ports: Ports,
    pub config: Arc<IdentityConfig>,
}

/// What identity is configured with.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// The public base URL of this deployment: the issuer of its tokens and their audience's base.
    pub public_url: String,
    /// The keys that sign and verify access tokens. Without them the server issues no tokens and
    /// accepts only API keys (the OAuth endpoints answer 503).
    pub token_keys: Option<Arc<sessions::KeySet>>,
    /// Client ID Metadata Documents: the runtime's guarded fetcher (and the test allow-list).
    /// `None` turns the feature off (URL client ids are then unknown clients).
    pub client_metadata: Option<oauth::cimd::CimdConfig>,
}
