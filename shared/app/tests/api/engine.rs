//! The generation engine under faults, against the fake OpenAI server: 429 storms back the whole
//! instance off, 500s open the circuit and a probe closes it, hangs time out (per call and per
//! mode), modes refuse over-budget requests before any call, and the token buckets (and the org's
//! fleet-wide minute) refuse with a wait. Time is the test's `ManualClock`, timeouts wait on a `ManualTimer`: nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use fake_openai::{FakeConfig, FakeOpenAi, Fault};
use imagemcp_app::engine::breaker::{BreakerConfig, BreakerState};
use imagemcp_app::engine::cache::{CacheConfig, CacheTier};
use imagemcp_app::engine::limits::{Bucket, RateLimits};
use imagemcp_app::engine::{Concurrency, Engine, EngineConfig};
use imagemcp_app::images::params::{GenerateArgs, parse_args};
use imagemcp_app::{App, AppConfig};
use imagemcp_core::Error;
use imagemcp_core::catalog::DEFAULT_MODEL;
use imagemcp_core::timer::ManualTimer;
use imagemcp_openai::{OpenAiConfig, OpenAiModel, RetryPolicy};
use serde_json::{Value, json};

use crate::helpers::TestApp;

const GENERATIONS: &str = "/v1/images/generations";

struct Rig {
    t: TestApp,
    app: App,
    fake: FakeOpenAi,
    timer: Arc<ManualTimer>,
}

/// The app on OpenAI (the fake, with the adapter's own retries off so the engine sees every
/// failure), a breaker that opens after 3 failures in 60 s for 30 s, and 30 s image calls.
async fn rig() -> Rig {
    rig_with(false).await
}

/// The rig, with the generation cache on or off (off for the fault tests, which repeat prompts
/// and must reach the model every time).
async fn rig_with(cache: bool) -> Rig {
    rig_adjusted(cache, |_| {}).await.0
}

/// [`rig_with`], with its ports adjusted (a port wrapped) before the app is built; returns what
/// `adjust` returns (the wrapper, for the test to read).
async fn rig_adjusted<W>(
    cache: bool,
    adjust: impl FnOnce(&mut imagemcp_app::Ports) -> W,
) -> (Rig, W) {
    let t = TestApp::new();
    let fake = fake_openai::spawn(FakeConfig::local()).await.expect("fake");
    let mut config = OpenAiConfig::new(imagemcp_openai::ApiKey::new("sk-test").expect("key"));
    config.base_url = fake.base_url();
    config.retry = RetryPolicy::NONE;
    let mut ports = t.app.ports.clone();
    ports.model = Arc::new(OpenAiModel::new(config).expect("model"));
    let adjusted = adjust(&mut ports);
    let timer = Arc::new(ManualTimer::new(ports.clock.clone()));
    let engine = Engine::new(
        EngineConfig {
            breaker: BreakerConfig {
                failures: 3,
                window: Duration::from_secs(60),
                open_for: Duration::from_secs(30),
            },
            image_timeout: Duration::from_secs(30),
            text_timeout: Duration::from_secs(30),
            // Billing is off in these tests (the local plan): its key bucket is 30 images a minute.
            rate_limits: RateLimits {
                local: (Bucket::per_minute(60), Bucket::per_minute(30)),
                ..RateLimits::DEFAULT
            },
            cache: CacheConfig {
                enabled_by_default: cache,
                ..CacheConfig::DEFAULT
            },
            concurrency: Concurrency::DEFAULT,
        },
        ports.clock.clone(),
        timer.clone(),
    );
    let app = App::with_engine(ports, AppConfig::local("http://test"), engine);
    let rig = Rig {
        t,
        app,
        fake,
        timer,
    };
    (rig, adjusted)
}

fn args(v: Value) -> GenerateArgs {
    parse_args(v).expect("valid arguments")
}

fn fault(status: u16, times: u32) -> Fault {
    Fault {
        times: Some(times),
        path: Some(GENERATIONS.into()),
        ..Fault::status(status)
    }
}

impl Rig {
    async fn generate(&self, v: Value) -> Result<usize, Error> {
        let caller = TestApp::caller("org_a");
        self.app
            .images()
            .generate(&caller, args(v), None)
            .await
            .map(|g| g.images.len())
    }

    fn calls(&self) -> usize {
        self.fake.requests_to(GENERATIONS).len()
    }

    fn circuit(&self) -> BreakerState {
        self.app
            .engine
            .breaker_state(&format!("{DEFAULT_MODEL}/generate"))
    }
}

