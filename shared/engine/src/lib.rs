//! The generation engine: what makes generation fast, cheap and well-behaved under load. Resilience
//! (a circuit breaker per model endpoint, a 429 back-off shared by the instance, timeouts) as a
//! decorator of the `ImageModel` port, rate limits per organisation and key by tier, and modes with
//! time and cost budgets, the three-tier generation cache (`cache`), concurrency per organisation
//! and metrics. The image service calls in through a few methods of [`Engine`], with the ports and
//! the caller's tier; the state here is per instance and shared by every request. It knows nothing
//! of plans or images: the caller brings the tier, and the cache keeps ids that the caller turns
//! back into its results.

pub mod backoff;
pub mod breaker;
pub mod cache;
pub mod limits;
pub mod metrics;
pub use imagemcp_core::modes;
pub mod resilient;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagemcp_core::clock::Clock;
use imagemcp_core::{Error, Result};

use backoff::Backoff;
use breaker::{Breaker, BreakerConfig, BreakerState};
use imagemcp_core::ids::OrgId;
use imagemcp_core::tier::Tier;
use imagemcp_core::timer::{self, Timer};
use imagemcp_tenancy::{Caller, Ports};
use limits::{Limiter, RateLimits};
use modes::Mode;

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
    /// The generation cache.
    pub cache: cache::CacheConfig,
    /// How many renders (variations, batch items) of one organisation run at once, by tier.
    pub concurrency: Concurrency,
}

/// Renders in flight per organisation, by tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    pub free: usize,
    pub pro: usize,
    pub team: usize,
    pub local: usize,
}

impl Concurrency {
    /// Free 2, Pro 4, Team and local 8.
    pub const DEFAULT: Concurrency = Concurrency {
        free: 2,
        pro: 4,
        team: 8,
        local: 8,
    };

    pub fn of(&self, tier: imagemcp_core::tier::Tier) -> usize {
        use imagemcp_core::tier::Tier;
        match tier {
            Tier::Free => self.free,
            Tier::Pro => self.pro,
            Tier::Team => self.team,
            _ => self.local,
        }
        .max(1)
    }
}

