//! A process that dies mid-batch. The consumer's future is dropped at each instant of an item's
//! life that matters (its holds just taken, its blobs written but not committed, its images just
//! committed), as a SIGKILL would leave it, and the queue redelivers to a fresh app on the same
//! storage. Every item then has exactly one image, one usage count and one charge; the holds of
//! the dead process are adopted rather than taken twice, so a Free organisation's last images
//! still fit and nothing stays held.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use imagemcp_app::App;
use imagemcp_app::auth::Caller;
use imagemcp_app::billing::budget::{self, BudgetArgs};
use imagemcp_app::billing::quota;
use imagemcp_app::images::params::{ListArgs, parse_args};
use imagemcp_app::images::record;
use imagemcp_app::jobs::{self, JobStatus};
use imagemcp_core::Result;
use imagemcp_core::ids::JobId;
use imagemcp_core::queue::PullQueue;
use imagemcp_core::table::{Add, Condition, Item, Key, Page, Query, Table, TransactOp};
use imagemcp_local::queue::SqliteQueue;
use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::TestApp;

/// Where the process dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// Right after the transaction that records an item's quota and budget holds.
    HoldTaken,
    /// After the item's blobs are written, before the transaction that stores its images.
    BlobsWritten,
    /// Right after the transaction that stores the item's images.
    Committed,
}

/// The crash: armed once, fired by the first transaction at its point.
struct Crash {
    at: Point,
    armed: AtomicBool,
    fired: Notify,
}

/// A `Table` that dies at the crash point: it runs the transaction there (or not, before a
/// commit), signals, and never returns, so the caller's future can only be dropped.
struct Dying {
    inner: Arc<dyn Table>,
    crash: Arc<Crash>,
}

fn puts_sk(ops: &[TransactOp], test: impl Fn(&str) -> bool) -> bool {
    ops.iter()
        .any(|op| matches!(op, TransactOp::Put(item, _) if test(&item.key.sk)))
}

#[async_trait::async_trait]
impl Table for Dying {
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
        let here = match self.crash.at {
            Point::HoldTaken => puts_sk(&ops, |sk| sk.contains("#HOLD#")),
            Point::BlobsWritten | Point::Committed => puts_sk(&ops, |sk| sk.starts_with("IMG#")),
        };
        if !here || !self.crash.armed.swap(false, Ordering::SeqCst) {
            return self.inner.transact(ops).await;
        }
        if self.crash.at != Point::BlobsWritten {
            self.inner.transact(ops).await?;
        }
        self.crash.fired.notify_one();
        futures::future::pending().await
    }
}

struct Rig {
    t: TestApp,
    /// The process that dies.
    dying: App,
    /// The next process on the same storage.
    restarted: App,
    queue: Arc<SqliteQueue>,
    crash: Arc<Crash>,
    caller: Caller,
    _fake: fake_openai::FakeOpenAi,
}

