//! The 2026-07-28 additions driven as raw JSON-RPC through the MCP handler, exactly as the spec
//! shows them: the Tasks extension (task handles, `tasks/get`, `tasks/update`, `tasks/cancel`,
//! tenant scoping, expiry) and cost confirmation (`input_required` with an authenticated,
//! single-use `requestState`, and the `confirm_cost_cents` fallback).

use std::sync::Arc;
use std::time::Duration;

use imagemcp_app::auth::Caller;
use imagemcp_app::mcp::{McpBody, handle};
use imagemcp_app::{App, AppConfig};
use imagemcp_core::queue::PullQueue;
use imagemcp_core::table::Table;
use imagemcp_local::queue::SqliteQueue;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const TASKS: &str = "io.modelcontextprotocol/tasks";

pub(crate) struct Rig {
    pub(crate) t: TestApp,
    pub(crate) app: App,
    queue: Arc<SqliteQueue>,
    _fake: Option<fake_openai::FakeOpenAi>,
}

/// The app with a queue the test drains itself (and, with `priced`, the fake OpenAI as its model
/// so estimates are not zero).
pub(crate) async fn rig(priced: bool) -> Rig {
    let t = TestApp::new();
    let queue = Arc::new(SqliteQueue::open_in_memory(t.app.ports.clock.clone(), 3).unwrap());
    let mut ports = t.app.ports.clone();
    ports.queue = queue.clone();
    let mut fake = None;
    if priced {
        let f = fake_openai::spawn(fake_openai::FakeConfig::local())
            .await
            .expect("fake");
        let mut config = imagemcp_openai::OpenAiConfig::new(
            imagemcp_openai::ApiKey::new("sk-test").expect("key"),
        );
        config.base_url = f.base_url();
        ports.model = Arc::new(imagemcp_openai::OpenAiModel::new(config).expect("model"));
        fake = Some(f);
    }
    let app = App::new(ports, AppConfig::local("http://test"));
    Rig {
        t,
        app,
        queue,
        _fake: fake,
    }
}

/// One 2026-07-28 request with its routing headers; the status and the JSON-RPC message back.
pub(crate) async fn call(
    app: &App,
    caller: &Caller,
    method: &str,
    mut params: Value,
    caps: Value,
) -> (u16, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": caps,
    });
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut headers = http::HeaderMap::new();
    headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
    headers.insert("mcp-method", method.parse().unwrap());
    if let Some(name) = name {
        headers.insert("mcp-name", name.parse().unwrap());
    }
    send(app, caller, headers, body).await
}

async fn send(app: &App, caller: &Caller, headers: http::HeaderMap, body: Value) -> (u16, Value) {
    let reply = handle(
        app,
        caller,
        &http::Method::POST,
        &headers,
        serde_json::to_vec(&body).unwrap().into(),
    )
    .await;
    let McpBody::Json(message) = reply.body else {
        panic!("expected one JSON message")
    };
    (reply.status.as_u16(), message)
}

fn with_tasks() -> Value {
    json!({"extensions": {TASKS: {}}})
}

pub(crate) fn campaign_args() -> Value {
    json!({"campaign": "spring", "template": "social_media_kit", "prompt": "a tulip field",
           "quality": "low"})
}

impl Rig {
    /// Submits the campaign as a client that declared the Tasks extension; the task's id.
    async fn campaign_task(&self, caller: &Caller) -> String {
        let (_, m) = call(
            &self.app,
            caller,
            "tools/call",
            json!({"name": "openai_generate_campaign_batch", "arguments": campaign_args()}),
            with_tasks(),
        )
        .await;
        m["result"]["taskId"].as_str().unwrap().to_owned()
    }

    /// Delivers up to `n` queued messages to the consumer.
    pub(crate) async fn consume(&self, n: usize) {
        let batch = self
            .queue
            .receive(n, Duration::from_secs(60))
            .await
            .unwrap();
        for d in &batch {
            assert!(
                imagemcp_app::jobs::consume(&self.app, std::slice::from_ref(d), 3)
                    .await
                    .is_empty()
            );
            self.queue.ack(&d.receipt).await.unwrap();
        }
    }

