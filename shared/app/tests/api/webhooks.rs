//! `POST /webhooks/stripe` in-process with Stripe event fixtures (`fixtures/stripe/`): signatures,
//! exactly-once processing, out-of-order delivery, and the subscription lifecycle.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::future::join_all;
use imagemcp_app::billing::plan::{self, OrgPlan};
use imagemcp_app::billing::signature::sign;
use imagemcp_app::billing::{checkout, webhook};
use imagemcp_app::images::record;
use imagemcp_core::ids::OrgId;
use imagemcp_core::table::{Condition, Item, Table};
use imagemcp_core::tier::Tier;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::billing::billed;
use crate::helpers::TestApp;

const NOW: i64 = 1_795_478_400;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/api/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture with its event id (and optionally `created`) replaced.
fn variant(name: &str, id: &str, created: Option<i64>) -> String {
    let mut v: Value = serde_json::from_str(&fixture(name)).unwrap();
    v["id"] = id.into();
    if let Some(c) = created {
        v["created"] = c.into();
    }
    v.to_string()
}

async fn post(t: &TestApp, body: &str, signature: Option<String>) -> (StatusCode, Value) {
    let mut req = Request::post("/webhooks/stripe").header("content-type", "application/json");
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    let resp = imagemcp_app::routes::router(t.app.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Delivers `body` signed as Stripe would, and returns the result string.
async fn deliver(t: &TestApp, body: &str) -> String {
    let (status, json) = post(t, body, Some(sign(body.as_bytes(), "whsec_test", NOW))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["result"].as_str().unwrap().to_owned()
}

/// Records `customer` as `org`'s Stripe customer, as opening its first checkout does
/// (`checkout::ensure_customer`): the org's record and the customer → org map.
async fn recorded_customer(t: &TestApp, org: &str, customer: &str) {
    let org = OrgId::parse(org).unwrap();
    let mut record = Item::new(checkout::customer_record_key(&org), Map::new());
    record.attrs.insert("customer_id".into(), json!(customer));
    let mut mapping = Item::new(webhook::customer_key(customer), Map::new());
    mapping.attrs.insert("org".into(), json!(org));
    t.table.put(record, Condition::NotExists).await.unwrap();
    t.table.put(mapping, Condition::NotExists).await.unwrap();
}

/// `billed()` with org_a's customer `cus_Qa1` recorded, as the fixtures expect.
async fn billed_customer() -> TestApp {
    let t = billed();
    recorded_customer(&t, "org_a", "cus_Qa1").await;
    t
}

async fn plan_of(t: &TestApp, org: &str) -> Option<OrgPlan> {
    let org = OrgId::parse(org).unwrap();
    let item = t.table.get(&plan::plan_key(&org)).await.unwrap()?;
    Some(record::from_item(item).unwrap())
}

async fn stored_plan(t: &TestApp) -> Option<OrgPlan> {
    plan_of(t, "org_a").await
}

#[tokio::test]
async fn unsigned_badly_signed_stale_and_tampered_webhooks_are_refused_and_change_nothing() {
    let t = billed();
    let body = fixture("customer.subscription.created");
    let other = fixture("customer.subscription.updated");
    let cases = [
        None,
        Some("t=1,v1=00".to_owned()),
        Some(sign(body.as_bytes(), "whsec_wrong", NOW)),
        Some(sign(body.as_bytes(), "whsec_test", NOW - 301)),
        Some(sign(other.as_bytes(), "whsec_test", NOW)),
    ];
    for sig in cases {
        let (status, json) = post(&t, &body, sig.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{sig:?}");
        assert!(!json.to_string().contains("whsec"));
    }
    assert_eq!(stored_plan(&t).await, None);
}

#[tokio::test]
async fn rotated_secrets_both_verify() {
    let mut t = billed();
    let mut config = (*t.app.config).clone();
    let mut billing = (**config.billing.as_ref().unwrap()).clone();
    billing.webhook_secrets = vec!["whsec_old".into(), "whsec_test".into()];
    config.billing = Some(std::sync::Arc::new(billing));
    t.app = imagemcp_app::App::new(t.app.ports.clone(), config);
    recorded_customer(&t, "org_a", "cus_Qa1").await;
    let a = fixture("checkout.session.completed");
    let (status, _) = post(&t, &a, Some(sign(a.as_bytes(), "whsec_old", NOW))).await;
    assert_eq!(status, StatusCode::OK);
    let b = fixture("customer.subscription.created");
    let (status, _) = post(&t, &b, Some(sign(b.as_bytes(), "whsec_test", NOW))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored_plan(&t).await.unwrap().tier, "pro");
}

#[tokio::test]
async fn the_subscription_lifecycle_follows_the_events() {
    let t = billed_customer().await;
    assert_eq!(
        deliver(&t, &fixture("checkout.session.completed")).await,
        "applied"
    );
    assert_eq!(
        stored_plan(&t).await,
        None,
        "checkout only maps the customer"
    );
    assert_eq!(
        deliver(&t, &fixture("customer.subscription.created")).await,
        "applied"
    );
    let pro = stored_plan(&t).await.unwrap();
    assert_eq!((pro.tier.as_str(), pro.seats), ("pro", 1));
    assert_eq!(
        (pro.period_start, pro.period_end),
        (1_795_478_000, 1_798_156_400)
    );

    assert_eq!(
        deliver(&t, &fixture("customer.subscription.updated")).await,
        "applied"
    );
    let team = stored_plan(&t).await.unwrap();
    assert_eq!((team.tier.as_str(), team.seats), ("team", 10));

    // An absurd seat count is recorded and ignored: the paid upgrade stays.
    let r = deliver(&t, &fixture("customer.subscription.updated.negative_seats")).await;
    assert!(r.starts_with("ignored"), "{r}");
    assert_eq!(stored_plan(&t).await.unwrap().seats, 10);

    // Payment fails: past due with a grace period, still Team until it ends.
    deliver(&t, &fixture("invoice.payment_failed")).await;
    let due = stored_plan(&t).await.unwrap();
    assert_eq!(due.status, "past_due");
    let until = due.grace_until.unwrap();
    assert_eq!(until, 1_795_478_150 + 7 * 86_400);
    assert_eq!(due.effective_tier(NOW), Tier::Team);
    assert_eq!(
        due.effective_tier(until),
        Tier::Free,
        "downgraded after grace"
    );
    deliver(&t, &fixture("invoice.paid")).await;
    let paid = stored_plan(&t).await.unwrap();
    assert_eq!((paid.status.as_str(), paid.grace_until), ("active", None));

    assert_eq!(
        deliver(&t, &fixture("customer.subscription.deleted")).await,
        "applied"
    );
    let gone = stored_plan(&t).await.unwrap();
    assert_eq!(gone.effective_tier(NOW), Tier::Free, "deleted mid-period");
    assert_eq!(deliver(&t, &fixture("customer.deleted")).await, "applied");
    // With the customer gone, its later events are for an unknown customer, though their
    // metadata still names the org.
    let late = variant("customer.subscription.updated", "evt_late", Some(NOW));
    let r = deliver(&t, &late).await;
    assert_eq!(r, "ignored: event for an unknown customer");
    assert_eq!(stored_plan(&t).await.unwrap().tier, "free");
}

#[tokio::test]
async fn duplicates_are_processed_exactly_once_even_concurrently() {
    let t = billed_customer().await;
    deliver(&t, &fixture("checkout.session.completed")).await;
    let body = fixture("customer.subscription.updated");
    let results = join_all((0..10).map(|_| deliver(&t, &body))).await;
    assert_eq!(
        results.iter().filter(|r| *r == "applied").count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().all(|r| r == "applied" || r == "duplicate"));
    // A replay of the first event after later ones stays a duplicate.
    assert_eq!(
        deliver(&t, &fixture("checkout.session.completed")).await,
        "duplicate"
    );
}

#[tokio::test]
async fn an_older_state_never_overwrites_a_newer_one() {
    let t = billed_customer().await;
    // Team (newer) arrives first, then Pro (older): the paid upgrade is not lost.
    deliver(&t, &fixture("customer.subscription.updated")).await;
    let r = deliver(&t, &fixture("customer.subscription.created")).await;
    assert_eq!(r, "ignored: older than the stored subscription state");
    assert_eq!(stored_plan(&t).await.unwrap().tier, "team");
    // Deleted arrives, then a stale update from before it: still cancelled.
    deliver(&t, &fixture("customer.subscription.deleted")).await;
    let stale = variant(
        "customer.subscription.updated",
        "evt_stale",
        Some(1_795_478_250),
    );
    assert!(deliver(&t, &stale).await.starts_with("ignored"));
    assert_eq!(stored_plan(&t).await.unwrap().status, "canceled");
}

#[tokio::test]
async fn events_for_unknown_customers_are_acknowledged_and_ignored() {
    let t = billed();
    let r = deliver(
        &t,
        &fixture("customer.subscription.created.unknown_customer"),
    )
    .await;
    assert_eq!(r, "ignored: event for an unknown customer");
    assert_eq!(stored_plan(&t).await, None);
}

/// `fixture` as another event about `customer`, created at `created`, its metadata naming `org`.
fn about(name: &str, id: &str, customer: &str, org: &str, created: i64) -> String {
    let mut v: Value = serde_json::from_str(&variant(name, id, Some(created))).unwrap();
    v["data"]["object"]["customer"] = customer.into();
    v["data"]["object"]["metadata"] = json!({ "org_id": org });
    v.to_string()
}

#[tokio::test]
async fn a_signed_event_for_an_unknown_customer_never_moves_the_org_its_metadata_names() {
    let t = billed_customer().await;
    deliver(&t, &fixture("checkout.session.completed")).await;
    deliver(&t, &fixture("customer.subscription.updated")).await;
    assert_eq!(stored_plan(&t).await.unwrap().tier, "team");

    // Correctly signed, newer than the stored state, about a customer we never created.
    let cancel = about(
        "customer.subscription.deleted",
        "evt_intruder_cancel",
        "cus_Intruder",
        "org_a",
        NOW,
    );
    assert_eq!(
        deliver(&t, &cancel).await,
        "ignored: event for an unknown customer"
    );
    let team = stored_plan(&t).await.unwrap();
    assert_eq!((team.tier.as_str(), team.seats), ("team", 10));
    assert_eq!(team.customer_id.as_deref(), Some("cus_Qa1"));
    // Recorded as processed: Stripe's retry is a duplicate.
    assert_eq!(deliver(&t, &cancel).await, "duplicate");

    // Nor can an unknown customer give an org a plan it never paid for.
    let gift = about(
        "customer.subscription.created",
        "evt_intruder_gift",
        "cus_Intruder",
        "org_b",
        NOW,
    );
    assert_eq!(
        deliver(&t, &gift).await,
        "ignored: event for an unknown customer"
    );
    assert_eq!(plan_of(&t, "org_b").await, None);

    // A known customer's event acts on the customer's org, whatever its metadata says.
    let elsewhere = about(
        "invoice.payment_failed",
        "evt_known_elsewhere",
        "cus_Qa1",
        "org_b",
        NOW,
    );
    assert_eq!(deliver(&t, &elsewhere).await, "applied");
    assert_eq!(stored_plan(&t).await.unwrap().status, "past_due");
    assert_eq!(plan_of(&t, "org_b").await, None);
}

#[tokio::test]
async fn a_checkout_session_binds_only_the_customer_recorded_for_its_org() {
    let t = billed_customer().await;
    recorded_customer(&t, "org_b", "cus_Qb1").await;
    let session = |id: &str, customer: &str, org: &str| {
        let mut v: Value =
            serde_json::from_str(&variant("checkout.session.completed", id, None)).unwrap();
        v["data"]["object"]["customer"] = customer.into();
        v["data"]["object"]["client_reference_id"] = org.into();
        v["data"]["object"]["metadata"] = json!({ "org_id": org });
        v.to_string()
    };
    let refused = "ignored: checkout session for a customer we did not record for the organisation";
    // A customer we never created, or another org's customer, naming org_a; and an org that
    // never opened a checkout.
    for (id, customer, org) in [
        ("evt_cs_stranger", "cus_Intruder", "org_a"),
        ("evt_cs_other_org", "cus_Qb1", "org_a"),
        ("evt_cs_no_checkout", "cus_Intruder", "org_c"),
    ] {
        assert_eq!(
            deliver(&t, &session(id, customer, org)).await,
            refused,
            "{id}"
        );
    }
    assert_eq!(
        t.table
            .get(&webhook::customer_key("cus_Intruder"))
            .await
            .unwrap(),
        None,
        "no mapping written"
    );
    let map = t
        .table
        .get(&webhook::customer_key("cus_Qb1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        map.str("org"),
        Some("org_b"),
        "org_b's customer stays org_b's"
    );
    // So the intruder's subscription that follows is for an unknown customer.
    let sub = about(
        "customer.subscription.created",
        "evt_intruder_sub",
        "cus_Intruder",
        "org_a",
        NOW,
    );
    assert_eq!(
        deliver(&t, &sub).await,
        "ignored: event for an unknown customer"
    );
    assert_eq!(stored_plan(&t).await, None);
    // The session we opened for org_a's recorded customer binds as before.
    assert_eq!(
        deliver(&t, &fixture("checkout.session.completed")).await,
        "applied"
    );
}

#[tokio::test]
async fn the_route_is_absent_when_billing_is_off() {
    let t = TestApp::new();
    let body = fixture("customer.subscription.created");
    let (status, _) = post(&t, &body, Some(sign(body.as_bytes(), "whsec_test", NOW))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
