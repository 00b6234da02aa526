//! The queue's faults, end to end on SQS (moto): a job whose message fails on every attempt is
//! marked failed (visible to its owner only) and its message lands in the dead-letter queue; a
//! batch killed mid-way (a Lambda timeout) is redelivered and resumes without redoing or
//! recounting finished items; a Free campaign killed mid-item adopts the item's quota hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use imagemcp_app::App;
use imagemcp_app::jobs::{self, JobStatus};
use imagemcp_core::async_trait;
use imagemcp_core::ids::OrgId;
use imagemcp_core::queue::PullQueue;
use imagemcp_core::table::{Add, Condition, Item, Key, Page, Query, Table, TransactOp};
use imagemcp_core::{Error, Result};
use tokio::sync::Notify;

use crate::helpers::{MAX_ATTEMPTS, TestStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failing_every_attempt_lands_in_the_dlq_with_its_job_failed() {
    let stack = TestStack::new().await;
    let owner = OrgId::parse("org_owner").unwrap();
    // A kind no consumer handles yet (as if sent by a newer deployment): it fails every time.
    let job = jobs::enqueue(stack.app.jobs(), &owner, "render-campaign", 2)
        .await
        .unwrap();

    for attempt in 1..=MAX_ATTEMPTS {
        let (got, response) = stack.deliver_with(&stack.app).await;
        assert_eq!(got.len(), 1, "attempt {attempt} is delivered");
        assert_eq!(got[0].attempt, attempt);
        assert_eq!(
            response.batch_item_failures.len(),
            1,
            "attempt {attempt} is reported failed"
        );
        let seen = jobs::get(stack.app.jobs(), &owner, &job.id).await.unwrap();
        let expected = if attempt < MAX_ATTEMPTS {
            JobStatus::Queued
        } else {
            JobStatus::Failed
        };
        assert_eq!(seen.status, expected, "after attempt {attempt}");
    }

    // The next receive finds nothing: SQS moved the message to the dead-letter queue.
    let (got, _) = stack.deliver_with(&stack.app).await;
    assert!(got.is_empty(), "{got:?}");
    let dead = stack.queue().dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "the message is in the DLQ");
    assert_eq!(dead[0].body["job_id"], job.id.as_str());

    let failed = jobs::get(stack.app.jobs(), &owner, &job.id).await.unwrap();
    assert_eq!(
        (failed.status, failed.attempts),
        (JobStatus::Failed, MAX_ATTEMPTS)
    );
    let reason = failed.error.expect("the owner sees why");
    assert!(
        reason.contains("unknown job kind `render-campaign`"),
        "{reason}"
    );
    let stranger = jobs::get(
        stack.app.jobs(),
        &OrgId::parse("org_stranger").unwrap(),
        &job.id,
    )
    .await;
    assert!(
        matches!(stranger, Err(Error::NotFound { .. })),
        "another org cannot see it: {stranger:?}"
    );
}

/// A table that hangs forever on the `n`-th transaction touching keys that contain `marker` (each
/// job item is one transaction), as a Lambda killed by its timeout stops mid-item: the future is
/// dropped and nothing after it happens.
struct HangsAt {
    inner: Arc<dyn Table>,
    marker: String,
    n: usize,
    seen: AtomicUsize,
    hung: Arc<Notify>,
}