    async fn images(&self, caller: &Caller) -> usize {
        self.app
            .images()
            .list(caller, &Default::default())
            .await
            .unwrap()
            .0
            .len()
    }
}

#[tokio::test]
async fn server_discover_advertises_the_tasks_extension() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let (status, m) = call(&r.app, &caller, "server/discover", json!({}), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(m["result"]["capabilities"]["extensions"][TASKS], json!({}));
}

#[tokio::test]
async fn a_campaign_is_a_task_polled_to_its_full_result() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let (status, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_campaign_batch", "arguments": campaign_args()}),
        with_tasks(),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    let task = &m["result"];
    assert_eq!(task["resultType"], "task");
    assert_eq!(task["status"], "working");
    for field in ["createdAt", "lastUpdatedAt"] {
        assert!(task[field].as_str().unwrap().ends_with('Z'), "{task}");
    }
    assert!(task["ttlMs"].as_u64().unwrap() > 0);
    assert!(task["pollIntervalMs"].as_u64().unwrap() > 0);
    assert!(task["statusMessage"].as_str().unwrap().contains("0 of 5"));
    let id = task["taskId"].as_str().unwrap().to_owned();

    // Durable before the answer: another instance (a second App on the same storage) knows it.
    let other = App::new(r.app.ports.clone(), AppConfig::local("http://test"));
    let (_, got) = call(
        &other,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!(got["result"]["status"], "working");
    assert_eq!(got["result"]["resultType"], "complete");
    assert!(got["result"].get("result").is_none());

    r.consume(2).await;
    let (_, got) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    let message = got["result"]["statusMessage"].as_str().unwrap();
    assert!(message.contains("2 of 5"), "{message}");
    assert!(message.contains("hero done (img_"), "{message}");

    r.consume(10).await;
    let (_, got) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    let done = &got["result"];
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], false);
    assert_eq!(done["result"]["structuredContent"]["items_done"], 5);
    let links = done["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .count();
    assert_eq!(links, 5, "the full result links every image");

    // tasks/update is acknowledged for the owner (nothing is outstanding).
    let (_, ack) = call(
        &r.app,
        &caller,
        "tasks/update",
        json!({"taskId": id, "inputResponses": {"nope": {"action": "accept"}}}),
        with_tasks(),
    )
    .await;
    assert_eq!(ack["result"]["resultType"], "complete");
}

#[tokio::test]
async fn cancelling_stops_the_remaining_items_and_charges_nothing_for_them() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let id = r.campaign_task(&caller).await;
    r.consume(2).await;
    let (_, ack) = call(
        &r.app,
        &caller,
        "tasks/cancel",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    r.consume(10).await;

    let (_, got) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!(got["result"]["status"], "cancelled");
    let message = got["result"]["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("2 of 5") && message.contains("cancelled"),
        "{message}"
    );
    assert_eq!(
        r.images(&caller).await,
        2,
        "finished items stay, the rest never ran"
    );
    let key = imagemcp_core::table::Key::new("ORG#org_a", "USAGE#2026-11#images");
    let used =
        r.t.table
            .get(&key)
            .await
            .unwrap()
            .and_then(|i| i.int("value"));
    assert_eq!(used, Some(2), "only the finished items were counted");
}

#[tokio::test]
async fn a_finished_task_cannot_be_cancelled() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let id = r.campaign_task(&caller).await;
    r.consume(10).await;
    let (status, err) = call(
        &r.app,
        &caller,
        "tasks/cancel",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("terminal")
    );
    let (_, got) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!(
        got["result"]["status"], "completed",
        "the cancel changed nothing"
    );
}

