//! The OpenAI adapter against the fake OpenAI server: every port method round-trips, and every
//! failure OpenAI can answer with maps to the right `imagemcp_core::Error` after the right number
//! of calls, without ever showing the API key.

mod helpers;

use std::time::{Duration, Instant};

use fake_openai::{FakeConfig, Fault};
use helpers::*;
use image::GenericImageView;
use imagemcp_core::Error;
use imagemcp_core::catalog;
use imagemcp_core::image_params::{Background, ImageSize, ModerationLevel, OutputFormat, Quality};
use imagemcp_core::model::{ImageModel, Refinement};
use imagemcp_openai::RetryPolicy;
use serde_json::json;

#[tokio::test]
async fn generate_round_trips_size_format_and_transparency() {
    let app = spawn().await;
    let mut req = generate("a red fox in the snow");
    req.params = params(
        fixed(1536, 1024),
        OutputFormat::Webp,
        Background::Transparent,
    );
    req.safety_identifier = Some("user-hash-1".into());
    let out = app.model.generate(req.clone()).await.unwrap();

    assert_eq!(
        (out.image.format, out.image.width, out.image.height),
        (OutputFormat::Webp, 1536, 1024)
    );
    let decoded =
        image::load_from_memory_with_format(&out.image.bytes, image::ImageFormat::WebP).unwrap();
    assert_eq!(decoded.dimensions(), (1536, 1024));
    assert!(
        decoded.color().has_alpha(),
        "transparent background must come back with alpha"
    );
    assert_eq!(decoded.get_pixel(0, 0).0[3], 0, "a corner is transparent");
    assert_eq!(out.model, catalog::DEFAULT_MODEL);
    assert_eq!(out.response_id, None);

    let spec = catalog::lookup(catalog::DEFAULT_MODEL).unwrap();
    assert_eq!(
        out.usage.output_image_tokens,
        spec.estimate_output_tokens(fixed(1536, 1024), Quality::Low)
    );
    assert_eq!(
        out.usage.input_text_tokens,
        "a red fox in the snow".len().div_ceil(4) as u64
    );
    assert_eq!(
        out.usage.total_tokens,
        out.usage.input_text_tokens + out.usage.output_image_tokens
    );

    let sent = app.requests_to("/images/generations");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/images/generations");
    assert_eq!(
        sent[0].fields,
        json!({"model": catalog::DEFAULT_MODEL, "prompt": "a red fox in the snow", "n": 1, "size": "1536x1024",
               "quality": "low", "background": "transparent", "output_format": "webp", "safety_identifier": "user-hash-1"})
    );
}

#[tokio::test]
async fn generate_sends_only_non_default_fields_and_honours_jpeg() {
    let app = spawn().await;
    let mut req = generate("a lighthouse");
    req.params.format = OutputFormat::Jpeg;
    req.params.quality = Quality::Auto;
    req.params.compression = Some(60);
    req.moderation = ModerationLevel::Low;
    let out = app.model.generate(req).await.unwrap();
    assert_eq!(
        (out.image.format, out.image.width, out.image.height),
        (OutputFormat::Jpeg, 1024, 1024)
    );
    assert!(
        !image::load_from_memory(&out.image.bytes)
            .unwrap()
            .color()
            .has_alpha()
    );
    let fields = &app.requests()[0].fields;
    assert_eq!(fields["output_compression"], 60);
    assert_eq!(fields["moderation"], "low");
    assert!(
        fields.get("quality").is_none()
            && fields.get("size").is_none()
            && fields.get("background").is_none(),
        "{fields}"
    );
}

#[tokio::test]
async fn edit_sends_two_images_and_a_mask() {
    let app = spawn().await;
    let mut req = edit(
        "put a hat on the fox",
        vec![png(256, 256, false), jpeg(320, 200)],
        Some(png(256, 256, true).bytes),
    );
    req.params = params(fixed(1024, 1536), OutputFormat::Png, Background::Opaque);
    let out = app.model.edit(req).await.unwrap();
    assert_eq!((out.image.width, out.image.height), (1024, 1536));
    assert!(
        out.usage.input_image_tokens > 0,
        "the inputs are billed as image tokens: {:?}",
        out.usage
    );

    let sent = app.requests_to("/v1/images/edits");
    assert_eq!(sent.len(), 1);
    let files: Vec<(&str, Option<&str>)> = sent[0]
        .files
        .iter()
        .map(|f| (f.field.as_str(), f.content_type.as_deref()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("image[]", Some("image/png")),
            ("image[]", Some("image/jpeg")),
            ("mask", Some("image/png"))
        ]
    );
    assert_eq!(sent[0].fields["model"], catalog::DEFAULT_MODEL);
    assert_eq!(sent[0].fields["n"], "1");
    assert_eq!(sent[0].fields["size"], "1024x1536");
}

