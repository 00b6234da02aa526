//! The application's services on one context, [`App`]: the ports, the validated configuration,
//! and the services built on them — images, billing, the engine, jobs, identity (sessions, tokens,
//! OAuth) — plus member and key management, one-time secret links, GDPR exports and erasure, and
//! the settings every runtime parses from `IMAGEMCP_*`.
//!
//! No protocol is known here: the MCP crate and the HTTP crate put their faces on these services,
//! and the runtimes build an `App` from their adapters.

pub mod audit;
pub mod auth;
pub mod config;
pub mod gdpr;
pub mod jobs;
pub mod manage;
pub mod reveal;
pub mod settings;
pub mod whoami;

pub use config::AppConfig;
pub use imagemcp_accounts as accounts;
pub use imagemcp_billing as billing;
pub use imagemcp_engine as engine;
pub use imagemcp_identity::{self as identity, oauth, sessions};
pub use imagemcp_images::{self as images, imaging};
pub use imagemcp_tenancy::{crypto, error, ports};
pub use ports::Ports;

use std::sync::Arc;

/// The application: ports plus validated configuration. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub ports: Ports,
    pub config: Arc<AppConfig>,
    /// The generation engine's per-instance state (breakers, back-off, rate limits).
    pub engine: Arc<engine::Engine>,
    /// Plans, quotas and Stripe, on the same ports.
    pub billing: billing::Billing,
    /// What the image service runs on (the same ports, billing and engine; see [`App::images`]).
    pub images: images::Images,
    /// Sessions, tokens and the OAuth server, on the same ports.
    pub identity: identity::Identity,
}

impl App {
    /// The application with the default engine: the runtime's model is wrapped in the engine's
    /// resilience decorator here, once, so every runtime gets it.
    pub fn new(ports: Ports, config: AppConfig) -> Self {
        let engine = engine::Engine::default_for(&ports);
        Self::with_engine(ports, config, engine)
    }

    /// The application with a given engine (tests inject a manual timer and tight limits).
    pub fn with_engine(mut ports: Ports, config: AppConfig, engine: engine::Engine) -> Self {
        let engine = Arc::new(engine);
        ports.model = Arc::new(engine::resilient::Resilient::new(
            ports.model,
            engine.clone(),
        ));
        let billing = billing::Billing::new(
            ports.clone(),
            billing::Settings {
                stripe: config.billing.clone(),
                public_url: config.public_url.clone(),
                cost_confirmation_cents: config.cost_confirmation_cents,
            },
        );
        let images = images::Images {
            ports: ports.clone(),
            billing: billing.clone(),
            engine: engine.clone(),
            settings: images::ImageSettings {
                download_url_ttl: config.download_url_ttl,
                preview_max_edge: config.preview_max_edge,
                max_upload_bytes: config.max_upload_bytes,
            },
        };
        let identity = identity::Identity {
            ports: ports.clone(),
            config: Arc::new(identity::IdentityConfig {
                public_url: config.public_url.clone(),
                token_keys: config.token_keys.clone(),
                client_metadata: config.client_metadata.clone(),
            }),
        };
        Self {
            ports,
            config: Arc::new(config),
            engine,
            billing,
            images,
            identity,
        }
    }

    /// The image service.
    pub fn images(&self) -> images::ImageService<'_> {
        self.images.service()
    }

    pub fn keys(&self) -> auth::ApiKeys<'_> {
        auth::ApiKeys::new(&self.ports)
    }

    pub fn sessions(&self) -> sessions::Sessions<'_> {
        sessions::Sessions::new(&self.identity)
    }

    pub fn accounts(&self) -> accounts::Accounts<'_> {
        accounts::Accounts::new(&self.ports)
    }

    /// The job store and consumer on this application's ports, billing and engine.
    pub fn jobs(&self) -> jobs::Jobs<'_> {
        self.images.jobs()
    }

    /// The generation cache on this application's ports.
    pub fn generation_cache(&self) -> engine::cache::Cx<'_> {
        self.engine.cache(&self.ports)
    }

    /// The audit log's reading side (view, verify, export).
    pub fn audit_log(&self) -> accounts::audit_log::AuditLog<'_> {
        accounts::audit_log::AuditLog::new(&self.ports, self.config.download_url_ttl)
    }
}
