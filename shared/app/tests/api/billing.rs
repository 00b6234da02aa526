//! Billing in-process: quota reservations at the edge under concurrency, release on failure, tier
//! gates naming the unlocking tier, and billing off (the local plan) when Stripe is not configured.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::join_all;
use imagemcp_app::billing::plan::{OrgPlan, plan_key};
use imagemcp_app::billing::{BillingConfig, quota};
use imagemcp_app::images::params::{GenerateArgs, parse_args};
use imagemcp_app::images::record;
use imagemcp_core::Error;
use imagemcp_core::table::{Add, Condition, Table};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A prompt no earlier request used: the engine's cache answers repeats without a model call
/// (and without quota), and these tests are about what is metered.
pub(crate) fn unique_prompt() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("a red cube, take {}", N.fetch_add(1, Ordering::Relaxed))
}

fn args(v: Value) -> GenerateArgs {
    parse_args(v).expect("valid arguments")
}

/// `t`'s app with its model on OpenAI (the fake server, returned to keep it running), so images
/// cost something; `adjust` changes other ports first.
pub(crate) async fn on_fake_openai(
    t: &TestApp,
    adjust: impl FnOnce(&mut imagemcp_app::Ports),
) -> (imagemcp_app::App, fake_openai::FakeOpenAi) {
    let fake = fake_openai::spawn(fake_openai::FakeConfig::local())
        .await
        .expect("fake");
    let mut config =
        imagemcp_openai::OpenAiConfig::new(imagemcp_openai::ApiKey::new("sk-test").unwrap());
    config.base_url = fake.base_url();
    let mut ports = t.app.ports.clone();
    ports.model = Arc::new(imagemcp_openai::OpenAiModel::new(config).unwrap());
    adjust(&mut ports);
    (TestApp::app_on(ports, (*t.app.config).clone()), fake)
}

/// The test app with billing on (no subscription stored: every org is on Free). Its Stripe is
/// unreachable: these tests never call it (those that do use [`billed_with_stripe`]).
pub(crate) fn billed() -> TestApp {
    billed_at("http://127.0.0.1:9")
}

fn billed_at(stripe_base: &str) -> TestApp {
    let mut t = TestApp::new();
    let mut config = (*t.app.config).clone();
    let client = imagemcp_stripe::StripeClient::new(
        stripe_base,
        "sk_test_app",
        std::time::Duration::from_secs(5),
    )
    .expect("client")
    .with_backoff(std::time::Duration::from_millis(5));
    config.billing = Some(Arc::new(BillingConfig {
        webhook_secrets: vec!["whsec_test".into()],
        pro_price: "price_pro".into(),
        team_price: "price_team".into(),
        grace_days: 7,
        payments: Arc::new(client),
        meter_event: "imagemcp_overage_images".into(),
    }));
    t.app = TestApp::app_on(t.app.ports.clone(), config);
    t
}

#[tokio::test]
async fn a_generation_reads_the_organisations_plan_once() {
    let t = billed();
    let org = TestApp::caller("org_a").org;
    let plan_reads = || {
        let reads = t.written.reads.lock().expect("read log");
        reads.iter().filter(|k| **k == plan_key(&org)).count()
    };
    let before = plan_reads();
    let made = crate::call_tool(
        &t,
        "openai_generate_image",
        json!({"prompt": unique_prompt(), "quality": "low"}),
    )
    .await;
    assert_eq!(made["result"]["isError"], json!(false), "{made}");
    assert_eq!(
        plan_reads() - before,
        1,
        "gates, reservation, rate limits and retention all judge a generation by one read"
    );
    let id = made["result"]["structuredContent"]["images"][0]["id"].clone();
    let before = plan_reads();
    let edited = crate::call_tool(
        &t,
        "openai_edit_image",
        json!({"prompt": unique_prompt(), "quality": "low", "image_ids": [id]}),
    )
    .await;
    assert_eq!(edited["result"]["isError"], json!(false), "{edited}");
    assert_eq!(plan_reads() - before, 1, "and an edit too");
}

