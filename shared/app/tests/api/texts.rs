//! What a person reads in the tool results, through `tools/call` as a chat client sends it: the
//! ids, short prompts and next cursor of a listing; each job item's name and link; a cached answer
//! said first; the usage period as dates; a re-submitted campaign shown as the job it is; deletes
//! that can be repeated; and no error naming an argument that does not exist.

use imagemcp_app::auth::Caller;
use imagemcp_app::engine::Engine;
use imagemcp_app::{App, AppConfig};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::mcp_tasks::{call, campaign_args, rig};

/// A tool's result as the client gets it (JSON), and its text.
async fn tool(app: &App, caller: &Caller, name: &str, args: Value) -> (Value, String) {
    let result = imagemcp_app::mcp::tools::call(app, caller, name, args, None).await;
    let value = serde_json::to_value(result).unwrap();
    let text = value["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (value, text)
}

async fn generate(app: &App, caller: &Caller, prompt: &str) -> String {
    let (r, text) = tool(
        app,
        caller,
        "openai_generate_image",
        json!({"prompt": prompt, "quality": "low"}),
    )
    .await;
    assert_eq!(r["isError"], false, "{text}");
    r["structuredContent"]["images"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_listing_names_each_image_with_a_short_prompt_and_gives_the_next_cursor() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    let long = "a lighthouse on a basalt cliff at dusk, waves breaking, gulls circling, \
                warm light in the lantern room";
    let ids = [
        generate(&t.app, &caller, "one yellow star").await,
        generate(&t.app, &caller, long).await,
        generate(&t.app, &caller, "three white stars").await,
    ];
    let (page, text) = tool(&t.app, &caller, "openai_list_images", json!({"limit": 2})).await;
    let cursor = page["structuredContent"]["next_cursor"].as_str().unwrap();
    assert!(text.starts_with("2 image(s), newest first:"), "{text}");
    for id in &ids[1..] {
        assert!(text.contains(id.as_str()), "{id} in {text}");
    }
    assert!(text.contains("three white stars"), "{text}");
    let shown = text.lines().find(|l| l.contains(ids[1].as_str())).unwrap();
    let prompt = shown.split_once("): ").unwrap().1;
    assert!(
        prompt.ends_with('…') && prompt.chars().count() <= 60,
        "{prompt}"
    );
    assert!(long.starts_with(prompt.trim_end_matches('…')), "{prompt}");
    assert!(
        text.contains(&format!("cursor \"{cursor}\"")),
        "the next cursor itself is in the text: {text}"
    );

    let (_, last) = tool(
        &t.app,
        &caller,
        "openai_list_images",
        json!({"limit": 2, "cursor": cursor}),
    )
    .await;
    assert!(
        last.contains(ids[0].as_str()) && last.contains("one yellow star"),
        "{last}"
    );
    assert!(!last.contains("cursor"), "no more pages: {last}");
}

#[tokio::test]
async fn a_cached_result_says_so_first() {
    let t = TestApp::new();
    let mut engine = Engine::default_for(&t.app.ports);
    engine.config.cache.enabled_by_default = true;
    let app = App::with_engine(t.app.ports.clone(), AppConfig::local("http://test"), engine);
    let caller = TestApp::caller("org_a");
    let args = json!({"prompt": "a copper teapot", "quality": "low"});
    let (first, made) = tool(&app, &caller, "openai_generate_image", args.clone()).await;
    assert!(first["structuredContent"].get("cache").is_none());
    assert!(made.starts_with("Created 1 image(s)"), "{made}");
    let (again, cached) = tool(&app, &caller, "openai_generate_image", args).await;
    assert!(again["structuredContent"]["cache"].is_object(), "{again}");
    assert!(cached.starts_with("From the cache:"), "{cached}");
    assert!(
        cached.contains("no quota") && cached.contains("fresh: true"),
        "{cached}"
    );
    assert!(!cached.contains("Created"), "nothing was created: {cached}");
}

#[tokio::test]
async fn the_usage_summary_shows_its_period_as_dates() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    let (r, text) = tool(&t.app, &caller, "openai_usage_summary", json!({})).await;
    // The test clock stands at 2026-11-24; billing is off, so the period is the calendar month.
    let usage = &r["structuredContent"];
    assert_eq!(
        (usage["period_start"].as_str(), usage["period_end"].as_str()),
        (Some("2026-11-01"), Some("2026-11-30"))
    );
    assert!(text.contains("period 2026-11-01 to 2026-11-30"), "{text}");
    assert!(!text.contains("period 2026-11:"), "{text}");
}

#[tokio::test]
async fn with_billing_off_errors_name_no_argument_that_does_not_exist() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    for (name, args) in [
        ("openai_upgrade_plan", json!({"tier": "pro"})),
        ("openai_billing_portal", json!({})),
    ] {
        let (r, text) = tool(&t.app, &caller, name, args).await;
        assert_eq!(r["isError"], true, "{name}: {text}");
        assert!(text.contains("billing is off"), "{name}: {text}");
        assert!(
            !text.contains("Invalid argument") && !text.contains("`billing`"),
            "{name}: {text}"
        );
        let details = &r["_meta"]["io.imagemcp/error"];
        assert!(details.get("field").is_none(), "{name}: {details}");
    }
}