#[tokio::test]
async fn edit_with_a_mask_of_the_wrong_size_is_invalid_mask() {
    let app = spawn().await;
    let req = edit(
        "fix it",
        vec![png(256, 256, false)],
        Some(png(128, 256, true).bytes),
    );
    let err = app.model.edit(req).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, reason } if field == "mask" && reason.contains("128x256")),
        "{err:?}"
    );
    assert_eq!(app.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn edit_refuses_bad_inputs_before_calling() {
    let app = spawn().await;
    let not_an_image = imagemcp_core::model::InputImage {
        bytes: b"hello".to_vec(),
        format: OutputFormat::Png,
    };
    let err = app
        .model
        .edit(edit("x", vec![not_an_image], None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "images"),
        "{err:?}"
    );
    let err = app.model.edit(edit("x", vec![], None)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "images"),
        "{err:?}"
    );
    assert!(app.requests().is_empty());
}

#[tokio::test]
async fn refine_continues_the_conversation_by_response_id() {
    let app = spawn().await;
    let first = app.model.generate(generate("a paper boat")).await.unwrap();

    let mut turn2 = generate("make it red");
    turn2.params.format = OutputFormat::Jpeg;
    turn2.refine = Some(Refinement {
        previous_image: Some(imagemcp_core::model::InputImage {
            bytes: first.image.bytes.clone(),
            format: OutputFormat::Png,
        }),
        ..Refinement::default()
    });
    let second = app.model.generate(turn2).await.unwrap();
    let id2 = second
        .response_id
        .clone()
        .expect("a Responses call returns its id");
    assert!(id2.starts_with("resp_"));
    assert_eq!(second.image.format, OutputFormat::Jpeg);
    assert!(
        second.usage.output_image_tokens > 0 && second.usage.input_text_tokens > 0,
        "{:?}",
        second.usage
    );

    let mut turn3 = generate("now add a sail");
    turn3.refine = Some(Refinement {
        previous_response_id: Some(id2.clone()),
        ..Refinement::default()
    });
    let third = app.model.generate(turn3).await.unwrap();
    assert_ne!(third.response_id, Some(id2.clone()));
    assert_eq!(
        third.image.revised_prompt.as_deref(),
        Some("make it red. Then: now add a sail"),
        "the fake saw the earlier turn"
    );

    let sent = app.requests_to("/responses");
    assert_eq!(sent.len(), 2);
    let (t2, t3) = (&sent[0].fields, &sent[1].fields);
    assert_eq!(t2["model"], imagemcp_openai::DEFAULT_MAINLINE_MODEL);
    assert_eq!(t2["tools"][0]["type"], "image_generation");
    assert_eq!(t2["tools"][0]["model"], catalog::DEFAULT_MODEL);
    assert!(t2.get("previous_response_id").is_none());
    let image_url = t2["input"][0]["content"][1]["image_url"].as_str().unwrap();
    assert!(
        image_url.starts_with("<data:image/png;base64"),
        "the previous image goes as a data URL: {image_url}"
    );
    assert_eq!(t3["previous_response_id"], id2.as_str());
    assert_eq!(
        t3["input"][0]["content"].as_array().unwrap().len(),
        1,
        "with an id, no image is re-sent"
    );
}

#[tokio::test]
async fn refine_falls_back_to_the_image_when_the_response_is_gone() {
    let app = spawn().await;
    let mut req = generate("make it blue");
    req.refine = Some(Refinement {
        previous_response_id: Some("resp_forgotten".into()),
        previous_image: Some(png(64, 64, false)),
        previous_prompt: Some("a cube".into()),
    });
    let out = app.model.generate(req).await.unwrap();
    assert!(out.response_id.is_some());
    let sent = app.requests_to("/responses");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].status, Some(400));
    assert!(sent[1].fields.get("previous_response_id").is_none());
    let content = sent[1].fields["input"][0]["content"].as_array().unwrap();
    assert!(
        content.iter().any(|p| p["type"] == "input_image"),
        "{content:?}"
    );
}

#[tokio::test]
async fn refine_with_an_unknown_response_and_no_image_is_invalid() {
    let app = spawn().await;
    let mut req = generate("again");
    req.refine = Some(Refinement {
        previous_response_id: Some("resp_nope".into()),
        ..Refinement::default()
    });
    let err = app.model.generate(req).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "previous_response_id"),
        "{err:?}"
    );
}

#[tokio::test]
async fn moderation_flags_and_clears() {
    let app = spawn().await;
    let flagged = app.model.moderate("so much gore everywhere").await.unwrap();
    assert!(flagged.flagged);
    assert_eq!(
        flagged.categories,
        vec!["violence".to_owned(), "violence/graphic".to_owned()]
    );
    let clean = app.model.moderate("a bowl of fruit").await.unwrap();
    assert!(!clean.flagged && clean.categories.is_empty());
    let sent = app.requests_to("/moderations");
    assert_eq!(
        sent[0].fields,
        json!({"model": "omni-moderation-latest", "input": "so much gore everywhere"})
    );
}