fn retry_after(e: &Error) -> Duration {
    match e {
        Error::RateLimited { retry_after } => *retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_storm_backs_off_every_request_of_the_instance_adaptively() {
    let r = rig().await;
    r.fake.push_faults([Fault {
        retry_after_ms: Some(100),
        ..fault(429, 3)
    }]);
    let prompt = json!({"prompt": "a lighthouse"});
    // The first 429: the shared wait is the base back-off (longer than the server's 100 ms).
    let e = r.generate(prompt.clone()).await.unwrap_err();
    assert_eq!(retry_after(&e), Duration::from_millis(500));
    // Another request during the wait is refused without reaching the model.
    let e = r.generate(prompt.clone()).await.unwrap_err();
    assert!(retry_after(&e) <= Duration::from_millis(500));
    assert_eq!(r.calls(), 1);
    // Still storming: each 429 in a row doubles the wait.
    r.t.clock.advance_ms(500);
    assert_eq!(
        retry_after(&r.generate(prompt.clone()).await.unwrap_err()),
        Duration::from_secs(1)
    );
    r.t.clock.advance_ms(1000);
    assert_eq!(
        retry_after(&r.generate(prompt.clone()).await.unwrap_err()),
        Duration::from_secs(2)
    );
    assert_eq!(r.calls(), 3);
    // The storm is over: the next call after the wait succeeds, and a 429 is not a circuit failure.
    r.t.clock.advance_ms(2000);
    assert_eq!(r.generate(prompt).await.unwrap(), 1);
    assert_eq!(r.circuit(), BreakerState::Closed);
}

#[tokio::test]
async fn five_hundreds_open_the_circuit_and_a_half_open_probe_closes_it() {
    let r = rig().await;
    r.fake.push_faults([fault(500, 4)]);
    let prompt = json!({"prompt": "a lighthouse"});
    for _ in 0..3 {
        let e = r.generate(prompt.clone()).await.unwrap_err();
        assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    }
    assert_eq!(r.circuit(), BreakerState::Open);
    // Open: refused at once with the time left, and the model is not called.
    r.t.clock.advance_ms(10_000);
    let e = r.generate(prompt.clone()).await.unwrap_err();
    assert_eq!(retry_after(&e), Duration::from_secs(20));
    assert_eq!(r.calls(), 3);
    // After the open time one probe goes; it fails (the fourth 500) and the circuit re-opens.
    r.t.clock.advance_ms(20_000);
    assert_eq!(r.circuit(), BreakerState::HalfOpen);
    assert!(matches!(
        r.generate(prompt.clone()).await.unwrap_err(),
        Error::Unavailable(_)
    ));
    assert_eq!(r.circuit(), BreakerState::Open);
    assert_eq!(r.calls(), 4);
    // The next probe succeeds and closes it.
    r.t.clock.advance_ms(30_000);
    assert_eq!(r.generate(prompt.clone()).await.unwrap(), 1);
    assert_eq!(r.circuit(), BreakerState::Closed);
    assert_eq!(r.generate(prompt).await.unwrap(), 1);
}

#[tokio::test]
async fn a_hang_times_out_and_counts_as_a_circuit_failure() {
    let r = Arc::new(rig().await);
    r.fake.push_faults([Fault {
        path: Some(GENERATIONS.into()),
        ..Fault::hang(Duration::from_secs(600))
    }]);
    let call = {
        let r = r.clone();
        tokio::spawn(async move { r.generate(json!({"prompt": "a lighthouse"})).await })
    };
    // The call is parked on its 30 s timeout.
    r.timer.wait_for_sleepers(1).await;
    r.t.clock.advance_ms(29_999);
    assert_eq!(r.timer.fire_due(), 0);
    r.t.clock.advance_ms(1);
    assert_eq!(r.timer.fire_due(), 1);
    let e = call.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains("timed out")),
        "{e:?}"
    );
    assert_eq!(r.circuit(), BreakerState::Closed, "one failure of three");
}

