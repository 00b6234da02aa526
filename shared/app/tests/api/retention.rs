//! Retention of image bytes: Free images' blobs are deleted by `billing::retention::sweep`
//! once their expiry day is over; paid images' blobs stay; the sweep is idempotent, bounded, and safe
//! beside image deletion, GDPR erasure and a second sweeping instance.

use imagemcp_app::billing::retention;
use imagemcp_app::images::params::parse_args;
use imagemcp_app::images::record::ImageRecord;
use imagemcp_core::blob::{BlobKey, BlobStore};
use imagemcp_core::clock::Clock;
use serde_json::json;

use crate::billing::{billed, pro_plan, store_plan, unique_prompt};
use crate::helpers::TestApp;

const DAY_MS: i64 = 86_400_000;

async fn generate(t: &TestApp, caller: &imagemcp_app::auth::Caller) -> ImageRecord {
    let args = parse_args(json!({"prompt": unique_prompt()})).unwrap();
    let mut made = t.app.images().generate(caller, args, None).await.unwrap();
    made.images.remove(0)
}

/// How many of an image's two blobs (full image, preview) are stored.
async fn stored(t: &TestApp, rec: &ImageRecord) -> usize {
    let mut n = 0;
    for key in [&rec.blob_key, &rec.preview_key] {
        if t.blobs
            .get(&BlobKey::parse(key).unwrap())
            .await
            .unwrap()
            .is_some()
        {
            n += 1;
        }
    }
    n
}

async fn sweep(t: &TestApp, max: usize) -> retention::Swept {
    retention::sweep(&t.app.billing, t.clock.now_secs(), max)
        .await
        .unwrap()
}

#[tokio::test]
async fn free_bytes_go_after_their_expiry_day_pro_bytes_stay_and_an_upgrade_keeps_earlier_expiry() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    let free = generate(&t, &caller).await;
    // Upgraded after the first image: that image keeps the expiry it was written with.
    store_plan(&t, &caller, &pro_plan(Some("cus_x"))).await;
    let pro = generate(&t, &caller).await;
    assert_eq!((stored(&t, &free).await, stored(&t, &pro).await), (2, 2));

    assert_eq!(sweep(&t, 100).await.entries, 0, "nothing has expired yet");
    // Day 30: the records' TTL has just passed, but the expiry day is not over yet.
    t.clock.advance_ms(30 * DAY_MS + 3_600_000);
    assert_eq!(sweep(&t, 100).await.entries, 0);
    assert_eq!(stored(&t, &free).await, 2);

    t.clock.advance_ms(DAY_MS);
    let swept = sweep(&t, 100).await;
    assert_eq!((swept.entries, swept.blobs, swept.more), (1, 2, false));
    assert_eq!(
        stored(&t, &free).await,
        0,
        "the Free image's bytes are gone"
    );
    assert_eq!(stored(&t, &pro).await, 2, "the Pro image's bytes stay");

    // Idempotent: a second sweep finds nothing and breaks nothing.
    assert_eq!(sweep(&t, 100).await, retention::Swept::default());
    assert_eq!(stored(&t, &pro).await, 2);
}

#[tokio::test]
async fn the_sweep_is_bounded_and_two_instances_can_sweep_at_once() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    let mut images = Vec::new();
    for _ in 0..5 {
        images.push(generate(&t, &caller).await);
    }
    t.clock.advance_ms(32 * DAY_MS);
    let first = sweep(&t, 2).await;
    assert_eq!((first.entries, first.more), (2, true));
    let gone = {
        let mut n = 0;
        for rec in &images {
            n += usize::from(stored(&t, rec).await == 0);
        }
        n
    };
    assert_eq!(gone, 2, "the bound held: only two images' bytes went");

    // Two instances race over the rest: both succeed, everything goes, nothing is left behind.
    let (a, b) = futures::join!(
        retention::sweep_all(&t.app.billing, t.clock.now_secs(), 1),
        retention::sweep_all(&t.app.billing, t.clock.now_secs(), 1),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.entries + b.entries >= 3, "{a:?} {b:?}");
    for rec in &images {
        assert_eq!(stored(&t, rec).await, 0);
    }
    assert_eq!(sweep(&t, 100).await.entries, 0);
}

#[tokio::test]
async fn a_sweep_over_a_deleted_image_is_a_no_op_and_brings_nothing_back() {
    let t = billed();
    let caller = TestApp::caller("org_a");
    let deleted = generate(&t, &caller).await;
    t.app.images().delete(&caller, &deleted.id).await.unwrap();
    assert_eq!(stored(&t, &deleted).await, 0);
    let files = t.blob_files();

    t.clock.advance_ms(32 * DAY_MS);
    let swept = sweep(&t, 100).await;
    assert_eq!(swept.entries, 1, "its index item is cleared");
    assert_eq!(stored(&t, &deleted).await, 0);
    assert_eq!(t.blob_files(), files, "no blob written back");
    assert!(matches!(
        t.app.images().get(&caller, &deleted.id).await,
        Err(imagemcp_core::Error::NotFound { .. }) | Err(imagemcp_core::Error::Gone { .. })
    ));
}

#[tokio::test]
async fn without_billing_nothing_is_indexed_or_swept() {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    let kept = generate(&t, &caller).await;
    t.clock.advance_ms(400 * DAY_MS);
    assert_eq!(sweep(&t, 100).await.entries, 0);
    assert_eq!(stored(&t, &kept).await, 2);
}

#[tokio::test]
async fn a_sweep_after_a_gdpr_erasure_is_a_no_op() {
    use imagemcp_app::gdpr::{DeleteUserArgs, Gdpr};
    use imagemcp_core::rbac::{Role, Scope};
    let t = billed();
    let quill = t
        .app
        .accounts()
        .sign_up("quill@example.com", Some("a long password"), "Quill")
        .await
        .unwrap();
    let caller = TestApp::caller_as(
        quill.personal_org.as_str(),
        quill.id.as_str(),
        Role::Admin,
        &[Scope::Admin],
    );
    let rec = generate(&t, &caller).await;
    let done = Gdpr::new(&t.app)
        .erase(
            &caller,
            DeleteUserArgs {
                confirm_user_id: quill.id.to_string(),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.images_deleted, 1);
    assert_eq!(stored(&t, &rec).await, 0);
    let files = t.blob_files();

    t.clock.advance_ms(32 * DAY_MS);
    assert_eq!(sweep(&t, 100).await.entries, 1);
    assert_eq!(stored(&t, &rec).await, 0, "nothing brought back");
    assert_eq!(t.blob_files(), files);
    assert_eq!(sweep(&t, 100).await.entries, 0);
}
