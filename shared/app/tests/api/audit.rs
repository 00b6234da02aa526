//! The audit log: actions are recorded with their writes, concurrent appends never fork the
//! chain, and tampering in storage (alter, delete, reorder, truncate) is caught at the right entry.

use imagemcp_app::audit::read::{ViewArgs, verify_chain};
use imagemcp_app::audit::{self, Actor, Chain, Event, entry_key};
use imagemcp_app::images::params::parse_args;
use imagemcp_core::Error;
use imagemcp_core::table::{Condition, Table};
use serde_json::json;

use crate::helpers::TestApp;

fn render(prompt: &str) -> imagemcp_app::images::params::GenerateArgs {
    parse_args(json!({ "prompt": prompt })).expect("args")
}

async fn actions(t: &TestApp) -> Vec<String> {
    let caller = TestApp::caller("org_a");
    let args = ViewArgs {
        oldest_first: Some(true),
        limit: Some(200),
        ..ViewArgs::default()
    };
    t.app
        .audit_log()
        .view(&caller, &args)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// Five entries in `org_a`: three generations, a deletion, a failed generation recorded nowhere.
async fn seeded() -> TestApp {
    let t = TestApp::new();
    let caller = TestApp::caller("org_a");
    let images = t.app.images();
    let first = images
        .generate(&caller, render("a red cube"), None)
        .await
        .unwrap();
    images
        .generate(&caller, render("a blue cube"), None)
        .await
        .unwrap();
    images.delete(&caller, &first.images[0].id).await.unwrap();
    // A failed action leaves no entry: the blob store refuses, nothing is written.
    t.blobs
        .fail_puts
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        images
            .generate(&caller, render("a green cube"), None)
            .await
            .is_err()
    );
    t.blobs
        .fail_puts
        .store(false, std::sync::atomic::Ordering::SeqCst);
    images
        .generate(&caller, render("a pink cube"), None)
        .await
        .unwrap();
    audit::record(
        &t.app.ports,
        Event::new(
            Chain::Org(caller.org.clone()),
            "auth.login",
            Actor::User(caller.user.clone()),
        )
        .failed(),
    )
    .await
    .unwrap();
    t
}

async fn check(t: &TestApp) -> Option<u64> {
    verify_chain(&t.app.ports, "ORG#org_a")
        .await
        .unwrap()
        .first_broken
        .map(|b| b.seq)
}

#[tokio::test]
async fn actions_are_recorded_and_the_chain_verifies() {
    let t = seeded().await;
    assert_eq!(
        actions(&t).await,
        [
            "image.generate",
            "image.generate",
            "image.delete",
            "image.generate",
            "auth.login"
        ]
    );
    assert_eq!(check(&t).await, None);
    // Filters: by action prefix, by user, by time.
    let caller = TestApp::caller("org_a");
    let log = t.app.audit_log();
    let page = log
        .view(
            &caller,
            &parse_args(json!({"action": "image.", "limit": 2})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].action, "image.generate", "newest first");
    assert_eq!(page.entries[0].seq, 4);
    let rest = log
        .view(
            &caller,
            &parse_args(json!({"action": "image.", "cursor": page.next_cursor})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        rest.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 1]
    );
    let other = log
        .view(
            &caller,
            &parse_args(json!({"user_id": "usr_nobody"})).unwrap(),
        )
        .await
        .unwrap();
    assert!(other.entries.is_empty());
    let later = log
        .view(
            &caller,
            &parse_args(json!({"since_ms": 1_795_478_400_001i64})).unwrap(),
        )
        .await
        .unwrap();
    assert!(later.entries.is_empty());
    // A viewer may not read the log.
    let viewer = TestApp::caller_as(
        "org_a",
        "usr_v",
        imagemcp_core::rbac::Role::Viewer,
        &[imagemcp_core::rbac::Scope::Admin],
    );
    assert!(matches!(
        log.view(&viewer, &ViewArgs::default()).await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn an_altered_entry_breaks_the_chain_at_that_entry() {
    let t = seeded().await;
    let key = entry_key("ORG#org_a", 3);
    let mut item = t.table.get(&key).await.unwrap().unwrap();
    item.attrs.insert("action".into(), json!("image.view"));
    t.table.put(item, Condition::None).await.unwrap();
    assert_eq!(check(&t).await, Some(3));
}

#[tokio::test]
async fn a_recomputed_hash_still_breaks_the_next_link() {
    let t = seeded().await;
    let key = entry_key("ORG#org_a", 2);
    let mut item = t.table.get(&key).await.unwrap().unwrap();
    item.attrs.insert("outcome".into(), json!("failure"));
    let hash = imagemcp_app::audit::chain::hash_of(&item.attrs);
    item.attrs.insert("hash".into(), json!(hash));
    t.table.put(item, Condition::None).await.unwrap();
    assert_eq!(check(&t).await, Some(3));
}

#[tokio::test]
async fn a_deleted_entry_breaks_the_chain_at_that_entry() {
    let t = seeded().await;
    t.table
        .delete(&entry_key("ORG#org_a", 2), Condition::None)
        .await
        .unwrap();
    assert_eq!(check(&t).await, Some(2));
}

#[tokio::test]
async fn reordered_entries_break_the_chain_at_the_first_moved_one() {
    let t = seeded().await;
    let a = t
        .table
        .get(&entry_key("ORG#org_a", 3))
        .await
        .unwrap()
        .unwrap();
    let b = t
        .table
        .get(&entry_key("ORG#org_a", 4))
        .await
        .unwrap()
        .unwrap();
    let (mut a2, mut b2) = (b.clone(), a.clone());
    a2.key = a.key.clone();
    b2.key = b.key.clone();
    t.table.put(a2, Condition::None).await.unwrap();
    t.table.put(b2, Condition::None).await.unwrap();
    assert_eq!(check(&t).await, Some(3));
}

#[tokio::test]
async fn entries_cut_off_the_end_are_caught_by_the_head() {
    let t = seeded().await;
    t.table
        .delete(&entry_key("ORG#org_a", 5), Condition::None)
        .await
        .unwrap();
    assert_eq!(check(&t).await, Some(5));
}

#[tokio::test]
async fn concurrent_appends_never_fork_the_chain() {
    let t = TestApp::new();
    let ports = &t.app.ports;
    let appends = (0..12).map(|i| {
        audit::record(
            ports,
            Event::new(Chain::Org("org_a".parse_id()), "test.append", Actor::System)
                .detail("i", json!(i)),
        )
    });
    let results = futures::future::join_all(appends).await;
    let mut seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap().seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    assert_eq!(check(&t).await, None);
}

/// Parsing helper so the test reads naturally.
trait ParseId {
    fn parse_id(&self) -> imagemcp_core::ids::OrgId;
}

impl ParseId for &str {
    fn parse_id(&self) -> imagemcp_core::ids::OrgId {
        imagemcp_core::ids::OrgId::parse(self).unwrap()
    }
}
