//! In-process tests of the application on the local adapters: the atomicity of generation, the
//! MCP handler's progress stream, and tenant scoping.

mod accounts;
mod audit;
mod billing;
mod campaigns;
mod crash;
mod encryption;
mod engine;
mod gdpr;
mod helpers;
mod mcp_tasks;
mod oauth;
mod rest;
mod retention;
mod reveal;
mod teams;
mod texts;
mod webhooks;

use std::sync::atomic::Ordering;

use futures::StreamExt;
use helpers::TestApp;
use imagemcp_app::images::params::{GenerateArgs, ListArgs, parse_args};
use imagemcp_app::mcp::{McpBody, handle};
use imagemcp_core::Error;
use imagemcp_core::table::{Key, Table};
use serde_json::{Value, json};

fn args(v: Value) -> GenerateArgs {
    parse_args(v).expect("valid arguments")
}

async fn usage(t: &TestApp, counter: &str) -> Option<i64> {
    let key = Key::new("ORG#org_a", format!("USAGE#2026-11#{counter}"));
    t.table
        .get(&key)
        .await
        .expect("get")
        .and_then(|i| i.int("value"))
}

#[tokio::test]
async fn a_failed_blob_write_leaves_no_metadata_no_files_and_no_usage() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    t.blobs.fail_puts.store(true, Ordering::SeqCst);
    let err = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": "a red cube", "n": 2})), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let (images, _) = t
        .app
        .images()
        .list(&caller, &ListArgs::default())
        .await
        .unwrap();
    assert!(images.is_empty());
    assert_eq!(t.blob_files(), 0);
    assert_eq!(usage(&t, "images").await, None);

    t.blobs.fail_puts.store(false, Ordering::SeqCst);
    let ok = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": "a red cube", "n": 2})), None)
        .await
        .unwrap();
    assert_eq!(ok.images.len(), 2);
    assert_eq!(t.blob_files(), 4, "two images and two previews");
    assert_eq!(usage(&t, "images").await, Some(2));
    assert!(usage(&t, "output_tokens").await.unwrap() > 0);
}

/// The size, format and background of a stored image.
fn looks(rec: &imagemcp_app::images::record::ImageRecord) -> (u32, u32, &str, &str) {
    (
        rec.width,
        rec.height,
        rec.format.as_str(),
        rec.background.as_str(),
    )
}

/// A refinement keeps the size, format and background of the image it refines, on `app`; what the
/// refining call sets itself wins.
async fn refinement_keeps_the_look(app: &imagemcp_app::App) {
    let caller = TestApp::caller("org_a");
    let svc = app.images();
    let generate = async |v: Value| svc.generate(&caller, args(v), None).await.unwrap();
    let first = generate(json!({"prompt": "a blue door", "size": "1536x1024",
        "output_format": "webp", "background": "transparent", "quality": "low"}))
    .await;
    let conv = first.conversation.id.to_string();
    for (v, expect, why) in [
        (
            json!({"prompt": "paint it green"}),
            (1536, 1024, "webp", "transparent"),
            "the refinement keeps the look",
        ),
        (
            json!({"prompt": "now at night", "size": "1024x1536", "output_format": "jpeg"}),
            (1024, 1536, "jpeg", "auto"),
            "explicit settings win; a format without alpha drops the inherited transparency",
        ),
        (
            json!({"prompt": "with a lantern"}),
            (1024, 1536, "jpeg", "auto"),
            "the next refinement keeps the new look",
        ),
    ] {
        let mut v = v;
        v["conversation_id"] = json!(conv);
        v["quality"] = json!("low");
        assert_eq!(looks(&generate(v).await.images[0]), expect, "{why}");
    }
    assert_eq!(looks(&first.images[0]), (1536, 1024, "webp", "transparent"));
}

#[tokio::test]
async fn an_offline_refinement_keeps_the_size_format_and_background() {
    refinement_keeps_the_look(&TestApp::new().app).await;
}

/// The same through the OpenAI adapter, whose refinements go through the Responses API.
#[tokio::test]
async fn a_responses_api_refinement_keeps_the_size_format_and_background() {
    let t = TestApp::new();
    let (app, fake) = billing::on_fake_openai(&t, |_| {}).await;
    refinement_keeps_the_look(&app).await;
    let tools: Vec<Value> = fake
        .requests_to("/v1/responses")
        .iter()
        .map(|r| r.fields["tools"][0].clone())
        .collect();
    assert_eq!(
        tools.len(),
        3,
        "every refinement went through the Responses API"
    );
    assert_eq!(
        (
            &tools[0]["size"],
            &tools[0]["output_format"],
            &tools[0]["background"]
        ),
        (&json!("1536x1024"), &json!("webp"), &json!("transparent"))
    );
    assert_eq!(tools[2]["size"], json!("1024x1536"));
}