#[tokio::test]
async fn a_second_delete_succeeds_as_already_deleted_and_another_orgs_id_is_not_found() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    let id = generate(&t.app, &caller, "a paper boat").await;
    let args = json!({"image_id": id});
    let (first, text) = tool(&t.app, &caller, "openai_delete_image", args.clone()).await;
    assert_eq!(
        first["structuredContent"],
        json!({"image_id": id, "deleted": true, "already_deleted": false}),
        "{text}"
    );
    let (again, text) = tool(&t.app, &caller, "openai_delete_image", args.clone()).await;
    assert_eq!(again["isError"], false, "{text}");
    assert_eq!(
        again["structuredContent"],
        json!({"image_id": id, "deleted": true, "already_deleted": true})
    );
    assert!(text.contains("already deleted"), "{text}");
    let (foreign, text) = tool(
        &t.app,
        &TestApp::caller("org_b"),
        "openai_delete_image",
        args.clone(),
    )
    .await;
    assert_eq!(foreign["isError"], true);
    assert!(text.contains("not found"), "{text}");
    // Someone who may not delete learns nothing new by trying.
    let viewer = TestApp::caller_as(
        "org_a",
        "usr_viewer",
        imagemcp_core::rbac::Role::Viewer,
        &[imagemcp_core::rbac::Scope::ImagesRead],
    );
    let (refused, _) = tool(&t.app, &viewer, "openai_delete_image", args).await;
    assert_eq!(refused["isError"], true);
}

/// `tools/call` of the campaign tool as a client without the Tasks extension: the result.
async fn submit(app: &App, caller: &Caller, key: &str) -> Value {
    let mut args = campaign_args();
    args["idempotency_key"] = json!(key);
    let (status, m) = call(
        app,
        caller,
        "tools/call",
        json!({"name": "openai_generate_campaign_batch", "arguments": args}),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    m["result"].clone()
}

fn text_of(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test]
async fn a_job_lists_its_items_with_names_and_links_and_a_resubmission_says_it_is_that_job() {
    let r = rig(false).await;
    let caller = TestApp::caller("org_a");
    let queued = submit(&r.app, &caller, "spring-1").await;
    let job_id = queued["structuredContent"]["job_id"].as_str().unwrap();
    assert!(
        text_of(&queued).contains("is queued with 5 item(s)"),
        "{queued}"
    );
    r.consume(2).await;

    // Submitted again with the same key: the existing job, with its real status.
    let again = submit(&r.app, &caller, "spring-1").await;
    let status = again["structuredContent"]["status"].as_str().unwrap();
    assert_eq!(again["structuredContent"]["job_id"], job_id);
    assert_eq!(status, "running");
    let text = text_of(&again);
    assert!(
        text.starts_with("This idempotency_key was used before"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{job_id} is {status}: 2 of 5")),
        "the text and the status agree: {text}"
    );
    assert!(!text.contains("queued"), "{text}");

    let (_, got) = call(
        &r.app,
        &caller,
        "tools/call",
        json!({"name": "openai_get_job", "arguments": {"job_id": job_id}}),
        json!({}),
    )
    .await;
    let result = &got["result"];
    let text = text_of(result);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "a head line and one per item: {text}");
    assert!(
        lines[0].contains(&format!("{job_id} (campaign) is running: 2 of 5")),
        "{text}"
    );
    let done: Vec<&&str> = lines[1..]
        .iter()
        .filter(|l| l.contains("image://img_"))
        .collect();
    assert_eq!(done.len(), 2, "{text}");
    for line in &done {
        // "1. spring_hero_v1.png (hero): image://img_… (download: http://test/files/…)"
        assert!(
            line.contains("spring_") && line.contains("_v1.png ("),
            "{line}"
        );
        assert!(line.contains("(download: http://test/"), "{line}");
    }
    assert_eq!(
        lines[1..]
            .iter()
            .filter(|l| l.ends_with(": pending"))
            .count(),
        3,
        "{text}"
    );
    let links = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .count();
    assert_eq!(links, 2);
}