#[tokio::test]
async fn a_mode_caps_the_time_of_its_calls() {
    let r = Arc::new(rig().await);
    r.fake.push_faults([Fault {
        path: Some(GENERATIONS.into()),
        ..Fault::hang(Duration::from_secs(600))
    }]);
    let call = {
        let r = r.clone();
        tokio::spawn(async move {
            r.generate(json!({"prompt": "a lighthouse", "quality": "low", "mode": "quick"}))
                .await
        })
    };
    // The mode's 10 s and the call's 30 s are both waiting; quick's comes first.
    r.timer.wait_for_sleepers(2).await;
    r.t.clock.advance_ms(10_000);
    assert_eq!(r.timer.fire_due(), 1);
    let e = call.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains("quick timed out after 10 s")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_request_over_its_mode_budget_is_refused_before_any_model_call() {
    let r = rig().await;
    let e = r
        .generate(json!({"prompt": "a lighthouse", "quality": "high", "n": 4, "mode": "quick"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, reason } if field == "mode" && reason.contains("quick mode allows $0.0500")),
        "{e:?}"
    );
    assert!(r.fake.requests().is_empty(), "not even moderation ran");
    // The same request within guided's budget would not be refused by the mode.
    assert_eq!(
        r.generate(json!({"prompt": "a lighthouse", "quality": "low", "mode": "quick"}))
            .await
            .unwrap(),
        1
    );
}

/// `auto` (the default quality) renders at what the model would choose, lowered to the best
/// quality that fits the mode: a default request fits every mode on every current model, the
/// concrete quality is what is sent, and the fake charges exactly the estimate.
#[tokio::test]
async fn a_default_request_fits_every_mode_on_every_current_model_at_its_estimate() {
    use imagemcp_app::engine::modes::Mode;
    use imagemcp_core::catalog::{Lifecycle, MODELS, micros};
    use imagemcp_core::image_params::{ImageSize, Quality};
    let r = rig().await;
    let caller = TestApp::caller("org_a");
    let current = MODELS
        .iter()
        .filter(|m| m.lifecycle == Lifecycle::Active && !m.offline);
    for spec in current {
        for mode in [None, Some("quick"), Some("explorer"), Some("guided")] {
            let mut v = json!({"prompt": "a lighthouse", "model": spec.id});
            if let Some(mode) = mode {
                v["mode"] = json!(mode);
            }
            let g = r
                .app
                .images()
                .generate(&caller, args(v), None)
                .await
                .unwrap_or_else(|e| panic!("{} in mode {mode:?}: {e}", spec.id));
            let rec = &g.images[0];
            let sent = r.fake.requests_to(GENERATIONS).last().unwrap().fields["quality"].clone();
            assert_eq!(sent, json!(rec.quality), "{}: the quality sent", spec.id);
            let quality = Quality::parse(&rec.quality).unwrap();
            let estimate = spec.estimate_cost_micros(ImageSize::Auto, quality);
            assert_eq!(
                micros(rec.usage.output_image_tokens, spec.rates.image_out),
                estimate,
                "{} in mode {mode:?}: charged what was estimated",
                spec.id
            );
            match mode {
                Some(mode) => assert!(estimate <= Mode::parse(mode).unwrap().budget_micros()),
                None => assert_eq!(quality, spec.auto_quality, "{}", spec.id),
            }
        }
    }
}

#[tokio::test]
async fn the_key_bucket_refuses_with_the_wait_and_refills_with_time() {
    let r = rig().await;
    // The key bucket holds 30 images a minute.
    for _ in 0..7 {
        assert_eq!(
            r.generate(json!({"prompt": "a lighthouse", "quality": "low", "n": 4}))
                .await
                .unwrap(),
            4
        );
    }
    let calls = r.calls();
    let e = r
        .generate(json!({"prompt": "a lighthouse", "quality": "low", "n": 4}))
        .await
        .unwrap_err();
    // 2 tokens left, 4 needed: 2 more at 30 a minute is 4 s.
    assert_eq!(retry_after(&e), Duration::from_secs(4));
    assert_eq!(r.calls(), calls, "a refused request calls no model");
    r.t.clock.advance_ms(4_000);
    assert_eq!(
        r.generate(json!({"prompt": "a lighthouse", "quality": "low", "n": 4}))
            .await
            .unwrap(),
        4
    );
}

#[tokio::test]
async fn the_org_rate_holds_across_instances_sharing_the_table() {
    let r = rig().await;
    // More instances: the same ports (table, model), each its own engine and in-memory buckets.
    let instance = || {
        let timer = Arc::new(ManualTimer::new(r.app.ports.clock.clone()));
        App::with_engine(
            r.app.ports.clone(),
            (*r.app.config).clone(),
            Engine::new(r.app.engine.config, r.app.ports.clock.clone(), timer),
        )
    };
    let (b, c) = (instance(), instance());
    let caller = TestApp::caller("org_a");
    let make = async |app: &App, n: u8| {
        app.images()
            .generate(
                &caller,
                args(json!({"prompt": "a lighthouse", "quality": "low", "n": n})),
                None,
            )
            .await
            .map(|g| g.images.len())
    };
    // The org's rate is 60 images a minute (the key's, 30, is per instance). A fresh minute.
    let now = imagemcp_core::clock::Clock::now_ms(&*r.t.clock);
    r.t.clock.advance_ms(60_000 - now.rem_euclid(60_000));
    for app in [&r.app, &b] {
        for _ in 0..7 {
            assert_eq!(make(app, 4).await.unwrap(), 4);
        }
    }
    assert_eq!(
        make(&c, 4).await.unwrap(),
        4,
        "60 images this minute, fleet-wide"
    );
    // The third instance's own buckets have room (4 of 30 and of 60 used), the org's minute not.
    r.t.clock.advance_ms(1_000);
    let calls = r.calls();
    let e = make(&c, 1).await.unwrap_err();
    assert_eq!(
        retry_after(&e),
        Duration::from_secs(59),
        "until the next minute"
    );
    assert_eq!(r.calls(), calls, "a refused request calls no model");
    r.t.clock.advance_ms(59_000);
    assert_eq!(make(&c, 1).await.unwrap(), 1, "the next minute has room");
}

/// A campaign through the queue: one job per idempotency key, one message per item, a consumer
/// that dies after three items (their messages never acked) and a redelivery that finishes the
/// job with every item exactly once.
#[tokio::test]
async fn a_campaign_survives_a_crash_mid_batch_with_no_duplicate_and_no_missing_item() {
    use imagemcp_app::images::campaign::{self, CampaignArgs};
    use imagemcp_app::jobs::{self, JobStatus};
    use imagemcp_core::queue::PullQueue;
    use imagemcp_local::queue::SqliteQueue;

    let t = TestApp::new();
    let queue = Arc::new(SqliteQueue::open_in_memory(t.app.ports.clock.clone(), 3).unwrap());
    let mut ports = t.app.ports.clone();
    ports.queue = queue.clone();
    let app = App::new(ports, AppConfig::local("http://test"));
    let caller = TestApp::caller("org_a");
    let submit = || {
        parse_args::<CampaignArgs>(json!({
            "campaign": "spring", "template": "email", "prompt": "a tulip field",
            "quality": "low", "version": 2, "idempotency_key": "req-1"
        }))
        .unwrap()
    };
    let job = campaign::submit(&app.images, &caller, submit())
        .await
        .unwrap();
    let again = campaign::submit(&app.images, &caller, submit())
        .await
        .unwrap();
    assert_eq!(job.id, again.id, "one idempotency key, one job");

    let first = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        first.len(),
        4,
        "one message per item, and none for the second submission"
    );
    // The consumer does three items, then the process dies: nothing is acked.
    assert!(jobs::consume(&app, &first[..3], 3).await.is_empty());
    assert_eq!(
        jobs::get(app.jobs(), &caller.org, &job.id)
            .await
            .unwrap()
            .items_done,
        3
    );
    t.clock.advance_ms(61_000);
    let again = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 4, "every unacked message comes back");
    assert!(jobs::consume(&app, &again, 3).await.is_empty());

    let view = campaign::view(&app.images, &caller, &job.id).await.unwrap();
    assert_eq!(view.status, "done");
    assert_eq!((view.items_done, view.items_failed), (4, 0));
    let mut names: Vec<String> = view
        .items
        .iter()
        .map(|i| i.result["file_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "spring_body1_v2.png",
            "spring_body2_v2.png",
            "spring_body3_v2.png",
            "spring_header_v2.png"
        ]
    );
    let (images, _) = app
        .images()
        .list(&caller, &imagemcp_app::images::params::ListArgs::default())
        .await
        .unwrap();
    assert_eq!(images.len(), 4, "no item was generated twice");
    assert_eq!(
        jobs::get(app.jobs(), &caller.org, &job.id)
            .await
            .unwrap()
            .status,
        JobStatus::Done
    );
}

