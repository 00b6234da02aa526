//! Handlers called with real event payloads: the published API Gateway v2 and function-URL
//! request examples (aimed at our paths) through `lambda_http`'s own decoding, and the published
//! SQS event through the `batch` handler.

use imagemcp_app::jobs::{self, JobStatus};
use imagemcp_core::ids::OrgId;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{TestStack, fixture};

/// Runs a Lambda HTTP event through `router` as `lambda_http::run` does; returns the status,
/// the headers and the body as JSON.
async fn invoke(router: axum::Router, event: &Value) -> (u16, http::HeaderMap, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("a Lambda HTTP event");
    let response = router.oneshot(request).await.expect("the router answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn mcp_event(key: &str, message: Value, session: Option<&str>) -> Value {
    let mut event = fixture("function-url-post-mcp.json");
    event["headers"]["authorization"] = json!(format!("Bearer {key}"));
    if let Some(session) = session {
        event["headers"]["mcp-session-id"] = json!(session);
        event["headers"]["mcp-protocol-version"] = json!("2025-11-25");
    }
    event["body"] = json!(message.to_string());
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_v2_event_reaches_the_router() {
    let stack = TestStack::new().await;
    let (status, _, body) = invoke(
        imagemcp_app::routes::router(stack.app.clone()),
        &fixture("apigw-v2-get-healthz.json"),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ok")),
        "{body}"
    );

    let mut unauthenticated = fixture("apigw-v2-get-healthz.json");
    unauthenticated["rawPath"] = json!("/v1/images");
    unauthenticated["requestContext"]["http"]["path"] = json!("/v1/images");
    let (status, headers, body) = invoke(
        imagemcp_app::routes::router(stack.app.clone()),
        &unauthenticated,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(headers.contains_key("www-authenticate"));
    assert!(
        body["error"]["code"].is_string(),
        "the REST error body: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_url_event_runs_the_mcp_handshake_across_invocations() {
    let stack = TestStack::new().await;
    let key = stack.admin_key().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fixture", "version": "1"}}});
    let (status, headers, body) = invoke(
        imagemcp_app::routes::router(stack.app.clone()),
        &mcp_event(&key, initialize, None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25", "{body}");
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();

    // A new router (as a new Lambda instance would be) finds the session in DynamoDB.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let (status, _, body) = invoke(
        imagemcp_app::routes::router(stack.app.clone()),
        &mcp_event(&key, list, Some(&session)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tools = body["result"]["tools"].as_array().expect("tools");
    assert!(
        tools.iter().any(|t| t["name"] == "openai_generate_image"),
        "{body}"
    );

    let (status, _, body) = invoke(
        imagemcp_app::routes::router(stack.app.clone()),
        &mcp_event(
            "imk_000000000000_wrong",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
            None,
        ),
    )
    .await;
    assert_eq!(status, 401, "a wrong key is refused: {body}");
}

/// A Stripe webhook delivery as API Gateway v2 hands it to the `webhooks` function.
fn stripe_event(body: &str, signature: Option<&str>) -> Value {
    let mut event = fixture("function-url-post-mcp.json");
    event["rawPath"] = json!("/webhooks/stripe");
    event["requestContext"]["http"]["path"] = json!("/webhooks/stripe");
    event["headers"] =
        json!({"content-type": "application/json; charset=utf-8", "host": "webhooks.example"});
    if let Some(sig) = signature {
        event["headers"]["stripe-signature"] = json!(sig);
    }
    event["body"] = json!(body);
    event["isBase64Encoded"] = json!(false);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_function_verifies_and_applies_stripe_events() {
    let stack = TestStack::new().await;
    // Billing off: no webhook is exposed.
    let body = r#"{"id":"evt_lambda_1","type":"customer.subscription.updated","created":1,"data":{"object":{"object":"subscription","customer":"cus_unknown"}}}"#;
    let (status, _, out) = invoke(
        imagemcp_lambda::webhooks_router(stack.app.clone()),
        &stripe_event(body, None),
    )
    .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{out}"
    );
    let mut unknown = fixture("apigw-v2-get-healthz.json");
    unknown["rawPath"] = json!("/webhooks/slack");
    unknown["requestContext"]["http"]["path"] = json!("/webhooks/slack");
    let (status, _, _) = invoke(
        imagemcp_lambda::webhooks_router(stack.app.clone()),
        &unknown,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = invoke(
        imagemcp_lambda::webhooks_router(stack.app.clone()),
        &fixture("apigw-v2-get-healthz.json"),
    )
    .await;
    assert_eq!(status, 200);

    // Billing on: a signed event is recorded once on DynamoDB; unsigned and badly signed are 401.
    let mut config = (*stack.app.config).clone();
    config.billing = Some(std::sync::Arc::new(imagemcp_app::billing::BillingConfig {
        webhook_secrets: vec!["whsec_lambda".into()],
        pro_price: "price_pro".into(),
        team_price: "price_team".into(),
        grace_days: 7,
        payments: std::sync::Arc::new(
            imagemcp_stripe::StripeClient::new(
                "http://127.0.0.1:9",
                "sk_test_x",
                std::time::Duration::from_secs(1),
            )
            .unwrap(),
        ),
        meter_event: "imagemcp_overage_images".into(),
    }));
    let app = imagemcp_app::App::new(stack.app.ports.clone(), config);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good = imagemcp_app::billing::signature::sign(body.as_bytes(), "whsec_lambda", now);
    let (status, _, out) = invoke(
        imagemcp_lambda::webhooks_router(app.clone()),
        &stripe_event(body, Some(&good)),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"], "ignored: event for an unknown customer");
    let (status, _, out) = invoke(
        imagemcp_lambda::webhooks_router(app.clone()),
        &stripe_event(body, Some(&good)),
    )
    .await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("duplicate")),
        "a replay changes nothing"
    );
    for bad in [
        None,
        Some(imagemcp_app::billing::signature::sign(
            body.as_bytes(),
            "whsec_other",
            now,
        )),
    ] {
        let (status, _, _) = invoke(
            imagemcp_lambda::webhooks_router(app.clone()),
            &stripe_event(body, bad.as_deref()),
        )
        .await;
        assert_eq!(status, 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_event_is_consumed_and_failures_are_reported_by_id() {
    let stack = TestStack::new().await;
    let org = OrgId::parse("org_fixture").unwrap();
    let job = jobs::enqueue(stack.app.jobs(), &org, jobs::KIND_PING, 4)
        .await
        .unwrap();
    let message = json!({"kind": "ping", "job_id": job.id, "org_id": org});

    let mut event = fixture("sqs-event.json");
    let record = &mut event["Records"][0];
    record["body"] = json!(message.to_string());
    record["messageId"] = json!("msg-ok");
    record["attributes"]["ApproximateReceiveCount"] = json!("1");
    let mut bad = record.clone();
    bad["messageId"] = json!("msg-not-a-job");
    bad["body"] = json!("Message Body");
    event["Records"].as_array_mut().unwrap().push(bad);

    let response =
        imagemcp_lambda::batch(&stack.app, 3, serde_json::from_value(event).unwrap()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["msg-not-a-job"],
        "only the message that is not a job fails"
    );
    let out = serde_json::to_value(&response).unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "msg-not-a-job"}]}),
        "the wire format Lambda reads"
    );

    let done = jobs::get(stack.app.jobs(), &org, &job.id).await.unwrap();
    assert_eq!(
        (done.status, done.items_done, done.attempts),
        (JobStatus::Done, 4, 1)
    );
}