#[tokio::test]
async fn describe_asks_the_vision_model_with_the_image() {
    let app = spawn().await;
    let text = app.model.describe(&jpeg(300, 200)).await.unwrap();
    assert!(text.contains("300 by 200"), "{text}");
    let sent = app.requests_to("/responses");
    assert_eq!(
        sent[0].fields["model"],
        imagemcp_openai::DEFAULT_VISION_MODEL
    );
    assert_eq!(
        sent[0].fields["input"][0]["content"][1]["type"],
        "input_image"
    );
    assert!(sent[0].fields.get("tools").is_none());
}

#[tokio::test]
async fn a_429_then_success_waits_as_told_and_calls_twice() {
    let app = spawn().await;
    app.fake.push_faults([Fault::status(429).retry_after_s(1)]);
    let out = app.model.generate(generate("a kite")).await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(app.requests().len(), 2);
    assert_eq!(app.requests()[0].status, Some(429));
    assert_eq!(app.sleeper.waits(), vec![Duration::from_secs(1)]);
}

#[tokio::test]
async fn retry_after_ms_wins_over_retry_after() {
    let app = spawn().await;
    app.fake
        .push_faults([Fault::status(503).retry_after_ms(250).retry_after_s(9)]);
    app.model.moderate("hello").await.unwrap();
    assert_eq!(app.sleeper.waits(), vec![Duration::from_millis(250)]);
}

#[tokio::test]
async fn server_errors_exhaust_the_retries_then_unavailable() {
    let app = spawn().await;
    app.fake.push_faults([Fault::status(500).times(10)]);
    let err = app.model.generate(generate("a tree")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("500") && m.contains("3 attempts")),
        "{err:?}"
    );
    assert_eq!(app.requests().len(), 3, "1 call + max_retries (2)");
    let waits = app.sleeper.waits();
    assert_eq!(waits.len(), 2);
    assert!(
        waits[0] >= Duration::from_millis(375) && waits[0] <= Duration::from_millis(500),
        "{waits:?}"
    );
    assert!(
        waits[1] >= Duration::from_millis(750) && waits[1] <= Duration::from_secs(1),
        "{waits:?}"
    );
}

#[tokio::test]
async fn max_retries_is_configurable() {
    let app = spawn_with(FakeConfig::local(), |c| {
        c.retry = RetryPolicy {
            max_retries: 4,
            ..RetryPolicy::DEFAULT
        }
    })
    .await;
    app.fake.push_faults([Fault::status(502).times(10)]);
    assert!(matches!(
        app.model.generate(generate("x")).await,
        Err(Error::Unavailable(_))
    ));
    assert_eq!(app.requests().len(), 5);
}

#[tokio::test]
async fn rate_limits_that_persist_become_rate_limited() {
    let app = spawn().await;
    app.fake
        .push_faults([Fault::status(429).retry_after_s(2).times(10)]);
    let err = app.model.generate(generate("x")).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after } if retry_after == Duration::from_secs(2)),
        "{err:?}"
    );
    assert_eq!(app.requests().len(), 3);
}

#[tokio::test]
async fn a_retry_after_over_two_minutes_is_not_waited_for() {
    let app = spawn().await;
    app.fake
        .push_faults([Fault::status(429).retry_after_s(300)]);
    let err = app.model.generate(generate("x")).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after } if retry_after == Duration::from_secs(300)),
        "{err:?}"
    );
    assert_eq!(app.requests().len(), 1);
    assert!(app.sleeper.waits().is_empty());
}

#[tokio::test]
async fn x_should_retry_false_is_obeyed() {
    let app = spawn().await;
    app.fake
        .push_faults([Fault::status(500).should_retry(false).times(5)]);
    assert!(matches!(
        app.model.generate(generate("x")).await,
        Err(Error::Unavailable(_))
    ));
    assert_eq!(app.requests().len(), 1);
}

#[tokio::test]
async fn a_hang_times_out_as_unavailable_within_the_timeout() {
    let app = spawn_with(FakeConfig::local(), |c| {
        c.image_timeout = Duration::from_millis(300);
        c.retry = RetryPolicy::NONE;
    })
    .await;
    app.fake.push_faults([Fault::hang(Duration::from_secs(20))]);
    let started = Instant::now();
    let err = app.model.generate(generate("x")).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("did not answer")),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(app.requests().len(), 1);
}

#[tokio::test]
async fn a_hang_is_retried_like_any_timeout() {
    let app = spawn_with(FakeConfig::local(), |c| {
        c.image_timeout = Duration::from_millis(300)
    })
    .await;
    app.fake.push_faults([Fault::hang(Duration::from_secs(20))]);
    assert!(app.model.generate(generate("x")).await.is_ok());
    assert_eq!(app.requests().len(), 2);
    assert_eq!(app.sleeper.waits().len(), 1);
}

