//! The imagemcp application as the runtimes see it: build an [`App`] from [`Ports`] and an
//! [`AppConfig`], and serve [`router`] (or, where axum does not fit, hand `/mcp` requests to
//! [`mcp::handle`] and queue batches to [`jobs::consume`]).
//!
//! A façade and nothing more: every concern lives in its own crate below (see ARCHITECTURE.md's
//! code map) — the services on one context in `imagemcp-service`, the MCP surface in
//! `imagemcp-mcp`, the HTTP routes and pages in `imagemcp-http` — and is re-exported here under
//! the names the runtimes use. Nothing here knows which runtime it is on.

#[cfg(feature = "testing")]
pub mod testing;

pub use imagemcp_http::{self as routes, router};
pub use imagemcp_mcp as mcp;
pub use imagemcp_service::{
    App, AppConfig, Ports, accounts, audit, auth, billing, config, crypto, engine, error, gdpr,
    images, imaging, jobs, manage, oauth, ports, reveal, sessions, settings, whoami,
};