impl Rig {
    async fn gen_as(&self, org: &str, v: Value) -> imagemcp_app::images::Generated {
        self.app
            .images()
            .generate(&TestApp::caller(org), args(v), None)
            .await
            .expect("generated")
    }
}

fn ids(g: &imagemcp_app::images::Generated) -> Vec<String> {
    g.images.iter().map(|r| r.id.to_string()).collect()
}

fn tier(g: &imagemcp_app::images::Generated) -> Option<CacheTier> {
    g.cache.map(|h| h.tier)
}

/// Repeats, spacing and paraphrases come back from the cache with no model call and no cost;
/// anything that changes the picture (another colour, size, organisation, `fresh`) does not.
#[tokio::test]
async fn the_cache_answers_repeats_and_paraphrases_but_never_a_different_request() {
    let r = rig_with(true).await;
    let first = r
        .gen_as(
            "org_a",
            json!({"prompt": "a cat sitting on a sofa", "quality": "low"}),
        )
        .await;
    assert_eq!((tier(&first), r.calls()), (None, 1));

    let again = r
        .gen_as(
            "org_a",
            json!({"prompt": "  A cat sitting on a  SOFA", "quality": "low"}),
        )
        .await;
    assert_eq!(tier(&again), Some(CacheTier::L1));
    assert_eq!(ids(&again), ids(&first), "the same images");
    assert_eq!(
        (again.cost_micros, r.calls()),
        (0, 1),
        "no model call, no cost"
    );

    let paraphrase = r
        .gen_as(
            "org_a",
            json!({"prompt": "cats sitting on the couch", "quality": "low"}),
        )
        .await;
    assert_eq!(tier(&paraphrase), Some(CacheTier::L2));
    assert!(paraphrase.cache.unwrap().similarity_milli.unwrap() >= 920);
    assert_eq!((ids(&paraphrase), r.calls()), (ids(&first), 1));

    // Different intent, settings, organisation or an explicit `fresh`: the model is called.
    for (org, v) in [
        (
            "org_a",
            json!({"prompt": "a dog sitting on a sofa", "quality": "low"}),
        ),
        (
            "org_a",
            json!({"prompt": "a red cat sitting on a sofa", "quality": "low"}),
        ),
        (
            "org_a",
            json!({"prompt": "a cat sitting on a sofa", "quality": "medium"}),
        ),
        (
            "org_a",
            json!({"prompt": "a cat sitting on a sofa", "quality": "low", "size": "1536x1024"}),
        ),
        (
            "org_a",
            json!({"prompt": "a cat sitting on a sofa", "quality": "low", "n": 2}),
        ),
        (
            "org_b",
            json!({"prompt": "a cat sitting on a sofa", "quality": "low"}),
        ),
        (
            "org_a",
            json!({"prompt": "a cat sitting on a sofa", "quality": "low", "fresh": true}),
        ),
    ] {
        let calls = r.calls();
        let g = r.gen_as(org, v.clone()).await;
        assert_eq!(tier(&g), None, "{org} {v}");
        assert!(r.calls() > calls, "{org} {v} called the model");
        assert!(ids(&g).iter().all(|id| !ids(&first).contains(id)));
    }
    // A flagged word added to a long prompt keeps it similar, but it is moderated, not served.
    let castle = "a medieval castle on a hill with banners flying over a green valley at dawn";
    let clean = r
        .gen_as("org_a", json!({"prompt": castle, "quality": "low"}))
        .await;
    assert_eq!(tier(&clean), None);
    let flagged = r
        .generate(json!({"prompt": format!("{castle}, gore"), "quality": "low"}))
        .await
        .unwrap_err();
    assert!(
        matches!(flagged, Error::PolicyViolation { .. }),
        "{flagged:?}"
    );
    let (blue, red) = (
        r.gen_as(
            "org_a",
            json!({"prompt": "a blue logo for a bakery", "quality": "low"}),
        )
        .await,
        r.gen_as(
            "org_a",
            json!({"prompt": "a red logo for a bakery", "quality": "low"}),
        )
        .await,
    );
    assert_eq!((tier(&blue), tier(&red)), (None, None), "red is not blue");
}

