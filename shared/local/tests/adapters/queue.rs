//! `SqliteQueue`: the contract in memory and on files, durability, crash redelivery, exclusive
//! receives across connections, single-use receipts.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::clock::{Clock, ManualClock};
use imagemcp_core::contract;
use imagemcp_core::queue::{PullQueue, Queue};
use imagemcp_local::{QueueCounts, SqliteQueue, SqliteTable};
use serde_json::json;

use crate::Files;

const VIS: Duration = Duration::from_secs(30);

#[tokio::test]
async fn in_memory_queue_meets_the_contract() {
    contract::pull_queue_suite(async |clock, max| SqliteQueue::open_in_memory(clock, max).unwrap())
        .await;
}

#[tokio::test]
async fn file_queue_meets_the_contract() {
    let files = Files::new();
    contract::pull_queue_suite(async |clock, max| {
        SqliteQueue::open(&files.next("queue.db"), clock, max).unwrap()
    })
    .await;
}

#[tokio::test]
async fn messages_persist_across_reopen_and_share_the_table_file() {
    let files = Files::new();
    let path = files.next("imagemcp.db");
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    // The queue and the table may share one file.
    let _table = SqliteTable::open(&path, clock.clone()).unwrap();
    let id = {
        let q = SqliteQueue::open(&path, clock.clone(), 3).unwrap();
        q.send(json!({"job": "job_1"}), Duration::ZERO)
            .await
            .unwrap()
    };
    let q = SqliteQueue::open(&path, clock, 3).unwrap();
    let got = q.receive(10, VIS).await.unwrap();
    assert_eq!(
        got.len(),
        1,
        "a sent message must survive reopening the file"
    );
    assert_eq!(
        (got[0].message_id.as_str(), &got[0].body),
        (id.as_str(), &json!({"job": "job_1"}))
    );
}

#[tokio::test]
async fn a_message_in_flight_when_the_process_dies_is_redelivered() {
    let files = Files::new();
    let path = files.next("crash.db");
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let first = {
        let q = SqliteQueue::open(&path, clock.clone(), 3).unwrap();
        q.send(json!("work"), Duration::ZERO).await.unwrap();
        let got = q.receive(1, VIS).await.unwrap();
        assert_eq!(got.len(), 1);
        got.into_iter().next().unwrap()
        // The queue is dropped here without an ack: the process "died".
    };
    let q = SqliteQueue::open(&path, clock.clone(), 3).unwrap();
    assert!(
        q.receive(10, VIS).await.unwrap().is_empty(),
        "the message is still in its visibility window"
    );
    clock.advance_ms(30_000);
    let again = q.receive(10, VIS).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "after the window the unacked message must come back"
    );
    assert_eq!(
        (again[0].message_id.as_str(), again[0].attempt),
        (first.message_id.as_str(), 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_on_two_connections_never_share_a_message() {
    let files = Files::new();
    let path = files.next("race.db");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(contract::START_MS));
    let producer = SqliteQueue::open(&path, clock.clone(), 3).unwrap();
    let mut sent = HashSet::new();
    for i in 0..150 {
        sent.insert(producer.send(json!(i), Duration::ZERO).await.unwrap());
    }
    let queues = [
        Arc::new(producer),
        Arc::new(SqliteQueue::open(&path, clock, 3).unwrap()),
    ];
    let mut tasks = Vec::new();
    for i in 0..6 {
        let q = queues[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = q.receive(7, VIS).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|d| d.message_id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(
                seen.insert(id.clone()),
                "{id} was delivered twice in one visibility window"
            );
        }
    }
    assert_eq!(seen, sent, "every message must be delivered once");
}

#[tokio::test]
async fn a_stale_receipt_does_not_ack_a_redelivery() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let q = SqliteQueue::open_in_memory(clock.clone(), 5).unwrap();
    q.send(json!("slow"), Duration::ZERO).await.unwrap();
    let first = q.receive(1, VIS).await.unwrap().remove(0);
    clock.advance_ms(30_000);
    let second = q.receive(1, VIS).await.unwrap().remove(0);
    q.ack(&first.receipt)
        .await
        .expect("a stale ack succeeds, doing nothing");
    q.retry(&first.receipt, Duration::ZERO)
        .await
        .expect("a stale retry succeeds, doing nothing");
    assert!(
        q.receive(1, VIS).await.unwrap().is_empty(),
        "a stale retry must not release the redelivery"
    );
    q.ack(&second.receipt).await.unwrap();
    clock.advance_ms(60_000);
    assert!(
        q.receive(1, VIS).await.unwrap().is_empty(),
        "the current receipt's ack must delete the message"
    );
    q.ack("not-a-receipt")
        .await
        .expect("an unknown receipt is a no-op");
}

#[tokio::test]
async fn counts_and_order() {
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let q = SqliteQueue::open_in_memory(clock.clone(), 1).unwrap();
    for i in 0..4 {
        q.send(json!(i), Duration::ZERO).await.unwrap();
    }
    q.send(json!("later"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        q.counts().await.unwrap(),
        QueueCounts {
            ready: 4,
            waiting: 1,
            dead: 0
        }
    );
    let got = q.receive(2, VIS).await.unwrap();
    let bodies: Vec<_> = got.iter().map(|d| d.body.clone()).collect();
    assert_eq!(
        bodies,
        [json!(0), json!(1)],
        "the embedded queue delivers in send order"
    );
    q.retry(&got[0].receipt, Duration::ZERO).await.unwrap();
    assert_eq!(
        q.counts().await.unwrap(),
        QueueCounts {
            ready: 2,
            waiting: 2,
            dead: 1
        },
        "max_attempts 1: a retry dead-letters"
    );
    assert!(
        SqliteQueue::open_in_memory(clock, 0).is_err(),
        "max_attempts 0 is refused"
    );
}
