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

fn args(v: Value) -> GenerateArgs {
    parse_args(v).expect("valid arguments")
}

/// The test app with billing on (no subscription stored: every org is on Free).
pub(crate) fn billed() -> TestApp {
    let mut t = TestApp::new();
    let mut config = (*t.app.config).clone();
    config.billing = Some(Arc::new(BillingConfig {
        webhook_secrets: vec!["whsec_test".into()],
        pro_price: "price_pro".into(),
        team_price: "price_team".into(),
        grace_days: 7,
    }));
    t.app = TestApp::app_on(t.app.ports.clone(), config);
    t
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
            .generate(&caller, args(json!({"prompt": "a red cube"})), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
    }
    assert_eq!(used(&t, "org_a", "2026-11").await, Some(0));
    t.blobs.fail_puts.store(false, Ordering::SeqCst);
    for _ in 0..10 {
        t.app
            .images()
            .generate(&caller, args(json!({"prompt": "a red cube"})), None)
            .await
            .expect("within Free's 10");
    }
    let err = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": "a red cube"})), None)
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
        .generate(&caller, args(json!({"prompt": "a red cube", "n": 4})), None)
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
        .generate(&caller, args(json!({"prompt": "a red cube", "n": 4})), None)
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
            .generate(&caller, args(json!({"prompt": "a red cube", "n": 4})), None)
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
            .generate(&caller, args(json!({"prompt": "a red cube"})), None)
            .await
            .unwrap();
    }
    let s = imagemcp_app::billing::usage::summary(&t.app, &caller)
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
        .generate(&caller, args(json!({"prompt": "a red cube", "n": 2})), None)
        .await
        .unwrap();
    let s = imagemcp_app::billing::usage::summary(&local.app, &caller)
        .await
        .unwrap();
    assert_eq!((s.tier.as_str(), s.used_images), ("local", 2));
    assert_eq!(s.remaining_images, None);
}
