//! The application's configuration, validated once by the runtime that builds it.

use std::sync::Arc;
use std::time::Duration;

use crate::sessions::KeySet;

/// Settings every runtime shares. Built by each `main` from its environment; there is deliberately
/// no `Default`, so a runtime states every choice.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The public base URL of this deployment (`http://127.0.0.1:8787`), used in links and metadata.
    pub public_url: String,
    /// Origins (scheme://host[:port]) allowed to call `/mcp` from a browser, besides this server's own.
    pub allowed_origins: Vec<String>,
    /// How long signed download URLs stay valid.
    pub download_url_ttl: Duration,
    /// The longest edge of the preview returned inline in MCP results, in pixels.
    pub preview_max_edge: u32,
    /// The largest accepted upload (decoded), in bytes.
    pub max_upload_bytes: usize,
    /// How long a handshake-era MCP session lives without use.
    pub mcp_session_ttl: Duration,
    /// The keys that sign and verify access tokens. Without them the server issues no tokens and
    /// accepts only API keys (the OAuth endpoints answer 503).
    pub token_keys: Option<Arc<KeySet>>,
    /// Billing with Stripe; `None` is billing off (every org on the unlimited `local` plan, see
    /// [`crate::billing`]).
    pub billing: Option<Arc<crate::billing::BillingConfig>>,
    /// The default cost above which a generating MCP tool asks before spending, in cents (users
    /// and organisations may set their own; see [`crate::billing::confirmation`]).
    pub cost_confirmation_cents: u64,
    /// Client ID Metadata Documents: the runtime's guarded fetcher (and the test allow-list).
    /// `None` turns the feature off (URL client ids are then unknown clients).
    pub client_metadata: Option<crate::oauth::cimd::CimdConfig>,
}

impl AppConfig {
    /// The settings of a local install serving at `public_url`.
    pub fn local(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            allowed_origins: Vec::new(),
            download_url_ttl: Duration::from_secs(3600),
            preview_max_edge: 512,
            max_upload_bytes: 25 * 1024 * 1024,
            mcp_session_ttl: Duration::from_secs(24 * 3600),
            token_keys: None,
            billing: None,
            cost_confirmation_cents: crate::billing::confirmation::DEFAULT_THRESHOLD_CENTS,
            client_metadata: None,
        }
    }
}