#[tokio::test]
async fn unknown_foreign_expired_and_undeclared_task_requests_are_refused() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let id = r.campaign_task(&caller).await;

    for bad in [
        "job_0190a0b0-0000-7000-8000-000000000000",
        "nonsense",
        "../x",
    ] {
        let (status, err) = call(
            &r.app,
            &caller,
            "tasks/get",
            json!({"taskId": bad}),
            with_tasks(),
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_i64()),
            (400, Some(-32602)),
            "{bad}"
        );
    }
    // Another organisation's task is unknown to it, for every method.
    let intruder = TestApp::caller("org_b");
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let (status, err) = call(
            &r.app,
            &intruder,
            method,
            json!({"taskId": id}),
            with_tasks(),
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_i64()),
            (400, Some(-32602)),
            "{method}"
        );
    }
    // A creator of the same organisation who did not submit it may read it but not cancel it.
    let colleague = TestApp::caller_as(
        "org_a",
        "usr_colleague",
        imagemcp_core::rbac::Role::Creator,
        &[
            imagemcp_core::rbac::Scope::ImagesRead,
            imagemcp_core::rbac::Scope::ImagesWrite,
        ],
    );
    let (_, seen) = call(
        &r.app,
        &colleague,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!(seen["result"]["status"], "working");
    let (status, err) = call(
        &r.app,
        &colleague,
        "tasks/cancel",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("submitter")
    );
    // Without the extension declared: -32021 naming it.
    let (status, err) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        json!({}),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32021)));
    assert_eq!(
        err["error"]["data"]["requiredCapabilities"]["extensions"][TASKS],
        json!({})
    );
    // Mcp-Name must carry the task id.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"taskId": id,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": with_tasks()}}});
    let mut headers = http::HeaderMap::new();
    headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
    headers.insert("mcp-method", "tasks/get".parse().unwrap());
    headers.insert("mcp-name", "job_other".parse().unwrap());
    let (status, err) = send(&r.app, &caller, headers, body).await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32020)));
    // The cancel attempts above changed nothing.
    let (_, got) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!(got["result"]["status"], "working");
    // A day later the handle has expired.
    r.t.clock.advance_ms(24 * 3600 * 1000 + 1);
    let (status, err) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn clients_without_the_extension_never_get_a_task() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_campaign_batch", "arguments": campaign_args()}),
        json!({}),
    )
    .await;
    assert_eq!(m["result"]["resultType"], "complete");
    assert!(
        m["result"]["structuredContent"]["job_id"].is_string(),
        "job id + openai_get_job"
    );
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": {"prompt": "a fox", "n": 4, "quality": "high"}}),
        json!({}),
    )
    .await;
    assert_eq!(m["result"]["resultType"], "complete");
    assert_eq!(
        m["result"]["structuredContent"]["images"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn a_long_generation_is_a_task_and_a_short_one_is_not() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let (_, short) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": {"prompt": "a fox", "n": 2}}),
        with_tasks(),
    )
    .await;
    assert_eq!(short["result"]["resultType"], "complete");
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": {"prompt": "a fox", "n": 4, "quality": "high"}}),
        with_tasks(),
    )
    .await;
    assert_eq!(m["result"]["resultType"], "task", "{m}");
    let id = m["result"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(
        r.images(&caller).await,
        2,
        "nothing generated before the consumer runs"
    );
    r.consume(5).await;
    let (_, got) = call(
        &r.app,
        &caller,
        "tasks/get",
        json!({"taskId": id}),
        with_tasks(),
    )
    .await;
    let done = &got["result"];
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["structuredContent"]["images"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        done["result"]["content"][1]["type"], "image",
        "previews inline, as sync"
    );
    assert!(done["result"]["content"][1]["data"].as_str().unwrap().len() > 100);
    // The job keeps no prompt in clear: its arguments are sealed, its result is ids.
    let query = imagemcp_core::table::Query::new("ORG#org_a", format!("JOB#{id}"), 100);
    let items = r.t.table.query(&query).await.unwrap().items;
    let stored =
        serde_json::to_string(&items.iter().map(|i| &i.attrs).collect::<Vec<_>>()).unwrap();
    assert!(
        stored.contains("image_ids") && !stored.contains("a fox"),
        "{stored}"
    );
}

