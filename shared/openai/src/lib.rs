//! The OpenAI adapter: implements `imagemcp_core::model::ImageModel` over OpenAI's Images,
//! Responses and Moderations APIs with reqwest, mapping every OpenAI error into
//! `imagemcp_core::Error`, retrying what the SDKs retry, and never printing the API key.
//!
//! ```no_run
//! # fn demo() -> imagemcp_core::Result<()> {
//! use imagemcp_openai::{ApiKey, OpenAiConfig, OpenAiModel};
//! let mut config = OpenAiConfig::new(ApiKey::new("sk-…")?);
//! config.base_url = "http://127.0.0.1:8080/v1".into(); // e.g. from OPENAI_BASE_URL
//! let model = OpenAiModel::new(config)?;
//! # let _ = model; Ok(()) }
//! ```

mod config;
mod failure;
mod model;
mod retry;
mod transport;
mod wire;

pub use config::{
    ApiKey, DEFAULT_BASE_URL, DEFAULT_IMAGE_TIMEOUT, DEFAULT_MAINLINE_MODEL, DEFAULT_TEXT_TIMEOUT,
    DEFAULT_VISION_MODEL, MODERATION_MODEL, OpenAiConfig, RetryPolicy,
};
pub use model::OpenAiModel;
pub use retry::Sleeper;
#[cfg(not(target_arch = "wasm32"))]
pub use retry::TokioSleeper;
