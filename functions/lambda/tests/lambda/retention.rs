//! Retention on Lambda: the `batch` function, invoked with an EventBridge scheduled event, deletes
//! the S3 objects of Free images whose expiry day is over (DynamoDB index, S3 blobs, both on moto);
//! a Pro image's objects and SQS events are untouched by it.

use std::sync::Arc;

use imagemcp_app::auth::Caller;
use imagemcp_app::billing::plan::{OrgPlan, plan_key};
use imagemcp_app::images::record::{self, ImageRecord};
use imagemcp_core::blob::BlobKey;
use imagemcp_core::ids::{OrgId, TeamId, UserId};
use imagemcp_core::rbac::{Role, Scope};
use imagemcp_core::table::Condition;
use serde_json::json;

use crate::helpers::{MAX_ATTEMPTS, TestStack, fixture};

pub(crate) fn caller(org: &str) -> Caller {
    Caller {
        user: UserId::parse("usr_retention").unwrap(),
        org: OrgId::parse(org).unwrap(),
        team: TeamId::parse("team_retention").unwrap(),
        role: Role::Admin,
        scopes: vec![Scope::Admin],
        credential: "key_retention".into(),
    }
}

pub(crate) fn billed(app: &imagemcp_app::App) -> imagemcp_app::App {
    let mut config = (*app.config).clone();
    config.billing = Some(Arc::new(imagemcp_app::billing::BillingConfig {
        webhook_secrets: vec!["whsec_lambda".into()],
        pro_price: "price_pro".into(),
        team_price: "price_team".into(),
        grace_days: 7,
        payments: Arc::new(
            imagemcp_stripe::StripeClient::new(
                "http://127.0.0.1:9",
                "sk_test_x",
                std::time::Duration::from_secs(1),
            )
            .unwrap(),
        ),
        meter_event: "imagemcp_overage_images".into(),
    }));
    imagemcp_app::App::new(app.ports.clone(), config)
}

async fn generate(app: &imagemcp_app::App, caller: &Caller, prompt: &str) -> ImageRecord {
    let args = imagemcp_app::images::params::parse_args(json!({"prompt": prompt})).unwrap();
    let mut made = app.images().generate(caller, args, None).await.unwrap();
    made.images.remove(0)
}

async fn objects(app: &imagemcp_app::App, rec: &ImageRecord) -> usize {
    let mut n = 0;
    for key in [&rec.blob_key, &rec.preview_key] {
        let blob = app.ports.blobs.get(&BlobKey::parse(key).unwrap()).await;
        n += usize::from(blob.unwrap().is_some());
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_event_deletes_expired_free_objects_on_s3_and_keeps_pro_ones() {
    let stack = TestStack::new().await;
    let app = billed(&stack.app);
    let free_org = caller("org_free");
    let pro_org = caller("org_pro");
    let now = app.ports.clock.now_secs();
    let pro = OrgPlan {
        tier: "pro".into(),
        status: "active".into(),
        period_start: now - 86_400,
        period_end: now + 60 * 86_400,
        customer_id: Some("cus_ret".into()),
        subscription_id: Some("sub_ret".into()),
        ..OrgPlan::free()
    };
    app.ports
        .table
        .put(
            record::to_item(plan_key(&pro_org.org), &pro).unwrap(),
            Condition::None,
        )
        .await
        .unwrap();
    let free_image = generate(&app, &free_org, "a lighthouse at dusk").await;
    let pro_image = generate(&app, &pro_org, "a lighthouse at dawn").await;
    assert_eq!(objects(&app, &free_image).await, 2);

    let event = fixture("eventbridge-scheduled.json");
    // Today: nothing has expired.
    let out = imagemcp_lambda::batch_or_schedule(&app, MAX_ATTEMPTS, event.clone(), now)
        .await
        .unwrap();
    assert_eq!(out["entries"], 0);
    assert_eq!(objects(&app, &free_image).await, 2);

    // 32 days on: the expiry day is over (the handler is given the time; the binary passes its
    // clock's).
    let later = now + 32 * 86_400;
    let out = imagemcp_lambda::batch_or_schedule(&app, MAX_ATTEMPTS, event.clone(), later)
        .await
        .unwrap();
    assert_eq!(out, json!({"entries": 1, "blobs": 2, "more": false}));
    assert_eq!(objects(&app, &free_image).await, 0, "gone from S3");
    assert_eq!(objects(&app, &pro_image).await, 2, "Pro objects stay");
    // A second run (EventBridge retries, or the next hour) is a no-op.
    let out = imagemcp_lambda::batch_or_schedule(&app, MAX_ATTEMPTS, event, later)
        .await
        .unwrap();
    assert_eq!(out["entries"], 0);

    // Anything else that is not an SQS event is refused, not mistaken for an empty batch.
    let err = imagemcp_lambda::batch_or_schedule(&app, MAX_ATTEMPTS, json!({"Records": 7}), later)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("SQS event"), "{err:#}");
}