// --- cost confirmation ------------------------------------------------------------------------

fn with_elicitation() -> Value {
    json!({"elicitation": {"form": {}}})
}

fn priced_args() -> Value {
    json!({"prompt": "a red kite", "quality": "high", "size": "1024x1024"})
}

async fn low_threshold(app: &App, caller: &Caller) {
    imagemcp_app::billing::confirmation::set_threshold(
        &app.billing,
        caller,
        imagemcp_app::billing::confirmation::SettingScope::Org,
        1,
    )
    .await
    .unwrap();
}

async fn ask(r: &Rig, caller: &Caller) -> Value {
    let (status, m) = call(
        &r.app,
        caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": priced_args()}),
        with_elicitation(),
    )
    .await;
    assert_eq!(status, 200);
    m["result"].clone()
}

async fn retry(r: &Rig, caller: &Caller, state: &Value, response: Value) -> (u16, Value) {
    call(
        &r.app,
        caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": priced_args(),
               "requestState": state, "inputResponses": {"confirm_cost": response}}),
        with_elicitation(),
    )
    .await
}

fn accept() -> Value {
    json!({"action": "accept", "content": {"confirm": true}})
}

#[tokio::test]
async fn over_the_threshold_the_server_asks_with_input_required_and_runs_once_confirmed() {
    let r = rig(true).await;
    let caller = TestApp::caller("org_a");
    low_threshold(&r.app, &caller).await;
    let asked = ask(&r, &caller).await;
    assert_eq!(asked["resultType"], "input_required", "{asked}");
    assert!(asked.get("ttlMs").is_none() && asked.get("cacheScope").is_none());
    let request = &asked["inputRequests"]["confirm_cost"];
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "form");
    assert_eq!(
        request["params"]["requestedSchema"]["required"],
        json!(["confirm"])
    );
    assert!(request["params"]["message"].as_str().unwrap().contains('$'));
    assert_eq!(r.images(&caller).await, 0, "asking spends nothing");

    let state = asked["requestState"].clone();
    let (_, done) = retry(&r, &caller, &state, accept()).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(done["result"]["isError"], false);
    assert_eq!(r.images(&caller).await, 1);

    // The same state again is a replay.
    let (status, err) = retry(&r, &caller, &state, accept()).await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );
    assert_eq!(r.images(&caller).await, 1, "a replay generates nothing");
}

#[tokio::test]
async fn tampered_foreign_expired_and_mismatched_states_are_refused_and_a_decline_costs_nothing() {
    let r = rig(true).await;
    let caller = TestApp::caller("org_a");
    low_threshold(&r.app, &caller).await;
    let asked = ask(&r, &caller).await;
    let state = asked["requestState"].as_str().unwrap().to_owned();

    // Tampered: one character of the payload changed.
    let mut bytes = state.clone().into_bytes();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let (status, err) = retry(&r, &caller, &json!(tampered), accept()).await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    // Foreign: another user of the same org.
    let other = TestApp::caller_as(
        "org_a",
        "usr_other",
        imagemcp_core::rbac::Role::Admin,
        &[imagemcp_core::rbac::Scope::Admin],
    );
    let (status, err) = retry(&r, &other, &json!(state), accept()).await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another caller")
    );
    // Other arguments than the ones confirmed.
    let (status, err) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image",
               "arguments": {"prompt": "a red kite", "quality": "high", "size": "1024x1024", "n": 4},
               "requestState": state, "inputResponses": {"confirm_cost": accept()}}),
        with_elicitation(),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    // A decline stores nothing and costs nothing, and does not use the state up.
    let (_, declined) = retry(&r, &caller, &json!(state), json!({"action": "decline"})).await;
    assert_eq!(declined["result"]["isError"], true);
    assert_eq!(r.images(&caller).await, 0);
    // Expired: eleven minutes later.
    r.t.clock.advance_ms(11 * 60 * 1000);
    let (status, err) = retry(&r, &caller, &json!(state), accept()).await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(
        r.images(&caller).await,
        0,
        "no refused state generated anything"
    );
    assert_eq!(r.t.blob_files(), 0);
}

