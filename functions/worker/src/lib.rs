//! The Cloudflare Workers runtime: `fetch` events go to the shared router, `queue` batches to the
//! shared batch consumer. Only adapters and wiring live here: KV for the `Cache`, a Queue binding
//! for the `Queue`, DynamoDB and S3 over `fetch` with SigV4 for the `Table` and `BlobStore`, and
//! JavaScript's clock, random source and timers.
//!
//! Configuration is the Worker's bindings (see `wrangler.toml` and `docs/deploy-cloudflare.md`):
//! vars `IMAGEMCP_PUBLIC_URL`, `IMAGEMCP_TABLE`, `IMAGEMCP_BUCKET`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_S3`), `IMAGEMCP_SSE`,
//! `IMAGEMCP_QUEUE_MAX_ATTEMPTS`; secrets `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `IMAGEMCP_KEK` (+ `IMAGEMCP_KEK_ID`, `IMAGEMCP_KEK_PREVIOUS`), `IMAGEMCP_TOKEN_KEYS`,
//! `OPENAI_API_KEY` (+ vars `OPENAI_BASE_URL`, `OPENAI_IMAGE_MODEL`), `STRIPE_SECRET_KEY` and
//! `STRIPE_WEBHOOK_SECRET` (billing on; + vars `STRIPE_PRO_PRICE`, `STRIPE_TEAM_PRICE`,
//! `STRIPE_API_BASE`, `STRIPE_METER_EVENT`, `STRIPE_GRACE_DAYS`); the KV namespace `CACHE` and the
//! queue producer `JOBS`.
#![cfg(target_arch = "wasm32")]

pub mod aws;
mod cimd;
#[cfg(feature = "contract")]
mod contract;
pub mod dynamo;
pub mod kv;
mod model;
pub mod platform;
pub mod queue;
pub mod s3;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_app::crypto::Keyring;
use imagemcp_app::engine::{Engine, EngineConfig};
use imagemcp_app::sessions::KeySet;
use imagemcp_app::{App, AppConfig, Ports};
use imagemcp_core::clock::Clock;
use imagemcp_core::ids::Ids;
use tower::ServiceExt;
use worker::{Context, Env, HttpRequest, event};

use crate::aws::AwsTarget;
use crate::platform::{DelayTimer, JsClock, JsRandom, UuidV7Ids};

/// How long presigned download URLs live unless `IMAGEMCP_DOWNLOAD_URL_TTL_SECS` says otherwise.
const DEFAULT_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(900);

/// Deliveries before a message goes to the dead-letter queue: `max_retries` + 1 in wrangler.toml.
const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// A var or secret, empty meaning unset.
fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

fn required(env: &Env, name: &str) -> worker::Result<String> {
    setting(env, name).ok_or_else(|| worker::Error::RustError(format!("{name} must be set")))
}

/// What an isolate builds once and reuses for every event it serves.
struct Runtime {
    app: App,
    max_attempts: u32,
    #[cfg_attr(not(feature = "contract"), allow(dead_code))]
    aws: Arc<AwsTarget>,
}