/// L3 is shared by instances (here: a second app on the same ports, its L1 empty); an entry whose
/// images were deleted is a miss, and an organisation can turn the cache off.
#[tokio::test]
async fn l3_serves_other_instances_deleted_images_miss_and_the_org_can_opt_out() {
    let r = rig_with(true).await;
    let v = json!({"prompt": "a lighthouse on a rocky cliff", "quality": "low"});
    let first = r.gen_as("org_a", v.clone()).await;
    let mut config = r.app.engine.config;
    config.cache.enabled_by_default = true;
    let other = App::with_engine(
        r.app.ports.clone(),
        AppConfig::local("http://test"),
        Engine::new(config, r.app.ports.clock.clone(), r.timer.clone()),
    );
    let caller = TestApp::caller("org_a");
    let from_l3 = other
        .images()
        .generate(&caller, args(v.clone()), None)
        .await
        .unwrap();
    assert_eq!(tier(&from_l3), Some(CacheTier::L3));
    assert_eq!((ids(&from_l3), r.calls()), (ids(&first), 1));

    // Deleted images are never served: the entry is dropped and the model called.
    r.app
        .images()
        .delete(&caller, &first.images[0].id)
        .await
        .unwrap();
    let fresh = r.gen_as("org_a", v.clone()).await;
    assert_eq!((tier(&fresh), r.calls()), (None, 2));

    imagemcp_app::engine::cache::set_enabled(r.app.generation_cache(), &caller, false)
        .await
        .unwrap();
    let off = r.gen_as("org_a", v.clone()).await;
    assert_eq!(
        (tier(&off), r.calls()),
        (None, 3),
        "opted out: the model is called"
    );
    // Only admins choose.
    let creator = TestApp::caller_as(
        "org_a",
        "usr_c",
        imagemcp_core::rbac::Role::Creator,
        &[imagemcp_core::rbac::Scope::Admin],
    );
    assert!(matches!(
        imagemcp_app::engine::cache::set_enabled(r.app.generation_cache(), &creator, true).await,
        Err(Error::Forbidden(_))
    ));
}

/// The metrics count requests, cache hits by tier, model errors and cost, per organisation, for
/// its admins only.
#[tokio::test]
async fn metrics_count_requests_hits_errors_and_cost_for_admins() {
    let r = rig_with(true).await;
    let v = json!({"prompt": "a red fox in deep snow", "quality": "low"});
    let first = r.gen_as("org_a", v.clone()).await;
    r.gen_as("org_a", v.clone()).await;
    r.fake.push_faults([fault(500, 1)]);
    let failed = r
        .generate(json!({"prompt": "a harbour at dawn", "quality": "low"}))
        .await;
    assert!(failed.is_err());
    let admin = TestApp::caller("org_a");
    let m = r.app.engine.metrics_summary(&admin).unwrap();
    assert_eq!((m.requests, m.errors, m.model_errors), (3, 1, 1));
    assert_eq!((m.cache.l1_hits, m.cache.misses), (1, 2));
    assert_eq!(m.cache.hit_rate_milli, 333);
    assert_eq!((m.images, m.cost_micros), (1, first.cost_micros));
    assert!(first.cost_micros > 0);
    assert_eq!(
        r.app
            .engine
            .metrics_summary(&TestApp::caller("org_b"))
            .unwrap()
            .requests,
        0,
        "another organisation sees only its own"
    );
    let creator = TestApp::caller_as(
        "org_a",
        "usr_c",
        imagemcp_core::rbac::Role::Creator,
        &[imagemcp_core::rbac::Scope::Admin],
    );
    assert!(matches!(
        r.app.engine.metrics_summary(&creator),
        Err(Error::Forbidden(_))
    ));
}