#[tokio::test]
async fn without_elicitation_the_tool_error_names_the_estimate_and_confirm_cost_cents() {
    let r = rig(true).await;
    let caller = TestApp::caller("org_a");
    low_threshold(&r.app, &caller).await;
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": priced_args()}),
        json!({}),
    )
    .await;
    let result = &m["result"];
    assert_eq!(result["isError"], true, "{result}");
    let details = &result["_meta"]["io.imagemcp/error"];
    assert_eq!(details["code"], "confirmation_required");
    let estimate = details["estimate_cents"].as_u64().unwrap();
    assert!(estimate > 1);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("confirm_cost_cents") && text.contains(&estimate.to_string()));
    assert_eq!(r.images(&caller).await, 0);

    // Too little confirmed: still refused; enough: runs.
    let mut args = priced_args();
    args["confirm_cost_cents"] = json!(estimate - 1);
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": args.clone()}),
        json!({}),
    )
    .await;
    assert_eq!(m["result"]["isError"], true);
    args["confirm_cost_cents"] = json!(estimate);
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": args}),
        json!({}),
    )
    .await;
    assert_eq!(m["result"]["isError"], false, "{m}");
    assert_eq!(r.images(&caller).await, 1);
}

#[tokio::test]
async fn under_the_threshold_nothing_is_asked() {
    let r = rig(true).await;
    let caller = TestApp::caller("org_a");
    let (_, m) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": {"prompt": "a kite", "quality": "low", "size": "1024x1024"}}),
        with_elicitation(),
    )
    .await;
    assert_eq!(m["result"]["resultType"], "complete", "{m}");
    assert_eq!(m["result"]["isError"], false);
}

// --- cache hints ------------------------------------------------------------------------------

#[tokio::test]
async fn list_and_read_results_carry_the_right_cache_hints() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let (_, g) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_generate_image", "arguments": {"prompt": "a fox"}}),
        json!({}),
    )
    .await;
    let uri = g["result"]["content"][2]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let hints = |m: &Value| {
        (
            m["result"]["ttlMs"].as_u64(),
            m["result"]["cacheScope"].clone(),
        )
    };

    let (_, tools) = call(&r.app, &caller, "tools/list", json!({}), json!({})).await;
    let (ttl, scope) = hints(&tools);
    assert!(ttl.unwrap() > 0);
    assert_eq!(
        scope, "private",
        "the tool list depends on the caller's role and scopes"
    );
    let (_, templates) = call(
        &r.app,
        &caller,
        "resources/templates/list",
        json!({}),
        json!({}),
    )
    .await;
    assert_eq!(hints(&templates).1, "public");
    let (_, list) = call(&r.app, &caller, "resources/list", json!({}), json!({})).await;
    assert_eq!(hints(&list), (Some(0), json!("private")));
    let (_, read) = call(
        &r.app,
        &caller,
        "resources/read",
        json!({"uri": uri}),
        json!({}),
    )
    .await;
    assert_eq!(hints(&read), (Some(3_600_000), json!("private")));
    let (_, discover) = call(&r.app, &caller, "server/discover", json!({}), json!({})).await;
    assert_eq!(hints(&discover).1, "public");

    // An unknown resource is -32602 on 2026-07-28 (which retired -32002).
    let (status, err) = call(
        &r.app,
        &caller,
        "resources/read",
        json!({"uri": "image://img_0190a0b0-0000-7000-8000-000000000000"}),
        json!({}),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
}

// --- cost confirmation on the handshake revisions -----------------------------------------------