#[tokio::test]
async fn insufficient_quota_is_never_retried() {
    let app = spawn().await;
    app.fake
        .push_faults([Fault::status(429).code("insufficient_quota").times(5)]);
    let err = app.model.generate(generate("x")).await.unwrap_err();
    assert!(
        matches!(&err, Error::QuotaExhausted(m) if m.contains("credit")),
        "{err:?}"
    );
    assert_eq!(app.requests().len(), 1);
}

#[tokio::test]
async fn moderation_blocked_is_a_policy_violation_and_not_retried() {
    let app = spawn().await;
    app.fake.push_faults([Fault::status(400)
        .code("moderation_blocked")
        .should_retry(true)
        .times(5)]);
    let err = app
        .model
        .generate(generate("a quiet lake"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PolicyViolation { categories, .. } if categories == &["violence"]),
        "{err:?}"
    );
    assert_eq!(app.requests().len(), 1);

    // The fake's own safety check refuses flagged prompts the same way.
    app.fake.reset();
    let err = app
        .model
        .generate(generate("lots of gore"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PolicyViolation { categories, reason } if categories.contains(&"violence/graphic".to_owned()) && reason.contains("rephrase")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_dead_model_is_a_clear_invalid_model() {
    let app = spawn().await;
    let mut req = generate("x");
    req.model = "gpt-image-1".into();
    let err = app.model.generate(req).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "model"),
        "{err:?}"
    );
    assert!(
        text.contains("shut down on 2026-10-23") && text.contains("gpt-image-2.5-sunburst"),
        "{text}"
    );
    assert_eq!(app.requests().len(), 1);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn().await;
    let mut req = generate("x");
    req.params = params(fixed(1000, 1000), OutputFormat::Png, Background::Auto);
    let err = app.model.generate(req.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "size"),
        "{err:?}"
    );
    req.params = params(ImageSize::Auto, OutputFormat::Jpeg, Background::Transparent);
    req.refine = Some(Refinement {
        previous_image: Some(png(64, 64, false)),
        ..Refinement::default()
    });
    let err = app.model.generate(req).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "background"),
        "tools[0].background maps to background: {err:?}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_unauthenticated_and_never_echoed() {
    let fake_config = FakeConfig {
        api_key: Some("sk-the-right-one".into()),
        ..FakeConfig::local()
    };
    let app = spawn_with(fake_config, |_| {}).await;
    let err = app.model.moderate("hi").await.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.contains("OPENAI_API_KEY")),
        "{err:?}"
    );
    assert_no_key(&[err.to_string(), format!("{err:?}")]);
    assert_eq!(app.requests().len(), 0, "the fake refuses before recording");
}

#[tokio::test]
async fn unreachable_servers_are_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = spawn_with(FakeConfig::local(), |c| {
        c.base_url = format!("http://{addr}/v1")
    })
    .await;
    let err = app.model.moderate("hi").await.unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("could not connect")),
        "{err:?}"
    );
    assert_eq!(
        app.sleeper.waits().len(),
        2,
        "connection errors are retried"
    );
}

#[tokio::test]
async fn the_key_is_in_no_error_and_no_log_line() {
    let app = spawn().await;
    let mut texts = vec![
        format!("{:?}", app.model),
        format!("{:?}", app.model.config()),
    ];
    app.fake.push_faults([
        Fault::status(400).message(&format!("header was Bearer {KEY}")),
        Fault::status(500).times(3),
        Fault::status(429)
            .code("insufficient_quota")
            .message(&format!("key {KEY} is out of credit")),
        Fault::status(401),
        Fault::status(403).message(&format!("{KEY} may not use this model")),
    ]);
    for _ in 0..5 {
        let err = app.model.generate(generate("x")).await.unwrap_err();
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    let ok = app.model.generate(generate("fine")).await.unwrap();
    assert!(
        texts.iter().any(|t| t.contains("[redacted]")),
        "the echoed key was scrubbed, not dropped: {texts:?}"
    );
    // Every test of this binary logs into the same capture, so this checks all of their logs.
    let log = logs().text();
    texts.push(log.clone());
    assert_no_key(&texts);
    let id = app.requests().last().unwrap().request_id.clone();
    let line = log
        .lines()
        .find(|l| l.contains("openai usage") && l.contains(id.as_str()))
        .unwrap_or_else(|| panic!("no usage line for {id}"));
    assert!(
        line.contains(&format!("total_tokens={}", ok.usage.total_tokens)),
        "{line}"
    );
    assert!(
        log.contains("openai call failed") && log.contains("status=500"),
        "failures are logged"
    );
}