/// Items of one campaign are generated concurrently, some failing on their last attempt while
/// others finish: every item is counted once, done or failed, and the job finishes. (The failed
/// count lives outside the job record, so a status write racing a failure cannot undo it.)
#[tokio::test]
async fn concurrent_items_failing_and_finishing_are_all_counted_and_the_job_finishes() {
    use imagemcp_app::images::campaign::{self, CampaignArgs};
    use imagemcp_app::jobs;
    use imagemcp_core::queue::PullQueue;
    use imagemcp_local::queue::SqliteQueue;

    let r = rig().await;
    let queue = Arc::new(SqliteQueue::open_in_memory(r.app.ports.clock.clone(), 1).unwrap());
    let mut ports = r.app.ports.clone();
    ports.queue = queue.clone();
    let app = App::with_engine(
        ports,
        AppConfig::local("http://test"),
        Engine::new(
            r.app.engine.config,
            r.app.ports.clock.clone(),
            r.timer.clone(),
        ),
    );
    // The first three renders fail (and open the circuit: later ones are refused too, or succeed
    // once it would close; either way each item ends once).
    r.fake.push_faults([fault(500, 3)]);
    let caller = TestApp::caller("org_a");
    let job = campaign::submit(
        &app.images,
        &caller,
        parse_args::<CampaignArgs>(json!({
            "campaign": "race", "template": "presentation", "slides": 8,
            "prompt": "a tulip field", "quality": "low"
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let batch = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(batch.len(), 8);
    // One attempt each: a failing item is recorded as failed at once, concurrently with others.
    assert!(jobs::consume(&app, &batch, 1).await.is_empty());
    let done = jobs::get(app.jobs(), &caller.org, &job.id).await.unwrap();
    assert_eq!(done.items_done + done.items_failed, 8, "{done:?}");
    assert!(done.items_failed >= 3, "{done:?}");
    assert!(done.status.is_terminal(), "{done:?}");
    assert_eq!(
        jobs::items(app.jobs(), &caller.org, &job.id)
            .await
            .unwrap()
            .len(),
        8
    );
}

/// With billing on, a cache hit needs no quota: an organisation whose monthly allowance is used
/// up still gets a repeat of what it made, while anything new is refused at the plan's limit.
#[tokio::test]
async fn a_cache_hit_is_served_with_the_quota_used_up_and_reserves_nothing() {
    use imagemcp_app::billing::quota;
    use imagemcp_core::table::{Add, Table};

    let t = crate::billing::billed();
    let mut engine = Engine::default_for(&t.app.ports);
    engine.config.cache.enabled_by_default = true;
    let app = App::with_engine(t.app.ports.clone(), (*t.app.config).clone(), engine);
    let caller = TestApp::caller("org_a");
    // 9 of Free's 10 images used this month.
    t.table
        .add(Add {
            key: quota::counter_key(&caller, "2026-11"),
            attr: "images".into(),
            delta: 9,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let used = || async {
        t.table
            .get(&quota::counter_key(&caller, "2026-11"))
            .await
            .unwrap()
            .and_then(|i| i.attrs.get("images").and_then(Value::as_i64))
    };
    let v = json!({"prompt": "a green kite over a beach", "quality": "low"});
    let first = app
        .images()
        .generate(&caller, args(v.clone()), None)
        .await
        .unwrap();
    assert_eq!(used().await, Some(10), "the last image of the month");
    let hit = app
        .images()
        .generate(&caller, args(v.clone()), None)
        .await
        .unwrap();
    assert_eq!(tier(&hit), Some(CacheTier::L1));
    assert_eq!(ids(&hit), ids(&first));
    assert_eq!(used().await, Some(10), "a hit reserves nothing");
    let mut fresh = v.clone();
    fresh["fresh"] = json!(true);
    let refused = app.images().generate(&caller, args(fresh), None).await;
    assert!(
        matches!(refused, Err(Error::PlanLimit { .. })),
        "{refused:?}"
    );
}

/// What [`Gated`] has seen of the renders: how many entered the model, how many of those have
/// finished, and the most that were inside at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Renders {
    entered: usize,
    finished: usize,
    peak: usize,
}

/// Counts the renders in flight at once and parks each inside the model until the test lets one
/// through (one permit of `gate` each), so renders overlap because the test holds them, not
/// because they happen to take long. Every change of the counts is published on `seen`.
struct Gated {
    inner: Arc<dyn imagemcp_core::model::ImageModel>,
    gate: tokio::sync::Semaphore,
    seen: tokio::sync::watch::Sender<Renders>,
}

impl Gated {
    fn new(inner: Arc<dyn imagemcp_core::model::ImageModel>) -> Self {
        Self {
            inner,
            gate: tokio::sync::Semaphore::new(0),
            seen: tokio::sync::watch::Sender::new(Renders::default()),
        }
    }
}

#[imagemcp_core::async_trait]
impl imagemcp_core::model::ImageModel for Gated {
    fn default_model(&self) -> &str {
        self.inner.default_model()
    }
    async fn generate(
        &self,
        req: imagemcp_core::model::GenerateRequest,
    ) -> imagemcp_core::Result<imagemcp_core::model::Rendered> {
        self.seen.send_modify(|r| {
            r.entered += 1;
            r.peak = r.peak.max(r.entered - r.finished);
        });
        // The test adds one permit per render it lets through; each is used up.
        self.gate
            .acquire()
            .await
            .expect("the gate is never closed")
            .forget();
        let out = self.inner.generate(req).await;
        self.seen.send_modify(|r| r.finished += 1);
        out
    }
    async fn edit(
        &self,
        req: imagemcp_core::model::EditRequest,
    ) -> imagemcp_core::Result<imagemcp_core::model::Rendered> {
        self.inner.edit(req).await
    }
    async fn moderate(
        &self,
        text: &str,
    ) -> imagemcp_core::Result<imagemcp_core::model::Moderation> {
        self.inner.moderate(text).await
    }
    async fn describe(
        &self,
        image: &imagemcp_core::model::InputImage,
    ) -> imagemcp_core::Result<String> {
        self.inner.describe(image).await
    }
}

/// The organisation's concurrency bounds its renders across requests, not only within one: three
/// concurrent requests of two variations each never have more than the limit at the model. The
/// model holds every render until the test releases it, one at a time: the limit's worth are
/// inside at once, and each release lets exactly one waiting render in. The requests run on this
/// task, so renders the engine failed to hold back would all be inside (and counted) before the
/// first release.
#[tokio::test]
async fn an_organisations_renders_across_requests_stay_within_its_concurrency() {
    const LIMIT: usize = 2;
    const RENDERS: usize = 6;
    let t = TestApp::new();
    let gated = Arc::new(Gated::new(t.app.ports.model.clone()));
    let mut ports = t.app.ports.clone();
    ports.model = gated.clone();
    let mut engine = Engine::default_for(&ports);
    engine.config.cache.enabled_by_default = false;
    // Billing is off in these tests: the local plan's concurrency applies.
    engine.config.concurrency.local = LIMIT;
    let app = App::with_engine(ports, AppConfig::local("http://test"), engine);
    let caller = TestApp::caller("org_a");
    let images = app.images();
    let requests = futures::future::join_all((0..3).map(|i| {
        images.generate(
            &caller,
            args(json!({"prompt": format!("a kite, take {i}"), "quality": "low", "n": 2})),
            None,
        )
    }));
    let mut seen = gated.seen.subscribe();
    let releases = async {
        // Waits on the counts, never on time: each state below is reached once the renders the
        // engine lets in have entered, and the comparisons are `>=` so that a broken limit shows
        // in the assertions rather than as a wait that never ends.
        let mut at = *seen.wait_for(|r| r.entered >= LIMIT).await.expect("open");
        let mut states = vec![at];
        for released in 1..=RENDERS {
            gated.gate.add_permits(1);
            let next = (released + LIMIT).min(RENDERS);
            at = *seen
                .wait_for(|r| r.finished >= released && r.entered >= next)
                .await
                .expect("open");
            states.push(at);
        }
        states
    };
    let (results, states) = tokio::join!(requests, releases);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|g| g.images.len() == 2))
    );
    let expected: Vec<Renders> = (0..=RENDERS)
        .map(|released| Renders {
            entered: (released + LIMIT).min(RENDERS),
            finished: released,
            peak: LIMIT,
        })
        .collect();
    assert_eq!(
        states, expected,
        "the limit's worth inside at once, never more, and each release lets one more in"
    );
}

/// Measures sequential model round trips: each call's depth is one more than that of the deepest
/// call finished before it started, so calls made together share a depth and the deepest depth is
/// the number of round trips a request waited for, whatever the latency.
struct Rounds {
    inner: Arc<dyn imagemcp_core::model::ImageModel>,
    finished: std::sync::atomic::AtomicUsize,
    deepest: std::sync::atomic::AtomicUsize,
}

impl Rounds {
    async fn call<T>(&self, call: impl Future<Output = T>) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        let depth = self.finished.load(SeqCst) + 1;
        // Calls started together are all under way before any of them can finish.
        tokio::task::yield_now().await;
        let out = call.await;
        self.finished.fetch_max(depth, SeqCst);
        self.deepest.fetch_max(depth, SeqCst);
        out
    }

    /// The round trips since the last `take`.
    fn take(&self) -> usize {
        use std::sync::atomic::Ordering::SeqCst;
        self.finished.store(0, SeqCst);
        self.deepest.swap(0, SeqCst)
    }
}

#[imagemcp_core::async_trait]
impl imagemcp_core::model::ImageModel for Rounds {
    fn default_model(&self) -> &str {
        self.inner.default_model()
    }
    async fn generate(
        &self,
        req: imagemcp_core::model::GenerateRequest,
    ) -> imagemcp_core::Result<imagemcp_core::model::Rendered> {
        self.call(self.inner.generate(req)).await
    }
    async fn edit(
        &self,
        req: imagemcp_core::model::EditRequest,
    ) -> imagemcp_core::Result<imagemcp_core::model::Rendered> {
        self.call(self.inner.edit(req)).await
    }
    async fn moderate(
        &self,
        text: &str,
    ) -> imagemcp_core::Result<imagemcp_core::model::Moderation> {
        self.call(self.inner.moderate(text)).await
    }
    async fn describe(
        &self,
        image: &imagemcp_core::model::InputImage,
    ) -> imagemcp_core::Result<String> {
        self.call(self.inner.describe(image)).await
    }
    async fn embed(&self, text: &str) -> imagemcp_core::Result<imagemcp_core::embed::Embedding> {
        self.call(self.inner.embed(text)).await
    }
}

/// A cache miss waits for as many sequential round trips as `fresh: true` (the moderation, then
/// the render): the embedding and the exact lookup run alongside the moderation.
#[tokio::test]
async fn a_cache_miss_waits_no_more_round_trips_than_a_fresh_request() {
    let (r, rounds) = rig_adjusted(true, |ports| {
        let rounds = Arc::new(Rounds {
            inner: ports.model.clone(),
            finished: Default::default(),
            deepest: Default::default(),
        });
        ports.model = rounds.clone();
        rounds
    })
    .await;
    r.gen_as(
        "org_a",
        json!({"prompt": "a lighthouse", "quality": "low", "fresh": true}),
    )
    .await;
    let fresh = rounds.take();
    assert_eq!(fresh, 2, "moderation, then the render");
    let before = r.fake.requests().len();
    let miss = r
        .gen_as("org_a", json!({"prompt": "a windmill", "quality": "low"}))
        .await;
    assert_eq!(tier(&miss), None);
    assert_eq!(rounds.take(), fresh, "a miss waits no longer than fresh");
    let paths: Vec<String> = r.fake.requests()[before..]
        .iter()
        .map(|q| q.path.clone())
        .collect();
    for path in ["/v1/moderations", "/v1/embeddings", GENERATIONS] {
        assert_eq!(
            paths.iter().filter(|p| *p == path).count(),
            1,
            "{path} in {paths:?}"
        );
    }
    // A repeat is an exact hit: no model call at all.
    let hit = r
        .gen_as("org_a", json!({"prompt": "a windmill", "quality": "low"}))
        .await;
    assert_eq!(tier(&hit), Some(CacheTier::L1));
    assert_eq!(rounds.take(), 0);
}

/// Records the keys written to the `Cache` port.
struct CachePuts {
    inner: Arc<dyn imagemcp_core::cache::Cache>,
    keys: std::sync::Mutex<Vec<String>>,
}

#[imagemcp_core::async_trait]
impl imagemcp_core::cache::Cache for CachePuts {
    async fn get(&self, key: &str) -> imagemcp_core::Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> imagemcp_core::Result<()> {
        self.keys.lock().unwrap().push(key.to_owned());
        self.inner.put(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> imagemcp_core::Result<()> {
        self.inner.delete(key).await
    }
}

/// A refused prompt's embedding, made alongside its moderation, is dropped: it is neither stored
/// in the semantic index nor used to serve the similar clean prompt cached before it.
#[tokio::test]
async fn a_refused_prompts_embedding_is_never_stored_or_used() {
    let (r, puts) = rig_adjusted(true, |ports| {
        let puts = Arc::new(CachePuts {
            inner: ports.cache.clone(),
            keys: Default::default(),
        });
        ports.cache = puts.clone();
        puts
    })
    .await;
    let castle = "a medieval castle on a hill with banners flying over a green valley at dawn";
    r.gen_as("org_a", json!({"prompt": castle, "quality": "low"}))
        .await;
    let written = std::mem::take(&mut *puts.keys.lock().unwrap());
    assert!(
        written.iter().any(|k| k.starts_with("sem:")),
        "the clean prompt is indexed: {written:?}"
    );
    let before = r.fake.requests().len();
    let flagged = r
        .generate(json!({"prompt": format!("{castle}, gore"), "quality": "low"}))
        .await
        .unwrap_err();
    assert!(
        matches!(flagged, Error::PolicyViolation { .. }),
        "{flagged:?}"
    );
    let paths: Vec<String> = r.fake.requests()[before..]
        .iter()
        .map(|q| q.path.clone())
        .collect();
    assert!(
        paths.iter().any(|p| p == "/v1/embeddings"),
        "embedded alongside the moderation: {paths:?}"
    );
    assert!(!paths.iter().any(|p| p == GENERATIONS), "{paths:?}");
    assert_eq!(
        *puts.keys.lock().unwrap(),
        Vec::<String>::new(),
        "nothing of a refused prompt is stored"
    );
}