/// Opens a 2025-11-25 session declaring `capabilities`; returns its id.
pub(crate) async fn session(app: &App, caller: &Caller, capabilities: Value) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities,
        "clientInfo": {"name": "test", "version": "1"}}});
    let reply = handle(
        app,
        caller,
        &http::Method::POST,
        &http::HeaderMap::new(),
        serde_json::to_vec(&body).unwrap().into(),
    )
    .await;
    reply
        .headers
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.to_str().unwrap().to_owned())
        .expect("a session id")
}

pub(crate) async fn post_in_session(app: &App, caller: &Caller, sid: &str, body: Value) -> McpBody {
    let mut headers = http::HeaderMap::new();
    headers.insert("mcp-session-id", sid.parse().unwrap());
    handle(
        app,
        caller,
        &http::Method::POST,
        &headers,
        serde_json::to_vec(&body).unwrap().into(),
    )
    .await
    .body
}

async fn handshake_confirmation(answer: Value) -> (Rig, Value) {
    use futures::StreamExt;
    let r = rig(true).await;
    let caller = TestApp::caller("org_a");
    low_threshold(&r.app, &caller).await;
    let sid = session(&r.app, &caller, json!({"elicitation": {}})).await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "openai_generate_image", "arguments": priced_args()}});
    let McpBody::Stream(mut stream) = post_in_session(&r.app, &caller, &sid, call).await else {
        panic!("a confirmation is asked on the call's stream")
    };
    let request = stream.next().await.expect("the elicitation request");
    assert_eq!(request["method"], "elicitation/create");
    assert!(request["params"]["message"].as_str().unwrap().contains('$'));
    assert_eq!(
        request["params"]["requestedSchema"]["required"],
        json!(["confirm"])
    );
    assert_eq!(
        r.images(&caller).await,
        0,
        "nothing is generated before the answer"
    );
    // Another caller cannot answer it.
    let stranger = TestApp::caller_as(
        "org_a",
        "usr_other",
        imagemcp_core::rbac::Role::Admin,
        &[imagemcp_core::rbac::Scope::Admin],
    );
    let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result":
        {"action": "accept", "content": {"confirm": true}}});
    let mut headers = http::HeaderMap::new();
    headers.insert("mcp-session-id", sid.parse().unwrap());
    let foreign = handle(
        &r.app,
        &stranger,
        &http::Method::POST,
        &headers,
        serde_json::to_vec(&reply).unwrap().into(),
    )
    .await;
    assert_eq!(foreign.status.as_u16(), 404);
    // The answer arrives as a separate POST, as the transport has it.
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": answer});
    assert!(matches!(
        post_in_session(&r.app, &caller, &sid, answer).await,
        McpBody::Empty
    ));
    let last = stream.next().await.expect("the result");
    assert_eq!(last["id"], 9);
    assert!(stream.next().await.is_none());
    (r, last)
}

#[tokio::test]
async fn a_handshake_client_with_elicitation_is_asked_with_elicitation_create() {
    let (r, last) =
        handshake_confirmation(json!({"action": "accept", "content": {"confirm": true}})).await;
    assert_eq!(last["result"]["isError"], false, "{last}");
    assert!(
        last["result"].get("resultType").is_none(),
        "handshake results have no resultType"
    );
    assert_eq!(r.images(&TestApp::caller("org_a")).await, 1);
}

#[tokio::test]
async fn a_handshake_decline_generates_and_charges_nothing() {
    let (r, last) = handshake_confirmation(json!({"action": "decline"})).await;
    assert_eq!(last["result"]["isError"], true);
    assert_eq!(r.images(&TestApp::caller("org_a")).await, 0);
    assert_eq!(r.t.blob_files(), 0);
}

// --- arguments and initialize params of the wrong type ---------------------------------------

/// Four high-quality squares, written as an array in `GenerateArgs`' field order: filled in by
/// position, it would be `n: 4` at `high`, far above the confirmation threshold.
fn costly_array() -> Value {
    json!([
        "four costly squares",
        "1024x1024",
        "high",
        null,
        null,
        null,
        4
    ])
}