/// `infra/fake-stripe` on a free port, stopped when dropped.
pub(crate) struct FakeStripe {
    child: std::process::Child,
    pub(crate) base: String,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeStripe {
    pub(crate) fn start() -> Self {
        use std::io::BufRead;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/fake-stripe/fake_stripe.py"
        );
        let mut child = std::process::Command::new("python3")
            .args([
                script,
                "--port",
                "0",
                "--price",
                "price_pro",
                "--price",
                "price_team",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs the fake Stripe");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the fake prints its address");
        let base = line
            .trim()
            .strip_prefix("fake-stripe listening on ")
            .expect("the fake's first line")
            .to_owned();
        FakeStripe { child, base }
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The API requests made so far to `path`.
    pub(crate) async fn requests(&self, path: &str) -> Vec<Value> {
        let all = self.get("/_fake/requests").await;
        all.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == path)
            .cloned()
            .collect()
    }
}

/// The test app with billing on against a fresh fake Stripe.
pub(crate) fn billed_with_stripe() -> (TestApp, FakeStripe) {
    let fake = FakeStripe::start();
    (billed_at(&fake.base), fake)
}

/// Stores `plan` for `caller`'s org as the webhooks would.
pub(crate) async fn store_plan(t: &TestApp, caller: &imagemcp_app::auth::Caller, plan: &OrgPlan) {
    let item = record::to_item(plan_key(&caller.org), plan).unwrap();
    t.table.put(item, Condition::None).await.unwrap();
}

async fn used(t: &TestApp, org: &str, period: &str) -> Option<i64> {
    let caller = TestApp::caller(org);
    t.table
        .get(&quota::counter_key(&caller, period))
        .await
        .unwrap()
        .and_then(|i| i.int("images"))
}

fn assert_plan_limit(err: &Error, tier: &str) {
    match err {
        Error::PlanLimit {
            unlocking_tier,
            upgrade_url,
            ..
        } => {
            assert_eq!(unlocking_tier.as_deref(), Some(tier), "{err}");
            assert_eq!(upgrade_url, "http://test/billing/upgrade");
        }
        other => panic!("expected a plan limit, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_generations_at_the_edge_get_exactly_the_remaining_quota() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    // 7 of Free's 10 images used this month.
    t.table
        .add(Add {
            key: quota::counter_key(&caller, "2026-11"),
            attr: "images".into(),
            delta: 7,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let service = t.app.images();
    let calls = (0..50).map(|i| {
        service.generate(
            &caller,
            args(json!({"prompt": format!("a red cube number {i}")})),
            None,
        )
    });
    let results = join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "exactly the remaining 3 images are granted");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_plan_limit(err, "pro");
    }
    assert_eq!(used(&t, "org_a", "2026-11").await, Some(10));
    let images = t
        .app
        .images()
        .list(&caller, &Default::default())
        .await
        .unwrap()
        .0;
    assert_eq!(images.len(), 3, "what is counted is what was stored");
}

#[tokio::test]
async fn a_failed_generation_releases_its_reservation() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    t.blobs.fail_puts.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let err = t
            .app
            .images()
            .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
    }
    assert_eq!(used(&t, "org_a", "2026-11").await, Some(0));
    t.blobs.fail_puts.store(false, Ordering::SeqCst);
    for _ in 0..10 {
        t.app
            .images()
            .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
            .await
            .expect("within Free's 10");
    }
    let err = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .unwrap_err();
    assert_plan_limit(&err, "pro");
    let msg = imagemcp_app::error::rest_body(&err);
    assert_eq!(msg["error"]["code"], "plan_limit");
    assert_eq!(msg["error"]["unlocking_tier"], "pro");
    assert_eq!(imagemcp_app::error::status(&err), 402);
}

#[tokio::test]
async fn free_refuses_variations_and_names_the_tier_that_unlocks_them() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    let err = t
        .app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "n": 4})),
            None,
        )
        .await
        .unwrap_err();
    assert_plan_limit(&err, "pro");
    assert_eq!(used(&t, "org_a", "2026-11").await, None, "nothing reserved");
}

#[tokio::test]
async fn pro_generates_variations_and_counts_past_the_pool_as_overage() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    let now = 1_795_478_400;
    let plan = OrgPlan {
        tier: "pro".into(),
        status: "active".into(),
        period_start: now - 86_400,
        period_end: now + 29 * 86_400,
        ..OrgPlan::free()
    };
    let item = record::to_item(plan_key(&caller.org), &plan).unwrap();
    t.table.put(item, Condition::None).await.unwrap();
    let period = format!("P{}", now - 86_400);
    t.table
        .add(Add {
            key: quota::counter_key(&caller, &period),
            attr: "images".into(),
            delta: 199,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let out = t
        .app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "n": 4})),
            None,
        )
        .await
        .expect("Pro has overage, not a hard stop");
    assert_eq!(out.images.len(), 4);
    assert_eq!(used(&t, "org_a", &period).await, Some(203));
}