/// A Free organisation (billing on) with a hard-stop budget, six of its ten images this period
/// already used, on the fake OpenAI (so images cost something).
async fn rig(at: Point) -> Rig {
    let t = crate::billing::billed();
    let queue = Arc::new(SqliteQueue::open_in_memory(t.app.ports.clock.clone(), 3).unwrap());
    let crash = Arc::new(Crash {
        at,
        armed: AtomicBool::new(true),
        fired: Notify::new(),
    });
    let storage = t.app.ports.table.clone();
    let (dying, fake) = crate::billing::on_fake_openai(&t, |ports| {
        ports.queue = queue.clone();
        ports.table = Arc::new(Dying {
            inner: storage.clone(),
            crash: crash.clone(),
        });
    })
    .await;
    let mut ports = dying.ports.clone();
    ports.table = storage;
    let restarted = TestApp::app_on(ports, (*dying.config).clone());
    let caller = TestApp::caller("org_crash");
    budget::set(
        &restarted.billing,
        &caller,
        BudgetArgs {
            monthly_budget_cents: 100_000,
            hard_stop: true,
        },
    )
    .await
    .unwrap();
    let month = record::month_of(t.app.ports.clock.now_ms());
    t.table
        .add(Add {
            key: quota::counter_key(&caller, &month),
            attr: "images".into(),
            delta: 6,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    Rig {
        t,
        dying,
        restarted,
        queue,
        crash,
        caller,
        _fake: fake,
    }
}

impl Rig {
    /// Takes every queued message and runs them on the dying process until it dies; how many.
    async fn die(&self) -> usize {
        let batch = self
            .queue
            .receive(10, Duration::from_secs(60))
            .await
            .unwrap();
        tokio::select! {
            _ = jobs::consume(&self.dying, &batch, 3) => panic!("the process finished before its crash"),
            () = self.crash.fired.notified() => {}
        }
        batch.len()
    }

    /// The next process: it makes what the dead one had taken visible again at once, and runs
    /// the queue dry.
    async fn restart(&self) {
        self.queue.release_in_flight().await.unwrap();
        imagemcp_app::testing::drain(&self.restarted, self.queue.as_ref())
            .await
            .unwrap();
    }

    /// The images the period's quota counter holds.
    async fn quota_used(&self) -> i64 {
        let month = record::month_of(self.t.app.ports.clock.now_ms());
        self.counter(quota::counter_key(&self.caller, &month), "images")
            .await
    }

    async fn counter(&self, key: Key, attr: &str) -> i64 {
        self.t
            .table
            .get(&key)
            .await
            .unwrap()
            .and_then(|i| i.int(attr))
            .unwrap_or(0)
    }

    async fn usage(&self, counter: &str) -> i64 {
        let month = record::month_of(self.t.app.ports.clock.now_ms());
        self.counter(
            record::usage_key(&self.caller.org, &month, counter),
            "value",
        )
        .await
    }

    async fn holds(&self, job: &JobId) -> usize {
        let query = Query::new(
            format!("ORG#{}", self.caller.org),
            format!("JOB#{job}#HOLD#"),
            100,
        );
        self.t.table.query(&query).await.unwrap().items.len()
    }
}

async fn crash_at(at: Point) {
    let rig = rig(at).await;
    let args = parse_args(
        json!({"campaign_name": "Crash Test", "template_type": "email",
        "core_prompt": "a paper boat on a pond", "quality": "low"}),
    )
    .unwrap();
    let job = imagemcp_app::images::campaign::submit(&rig.restarted.images, &rig.caller, args)
        .await
        .unwrap();
    assert_eq!(rig.die().await, 4, "one message per item");
    rig.restart().await;

    let job = jobs::get(rig.restarted.jobs(), &rig.caller.org, &job.id)
        .await
        .unwrap();
    assert_eq!(
        (job.status, job.items_done, job.items_failed),
        (JobStatus::Done, 4, 0),
        "{at:?}: every item done, none failed for want of quota: {job:?}"
    );
    let results = jobs::results(rig.restarted.jobs(), &rig.caller.org, &job.id)
        .await
        .unwrap();
    let mut item_images: Vec<String> = results
        .iter()
        .map(|(_, r)| r["image_id"].as_str().unwrap().to_owned())
        .collect();
    let (listed, _) = rig
        .restarted
        .images()
        .list(
            &rig.caller,
            &ListArgs {
                limit: Some(100),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let mut listed: Vec<String> = listed.iter().map(|r| r.id.to_string()).collect();
    item_images.sort();
    listed.sort();
    assert_eq!(listed, item_images, "{at:?}: one image per item, no orphan");
    assert_eq!(
        rig.usage("images").await,
        4,
        "{at:?}: each item counted once"
    );
    assert_eq!(
        rig.quota_used().await,
        10,
        "{at:?}: the quota holds the six earlier images and the four made, nothing still held"
    );
    let charged: i64 = results
        .iter()
        .map(|(_, r)| r["cost_micros"].as_i64().unwrap())
        .sum();
    assert!(charged > 0);
    assert_eq!(
        rig.usage("cost_micros").await,
        charged,
        "{at:?}: each item charged once"
    );
    assert_eq!(
        rig.usage("cost_micros#campaign#crash-test").await,
        charged,
        "{at:?}: the campaign's cost once"
    );
    assert_eq!(
        rig.usage("cost_held_micros").await,
        0,
        "{at:?}: no budget estimate left held"
    );
    assert_eq!(rig.holds(&job.id).await, 0, "{at:?}: every hold settled");
}

#[tokio::test]
async fn a_crash_right_after_the_holds_are_taken_neither_holds_twice_nor_leaks() {
    crash_at(Point::HoldTaken).await;
}

#[tokio::test]
async fn a_crash_between_the_blobs_and_the_commit_stores_and_charges_the_item_once() {
    crash_at(Point::BlobsWritten).await;
}

#[tokio::test]
async fn a_crash_right_after_the_commit_never_makes_the_item_again() {
    crash_at(Point::Committed).await;
}

/// A finished (here: cancelled) job's item whose process died holding quota gives the hold back
/// when its message comes again, since nothing will generate it.
#[tokio::test]
async fn holds_of_a_dead_item_of_a_cancelled_job_are_given_back() {
    let rig = rig(Point::HoldTaken).await;
    let args = parse_args(json!({"campaign": "spring", "template": "email",
        "prompt": "a tulip field", "quality": "low"}))
    .unwrap();
    let job = imagemcp_app::images::campaign::submit(&rig.restarted.images, &rig.caller, args)
        .await
        .unwrap();
    rig.die().await;
    assert!(rig.holds(&job.id).await >= 1, "the dead process held quota");
    jobs::cancel(rig.restarted.jobs(), &rig.caller.org, &job.id)
        .await
        .unwrap();
    rig.restart().await;
    assert_eq!(rig.holds(&job.id).await, 0);
    let made = rig.usage("images").await;
    assert_eq!(
        rig.quota_used().await,
        6 + made,
        "only images that exist are counted"
    );
    assert_eq!(rig.usage("cost_held_micros").await, 0);
}

/// A generation task whose first delivery died holding quota, and whose redelivery is answered
/// from the cache (the same prompt was made meanwhile): nothing is generated or charged again and
/// the dead delivery's hold is given back.
#[tokio::test]
async fn a_task_answered_from_the_cache_on_redelivery_gives_its_dead_hold_back() {
    let rig = rig(Point::HoldTaken).await;
    imagemcp_app::engine::cache::set_enabled(rig.restarted.generation_cache(), &rig.caller, true)
        .await
        .unwrap();
    let prompt = json!({"prompt": "a lantern in the fog", "quality": "low"});
    let task =
        imagemcp_app::images::queued::submit(&rig.restarted.images, &rig.caller, prompt.clone())
            .await
            .unwrap();
    rig.die().await;
    assert_eq!(rig.holds(&task.id).await, 1);
    rig.restarted
        .images()
        .generate(&rig.caller, parse_args(prompt).unwrap(), None)
        .await
        .unwrap();
    rig.restart().await;
    let done = jobs::get(rig.restarted.jobs(), &rig.caller.org, &task.id)
        .await
        .unwrap();
    assert_eq!((done.status, done.items_done), (JobStatus::Done, 1));
    assert_eq!(
        rig.holds(&task.id).await,
        0,
        "the dead delivery's hold is gone"
    );
    assert_eq!(
        rig.quota_used().await,
        7,
        "the six earlier images and the one made; the cached answer holds nothing"
    );
    assert_eq!(rig.usage("images").await, 1);
}
