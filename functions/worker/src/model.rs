//! The image model on the Worker: OpenAI when `OPENAI_API_KEY` is set (the same adapter as every
//! runtime, speaking `fetch` on wasm32, its retries waiting on `setTimeout`); otherwise none, and
//! every model call says so (the offline procedural model, `imagemcp-offline`, is not built for the
//! Worker).

use std::sync::Arc;
use std::time::Duration;

use imagemcp_app::settings::OpenAiSettings;
use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Rendered,
};
use imagemcp_core::{Error, Result};
use imagemcp_openai::{OpenAiConfig, OpenAiModel, Sleeper};
use worker::send::SendFuture;

/// The model the Worker's settings ask for: OpenAI with a key, otherwise none.
pub(crate) fn configured(openai: Option<&OpenAiSettings>) -> Result<Arc<dyn ImageModel>> {
    let Some(openai) = openai else {
        return Ok(Arc::new(Unconfigured));
    };
    let config = OpenAiConfig::configured(
        openai.api_key.expose(),
        openai.base_url.as_deref(),
        &openai.image_model,
    )?;
    Ok(Arc::new(
        OpenAiModel::new(config)?.with_sleeper(Arc::new(DelaySleeper)),
    ))
}

/// The OpenAI adapter's retry waits on `setTimeout`.
#[derive(Debug)]
struct DelaySleeper;

#[async_trait::async_trait]
impl Sleeper for DelaySleeper {
    async fn sleep(&self, duration: Duration) {
        // A `Delay` holds a JavaScript closure (`!Send`); the isolate has one thread.
        SendFuture::new(worker::Delay::from(duration)).await;
    }
}

/// No model configured (see the module documentation).
struct Unconfigured;

fn unavailable() -> Error {
    Error::Unavailable(
        "no image model is configured on this Worker (set the OPENAI_API_KEY secret)".into(),
    )
}

#[async_trait::async_trait]
impl ImageModel for Unconfigured {
    fn default_model(&self) -> &str {
        imagemcp_core::catalog::DEFAULT_MODEL
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