impl EngineConfig {
    /// Breaker [`BreakerConfig::DEFAULT`], 180 s per image call, 60 s per text call.
    pub const DEFAULT: EngineConfig = EngineConfig {
        breaker: BreakerConfig::DEFAULT,
        image_timeout: Duration::from_secs(180),
        text_timeout: Duration::from_secs(60),
        rate_limits: RateLimits::DEFAULT,
        cache: cache::CacheConfig::DEFAULT,
        concurrency: Concurrency::DEFAULT,
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
    /// The cache's L1 tier.
    cache_memory: Mutex<cache::Memory>,
    metrics: Mutex<metrics::Metrics>,
    /// Render slots per organisation (its concurrency, and the semaphore holding it).
    render_slots: Mutex<HashMap<String, (usize, Arc<tokio::sync::Semaphore>)>>,
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
            cache_memory: Mutex::new(cache::Memory::new(
                config.cache.l1_capacity,
                config.cache.l1_max_bytes,
            )),
            metrics: Mutex::default(),
            render_slots: Mutex::default(),
        }
    }

    /// The timer the engine waits on (also used by waits outside the engine, such as a
    /// handshake-era confirmation polling for its answer).
    pub fn timer(&self) -> &dyn Timer {
        self.timer.as_ref()
    }

    /// The engine a runtime gets by default: the default limits on the runtime's clock and timer.
    pub fn default_for(ports: &imagemcp_tenancy::Ports) -> Self {
        Self::new(
            EngineConfig::DEFAULT,
            ports.clock.clone(),
            ports.timer.clone(),
        )
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

    /// Refuses a call while its model is backed off or its endpoint's circuit is open; `Ok(true)`
    /// when the call goes as its endpoint's half-open probe.
    fn admit_call(&self, endpoint: &str, model: &str) -> Result<bool> {
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
        breaker.admit(now).map_err(|wait| {
            tracing::warn!(
                endpoint,
                retry_after_ms = wait.as_millis() as u64,
                "circuit open: call refused"
            );
            Error::RateLimited { retry_after: wait }
        })
    }

    /// A half-open probe of `endpoint` was dropped before its outcome: the next call probes.
    fn probe_abandoned(&self, endpoint: &str) {
        let now = self.clock.now_ms();
        if let Ok(mut breakers) = self.breakers.lock()
            && let Some(b) = breakers.get_mut(endpoint)
        {
            b.probe_abandoned(now);
        }
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

// ---- What the image service calls. ----

impl Engine {
    /// Admits a request of `images` renders under the org's and key's rate limits for the org's
    /// `tier` (its mode's cost budget was checked when its plan was made). Nothing is called or
    /// spent when it refuses.
    pub async fn admit(
        &self,
        ports: &Ports,
        caller: &Caller,
        tier: Tier,
        images: u32,
    ) -> Result<()> {
        let (org, key) = self.config.rate_limits.of(tier);
        let buckets = [
            (format!("org:{}", caller.org), org),
            (format!("key:{}", caller.credential), key),
        ];
        let now = self.clock.now_ms();
        let taken = self
            .limiter
            .lock()
            .map_err(|_| poisoned())?
            .take(&buckets, images, now);
        if let Err(Error::RateLimited { retry_after }) = &taken {
            tracing::info!(org = %caller.org, retry_after_ms = retry_after.as_millis() as u64, "rate limit: request refused");
        }
        taken?;
        fleet_window(ports, caller, org.per_minute, images).await
    }

    /// Runs the model calls of a request within its mode's time limit.
    pub async fn within_mode<T>(
        &self,
        mode: Option<Mode>,
        fut: impl Future<Output = T>,
    ) -> Result<T> {
        let Some(mode) = mode else {
            return Ok(fut.await);
        };
        let limit = mode.timeout();
        timer::within(self.timer.as_ref(), limit, mode.as_str(), async {
            Ok(fut.await)
        })
        .await
    }

    /// How many renders of an organisation on `tier` may run at once on this instance.
    pub fn concurrency(&self, tier: Tier) -> usize {
        self.config.concurrency.of(tier)
    }

    /// Waits for one of the organisation's `limit` render slots on this instance: every render of
    /// the organisation (variations of all its requests, its batch items) holds one while the model
    /// works, so one organisation cannot take the whole instance. `None` only if the state is
    /// unusable (then the render goes ahead rather than fail). A changed limit (a new tier) starts a
    /// fresh set of slots; renders still holding old ones finish on them.
    pub async fn render_slot(
        &self,
        org: &OrgId,
        limit: usize,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.render_slots.lock().ok()?;
            // Bounded: past the bound, the slots no render holds are dropped (they come back as
            // they were when next needed), so only organisations rendering right now stay.
            if slots.len() >= RENDER_SLOTS_KEPT && !slots.contains_key(org.as_str()) {
                slots.retain(|_, (limit, s)| s.available_permits() < *limit);
            }
            let entry = slots
                .entry(org.to_string())
                .or_insert_with(|| (limit, Arc::new(tokio::sync::Semaphore::new(limit))));
            if entry.0 != limit {
                *entry = (limit, Arc::new(tokio::sync::Semaphore::new(limit)));
            }
            entry.1.clone()
        };
        semaphore.acquire_owned().await.ok()
    }

    /// Counts one finished request in the metrics.
    pub fn record(&self, sample: &metrics::Sample<'_>) {
        match self.metrics.lock() {
            Ok(mut m) => m.record(sample),
            Err(_) => tracing::warn!("metrics lock poisoned: a sample was not counted"),
        }
    }

    /// The organisation's metrics on this instance, for its admins.
    pub fn metrics_summary(&self, caller: &Caller) -> Result<metrics::MetricsView> {
        caller.authorize(imagemcp_core::rbac::Action::ViewAuditLog)?;
        let m = self.metrics.lock().map_err(|_| poisoned())?;
        Ok(m.summary(&caller.org))
    }
}

/// The organisation's per-minute allowance across every instance. The buckets above live in one
/// instance's memory (they smooth bursts without a round trip); this counter per organisation and
/// minute in the `Table`, added to with a bound, keeps a fleet of functions together within the
/// tier's rate. A refusal waits for the next minute.
async fn fleet_window(ports: &Ports, caller: &Caller, per_minute: u32, images: u32) -> Result<()> {
    use imagemcp_core::table::{Add, Key};
    let now = ports.clock.now_ms();
    let minute = now.div_euclid(60_000);
    let add = Add {
        key: Key::new(
            imagemcp_tenancy::keys::org_pk(&caller.org),
            format!("RATE#{minute}"),
        ),
        attr: "value".into(),
        delta: i64::from(images),
        max: Some(i64::from(per_minute)),
        // Gone a minute after its window.
        expires_at: Some((minute + 2) * 60),
    };
    match ports.table.add(add).await {
        Ok(_) => Ok(()),
        Err(Error::Conflict(_)) => {
            let retry_after = Duration::from_millis(
                u64::try_from(60_000 - now.rem_euclid(60_000)).unwrap_or(60_000),
            );
            tracing::info!(org = %caller.org, retry_after_ms = retry_after.as_millis() as u64, "fleet rate limit: request refused");
            Err(Error::RateLimited { retry_after })
        }
        Err(e) => Err(e),
    }
}

/// Parses an optional `mode` argument.
pub fn parse_mode(mode: Option<&str>) -> Result<Option<Mode>> {
    mode.map(Mode::parse).transpose()
}

/// How many organisations' render slots an instance keeps before dropping the idle ones.
pub const RENDER_SLOTS_KEPT: usize = 1_024;

/// Whether a failed request failed at the model (or the engine's guard of it) rather than on its
/// input or the caller's limits.
pub fn is_model_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable(_) | Error::Internal(_) | Error::QuotaExhausted(_)
    )
}
