//! The resilience decorator around the `ImageModel` port: every call passes the model's shared
//! 429 back-off and its endpoint's circuit breaker, and is timed out; its outcome feeds both.
//! `App::new` wraps the runtime's model in it, so every runtime gets the same behaviour.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Rendered,
};
use imagemcp_core::{Error, Result};

use crate::Engine;
use imagemcp_core::timer::within;

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
        let probe = engine.admit_call(endpoint, model)?;
        let mut pending = Pending {
            engine,
            endpoint,
            probe,
        };
        let result = within(engine.timer.as_ref(), timeout, endpoint, call).await;
        pending.probe = false;
        engine.record_outcome(endpoint, model, result)
    }
}

/// A call under way. Dropped before its outcome (a caller that stops waiting: a client gone, a
/// cache lookup answered by its exact tier), a half-open probe gives its turn to the next call
/// rather than leave the circuit waiting for an answer that will never come.
struct Pending<'a> {
    engine: &'a Engine,
    endpoint: &'a str,
    probe: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.engine.probe_abandoned(self.endpoint);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerState;
    use crate::{EngineConfig, breaker::BreakerConfig};
    use imagemcp_core::clock::ManualClock;
    use imagemcp_core::timer::ManualTimer;

    /// A model whose moderation never answers.
    struct Silent;

    #[async_trait::async_trait]
    impl ImageModel for Silent {
        fn default_model(&self) -> &str {
            "offline"
        }
        async fn generate(&self, _: GenerateRequest) -> Result<Rendered> {
            Err(Error::Unavailable("silent".into()))
        }
        async fn edit(&self, _: EditRequest) -> Result<Rendered> {
            Err(Error::Unavailable("silent".into()))
        }
        async fn moderate(&self, _: &str) -> Result<Moderation> {
            std::future::pending().await
        }
        async fn describe(&self, _: &InputImage) -> Result<String> {
            Err(Error::Unavailable("silent".into()))
        }
    }

    #[tokio::test]
    async fn a_dropped_probe_does_not_hold_the_circuit_half_open() {
        let clock = Arc::new(ManualClock::new(0));
        let config = EngineConfig {
            breaker: BreakerConfig {
                failures: 1,
                window: Duration::from_secs(60),
                open_for: Duration::from_secs(30),
            },
            ..EngineConfig::DEFAULT
        };
        let engine = Arc::new(Engine::new(
            config,
            clock.clone(),
            Arc::new(ManualTimer::new(clock.clone())),
        ));
        let model = Resilient::new(Arc::new(Silent), engine.clone());
        let failed: Result<()> = Err(Error::Unavailable("down".into()));
        let _ = engine.record_outcome("moderations", "moderations", failed);
        assert_eq!(engine.breaker_state("moderations"), BreakerState::Open);
        clock.advance_ms(30_000);
        {
            // The probe goes out, and its caller stops waiting for it.
            let mut probe = Box::pin(model.moderate("a lighthouse"));
            assert!(futures::poll!(probe.as_mut()).is_pending());
        }
        assert!(
            engine.admit_call("moderations", "moderations").is_ok(),
            "the next call probes"
        );
    }
}
