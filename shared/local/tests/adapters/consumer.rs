//! The consumer loop: successes acked, failures retried with backoff then dead-lettered, panics
//! contained, graceful shutdown. Progress is awaited through the handle, never slept for.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::clock::ManualClock;
use imagemcp_core::contract;
use imagemcp_core::queue::{Delivery, PullQueue, Queue};
use imagemcp_local::{ConsumerHandle, ConsumerOptions, QueueCounts, SqliteQueue, spawn_consumer};
use serde_json::json;
use tokio::sync::mpsc;

/// A guard against a hung test, not a synchronisation: every wait below ends on an event.
const PATIENCE: Duration = Duration::from_secs(20);

fn opts() -> ConsumerOptions {
    ConsumerOptions {
        batch_size: 10,
        visibility: Duration::from_secs(60),
        poll_interval: Duration::from_millis(5),
        retry_base: Duration::from_secs(10),
        retry_max: Duration::from_secs(100),
    }
}

async fn wait_batches(handle: &ConsumerHandle, n: u64) {
    let mut progress = handle.progress();
    tokio::time::timeout(PATIENCE, progress.wait_for(|p| p.batches >= n))
        .await
        .expect("the consumer must finish the batch")
        .expect("the consumer must still be running");
}

/// Spawns a consumer whose handler reports each delivery and fails the messages `fail` picks.
fn start(
    queue: Arc<SqliteQueue>,
    fail: impl Fn(&Delivery) -> bool + Send + Sync + 'static,
) -> (ConsumerHandle, mpsc::UnboundedReceiver<(String, u32)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fail = Arc::new(fail);
    let handle = spawn_consumer(
        queue,
        move |batch: Vec<Delivery>| {
            let (tx, fail) = (tx.clone(), fail.clone());
            async move {
                let mut failed = Vec::new();
                for d in batch {
                    let _ = tx.send((d.body.as_str().unwrap_or_default().to_owned(), d.attempt));
                    if fail(&d) {
                        failed.push(d.message_id);
                    }
                }
                failed
            }
        },
        opts(),
    );
    (handle, rx)
}

#[tokio::test]
async fn successes_are_acked_and_failures_retried_after_backoff() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let queue = Arc::new(SqliteQueue::open_in_memory(clock.clone(), 3).unwrap());
    for name in ["a", "b", "c"] {
        queue.send(json!(name), Duration::ZERO).await.unwrap();
    }
    let (handle, mut seen) = start(queue.clone(), |d| d.body == json!("b") && d.attempt == 1);
    wait_batches(&handle, 1).await;
    let mut first: Vec<(String, u32)> = (0..3).map(|_| seen.try_recv().unwrap()).collect();
    first.sort();
    assert_eq!(first, [("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]);
    assert_eq!(handle.progress().borrow().acked, 2);
    assert_eq!(
        queue.counts().await.unwrap(),
        QueueCounts {
            ready: 0,
            waiting: 1,
            dead: 0
        },
        "a and c acked, b waiting"
    );

    // The first retry waits retry_base (10 s) on the queue's clock.
    clock.advance_ms(9_000);
    assert_eq!(
        queue.counts().await.unwrap().ready,
        0,
        "b must not be ready before its backoff"
    );
    clock.advance_ms(1_000);
    wait_batches(&handle, 2).await;
    assert_eq!(
        seen.try_recv().unwrap(),
        ("b".into(), 2),
        "b comes back once, as attempt 2"
    );
    handle.shutdown().await;
    assert_eq!(
        queue.counts().await.unwrap(),
        QueueCounts::default(),
        "everything was acked"
    );
}

#[tokio::test]
async fn a_message_that_always_fails_ends_as_a_dead_letter() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let queue = Arc::new(SqliteQueue::open_in_memory(clock.clone(), 3).unwrap());
    let id = queue.send(json!("poison"), Duration::ZERO).await.unwrap();
    let (handle, mut seen) = start(queue.clone(), |_| true);
    // Backoff doubles: 10 s after attempt 1, 20 s after attempt 2; attempt 3 is the last.
    for (attempt, backoff_ms) in [(1, 10_000), (2, 20_000), (3, 0)] {
        wait_batches(&handle, attempt).await;
        assert_eq!(seen.try_recv().unwrap(), ("poison".into(), attempt as u32));
        clock.advance_ms(backoff_ms);
    }
    handle.shutdown().await;
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].message_id.as_str(), dead[0].attempt),
        (id.as_str(), 3)
    );
    assert!(
        seen.try_recv().is_err(),
        "a dead letter is not delivered again"
    );
}

#[tokio::test]
async fn a_panicking_handler_fails_its_batch_but_not_the_loop() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let queue = Arc::new(SqliteQueue::open_in_memory(clock.clone(), 3).unwrap());
    queue.send(json!("boom"), Duration::ZERO).await.unwrap();
    let handle = spawn_consumer(
        queue.clone(),
        |batch: Vec<Delivery>| async move {
            if batch.iter().any(|d| d.attempt == 1) {
                panic!("handler bug");
            }
            Vec::new()
        },
        opts(),
    );
    wait_batches(&handle, 1).await;
    assert_eq!(
        handle.progress().borrow().retried,
        1,
        "the panicked batch is retried"
    );
    clock.advance_ms(10_000);
    wait_batches(&handle, 2).await;
    assert_eq!(
        handle.progress().borrow().acked,
        1,
        "the loop survived and acked the second attempt"
    );
    handle.shutdown().await;
    assert_eq!(queue.counts().await.unwrap(), QueueCounts::default());
}

#[tokio::test]
async fn shutdown_finishes_the_batch_in_hand() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let queue = Arc::new(SqliteQueue::open_in_memory(clock, 3).unwrap());
    queue.send(json!("slow"), Duration::ZERO).await.unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (release_tx, release) = tokio::sync::watch::channel(false);
    let handle = spawn_consumer(
        queue.clone(),
        move |_batch: Vec<Delivery>| {
            let (started_tx, mut release) = (started_tx.clone(), release.clone());
            async move {
                let _ = started_tx.send(());
                let _ = release.wait_for(|go| *go).await;
                Vec::new()
            }
        },
        opts(),
    );
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .unwrap()
        .unwrap();
    let stopping = tokio::spawn(handle.shutdown());
    // The handler is mid-batch: shutdown must wait for it rather than abandon the message.
    tokio::task::yield_now().await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the batch in hand"
    );
    release_tx.send(true).unwrap();
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        queue.counts().await.unwrap(),
        QueueCounts::default(),
        "the batch in hand was acked before stopping"
    );
}

#[tokio::test]
async fn shutdown_of_an_idle_loop_is_prompt() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let queue: Arc<SqliteQueue> = Arc::new(SqliteQueue::open_in_memory(clock, 3).unwrap());
    let handle = spawn_consumer(
        queue.clone(),
        |_b: Vec<Delivery>| async { Vec::new() },
        ConsumerOptions {
            poll_interval: Duration::from_secs(3600),
            ..opts()
        },
    );
    // An hour-long poll interval: only the stop signal can end the wait in time.
    tokio::time::timeout(PATIENCE, handle.shutdown())
        .await
        .expect("an idle loop stops at once");
    queue.send(json!("after"), Duration::ZERO).await.unwrap();
    assert_eq!(
        queue.counts().await.unwrap().ready,
        1,
        "a stopped loop takes nothing"
    );
}