#[async_trait]
impl Table for HangsAt {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        self.inner.delete(key, cond).await
    }
    async fn query(&self, query: &Query) -> Result<Page> {
        self.inner.query(query).await
    }
    async fn add(&self, add: Add) -> Result<i64> {
        self.inner.add(add).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<()> {
        let marked = ops.iter().any(|op| op.key().sk.contains(&self.marker));
        if marked && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.transact(ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_mid_way_resumes_without_redoing_finished_items() {
    let stack = TestStack::new().await;
    let org = OrgId::parse("org_timeout").unwrap();
    let first = jobs::enqueue(stack.app.jobs(), &org, jobs::KIND_PING, 2)
        .await
        .unwrap();
    let second = jobs::enqueue(stack.app.jobs(), &org, jobs::KIND_PING, 5)
        .await
        .unwrap();

    // The first invocation finishes the first job and 3 of the second's 5 items, then is killed.
    // The consumer runs an org's messages concurrently, so the hang is keyed to the second job's
    // 4th item, and the invocation is kept running until the first job has finished.
    let hung = Arc::new(Notify::new());
    let mut ports = stack.app.ports.clone();
    ports.table = Arc::new(HangsAt {
        inner: stack.app.ports.table.clone(),
        marker: format!("JOB#{}#ITEM#", second.id),
        n: 4,
        seen: AtomicUsize::new(0),
        hung: hung.clone(),
    });
    let doomed = App::new(ports, (*stack.app.config).clone());
    let (event, got) = stack.receive_event().await;
    assert_eq!(got.len(), 2, "both messages in one batch");
    let run = imagemcp_lambda::batch(&doomed, MAX_ATTEMPTS, event);
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => panic!("the batch should have hung"),
        () = hung.notified() => {}
    }
    // Bounded: the first job's two ping items need a handful of table round trips on moto.
    for _ in 0..500 {
        let first = jobs::get(stack.app.jobs(), &org, &first.id).await.unwrap();
        if first.status == JobStatus::Done {
            break;
        }
        tokio::select! {
            _ = &mut run => panic!("the batch should have hung"),
            () = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
        }
    }
    let mid = jobs::get(stack.app.jobs(), &org, &second.id).await.unwrap();
    assert_eq!(
        (mid.status, mid.items_done),
        (JobStatus::Running, 3),
        "killed after 3 items"
    );

    // Lambda never answered, so SQS redelivers the whole batch once the visibility timeout ends.
    stack.redeliver(&got).await;
    let (again, response) = stack.deliver_with(&stack.app).await;
    assert_eq!(again.len(), 2, "the whole batch comes back");
    assert!(again.iter().all(|d| d.attempt == 2));
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let first = jobs::get(stack.app.jobs(), &org, &first.id).await.unwrap();
    assert_eq!(
        (first.status, first.items_done, first.attempts),
        (JobStatus::Done, 2, 1),
        "a finished job is left alone"
    );
    let second = jobs::get(stack.app.jobs(), &org, &second.id).await.unwrap();
    assert_eq!(
        (second.status, second.items_done, second.attempts),
        (JobStatus::Done, 5, 2),
        "resumed: each item counted once"
    );
    let items = stack
        .app
        .ports
        .table
        .query(&Query::new(
            format!("ORG#{org}"),
            format!("JOB#{}#ITEM#", second.id),
            100,
        ))
        .await
        .unwrap();
    assert_eq!(items.items.len(), 5, "one record per item");
}

/// A Free campaign on DynamoDB whose Lambda dies as its first item is about to commit (its quota
/// hold taken, its blobs written): the redelivered item adopts the hold (recorded with it, in one
/// DynamoDB transaction), so the period's last images still fit, each item has one image, and no
/// hold is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_campaign_killed_before_a_commit_adopts_its_hold_on_redelivery() {
    let stack = TestStack::new().await;
    let app = crate::retention::billed(&stack.app);
    let caller = crate::retention::caller("org_free_crash");
    let month = imagemcp_app::images::record::month_of(app.ports.clock.now_ms());
    let quota_key = imagemcp_app::billing::quota::counter_key(&caller, &month);
    let used = Add {
        key: quota_key.clone(),
        attr: "images".into(),
        delta: 6,
        max: None,
        expires_at: None,
    };
    app.ports.table.add(used).await.unwrap();
    let args = imagemcp_app::images::params::parse_args(serde_json::json!({
        "campaign_name": "Free Crash", "template_type": "email", "core_prompt": "a kite"}))
    .unwrap();
    let job = imagemcp_app::images::campaign::submit(&app.images, &caller, args)
        .await
        .unwrap();

    let hung = Arc::new(Notify::new());
    let mut ports = app.ports.clone();
    ports.table = Arc::new(HangsAt {
        inner: app.ports.table.clone(),
        marker: "IMG#".into(),
        n: 1,
        seen: AtomicUsize::new(0),
        hung: hung.clone(),
    });
    let doomed = App::new(ports, (*app.config).clone());
    let (event, got) = stack.receive_event().await;
    assert_eq!(got.len(), 4);
    tokio::select! {
        _ = imagemcp_lambda::batch(&doomed, MAX_ATTEMPTS, event) => panic!("the batch should have hung"),
        () = hung.notified() => {}
    }
    stack.redeliver(&got).await;
    for _ in 0..10 {
        let (again, _) = stack.deliver_with(&app).await;
        if again.is_empty() {
            break;
        }
    }
    let done = jobs::get(app.jobs(), &caller.org, &job.id).await.unwrap();
    assert_eq!(
        (done.status, done.items_done, done.items_failed),
        (JobStatus::Done, 4, 0),
        "{done:?}"
    );
    let counter = app.ports.table.get(&quota_key).await.unwrap().unwrap();
    assert_eq!(counter.int("images"), Some(10), "6 before and 4 made");
    let holds = app
        .ports
        .table
        .query(&Query::new(
            format!("ORG#{}", caller.org),
            format!("JOB#{}#HOLD#", job.id),
            100,
        ))
        .await
        .unwrap();
    assert!(holds.items.is_empty(), "{:?}", holds.items);
}