thread_local! {
    // One isolate, one thread: the app (and its engine's breakers and buckets) lives as long as
    // the isolate, like a Lambda instance's.
    static RUNTIME: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

use std::rc::Rc;

/// The runtime of this isolate, built from `env` on first use.
fn runtime(env: &Env) -> worker::Result<Rc<Runtime>> {
    if let Some(rt) = RUNTIME.with(|r| r.borrow().clone()) {
        return Ok(rt);
    }
    let rt = Rc::new(build(env)?);
    RUNTIME.with(|r| *r.borrow_mut() = Some(rt.clone()));
    Ok(rt)
}

fn config_error(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

/// The ports and the application from the Worker's bindings.
fn build(env: &Env) -> worker::Result<Runtime> {
    let region = setting(env, "AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
    let endpoint = setting(env, "AWS_ENDPOINT_URL");
    let service_endpoint = |var: &str, service: &str| {
        setting(env, var)
            .or_else(|| endpoint.clone())
            .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"))
    };
    let aws = Arc::new(AwsTarget {
        dynamodb_endpoint: service_endpoint("AWS_ENDPOINT_URL_DYNAMODB", "dynamodb"),
        s3_endpoint: service_endpoint("AWS_ENDPOINT_URL_S3", "s3"),
        region: region.clone(),
        access_key_id: required(env, "AWS_ACCESS_KEY_ID")?,
        secret_access_key: required(env, "AWS_SECRET_ACCESS_KEY")?,
    });
    let sse = match setting(env, "IMAGEMCP_SSE").as_deref() {
        None | Some("aws:kms") => s3::Sse::Kms(setting(env, "IMAGEMCP_KMS_KEY_ID")),
        Some("AES256") => s3::Sse::Aes256,
        Some(_) => return Err(config_error("IMAGEMCP_SSE must be AES256 or aws:kms")),
    };
    let clock: Arc<dyn Clock> = Arc::new(JsClock);
    let ids: Arc<dyn Ids> = Arc::new(UuidV7Ids::default());
    let keyring = Keyring::from_env(|name| setting(env, name)).map_err(config_error)?;
    let ports = Ports {
        table: Arc::new(dynamo::DynamoTable::new(
            aws.clone(),
            required(env, "IMAGEMCP_TABLE")?,
            clock.clone(),
        )),
        blobs: Arc::new(s3::S3BlobStore::new(
            aws.clone(),
            required(env, "IMAGEMCP_BUCKET")?,
            sse,
        )),
        cache: Arc::new(kv::KvCache::new(env.kv("CACHE")?, clock.clone())),
        queue: Arc::new(queue::CfQueue::new(env.queue("JOBS")?, ids.clone())),
        model: model::from_env(|name| setting(env, name)).map_err(config_error)?,
        clock: clock.clone(),
        ids,
        random: Arc::new(JsRandom),
        keyring: Arc::new(keyring),
    };
    let public_url = required(env, "IMAGEMCP_PUBLIC_URL")?;
    let mut config = AppConfig::local(public_url);
    config.allowed_origins = setting(env, "IMAGEMCP_ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    config.token_keys = match setting(env, "IMAGEMCP_TOKEN_KEYS") {
        None => None,
        Some(keys) => Some(Arc::new(KeySet::parse(&keys).map_err(config_error)?)),
    };
    config.download_url_ttl = match setting(env, "IMAGEMCP_DOWNLOAD_URL_TTL_SECS") {
        None => DEFAULT_DOWNLOAD_URL_TTL,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (60..=s3::MAX_URL_TTL.as_secs()).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| config_error("IMAGEMCP_DOWNLOAD_URL_TTL_SECS must be 60 to 604800"))?,
    };
    let max_attempts = match setting(env, "IMAGEMCP_QUEUE_MAX_ATTEMPTS") {
        None => DEFAULT_MAX_ATTEMPTS,
        Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            config_error("IMAGEMCP_QUEUE_MAX_ATTEMPTS must be a positive integer")
        })?,
    };
    config.billing = billing(env)?;
    // Client ID Metadata Documents over the edge's `fetch` (see `cimd` for what is and is not
    // vetted there); `IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS` is for tests only.
    config.client_metadata = Some(cimd::config(setting(
        env,
        "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS",
    )));
    let engine = Engine::new(EngineConfig::DEFAULT, clock, Arc::new(DelayTimer));
    Ok(Runtime {
        app: App::with_engine(ports, config, engine),
        max_attempts,
        aws,
    })
}