#[tokio::test]
async fn billing_off_is_the_unlimited_local_plan() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    for _ in 0..4 {
        t.app
            .images()
            .generate(
                &caller,
                args(json!({"prompt": unique_prompt(), "n": 4})),
                None,
            )
            .await
            .expect("no limits without Stripe");
    }
    assert_eq!(used(&t, "org_a", "2026-11").await, None, "nothing metered");
}

#[tokio::test]
async fn the_usage_summary_reports_used_remaining_overage_and_cost() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    for _ in 0..3 {
        t.app
            .images()
            .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
            .await
            .unwrap();
    }
    let s = imagemcp_app::billing::usage::summary(&t.app.billing, &caller)
        .await
        .unwrap();
    assert_eq!(s.tier, "free");
    assert_eq!((s.used_images, s.remaining_images), (3, Some(7)));
    assert_eq!(
        (s.overage_images, s.overage_cents, s.total_cents),
        (0, 0, 0)
    );
    let cost = t
        .table
        .get(&record::usage_key(&caller.org, "2026-11", "cost_micros"))
        .await
        .unwrap()
        .and_then(|i| i.int("value"))
        .unwrap();
    assert_eq!(s.model_cost_micros, u64::try_from(cost).unwrap());

    // Billing off: the local plan, unlimited, counting stored images.
    let local = TestApp::new();
    local
        .app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "n": 2})),
            None,
        )
        .await
        .unwrap();
    let s = imagemcp_app::billing::usage::summary(&local.app.billing, &caller)
        .await
        .unwrap();
    assert_eq!((s.tier.as_str(), s.used_images), ("local", 2));
    assert_eq!(s.remaining_images, None);
}

pub(crate) fn pro_plan(customer: Option<&str>) -> OrgPlan {
    let now = 1_795_478_400;
    OrgPlan {
        tier: "pro".into(),
        status: "active".into(),
        period_start: now - 86_400,
        period_end: now + 29 * 86_400,
        customer_id: customer.map(str::to_owned),
        subscription_id: Some("sub_1".into()),
        ..OrgPlan::free()
    }
}