fn assert_invalid_arguments(status: u16, message: &Value) {
    assert_eq!(status, 400, "{message}");
    assert_eq!(message["error"]["code"], -32602, "{message}");
    assert_eq!(message["error"]["data"]["field"], "arguments", "{message}");
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object"),
        "{message}"
    );
}

#[tokio::test]
async fn arguments_that_are_not_an_object_are_refused_before_the_cost_gate_in_both_eras() {
    let r = rig(true).await;
    let caller = TestApp::caller("org_a");
    let bad_arguments = [costly_array(), json!("four costly squares"), json!(4)];
    let tools = ["openai_generate_image", "openai_generate_campaign_batch"];
    // 2026-07-28: without capabilities, with elicitation (which would be asked), with Tasks
    // (which would queue the work).
    let everything = json!({"elicitation": {"form": {}}, "extensions": {TASKS: {}}});
    for caps in [json!({}), with_elicitation(), with_tasks(), everything] {
        for tool in tools {
            for arguments in &bad_arguments {
                let (status, m) = call(
                    &r.app,
                    &caller,
                    "tools/call",
                    json!({"name": tool, "arguments": arguments}),
                    caps.clone(),
                )
                .await;
                assert_invalid_arguments(status, &m);
            }
        }
    }
    // The handshake era, with and without elicitation declared.
    for caps in [json!({}), json!({"elicitation": {}})] {
        let sid = session(&r.app, &caller, caps).await;
        for tool in tools {
            for arguments in &bad_arguments {
                let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments}});
                let mut headers = http::HeaderMap::new();
                headers.insert("mcp-session-id", sid.parse().unwrap());
                let (status, m) = send(&r.app, &caller, headers, body).await;
                assert_invalid_arguments(status, &m);
            }
        }
    }
    r.consume(100).await;
    assert_eq!(r.images(&caller).await, 0, "no image was made");
    assert_eq!(r.t.blob_files(), 0);
    let fake = r._fake.as_ref().unwrap();
    assert!(fake.requests().is_empty(), "the model was never called");
    let usage = imagemcp_app::billing::usage::summary(&r.app.billing, &caller)
        .await
        .unwrap();
    assert_eq!(
        (usage.used_images, usage.model_cost_micros),
        (0, 0),
        "nothing was charged"
    );

    // Absent and `null` arguments are no arguments, refused by the tool for its missing prompt.
    for params in [
        json!({"name": "openai_generate_image"}),
        json!({"name": "openai_generate_image", "arguments": null}),
    ] {
        let (status, m) = call(&r.app, &caller, "tools/call", params, json!({})).await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["result"]["isError"], true, "{m}");
        assert!(
            m["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("prompt")
        );
    }
}

#[tokio::test]
async fn initialize_with_wrongly_typed_params_is_refused_and_opens_no_session() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    for (params, field) in [
        (
            json!({"protocolVersion": 17, "capabilities": "x"}),
            "protocolVersion",
        ),
        (
            json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": "yes"},
                   "clientInfo": {"name": "raw", "version": "1"}}),
            "capabilities.elicitation",
        ),
        (
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": ["raw"], "version": "1"}}),
            "clientInfo.name",
        ),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params});
        let reply = handle(
            &r.app,
            &caller,
            &http::Method::POST,
            &http::HeaderMap::new(),
            serde_json::to_vec(&body).unwrap().into(),
        )
        .await;
        assert_eq!(reply.status.as_u16(), 400);
        assert!(
            reply.headers.iter().all(|(k, _)| k != "mcp-session-id"),
            "no session for a refused initialize"
        );
        let McpBody::Json(m) = reply.body else {
            panic!("one JSON message")
        };
        assert_eq!(m["error"]["code"], -32602, "{m}");
        assert_eq!(m["error"]["data"]["field"], field, "{m}");
        assert!(
            m["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{m}"
        );
    }
}
