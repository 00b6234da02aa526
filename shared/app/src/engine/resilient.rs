//! The resilience decorator around the `ImageModel` port: every call passes the model's shared
//! 429 back-off and its endpoint's circuit breaker, and is timed out; its outcome feeds both.
//! `App::new` wraps the runtime's model in it, so every runtime gets the same behaviour.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Rendered,
};
use imagemcp_core::{Error, Result};

use super::Engine;
use super::timer::within;

/// An `ImageModel` that refuses calls while the provider is backing us off or an endpoint's
/// circuit is open, instead of adding to the pile.
pub struct Resilient {
    inner: Arc<dyn ImageModel>,
    engine: Arc<Engine>,
}

impl Resilient {
    pub fn new(inner: Arc<dyn ImageModel>, engine: Arc<Engine>) -> Self {
        Self { inner, engine }
    }

    async fn guarded<T>(
        &self,
        endpoint: &str,
        model: &str,
        timeout: Duration,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let engine = &self.engine;
        engine.admit_call(endpoint, model)?;
        let result = within(engine.timer.as_ref(), timeout, endpoint, call).await;
        engine.record_outcome(endpoint, model, result)
    }
}

#[async_trait::async_trait]
impl ImageModel for Resilient {
    fn default_model(&self) -> &str {
        self.inner.default_model()
    }

    async fn generate(&self, req: GenerateRequest) -> Result<Rendered> {
        let model = req.model.clone();
        let endpoint = format!("{model}/generate");
        let timeout = self.engine.config.image_timeout;
        self.guarded(&endpoint, &model, timeout, self.inner.generate(req))
            .await
    }

    async fn edit(&self, req: EditRequest) -> Result<Rendered> {
        let model = req.model.clone();
        let endpoint = format!("{model}/edit");
        let timeout = self.engine.config.image_timeout;
        self.guarded(&endpoint, &model, timeout, self.inner.edit(req))
            .await
    }

    async fn moderate(&self, text: &str) -> Result<Moderation> {
        let timeout = self.engine.config.text_timeout;
        self.guarded(
            "moderations",
            "moderations",
            timeout,
            self.inner.moderate(text),
        )
        .await
    }

    async fn describe(&self, image: &InputImage) -> Result<String> {
        let timeout = self.engine.config.text_timeout;
        self.guarded("describe", "describe", timeout, self.inner.describe(image))
            .await
    }

    async fn embed(&self, text: &str) -> Result<imagemcp_core::embed::Embedding> {
        let timeout = self.engine.config.text_timeout;
        self.guarded("embeddings", "embeddings", timeout, self.inner.embed(text))
            .await
    }
}

/// Whether an error says the endpoint itself is failing (rather than refusing this request).
pub(super) fn is_endpoint_failure(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_) | Error::Internal(_))
}
