//! The image model on the Worker.
//!
//! `imagemcp-openai` is built on reqwest and tokio's timer and reads `std::time::Instant`, which
//! panics on wasm32-unknown-unknown; until it gains a wasm32 transport, the Worker has no model
//! and says so: every model call fails with `Unavailable` naming the missing piece, and nothing
//! is charged or written (the app validates and reserves only around a successful call).

use std::sync::Arc;

use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Rendered,
};
use imagemcp_core::{Error, Result};

/// The model the Worker's settings ask for.
pub(crate) fn from_env(_var: impl Fn(&str) -> Option<String>) -> Result<Arc<dyn ImageModel>> {
    Ok(Arc::new(Unconfigured))
}

/// No model on this runtime yet (see the module documentation).
struct Unconfigured;

fn unavailable() -> Error {
    Error::Unavailable(
        "image generation is not available on the Cloudflare Worker runtime yet".into(),
    )
}

#[async_trait::async_trait]
impl ImageModel for Unconfigured {
    fn default_model(&self) -> &str {
        "gpt-image-2"
    }

    async fn generate(&self, _req: GenerateRequest) -> Result<Rendered> {
        Err(unavailable())
    }

    async fn edit(&self, _req: EditRequest) -> Result<Rendered> {
        Err(unavailable())
    }

    async fn moderate(&self, _text: &str) -> Result<Moderation> {
        Err(unavailable())
    }

    async fn describe(&self, _image: &InputImage) -> Result<String> {
        Err(unavailable())
    }
}
