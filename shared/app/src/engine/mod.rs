//! The generation engine: what makes generation fast, cheap and well-behaved under load. Resilience
//! (a circuit breaker per model endpoint, a 429 back-off shared by the instance, timeouts) as a
//! decorator of the `ImageModel` port, rate limits per organisation and key by tier, and modes with
//! time and cost budgets. The image service calls in through small hooks; the state here is per
//! instance and shared by every request.

pub mod backoff;
pub mod breaker;
pub mod campaign;
pub mod limits;
pub mod modes;
pub mod resilient;
pub mod timer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagemcp_core::clock::Clock;
use imagemcp_core::{Error, Result};

use crate::App;
use crate::auth::Caller;
use backoff::Backoff;
use breaker::{Breaker, BreakerConfig, BreakerState};
use limits::{Limiter, RateLimits};
use modes::Mode;
use timer::Timer;

/// The engine's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub breaker: BreakerConfig,
    /// The longest one image call (generate, edit) may take when no mode says less.
    pub image_timeout: Duration,
    /// The longest a moderation or description may take.
    pub text_timeout: Duration,
    /// Token buckets per org and per key, by tier.
    pub rate_limits: RateLimits,
}

impl EngineConfig {
    /// Breaker [`BreakerConfig::DEFAULT`], 180 s per image call, 60 s per text call.
    pub const DEFAULT: EngineConfig = EngineConfig {
        breaker: BreakerConfig::DEFAULT,
        image_timeout: Duration::from_secs(180),
        text_timeout: Duration::from_secs(60),
        rate_limits: RateLimits::DEFAULT,
    };
}

/// The per-instance state of the engine.
pub struct Engine {
    pub config: EngineConfig,
    clock: Arc<dyn Clock>,
    timer: Arc<dyn Timer>,
    breakers: Mutex<HashMap<String, Breaker>>,
    backoffs: Mutex<HashMap<String, Backoff>>,
    limiter: Mutex<Limiter>,
}

fn poisoned() -> Error {
    Error::internal("engine state lock poisoned")
}

impl Engine {
    pub fn new(config: EngineConfig, clock: Arc<dyn Clock>, timer: Arc<dyn Timer>) -> Self {
        Self {
            config,
            clock,
            timer,
            breakers: Mutex::default(),
            backoffs: Mutex::default(),
            limiter: Mutex::default(),
        }
    }

    /// The engine a runtime gets by default: tokio's timer on native targets, none on wasm32
    /// (the Worker injects its own).
    pub fn default_for(clock: Arc<dyn Clock>) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let timer: Arc<dyn Timer> = Arc::new(timer::TokioTimer);
        #[cfg(target_arch = "wasm32")]
        let timer: Arc<dyn Timer> = Arc::new(timer::NoTimer);
        Self::new(EngineConfig::DEFAULT, clock, timer)
    }

    /// The state of an endpoint's circuit (`<model>/generate`, `<model>/edit`, `moderations`…).
    pub fn breaker_state(&self, endpoint: &str) -> BreakerState {
        let now = self.clock.now_ms();
        self.breakers
            .lock()
            .ok()
            .and_then(|b| b.get(endpoint).map(|b| b.state(now)))
            .unwrap_or(BreakerState::Closed)
    }

    /// Refuses a call while its model is backed off or its endpoint's circuit is open.
    fn admit_call(&self, endpoint: &str, model: &str) -> Result<()> {
        let now = self.clock.now_ms();
        if let Some(b) = self.backoffs.lock().map_err(|_| poisoned())?.get(model)
            && let Err(wait) = b.admit(now)
        {
            tracing::info!(
                model,
                retry_after_ms = wait.as_millis() as u64,
                "model backed off: call refused"
            );
            return Err(Error::RateLimited { retry_after: wait });
        }
        let mut breakers = self.breakers.lock().map_err(|_| poisoned())?;
        let breaker = breakers
            .entry(endpoint.to_owned())
            .or_insert_with(|| Breaker::new(self.config.breaker));
        if let Err(wait) = breaker.admit(now) {
            tracing::warn!(
                endpoint,
                retry_after_ms = wait.as_millis() as u64,
                "circuit open: call refused"
            );
            return Err(Error::RateLimited { retry_after: wait });
        }
        Ok(())
    }

    /// Feeds a call's outcome to the breaker and the back-off; a 429's wait becomes the imposed one.
    fn record_outcome<T>(&self, endpoint: &str, model: &str, result: Result<T>) -> Result<T> {
        let now = self.clock.now_ms();
        let mut breakers = self.breakers.lock().map_err(|_| poisoned())?;
        let breaker = breakers
            .entry(endpoint.to_owned())
            .or_insert_with(|| Breaker::new(self.config.breaker));
        match result {
            Ok(v) => {
                breaker.success();
                if let Some(b) = self.backoffs.lock().map_err(|_| poisoned())?.get_mut(model) {
                    b.success();
                }
                Ok(v)
            }
            Err(Error::RateLimited { retry_after }) => {
                // A 429 is the provider pacing us, not the endpoint failing.
                breaker.success();
                let wait = self
                    .backoffs
                    .lock()
                    .map_err(|_| poisoned())?
                    .entry(model.to_owned())
                    .or_default()
                    .rate_limited(now, retry_after);
                tracing::warn!(
                    model,
                    wait_ms = wait.as_millis() as u64,
                    "model rate limited: backing off"
                );
                Err(Error::RateLimited { retry_after: wait })
            }
            Err(e) if resilient::is_endpoint_failure(&e) => {
                breaker.failure(now);
                if breaker.state(now) == BreakerState::Open {
                    tracing::error!(endpoint, error = %e, "circuit opened");
                }
                Err(e)
            }
            Err(e) => {
                breaker.success();
                Err(e)
            }
        }
    }
}

// ---- Hooks called by the image service. ----

/// Admits a request of `images` renders: the mode's cost budget (when a mode is given) and the
/// org's and key's rate limits. Nothing is called or spent when it refuses.
pub async fn admit(
    app: &App,
    caller: &Caller,
    mode: Option<Mode>,
    spec: &imagemcp_core::catalog::ModelSpec,
    params: &imagemcp_core::catalog::RenderParams,
    images: u32,
) -> Result<()> {
    if let Some(mode) = mode {
        mode.check_budget(spec, params, images)?;
    }
    let plan = crate::billing::plan::load(app, &caller.org).await?;
    let tier = plan.effective_tier(app.ports.clock.now_secs());
    let (org, key) = app.engine.config.rate_limits.of(tier);
    let buckets = [
        (format!("org:{}", caller.org), org),
        (format!("key:{}", caller.credential), key),
    ];
    let now = app.engine.clock.now_ms();
    let taken = app
        .engine
        .limiter
        .lock()
        .map_err(|_| poisoned())?
        .take(&buckets, images, now);
    if let Err(Error::RateLimited { retry_after }) = &taken {
        tracing::info!(org = %caller.org, retry_after_ms = retry_after.as_millis() as u64, "rate limit: request refused");
    }
    taken
}

/// Runs the model calls of a request within its mode's time limit.
pub async fn within_mode<T>(
    app: &App,
    mode: Option<Mode>,
    fut: impl Future<Output = T>,
) -> Result<T> {
    let Some(mode) = mode else {
        return Ok(fut.await);
    };
    let limit = mode.timeout();
    timer::within(app.engine.timer.as_ref(), limit, mode.as_str(), async {
        Ok(fut.await)
    })
    .await
}

/// Parses an optional `mode` argument.
pub fn parse_mode(mode: Option<&str>) -> Result<Option<Mode>> {
    mode.map(Mode::parse).transpose()
}
