//! The fake OpenAI server over real HTTP: its error envelope and headers, validation of the edit and
//! Responses endpoints, streaming, the control API, concurrent latency, and the binary's contract
//! (URL alone on the first stdout line, clean exit on SIGTERM).

mod helpers;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fake_openai::FakeConfig;
use helpers::*;
use reqwest::Method;
use serde_json::{Value, json};

const MODEL: &str = "gpt-image-2.5-flare";

#[tokio::test]
async fn missing_keys_get_a_401_envelope_and_every_answer_has_the_headers() {
    let t = spawn(FakeConfig::local()).await;
    let resp = t
        .http
        .post(format!("{}/images/generations", t.fake.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    for header in [
        "x-request-id",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-requests",
    ] {
        assert!(resp.headers().contains_key(header), "missing {header}");
    }
    let (status, error) = error_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(error["type"], "invalid_request_error");
    let ok = t
        .post(
            "/images/generations",
            json!({"model": MODEL, "prompt": "a fox", "quality": "low"}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
}

#[tokio::test]
async fn generations_return_the_documented_shape() {
    let t = spawn(FakeConfig::local()).await;
    let body: Value = t
        .post("/images/generations", json!({"model": MODEL, "prompt": "a fox", "n": 2, "size": "1024x1536", "output_format": "jpeg"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            body["size"].as_str(),
            body["quality"].as_str(),
            body["background"].as_str()
        ),
        (Some("1024x1536"), Some("high"), Some("opaque"))
    );
    let bytes = STANDARD
        .decode(body["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (1024, 1536));
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
}

#[tokio::test]
async fn streaming_sends_partial_then_completed_events() {
    let t = spawn(FakeConfig::local()).await;
    let resp = t.post("/images/generations", json!({"model": MODEL, "prompt": "a fox", "stream": true, "partial_images": 2, "quality": "low"})).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed"
        ]
    );
    assert_eq!(events[1]["partial_image_index"], 1);
    assert!(
        events[2]["usage"]["output_tokens"].as_u64().unwrap() >= 200,
        "each partial costs 100 tokens"
    );
}

#[tokio::test]
async fn edits_are_validated_like_the_real_api() {
    let t = spawn(FakeConfig::local()).await;
    let ok = t
        .post_form(
            "/images/edits",
            edit_form(MODEL, 2, Some(png(64, 64, true))),
        )
        .await;
    assert_eq!(ok.status(), 200);

    let (status, e) = error_of(
        t.post_form(
            "/images/edits",
            edit_form(MODEL, 1, Some(png(32, 64, true))),
        )
        .await,
    )
    .await;
    assert_eq!((status, e["param"].as_str()), (400, Some("mask")));
    let (_, e) = error_of(
        t.post_form(
            "/images/edits",
            edit_form(MODEL, 1, Some(png(64, 64, false))),
        )
        .await,
    )
    .await;
    assert_eq!(e["param"], "mask", "a mask needs an alpha channel");
    let (_, e) = error_of(
        t.post_form("/images/edits", edit_form(MODEL, 17, None))
            .await,
    )
    .await;
    assert_eq!(e["param"], "image");
    let (_, e) = error_of(
        t.post_form("/images/edits", edit_form(MODEL, 0, None))
            .await,
    )
    .await;
    assert_eq!(e["param"], "image");
    let (_, e) = error_of(
        t.post_form("/images/edits", edit_form(MODEL, 1, None).text("n", "11"))
            .await,
    )
    .await;
    assert_eq!(e["param"], "n");
    let (_, e) = error_of(
        t.post_form(
            "/images/edits",
            edit_form("gpt-image-2", 1, None).text("input_fidelity", "high"),
        )
        .await,
    )
    .await;
    assert_eq!(e["param"], "input_fidelity");
    let gif = reqwest::multipart::Form::new()
        .text("model", MODEL)
        .text("prompt", "x")
        .part("image", image_part(b"GIF89a....".to_vec(), "a.gif"));
    let (_, e) = error_of(t.post_form("/images/edits", gif).await).await;
    assert_eq!(e["param"], "image");

    let files: Vec<String> = t.fake.requests_to("/images/edits")[0]
        .files
        .iter()
        .map(|f| f.field.clone())
        .collect();
    assert_eq!(files, vec!["image[]", "image[]", "mask"]);
}

#[tokio::test]
async fn edits_also_take_the_json_form_with_data_urls() {
    let t = spawn(FakeConfig::local()).await;
    let url = format!(
        "data:image/png;base64,{}",
        STANDARD.encode(png(64, 64, false))
    );
    let resp = t.post("/images/edits", json!({"model": MODEL, "prompt": "x", "images": [{"image_url": url}], "size": "1536x1024"})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["size"], "1536x1024");
    assert!(
        body["usage"]["input_tokens_details"]["image_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let recorded = &t.fake.requests()[0].fields;
    assert!(
        recorded["images"][0]["image_url"]
            .as_str()
            .unwrap()
            .starts_with("<data:image/png;base64,"),
        "{recorded}"
    );
}

#[tokio::test]
async fn responses_remember_turns_and_refuse_unknown_ids() {
    let t = spawn(FakeConfig::local()).await;
    let tool = json!([{"type": "image_generation", "model": MODEL, "quality": "low"}]);
    let first: Value = t
        .post(
            "/responses",
            json!({"model": "gpt-6-astra", "input": "a boat", "tools": tool}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = first["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"));
    assert_eq!(first["output"][0]["type"], "image_generation_call");
    assert!(
        first["output"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("ig_")
    );
    assert_eq!(first["output"][1]["type"], "message");
    assert!(
        first["tool_usage"]["image_gen"]["output_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    let second: Value = t
        .post("/responses", json!({"model": "gpt-6-astra", "input": "make it red", "tools": tool, "previous_response_id": id}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["output"][0]["revised_prompt"],
        "a boat. Then: make it red"
    );

    let (status, e) = error_of(t.post("/responses", json!({"model": "gpt-6-astra", "input": "x", "tools": tool, "previous_response_id": "resp_nope"})).await).await;
    assert_eq!(
        (status, e["code"].as_str(), e["param"].as_str()),
        (
            400,
            Some("previous_response_not_found"),
            Some("previous_response_id")
        )
    );
    let (_, e) = error_of(
        t.post(
            "/responses",
            json!({"model": MODEL, "input": "x", "tools": tool}),
        )
        .await,
    )
    .await;
    assert_eq!(
        e["param"], "model",
        "an image model cannot be the mainline model"
    );
    let (status, e) = error_of(
        t.post(
            "/responses",
            json!({"model": "gpt-6-astra", "input": "x", "tools": [{"type": "image_generation"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (404, Some("model_not_found")),
        "the tool's default model is dead"
    );
}

#[tokio::test]
async fn the_control_api_queues_faults_and_records_requests() {
    let t = spawn(FakeConfig::local()).await;
    let queued: Value = t
        .control(Method::POST, "faults", Some(json!([{"status": 429, "retry_after_s": 1, "times": 2}, {"status": 500, "path": "/moderations"}])))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queued["queued"], 2);
    let body = json!({"model": MODEL, "prompt": "x", "quality": "low"});
    let limited = t.post("/images/generations", body.clone()).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    let (_, e) = error_of(limited).await;
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert_eq!(
        t.post("/images/generations", body.clone()).await.status(),
        429
    );
    assert_eq!(
        t.post("/images/generations", body.clone()).await.status(),
        200
    );
    assert_eq!(
        t.post("/moderations", json!({"input": "x"})).await.status(),
        500
    );

    let recorded: Vec<Value> = t
        .control(Method::GET, "requests?path=/v1/images/generations", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.len(), 3);
    assert_eq!(
        recorded
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![429, 429, 200]
    );
    assert_eq!(recorded[0]["model"], MODEL);
    assert_eq!(recorded[0]["fields"]["prompt"], "x");

    let bad = t
        .control(Method::POST, "faults", Some(json!([{"stauts": 500}])))
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(t.control(Method::POST, "reset", None).await.status(), 200);
    let after: Vec<Value> = t
        .control(Method::GET, "requests", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(after.is_empty());
}

#[tokio::test]
async fn latency_applies_to_parallel_calls_concurrently() {
    let t = spawn(FakeConfig {
        latency: Duration::from_millis(1000),
        ..FakeConfig::local()
    })
    .await;
    let body = json!({"model": MODEL, "prompt": "x", "quality": "low", "size": "1024x640"});
    let started = Instant::now();
    let calls = (0..4).map(|_| t.post("/images/generations", body.clone()));
    let statuses: Vec<u16> = futures::future::join_all(calls)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let took = started.elapsed();
    assert_eq!(statuses, vec![200; 4]);
    assert!(
        took >= Duration::from_millis(1000),
        "latency applied: {took:?}"
    );
    assert!(
        took < Duration::from_millis(3000),
        "4 calls overlapped rather than queued: {took:?}"
    );
    let quick = Instant::now();
    assert_eq!(
        t.post("/moderations", json!({"input": "x"})).await.status(),
        200
    );
    assert!(
        quick.elapsed() < Duration::from_millis(900),
        "moderation is not slowed by default"
    );
}

#[test]
fn the_binary_prints_its_url_first_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-openai"))
        .args(["--addr", "127.0.0.1:0", "--latency-ms", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim_end().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(':'),
        "first line: {first:?}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let health = rt.block_on(async {
        reqwest::get(format!("{url}/_fake/health"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(health, "ok");

    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let exit = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("still running 10 s after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