fn upgrade_args(v: Value) -> imagemcp_app::billing::checkout::UpgradeArgs {
    parse_args(v).expect("valid arguments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_opens_a_checkout_with_one_customer_per_org_and_the_portal_after() {
    use imagemcp_app::billing::checkout;
    let (t, fake) = billed_with_stripe();
    let caller = TestApp::caller("org_a");
    // No billing account yet: the portal says how to get one.
    let err = checkout::portal(&t.app.billing, &caller).await.unwrap_err();
    assert!(err.to_string().contains("openai_upgrade_plan"), "{err}");
    // Two racing upgrades: one Stripe customer, stored once on the org.
    let (a, b) = tokio::join!(
        checkout::upgrade(
            &t.app.billing,
            &caller,
            upgrade_args(json!({"tier": "pro"}))
        ),
        checkout::upgrade(
            &t.app.billing,
            &caller,
            upgrade_args(json!({"tier": "team", "seats": 7}))
        ),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.checkout_url
            .starts_with(&format!("{}/checkout/cs_test_", fake.base))
    );
    assert_eq!(
        (a.tier.as_str(), a.seats, a.monthly_cents),
        ("pro", 1, 2_900)
    );
    assert_eq!(
        (b.tier.as_str(), b.seats, b.monthly_cents),
        ("team", 7, 19_800)
    );
    let state = fake.get("/_fake/state").await;
    assert_eq!(state["customers"].as_object().unwrap().len(), 1);
    let customer = state["customers"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let stored = t
        .table
        .get(&checkout::customer_record_key(&caller.org))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.str("customer_id"), Some(customer.as_str()));
    let sessions = fake.requests("/v1/checkout/sessions").await;
    let team = sessions
        .iter()
        .find(|r| r["form"]["line_items"]["0"]["price"] == "price_team")
        .unwrap();
    assert_eq!(team["form"]["line_items"]["0"]["quantity"], "7");
    assert_eq!(team["form"]["client_reference_id"], "org_a");
    assert_eq!(team["form"]["customer"], customer.as_str());

    // Negative, zero, absurd or mismatched seat counts never reach Stripe.
    let before = fake.requests("/v1/checkout/sessions").await.len();
    for bad in [
        json!({"tier": "team", "seats": -5}),
        json!({"tier": "team", "seats": 0}),
        json!({"tier": "team", "seats": 10_001}),
        json!({"tier": "pro", "seats": 3}),
        json!({"tier": "free"}),
        json!({"tier": "enterprise"}),
    ] {
        let err = checkout::upgrade(&t.app.billing, &caller, upgrade_args(bad.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad}: {err}");
    }
    assert_eq!(fake.requests("/v1/checkout/sessions").await.len(), before);

    // A viewer may not buy; a creator neither (billing is the admin's).
    let viewer = TestApp::caller_as(
        "org_a",
        "usr_v",
        imagemcp_core::rbac::Role::Creator,
        &[imagemcp_core::rbac::Scope::ImagesWrite],
    );
    assert!(matches!(
        checkout::upgrade(
            &t.app.billing,
            &viewer,
            upgrade_args(json!({"tier": "pro"}))
        )
        .await,
        Err(Error::Forbidden(_))
    ));

    let portal = checkout::portal(&t.app.billing, &caller).await.unwrap();
    assert!(portal.portal_url.contains("/portal/bps_"));
    // Subscribed: a second checkout would make a second subscription, so it is refused.
    store_plan(&t, &caller, &pro_plan(Some(&customer))).await;
    let err = checkout::upgrade(
        &t.app.billing,
        &caller,
        upgrade_args(json!({"tier": "team"})),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)) && err.to_string().contains("openai_billing_portal"));

    // Billing off: nothing to buy, said plainly.
    let local = TestApp::new();
    let err = checkout::upgrade(
        &local.app.billing,
        &caller,
        upgrade_args(json!({"tier": "pro"})),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("billing is off"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overage_past_the_pool_is_reported_once_as_a_billing_meter_event() {
    let (t, fake) = billed_with_stripe();
    let caller = TestApp::caller("org_a");
    let customer = imagemcp_app::billing::checkout::ensure_customer(&t.app.billing, &caller)
        .await
        .unwrap();
    store_plan(&t, &caller, &pro_plan(Some(&customer))).await;
    let period = format!("P{}", 1_795_478_400 - 86_400);
    t.table
        .add(Add {
            key: quota::counter_key(&caller, &period),
            attr: "images".into(),
            delta: 198,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    // 198 + 4: the last 2 are past Pro's 200.
    t.app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "n": 4})),
            None,
        )
        .await
        .unwrap();
    // Within the pool: nothing more to report... then 1 more past it.
    t.app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .unwrap();
    let events = fake.get("/_fake/meter_events").await;
    let events = events.as_array().unwrap();
    let values: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["2", "1"], "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["payload"]["stripe_customer_id"] == customer.as_str()
                && e["event_name"] == "imagemcp_overage_images")
    );
    let s = imagemcp_app::billing::usage::summary(&t.app.billing, &caller)
        .await
        .unwrap();
    assert_eq!(
        (s.used_images, s.overage_images, s.overage_cents),
        (203, 3, 45)
    );
    assert_eq!(s.total_cents, 2_945, "$29 + 3 × $0.15");
}

#[tokio::test]
async fn free_allows_quick_mode_only_and_names_pro_for_the_others() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    t.app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "mode": "quick"})),
            None,
        )
        .await
        .expect("quick is in Free");
    for mode in ["explorer", "guided"] {
        let err = t
            .app
            .images()
            .generate(
                &caller,
                args(json!({"prompt": unique_prompt(), "mode": mode})),
                None,
            )
            .await
            .unwrap_err();
        assert_plan_limit(&err, "pro");
    }
    assert_eq!(
        used(&t, "org_a", "2026-11").await,
        Some(1),
        "refusals reserve nothing"
    );
}