#[tokio::test]
async fn racing_refinements_of_one_turn_cannot_both_win() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    let first = t
        .app
        .images()
        .generate(&caller, args(json!({"prompt": "a blue door"})), None)
        .await
        .unwrap();
    let conv = first.conversation.id.to_string();
    let svc = t.app.images();
    let (a, b) = futures::join!(
        svc.generate(
            &caller,
            args(json!({"prompt": "paint it green", "conversation_id": conv})),
            None
        ),
        svc.generate(
            &caller,
            args(json!({"prompt": "paint it pink", "conversation_id": conv})),
            None
        ),
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one refinement wins: {outcomes:?}"
    );
    let loser = a.err().or(b.err()).expect("one refinement lost");
    assert!(matches!(loser, Error::Conflict(_)), "{loser}");
    let (images, _) = svc.list(&caller, &ListArgs::default()).await.unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(t.blob_files(), 4, "the loser's files were removed");
    assert_eq!(
        svc.conversation(&caller, &first.conversation.id)
            .await
            .unwrap()
            .turns,
        2
    );
}

#[tokio::test]
async fn another_orgs_image_is_not_found() {
    let t = TestApp::new();
    let a = TestApp::caller("org_a");
    let b = TestApp::caller("org_b");
    let made = t
        .app
        .images()
        .generate(&a, args(json!({"prompt": "a secret plan"})), None)
        .await
        .unwrap();
    let id = made.images[0].id.clone();
    assert!(matches!(
        t.app.images().get(&b, &id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        t.app.images().delete(&b, &id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        t.app
            .images()
            .list(&b, &ListArgs::default())
            .await
            .unwrap()
            .0
            .is_empty()
    );
    assert!(
        t.app.images().get(&a, &id).await.is_ok(),
        "still there for its owner"
    );
}

/// One `tools/call` of a 2026-07-28 client through the MCP handler, as `org_a`'s admin; `meta`
/// adds to the request's `_meta` (a `progressToken` asks for a stream).
async fn call_tool_with(
    t: &TestApp,
    id: u64,
    name: &str,
    arguments: Value,
    meta: Value,
) -> imagemcp_app::mcp::McpResponse {
    let mut body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": name, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    if let (Some(into), Value::Object(extra)) = (body["params"]["_meta"].as_object_mut(), meta) {
        into.extend(extra);
    }
    let mut headers = http::HeaderMap::new();
    headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
    headers.insert("mcp-method", "tools/call".parse().unwrap());
    headers.insert("mcp-name", name.parse().unwrap());
    let caller = TestApp::caller("org_a");
    handle(
        &t.app,
        &caller,
        &http::Method::POST,
        &headers,
        serde_json::to_vec(&body).unwrap().into(),
    )
    .await
}

/// One `tools/call` answered as plain JSON (no progress token).
async fn call_tool(t: &TestApp, name: &str, arguments: Value) -> Value {
    let reply = call_tool_with(t, 1, name, arguments, json!({})).await;
    let McpBody::Json(message) = reply.body else {
        panic!("a call without a progress token is answered as JSON")
    };
    message
}

#[tokio::test]
async fn a_generation_shows_the_previews_it_made_without_reading_storage_back() {
    let t = TestApp::new();
    let reads = || t.blobs.gets.load(Ordering::SeqCst);
    let before = reads();
    let made = call_tool(
        &t,
        "openai_generate_image",
        json!({"prompt": "three teal kites", "n": 2}),
    )
    .await;
    let content = made["result"]["content"].as_array().expect("content");
    let previews = content.iter().filter(|c| c["type"] == "image").count();
    assert_eq!(previews, 2, "each image is shown: {made}");
    assert_eq!(
        reads() - before,
        0,
        "the previews travel with the generation's result, nothing just written is read back"
    );
    // Reading an image that exists does read its preview: the counter sees reads.
    let id = made["result"]["structuredContent"]["images"][0]["id"]
        .as_str()
        .expect("an image id")
        .to_owned();
    let before = reads();
    let got = call_tool(&t, "openai_get_image", json!({"image_id": id})).await;
    assert_eq!(got["result"]["isError"], json!(false), "{got}");
    assert_eq!(
        reads() - before,
        1,
        "one read: the preview of the image asked for"
    );
}

#[tokio::test]
async fn progress_notifications_precede_the_result_in_the_stream() {
    let t = TestApp::new();
    let reply = call_tool_with(
        &t,
        7,
        "openai_generate_image",
        json!({"prompt": "an orange kite", "n": 3}),
        json!({"progressToken": "tok"}),
    )
    .await;
    let McpBody::Stream(stream) = reply.body else {
        panic!("a progress token asks for a stream")
    };
    let messages: Vec<Value> = stream.collect().await;
    let (last, notes) = messages.split_last().expect("messages");
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["resultType"], "complete");
    assert_eq!(
        last["result"]["structuredContent"]["images"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(notes.len() >= 4, "{notes:?}");
    let progress: Vec<u64> = notes
        .iter()
        .map(|n| n["params"]["progress"].as_u64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(
        notes
            .iter()
            .all(|n| n["method"] == "notifications/progress"
                && n["params"]["progressToken"] == "tok")
    );
}
