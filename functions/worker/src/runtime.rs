//! The Worker's events (`fetch`, `queue`, `scheduled`) and the runtime an isolate builds once from
//! its bindings for all of them.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use imagemcp_app::App;
use imagemcp_core::clock::Clock;
use imagemcp_core::ids::Ids;
use tower::ServiceExt;
use worker::{Context, Env, HttpRequest, event};

use crate::aws::AwsTarget;
use crate::platform::{DelayTimer, JsClock, JsRandom, UuidV7Ids};
use crate::settings::WorkerSettings;
use crate::{cimd, dynamo, kv, model, platform, queue, s3};

/// A var or secret, empty meaning unset.
fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
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
    let settings = WorkerSettings::from_vars(|name| setting(env, name)).map_err(config_error)?;
    let aws = Arc::new(settings.aws.clone());
    let clock: Arc<dyn Clock> = Arc::new(JsClock);
    let ids: Arc<dyn Ids> = Arc::new(UuidV7Ids::default());
    let keyring = settings.app.required_keyring().map_err(config_error)?;
    let ports = imagemcp_app::Ports {
        table: Arc::new(dynamo::DynamoTable::new(
            aws.clone(),
            settings.table.clone(),
            clock.clone(),
        )),
        blobs: Arc::new(s3::S3BlobStore::new(
            aws.clone(),
            settings.bucket.clone(),
            settings.sse.clone(),
        )),
        cache: Arc::new(kv::KvCache::new(env.kv("CACHE")?, clock.clone())),
        queue: Arc::new(queue::CfQueue::new(env.queue("JOBS")?, ids.clone())),
        model: model::configured(settings.app.openai.as_ref()).map_err(config_error)?,
        clock: clock.clone(),
        ids,
        random: Arc::new(JsRandom),
        timer: Arc::new(DelayTimer),
        keyring: Arc::new(keyring),
    };
    // Client ID Metadata Documents over the edge's `fetch` (see `cimd` for what is and is not
    // vetted there); billing through the Stripe adapter, its retries waiting on `setTimeout` (a
    // `Delay` holds a JavaScript closure, `!Send`; one thread).
    let config = settings
        .app
        .app_config(Arc::new(cimd::EdgeFetcher), |stripe| {
            let sleeper: imagemcp_stripe::Sleeper =
                Arc::new(|d| Box::pin(worker::send::SendFuture::new(worker::Delay::from(d))));
            Ok(Arc::new(
                imagemcp_stripe::StripeClient::configured(
                    stripe.api_base.as_deref(),
                    stripe.secret_key.expose(),
                )?
                .with_sleeper(sleeper),
            ))
        })
        .map_err(config_error)?;
    Ok(Runtime {
        app: App::new(ports, config),
        max_attempts: settings.queue_max_attempts,
        aws,
    })
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
        return crate::contract::handle(&req, &env, rt.aws.clone()).await;
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
        crate::queue::consume(&rt.app, batch, rt.max_attempts)
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
    match imagemcp_app::billing::retention::sweep(&rt.app.billing, now_secs, SCHEDULED_SWEEP_MAX)
        .await
    {
        Ok(swept) => tracing::info!(
            entries = swept.entries,
            blobs = swept.blobs,
            more = swept.more,
            "retention sweep done"
        ),
        Err(e) => tracing::error!(error = %e, "the retention sweep failed"),
    }
}