#[tokio::test]
async fn a_downgrade_while_a_batch_runs_lets_admitted_items_finish_counted_once() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    store_plan(&t, &caller, &pro_plan(Some("cus_x"))).await;
    let period = format!("P{}", 1_795_478_400 - 86_400);
    // Item 1 of a batch is admitted under Pro (4 variations)…
    let admitted = quota::admit(&t.app.billing, &caller, 4, None, 0)
        .await
        .unwrap();
    // …the subscription is deleted mid-period while it runs…
    let mut free = OrgPlan::free();
    free.state_at = 1_795_478_400;
    free.status = "canceled".into();
    store_plan(&t, &caller, &free).await;
    // …and it finishes, counted once on the period it was admitted in.
    admitted.settle(&t.app.billing, 4).await;
    assert_eq!(used(&t, "org_a", &period).await, Some(4));
    // Later items are admitted under Free: 4 variations refused, 1 counted on the calendar month.
    let err = quota::admit(&t.app.billing, &caller, 4, None, 0)
        .await
        .err()
        .unwrap();
    assert_plan_limit(&err, "pro");
    quota::admit(&t.app.billing, &caller, 1, None, 0)
        .await
        .unwrap()
        .settle(&t.app.billing, 1)
        .await;
    assert_eq!(used(&t, "org_a", "2026-11").await, Some(1));
    assert_eq!(used(&t, "org_a", &period).await, Some(4), "no double count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_is_attributed_to_org_user_and_team_in_the_generation_commit() {
    // The OpenAI path (the fake), so images cost something.
    let t = TestApp::new();
    let (app, _fake) = on_fake_openai(&t, |_| {}).await;
    let caller = TestApp::caller("org_a");
    let g = app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "n": 2})),
            None,
        )
        .await
        .unwrap();
    assert!(g.cost_micros > 0);
    let read = async |counter: &str| {
        t.table
            .get(&record::usage_key(&caller.org, "2026-11", counter))
            .await
            .unwrap()
            .and_then(|i| i.int("value"))
    };
    let cost = i64::try_from(g.cost_micros).unwrap();
    assert_eq!(read("cost_micros").await, Some(cost));
    assert_eq!(read("cost_micros#user#usr_test").await, Some(cost));
    assert_eq!(read("cost_micros#team#team_test").await, Some(cost));
    let s = imagemcp_app::billing::usage::summary(&app.billing, &caller)
        .await
        .unwrap();
    assert_eq!(
        (s.model_cost_micros, s.my_model_cost_micros),
        (g.cost_micros, g.cost_micros)
    );
}

