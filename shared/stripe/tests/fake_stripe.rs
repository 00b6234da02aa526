//! The Stripe client against `infra/fake-stripe` (Stripe's form-encoded wire format over real HTTP):
//! customers, checkout, portal, meter events, idempotency, retries and error mapping.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imagemcp_core::Error;
use imagemcp_core::payments::{CheckoutRequest, Payments, UsageReport};
use imagemcp_stripe::StripeClient;

struct Fake {
    child: Child,
    base: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Fake {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/fake-stripe/fake_stripe.py"
    );
    let mut child = Command::new("python3")
        .args([
            script,
            "--port",
            "0",
            "--price",
            "price_pro",
            "--price",
            "price_team",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the fake");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("fake-stripe listening on ")
        .expect("the fake prints its address")
        .to_owned();
    Fake { child, base }
}

fn client(fake: &Fake) -> StripeClient {
    StripeClient::new(&fake.base, "sk_test_123", Duration::from_secs(5))
        .unwrap()
        .with_backoff(Duration::from_millis(10))
}

async fn control(fake: &Fake, path: &str, body: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn requests(fake: &Fake) -> Vec<serde_json::Value> {
    reqwest::get(format!("{}/_fake/requests", fake.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn checkout(customer: &str, price: &str, quantity: u32, key: &str) -> CheckoutRequest {
    CheckoutRequest {
        customer: customer.into(),
        price: price.into(),
        quantity,
        org: "org_1".into(),
        success_url: "http://127.0.0.1:1/billing?done=1".into(),
        cancel_url: "http://127.0.0.1:1/billing".into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn customer_checkout_portal_and_meter_events_speak_stripes_wire_format() {
    let fake = start();
    let c = client(&fake);
    let cus = c
        .create_customer("org_1", "Acme", "customer-org_1")
        .await
        .unwrap();
    assert!(cus.starts_with("cus_"));
    // The same idempotency key gives the same customer back (two racing upgrades, one customer).
    assert_eq!(
        c.create_customer("org_1", "Acme", "customer-org_1")
            .await
            .unwrap(),
        cus
    );
    let url = c
        .checkout_session(&checkout(&cus, "price_team", 2, "co-1"))
        .await
        .unwrap();
    assert!(
        url.starts_with(&format!("{}/checkout/cs_test_", fake.base)),
        "{url}"
    );
    let portal = c
        .portal_session(&cus, "http://127.0.0.1:1/usage")
        .await
        .unwrap();
    assert!(portal.contains("/portal/bps_"));
    let report = UsageReport {
        event_name: "imagemcp_overage_images".into(),
        customer: cus.clone(),
        value: 3,
        identifier: "overage-org_1-req1".into(),
        timestamp: 1_795_478_400,
    };
    c.report_usage(&report).await.unwrap();
    // A retried report with the same identifier replays (idempotency key), never bills twice.
    c.report_usage(&report).await.unwrap();
    let events: Vec<serde_json::Value> = reqwest::get(format!("{}/_fake/meter_events", fake.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["value"], "3");

    let log = requests(&fake).await;
    let co = log
        .iter()
        .find(|r| r["path"] == "/v1/checkout/sessions")
        .unwrap();
    assert_eq!(co["form"]["line_items"]["0"]["price"], "price_team");
    assert_eq!(co["form"]["line_items"]["0"]["quantity"], "2");
    assert_eq!(co["form"]["client_reference_id"], "org_1");
    assert_eq!(
        co["form"]["subscription_data"]["metadata"]["org_id"],
        "org_1"
    );
    assert_eq!(co["stripe_version"], imagemcp_stripe::API_VERSION);
    assert!(log.iter().all(|r| r["idempotency_key"].is_string()));
}

#[tokio::test]
async fn errors_and_retries() {
    let fake = start();
    let c = client(&fake);
    // Unknown price: Stripe's 400 names the parameter.
    let cus = c.create_customer("org_2", "B", "k-org_2").await.unwrap();
    match c
        .checkout_session(&checkout(&cus, "price_nope", 1, "co-x"))
        .await
    {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "line_items[0][price]"),
        other => panic!("{other:?}"),
    }
    // Two 500s then success: retried with the same idempotency key.
    control(
        &fake,
        "/_fake/faults",
        serde_json::json!({"status": 500, "times": 2}),
    )
    .await;
    let url = c
        .checkout_session(&checkout(&cus, "price_pro", 1, "co-retry"))
        .await
        .unwrap();
    assert!(url.contains("/checkout/"));
    let log = requests(&fake).await;
    let tries: Vec<_> = log
        .iter()
        .filter(|r| r["idempotency_key"] == "co-retry")
        .collect();
    assert_eq!(tries.len(), 3, "{tries:?}");
    // Three 503s: Unavailable, not a panic or a hang.
    control(
        &fake,
        "/_fake/faults",
        serde_json::json!({"status": 503, "times": 3}),
    )
    .await;
    assert!(matches!(
        c.portal_session(&cus, "http://x/").await,
        Err(Error::Unavailable(_))
    ));
    // A wrong key: the operator's problem, said without the key.
    let bad = StripeClient::new(&fake.base, "pk_test_wrong", Duration::from_secs(5)).unwrap();
    match bad.create_customer("o", "n", "k").await {
        Err(Error::Unavailable(m)) => assert!(!m.contains("pk_test_wrong")),
        other => panic!("{other:?}"),
    }
    // Nothing listening: Unavailable after the retries.
    let down = StripeClient::new("http://127.0.0.1:9", "sk_test_1", Duration::from_secs(2))
        .unwrap()
        .with_backoff(Duration::from_millis(1));
    assert!(matches!(
        down.create_customer("o", "n", "k").await,
        Err(Error::Unavailable(_))
    ));
}