/// Billing from the `STRIPE_*` secrets and vars, as the other runtimes read them; `None` (billing
/// off, the unlimited local plan) without `STRIPE_SECRET_KEY`.
fn billing(env: &Env) -> worker::Result<Option<Arc<imagemcp_app::billing::BillingConfig>>> {
    let Some(stripe) =
        imagemcp_stripe::settings::StripeSettings::from_vars(|name| setting(env, name))
            .map_err(config_error)?
    else {
        return Ok(None);
    };
    // Retries wait on `setTimeout` (a `Delay` holds a JavaScript closure, `!Send`; one thread).
    let sleeper: imagemcp_stripe::Sleeper =
        Arc::new(|d| Box::pin(worker::send::SendFuture::new(worker::Delay::from(d))));
    Ok(Some(Arc::new(imagemcp_app::billing::BillingConfig {
        webhook_secrets: stripe.webhook_secrets.clone(),
        pro_price: stripe.pro_price.clone(),
        team_price: stripe.team_price.clone(),
        grace_days: stripe.grace_days,
        payments: Arc::new(stripe.client().map_err(config_error)?.with_sleeper(sleeper)),
        meter_event: stripe.meter_event.clone(),
    })))
}

#[event(start)]
fn start() {
    console_error_panic_hook_set();
    platform::init_tracing();
}

/// Panics show up in `wrangler tail` with their message rather than as `unreachable`.
fn console_error_panic_hook_set() {
    std::panic::set_hook(Box::new(|info| {
        worker::console_error!("panic: {info}");
    }));
}

#[event(fetch)]
async fn fetch(
    req: HttpRequest,
    env: Env,
    _ctx: Context,
) -> worker::Result<http::Response<axum::body::Body>> {
    let rt = runtime(&env)?;
    #[cfg(feature = "contract")]
    if req.uri().path().starts_with("/__test/contract/") {
        return contract::handle(&req, &env, rt.aws.clone()).await;
    }
    let router = imagemcp_app::routes::router(rt.app.clone());
    let response = router
        .oneshot(req.map(axum::body::Body::new))
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(response)
}

/// The `queue` event, exported by hand rather than with `#[event(queue)]`: the macro's
/// `MessageBatch` hides each message's `attempts`, which the consumer needs to know when a job is
/// on its last delivery.
pub mod queue_export {
    // The macro names the futures crate by path: `wasm_bindgen_futures`, or `js_sys` when
    // worker-build sets WASM_BINDGEN_USE_JS_SYS.
    use worker::wasm_bindgen::prelude::*;
    #[allow(unused_imports)]
    use worker::{js_sys, wasm_bindgen, wasm_bindgen_futures};

    #[wasm_bindgen]
    pub async fn queue(
        batch: worker::worker_sys::MessageBatch,
        env: worker::Env,
        _ctx: worker::worker_sys::Context,
    ) -> Result<JsValue, JsValue> {
        let rt = super::runtime(&env).map_err(|e| JsValue::from_str(&e.to_string()))?;
        super::queue::consume(&rt.app, batch, rt.max_attempts)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the queue batch could not be handled");
                JsValue::from_str(&e.to_string())
            })?;
        Ok(JsValue::UNDEFINED)
    }
}

/// Retention index items one Cron Trigger run handles: each is about three subrequests (two S3
/// deletes, one DynamoDB delete), kept well under a Worker's subrequest limit per invocation.
const SCHEDULED_SWEEP_MAX: usize = 250;

/// The Cron Trigger (`[triggers] crons` in wrangler.toml): the retention sweep, which deletes the
/// S3 objects of expired Free images (`imagemcp_app::billing::retention`), as the Lambda `batch`
/// function does on its schedule. "Now" is the trigger's scheduled time, so `wrangler dev
/// --test-scheduled` (`/__scheduled?time=…`) can drive it.
#[event(scheduled)]
async fn scheduled(event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let rt = match runtime(&env) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the retention sweep could not start");
            return;
        }
    };
    let now_secs = (event.schedule() / 1000.0) as i64;
    match imagemcp_app::billing::retention::sweep(&rt.app, now_secs, SCHEDULED_SWEEP_MAX).await {
        Ok(swept) => tracing::info!(
            entries = swept.entries,
            blobs = swept.blobs,
            more = swept.more,
            "retention sweep done"
        ),
        Err(e) => tracing::error!(error = %e, "the retention sweep failed"),
    }
}