#[tokio::test]
async fn the_budget_alerts_once_at_80_percent_and_the_hard_stop_refuses_before_the_model() {
    use imagemcp_app::billing::budget;
    let t = billed();
    let caller = TestApp::caller("org_a");
    let set = |cents: i64, hard_stop: bool| {
        parse_args::<budget::BudgetArgs>(
            json!({"monthly_budget_cents": cents, "hard_stop": hard_stop}),
        )
        .unwrap()
    };
    for bad in [-1, 1_000_000_001] {
        assert!(
            budget::set(&t.app.billing, &caller, set(bad, false))
                .await
                .is_err()
        );
    }
    budget::set(&t.app.billing, &caller, set(100, false))
        .await
        .unwrap();
    let spend = async |micros: i64| {
        t.table
            .add(Add {
                key: record::usage_key(&caller.org, "2026-11", "cost_micros"),
                attr: "value".into(),
                delta: micros,
                max: None,
                expires_at: None,
            })
            .await
            .unwrap();
    };
    // 79 %: no alert.
    spend(790_000).await;
    assert!(
        !budget::after_generation(&t.app.billing, &caller)
            .await
            .unwrap()
    );
    // 80 %: one alert, then never again this month.
    spend(10_000).await;
    assert!(
        budget::after_generation(&t.app.billing, &caller)
            .await
            .unwrap()
    );
    assert!(
        !budget::after_generation(&t.app.billing, &caller)
            .await
            .unwrap()
    );
    let alerts = t
        .app
        .audit_log()
        .view(
            &caller,
            &parse_args(json!({"action": "billing.budget_alert"})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(alerts.entries.len(), 1);
    // Spent, alert only: still generates.
    spend(200_000).await;
    t.app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .expect("no hard stop");
    // Hard stop: refused before any model call, nothing reserved.
    budget::set(&t.app.billing, &caller, set(100, true))
        .await
        .unwrap();
    let before = used(&t, "org_a", "2026-11").await;
    let err = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("budget"), "{err}");
    assert_eq!(used(&t, "org_a", "2026-11").await, before);
    // Raising it lets generation go on.
    budget::set(&t.app.billing, &caller, set(1_000, true))
        .await
        .unwrap();
    t.app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .expect("under the raised budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_never_pass_a_hard_stop_budget_together() {
    use imagemcp_app::billing::budget;
    // The OpenAI path (the fake), so images cost something; billing on, the org on Free (whose
    // requests are held to quick mode's $0.05: `medium`, as `high` would be over it).
    let t = billed();
    let (app, _fake) = on_fake_openai(&t, |_| {}).await;
    let caller = TestApp::caller("org_a");
    let cost = async || {
        t.table
            .get(&record::usage_key(&caller.org, "2026-11", "cost_micros"))
            .await
            .unwrap()
            .and_then(|i| i.int("value"))
            .unwrap_or(0)
    };
    // One image's cost, measured.
    app.images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "size": "1024x1024", "quality": "medium"})),
            None,
        )
        .await
        .unwrap();
    let spent = cost().await;
    assert!(spent > 0, "images cost something");
    // What the hard stop holds per request: the catalog's estimate for these settings.
    let estimate = i64::try_from(
        imagemcp_core::catalog::lookup(imagemcp_core::catalog::DEFAULT_MODEL)
            .unwrap()
            .estimate_cost_micros(
                imagemcp_core::image_params::ImageSize::parse("1024x1024").unwrap(),
                imagemcp_core::image_params::Quality::parse("medium").unwrap(),
            ),
    )
    .unwrap();
    // Room for exactly three estimates (and less than four).
    let budget_cents = (spent + 3 * estimate).div_euclid(10_000) + 1;
    let room = budget_cents * 10_000 - spent;
    assert!(
        (3 * estimate..4 * estimate).contains(&room),
        "room {room} for 3 of {estimate}"
    );
    let set = parse_args::<budget::BudgetArgs>(
        json!({"monthly_budget_cents": budget_cents, "hard_stop": true}),
    )
    .unwrap();
    budget::set(&app.billing, &caller, set).await.unwrap();

    let results = join_all((0..8).map(|_| {
        let app = app.clone();
        let caller = caller.clone();
        async move {
            app.images()
                .generate(
                    &caller,
                    args(
                        json!({"prompt": unique_prompt(), "size": "1024x1024", "quality": "medium"}),
                    ),
                    None,
                )
                .await
        }
    }))
    .await;
    let made = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(made, 3, "exactly the budget's room is granted");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, Error::PlanLimit { .. }) && r.to_string().contains("budget"),
            "{r}"
        );
    }
    assert_eq!(
        cost().await,
        4 * spent,
        "spent: the first image and three more alike"
    );
    // Past the budget only by what the actual costs exceed their estimates (nothing here).
    let slack = 3 * (spent - estimate).max(0);
    assert!(
        cost().await <= budget_cents * 10_000 + slack,
        "never past the budget"
    );
    // Every hold was given back: with the budget raised, the next request runs.
    let held = t
        .table
        .get(&record::usage_key(
            &caller.org,
            "2026-11",
            "cost_held_micros",
        ))
        .await
        .unwrap()
        .and_then(|i| i.int("value"));
    assert_eq!(held, Some(0), "no estimate is left held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_access_and_collaboration_are_team_features_and_billing_stays_open() {
    use axum::body::Body;
    use axum::http::Request;
    use imagemcp_app::manage::Manage;
    use tower::ServiceExt;
    let t = billed();
    // The operator's bootstrap key (the CLI's `keys create`) on the default org, which is on Free.
    let (admin, org) = t.app.accounts().ensure_local_admin().await.unwrap();
    let key = t
        .app
        .keys()
        .create(&admin.id, &org.id, imagemcp_app::auth::KeySpec::full("ops"))
        .await
        .unwrap()
        .secret;
    let get = |path: &str| {
        let app = t.app.clone();
        let req = Request::get(path)
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        async move {
            let resp = imagemcp_app::routes::router(app)
                .oneshot(req)
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = get("/v1/images").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["unlocking_tier"], "team");
    assert_eq!(body["error"]["upgrade_url"], "http://test/billing/upgrade");
    // Billing's own routes stay open, or nobody could upgrade.
    let (status, usage) = get("/v1/billing/usage").await;
    assert_eq!(
        (status, usage["tier"].as_str()),
        (200, Some("free")),
        "{usage}"
    );

    let caller = imagemcp_app::auth::Caller {
        user: admin.id.clone(),
        org: org.id.clone(),
        team: org.default_team.clone(),
        role: imagemcp_core::rbac::Role::Admin,
        scopes: vec![imagemcp_core::rbac::Scope::Admin],
        credential: "key_ops".into(),
    };
    let manage = Manage::new(&t.app);
    let refusals = [
        manage
            .create_key(&caller, parse_args(json!({"label": "ci"})).unwrap())
            .await
            .err(),
        manage
            .invite(
                &caller,
                parse_args(json!({"email": "bo@x.example", "role": "creator"})).unwrap(),
            )
            .await
            .err(),
        manage
            .create_team(&caller, parse_args(json!({"name": "design"})).unwrap())
            .await
            .err(),
    ];
    for err in refusals {
        assert_plan_limit(&err.expect("refused on Free"), "team");
    }

    // On Team all of it works.
    let mut team = pro_plan(Some("cus_t"));
    team.tier = "team".into();
    team.seats = 5;
    store_plan(&t, &caller, &team).await;
    assert_eq!(get("/v1/images").await.0, 200);
    manage
        .create_key(&caller, parse_args(json!({"label": "ci"})).unwrap())
        .await
        .expect("API keys on Team");
    manage
        .create_team(&caller, parse_args(json!({"name": "design"})).unwrap())
        .await
        .expect("teams on Team");
}

#[tokio::test]
async fn free_keeps_images_and_conversations_30_days_and_paid_plans_keep_them() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    let free = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .unwrap();
    let month_later = 1_795_478_400 + 30 * 86_400;
    let image = t
        .table
        .get(&record::image_key(&caller.org, &free.images[0].id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(image.expires_at, Some(month_later));
    let conv = t
        .table
        .get(&record::conversation_key(
            &caller.org,
            &free.conversation.id,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.expires_at, Some(month_later));

    store_plan(&t, &caller, &pro_plan(Some("cus_x"))).await;
    let pro = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .unwrap();
    // 31 days on: the Free image is gone by TTL, the Pro one stays.
    t.clock.advance_ms(31 * 86_400_000);
    let images = t.app.images();
    assert!(matches!(
        images.get(&caller, &free.images[0].id).await,
        Err(Error::NotFound { .. })
    ));
    images
        .get(&caller, &pro.images[0].id)
        .await
        .expect("kept on Pro");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_batch_attributes_its_cost_to_the_campaign() {
    use imagemcp_app::images::campaign::{self, CampaignArgs};
    use imagemcp_core::queue::PullQueue;
    let t = TestApp::new();
    let queue = Arc::new(
        imagemcp_local::queue::SqliteQueue::open_in_memory(t.app.ports.clock.clone(), 3).unwrap(),
    );
    let (app, _fake) = on_fake_openai(&t, |ports| ports.queue = queue.clone()).await;
    let caller = TestApp::caller("org_a");
    let args: CampaignArgs = parse_args(json!({
        "campaign": "spring-sale", "template": "email", "prompt": "a tulip field", "quality": "low"
    }))
    .unwrap();
    let job = campaign::submit(&app.images, &caller, args).await.unwrap();
    let batch = queue
        .receive(10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        imagemcp_app::jobs::consume(&app, &batch, 3)
            .await
            .is_empty()
    );
    let view = campaign::view(&app.images, &caller, &job.id).await.unwrap();
    assert_eq!(view.status, "done");
    let spent: i64 = view
        .items
        .iter()
        .map(|i| i.result["cost_micros"].as_i64().unwrap())
        .sum();
    assert!(spent > 0);
    let read = async |counter: &str| {
        t.table
            .get(&record::usage_key(&caller.org, "2026-11", counter))
            .await
            .unwrap()
            .and_then(|i| i.int("value"))
    };
    assert_eq!(read("cost_micros#campaign#spring-sale").await, Some(spent));
    assert_eq!(read("cost_micros").await, Some(spent));
    // A caller cannot set the campaign of a plain generation: the argument does not exist.
    assert!(parse_args::<GenerateArgs>(json!({"prompt": "x", "campaign": "spring-sale"})).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_page_shows_the_plan_and_its_forms_redirect_to_stripe_with_csrf() {
    use axum::body::Body;
    use axum::http::Request;
    use imagemcp_app::sessions::browser::{BrowserSessions, COOKIE};
    use tower::ServiceExt;
    let (t, fake) = billed_with_stripe();
    let (admin, _) = t.app.accounts().ensure_local_admin().await.unwrap();
    let session = BrowserSessions::new(&t.app.identity)
        .create(Some(&admin.id))
        .await
        .unwrap();
    let cookie = format!("{COOKIE}={}", session.cookie);
    let send = |req: Request<Body>| {
        let app = t.app.clone();
        async move {
            let resp = imagemcp_app::routes::router(app)
                .oneshot(req)
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                location,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }
    };
    // Signed out: a page saying so, no data.
    let (status, _, body) = send(Request::get("/usage").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 401);
    assert!(body.contains("Sign in"));
    // Signed in: the plan and usage, with the forms carrying the session's CSRF token.
    let page = Request::get("/billing/upgrade")
        .header("cookie", &cookie)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(page).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<strong>free</strong>") && body.contains("0 of 10 images used"));
    assert!(body.contains(&session.csrf));
    let form = |fields: String| {
        Request::post("/billing/upgrade")
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(fields))
            .unwrap()
    };
    // A forged form (no or another token) is refused and reaches no Stripe endpoint.
    let (status, _, _) = send(form("tier=pro&csrf=forged".into())).await;
    assert_eq!(status, 403);
    assert!(fake.requests("/v1/checkout/sessions").await.is_empty());
    // The real one redirects to Stripe Checkout with the seats asked for.
    let (status, location, _) =
        send(form(format!("tier=team&seats=6&csrf={}", session.csrf))).await;
    assert_eq!(status, 303);
    assert!(
        location
            .unwrap()
            .starts_with(&format!("{}/checkout/cs_test_", fake.base))
    );
    let sent = fake.requests("/v1/checkout/sessions").await;
    assert_eq!(sent[0]["form"]["line_items"]["0"]["quantity"], "6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overage_report_stripe_refused_is_kept_and_sent_once_later() {
    let (t, fake) = billed_with_stripe();
    let caller = TestApp::caller("org_a");
    let customer = imagemcp_app::billing::checkout::ensure_customer(&t.app.billing, &caller)
        .await
        .unwrap();
    store_plan(&t, &caller, &pro_plan(Some(&customer))).await;
    let period = format!("P{}", 1_795_478_400 - 86_400);
    t.table
        .add(Add {
            key: quota::counter_key(&caller, &period),
            attr: "images".into(),
            delta: 200,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    // Stripe fails every attempt of the first report.
    reqwest::Client::new()
        .post(format!("{}/_fake/faults", fake.base))
        .json(&json!({"status": 500, "times": 3, "path": "/v1/billing/meter_events"}))
        .send()
        .await
        .unwrap();
    t.app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "n": 2})),
            None,
        )
        .await
        .expect("a failed report never fails the generation");
    assert_eq!(fake.get("/_fake/meter_events").await, json!([]));
    let pending = t
        .table
        .query(&imagemcp_core::table::Query::new(
            "ORG#org_a",
            "METER_PENDING#",
            10,
        ))
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 1);
    // The next overage sends the kept one first, then its own; both once.
    t.app
        .images()
        .generate(&caller, args(json!({"prompt": unique_prompt()})), None)
        .await
        .unwrap();
    let events = fake.get("/_fake/meter_events").await;
    let values: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["2", "1"]);
    let pending = t
        .table
        .query(&imagemcp_core::table::Query::new(
            "ORG#org_a",
            "METER_PENDING#",
            10,
        ))
        .await
        .unwrap();
    assert!(pending.items.is_empty());
    // Sending the pending ones again changes nothing at Stripe.
    imagemcp_app::billing::overage::retry_pending(&t.app.billing, "ORG#org_a").await;
    assert_eq!(
        fake.get("/_fake/meter_events")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let s = imagemcp_app::billing::usage::summary(&t.app.billing, &caller)
        .await
        .unwrap();
    assert_eq!((s.overage_images, s.overage_cents), (3, 45));
}

/// A Free organisation has quick mode only, so every request of it is held to quick's budget,
/// named or not: a default request is made (`auto` renders at the best quality within $0.05), and
/// an explicit quality over the budget is refused as the plan's limit, naming the tier that lifts
/// it, before any model call.
#[tokio::test]
async fn a_free_organisations_default_request_is_made_within_quick_modes_budget() {
    use imagemcp_core::catalog::{self, micros};
    use imagemcp_core::image_params::{ImageSize, Quality};
    let t = billed();
    let (app, fake) = on_fake_openai(&t, |_| {}).await;
    let caller = TestApp::caller("org_a");
    let spec = catalog::usable(catalog::DEFAULT_MODEL).unwrap();
    for v in [
        json!({"prompt": unique_prompt()}),
        json!({"prompt": unique_prompt(), "mode": "quick"}),
    ] {
        let g = app
            .images()
            .generate(&caller, args(v.clone()), None)
            .await
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        let rec = &g.images[0];
        // 2.5 renders `auto` as `high` ($0.053 at 1024x1024); `medium` is the best within $0.05.
        assert_eq!(rec.quality, "medium", "{v}");
        let charged = micros(rec.usage.output_image_tokens, spec.rates.image_out);
        assert_eq!(
            charged,
            spec.estimate_cost_micros(ImageSize::Auto, Quality::Medium)
        );
        assert!(charged <= 50_000);
    }
    let calls = fake.requests().len();
    let err = app
        .images()
        .generate(
            &caller,
            args(json!({"prompt": unique_prompt(), "quality": "high"})),
            None,
        )
        .await
        .unwrap_err();
    assert_plan_limit(&err, "pro");
    assert!(
        err.to_string().contains("Free plan") && err.to_string().contains("$0.0500"),
        "{err}"
    );
    assert_eq!(
        fake.requests().len(),
        calls,
        "refused before any model call"
    );
}
