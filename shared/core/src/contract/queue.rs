//! The `Queue`/`PullQueue` contract: at-least-once delivery with visibility timeouts, attempts,
//! delays, retries and dead letters.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{START_MS, ok};
use crate::clock::ManualClock;
use crate::queue::{Delivery, PullQueue};

/// The `max_attempts` the suite builds its queues with.
const MAX_ATTEMPTS: u32 = 3;

const VISIBILITY: Duration = Duration::from_secs(30);

/// Runs every `PullQueue` check, each against a fresh, empty queue from `make`.
///
/// `make(clock, max_attempts)` must return a queue that delivers a message at most `max_attempts`
/// times and then moves it to its dead letters. Batches asked for are at most 10 (the SQS limit).
pub async fn pull_queue_suite<Q: PullQueue>(make: impl AsyncFn(Arc<ManualClock>, u32) -> Q) {
    let fresh = async || {
        let clock = Arc::new(ManualClock::new(START_MS));
        (make(clock.clone(), MAX_ATTEMPTS).await, clock)
    };
    let (q, _) = fresh().await;
    send_receive_ack(&q).await;
    let (q, clock) = fresh().await;
    visibility_timeout_redelivers(&q, &clock).await;
    let (q, clock) = fresh().await;
    retry_after_delay(&q, &clock).await;
    let (q, clock) = fresh().await;
    delayed_send(&q, &clock).await;
    let (q, clock) = fresh().await;
    dead_letters_after_retries(&q, &clock).await;
    let (q, clock) = fresh().await;
    dead_letters_after_timeouts(&q, &clock).await;
    let (q, _) = fresh().await;
    receive_honours_max(&q).await;
    let (q, _) = fresh().await;
    bodies_round_trip(&q).await;
}

async fn receive<Q: PullQueue>(q: &Q, max: usize, what: &str) -> Vec<Delivery> {
    let got = ok(q.receive(max, VISIBILITY).await, what);
    assert!(
        got.len() <= max,
        "queue: {what}: receive({max}) returned {} messages",
        got.len()
    );
    got
}

/// Receives exactly one message, failing with `what` otherwise.
async fn receive_one<Q: PullQueue>(q: &Q, what: &str) -> Delivery {
    let mut got = receive(q, 10, what).await;
    assert_eq!(
        got.len(),
        1,
        "queue: {what}: expected exactly one message, got {got:?}"
    );
    got.remove(0)
}

async fn assert_empty<Q: PullQueue>(q: &Q, what: &str) {
    let got = receive(q, 10, what).await;
    assert!(
        got.is_empty(),
        "queue: {what}: expected no message, got {got:?}"
    );
}

async fn send_receive_ack<Q: PullQueue>(q: &Q) {
    assert_empty(q, "receive from an empty queue").await;
    let id = ok(
        q.send(json!({"job": "j1"}), Duration::ZERO).await,
        "queue: send",
    );
    let other = ok(
        q.send(json!({"job": "j2"}), Duration::ZERO).await,
        "queue: send",
    );
    assert_ne!(id, other, "queue: every message must get its own id");

    let got = receive(q, 10, "receive after two sends").await;
    assert_eq!(
        got.len(),
        2,
        "queue: both messages must be delivered, got {got:?}"
    );
    let first = got.iter().find(|d| d.message_id == id).unwrap_or_else(|| {
        panic!("queue: the id send returned must be the delivery's message_id, got {got:?}")
    });
    assert_eq!(
        first.body,
        json!({"job": "j1"}),
        "queue: the body must be delivered as sent"
    );
    assert!(
        got.iter().all(|d| d.attempt == 1),
        "queue: a first delivery must have attempt 1, got {got:?}"
    );
    assert_ne!(
        got[0].receipt, got[1].receipt,
        "queue: each delivery must have its own receipt"
    );

    for d in &got {
        ok(q.ack(&d.receipt).await, "queue: ack");
    }
    assert_empty(q, "receive after ack").await;
    let dead = ok(q.dead_letters(10).await, "queue: dead_letters");
    assert!(
        dead.is_empty(),
        "queue: acked messages must not become dead letters, got {dead:?}"
    );
}

async fn visibility_timeout_redelivers<Q: PullQueue>(q: &Q, clock: &ManualClock) {
    let id = ok(q.send(json!({"n": 1}), Duration::ZERO).await, "queue: send");
    let first = receive_one(q, "first receive").await;
    assert_empty(q, "receive while the message is in flight").await;
    clock.advance_ms(29_000);
    assert_empty(q, "receive just before the visibility timeout ends").await;
    clock.advance_ms(1_000);
    let again = receive_one(q, "receive after the visibility timeout").await;
    assert_eq!(
        again.message_id, id,
        "queue: a redelivery must keep the message_id"
    );
    assert_eq!(
        again.attempt, 2,
        "queue: a redelivery must count the attempt"
    );
    assert_eq!(
        again.body, first.body,
        "queue: a redelivery must carry the same body"
    );
    assert_ne!(
        again.receipt, first.receipt,
        "queue: a redelivery must have a new receipt"
    );

    ok(q.ack(&again.receipt).await, "queue: ack of the redelivery");
    clock.advance_ms(60_000);
    assert_empty(q, "receive after acking the redelivery").await;
}

async fn retry_after_delay<Q: PullQueue>(q: &Q, clock: &ManualClock) {
    let id = ok(
        q.send(json!("retry me"), Duration::ZERO).await,
        "queue: send",
    );
    let first = receive_one(q, "first receive").await;
    ok(
        q.retry(&first.receipt, Duration::from_secs(60)).await,
        "queue: retry with a delay",
    );
    assert_empty(q, "receive right after retry").await;
    clock.advance_ms(59_000);
    assert_empty(q, "receive just before the retry delay ends").await;
    clock.advance_ms(1_000);
    let again = receive_one(q, "receive after the retry delay").await;
    assert_eq!(
        (again.message_id.as_str(), again.attempt),
        (id.as_str(), 2),
        "queue: a retried message must come back with the same id and attempt 2"
    );

    ok(
        q.retry(&again.receipt, Duration::ZERO).await,
        "queue: retry without delay",
    );
    let third = receive_one(q, "receive after a retry without delay").await;
    assert_eq!(
        third.attempt, 3,
        "queue: a retry without delay must redeliver at once, with attempt 3"
    );
    ok(q.ack(&third.receipt).await, "queue: ack");
    clock.advance_ms(600_000);
    assert_empty(q, "receive after ack").await;
}

async fn delayed_send<Q: PullQueue>(q: &Q, clock: &ManualClock) {
    ok(
        q.send(json!("later"), Duration::from_secs(45)).await,
        "queue: send with a delay",
    );
    ok(q.send(json!("now"), Duration::ZERO).await, "queue: send");
    let now = receive_one(q, "receive before the delay").await;
    assert_eq!(
        now.body,
        json!("now"),
        "queue: only the undelayed message may be delivered before the delay"
    );
    ok(q.ack(&now.receipt).await, "queue: ack");
    clock.advance_ms(44_000);
    assert_empty(q, "receive just before the delay ends").await;
    clock.advance_ms(1_000);
    let later = receive_one(q, "receive after the delay").await;
    assert_eq!(
        (later.body, later.attempt),
        (json!("later"), 1),
        "queue: a delayed message must arrive after its delay, as attempt 1"
    );
}

async fn dead_letters_after_retries<Q: PullQueue>(q: &Q, clock: &ManualClock) {
    let id = ok(
        q.send(json!({"poison": true}), Duration::ZERO).await,
        "queue: send",
    );
    let keep = ok(
        q.send(json!({"poison": false}), Duration::ZERO).await,
        "queue: send",
    );
    for attempt in 1..=MAX_ATTEMPTS {
        let got = receive(q, 10, "receive of a failing message").await;
        let d = got.iter().find(|d| d.message_id == id).unwrap_or_else(|| {
            panic!("queue: attempt {attempt} of {MAX_ATTEMPTS} must be delivered, got {got:?}")
        });
        assert_eq!(d.attempt, attempt, "queue: attempts must count up");
        ok(q.retry(&d.receipt, Duration::ZERO).await, "queue: retry");
        if let Some(k) = got.iter().find(|d| d.message_id == keep) {
            ok(q.ack(&k.receipt).await, "queue: ack");
        }
    }
    clock.advance_ms(3_600_000);
    assert_empty(q, "receive after the last attempt failed").await;
    let dead = ok(q.dead_letters(10).await, "queue: dead_letters");
    assert_eq!(
        dead.len(),
        1,
        "queue: a message out of attempts must be one dead letter, got {dead:?}"
    );
    assert_eq!(
        dead[0].message_id, id,
        "queue: the dead letter must keep its message_id"
    );
    assert_eq!(
        dead[0].body,
        json!({"poison": true}),
        "queue: the dead letter must keep its body"
    );
    assert_eq!(
        dead[0].attempt, MAX_ATTEMPTS,
        "queue: the dead letter must tell how many deliveries it had"
    );
}

async fn dead_letters_after_timeouts<Q: PullQueue>(q: &Q, clock: &ManualClock) {
    // A consumer that dies mid-message never acks nor retries: the timeouts count as attempts.
    let first = ok(
        q.send(json!("crash 1"), Duration::ZERO).await,
        "queue: send",
    );
    for attempt in 1..=MAX_ATTEMPTS {
        let d = receive_one(q, "receive of a message whose consumer dies").await;
        assert_eq!(
            (d.message_id.as_str(), d.attempt),
            (first.as_str(), attempt),
            "queue: a timed-out message must come back with the next attempt"
        );
        clock.advance_ms(31_000);
    }
    let second = ok(
        q.send(json!("crash 2"), Duration::ZERO).await,
        "queue: send",
    );
    for _ in 1..=MAX_ATTEMPTS {
        let d = receive_one(q, "receive of the second dying message").await;
        assert_eq!(
            d.message_id, second,
            "queue: a dead letter must not be delivered again"
        );
        clock.advance_ms(31_000);
    }
    assert_empty(q, "receive after every attempt timed out").await;
    let dead = ok(q.dead_letters(10).await, "queue: dead_letters");
    let ids: Vec<&str> = dead.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(
        ids,
        [first.as_str(), second.as_str()],
        "queue: dead letters must list both, oldest first"
    );
    assert!(
        dead.iter().all(|d| d.attempt == MAX_ATTEMPTS),
        "queue: each dead letter had {MAX_ATTEMPTS} deliveries, got {dead:?}"
    );
    let one = ok(q.dead_letters(1).await, "queue: dead_letters(1)");
    assert_eq!(one.len(), 1, "queue: dead_letters must honour its max");
}

async fn receive_honours_max<Q: PullQueue>(q: &Q) {
    let mut sent = BTreeSet::new();
    for i in 0..7 {
        sent.insert(ok(q.send(json!(i), Duration::ZERO).await, "queue: send"));
    }
    let a = receive(q, 3, "receive(3)").await;
    assert_eq!(a.len(), 3, "queue: receive(3) with 7 waiting must return 3");
    let b = receive(q, 1, "receive(1)").await;
    assert_eq!(b.len(), 1, "queue: receive(1) must return 1");
    let c = receive(q, 10, "receive(10)").await;
    assert_eq!(c.len(), 3, "queue: receive(10) must return the 3 remaining");
    let got: BTreeSet<String> = a
        .iter()
        .chain(&b)
        .chain(&c)
        .map(|d| d.message_id.clone())
        .collect();
    assert_eq!(
        got, sent,
        "queue: the batches must hold every message exactly once"
    );
    assert_empty(q, "receive when all are in flight").await;
}

async fn bodies_round_trip<Q: PullQueue>(q: &Q) {
    let bodies: Vec<Value> = vec![
        json!({"kind": "campaign", "job_id": "job_1", "items": [1, 2, 3], "opts": {"hd": true, "ratio": 1.5, "note": null}}),
        json!("a string with ünïcödé 🎨 and \"quotes\"\n"),
        json!([null, false, -7, i64::MAX, 0.25, [], {}]),
        json!(42),
        json!(null),
    ];
    let mut ids = Vec::new();
    for b in &bodies {
        ids.push(ok(q.send(b.clone(), Duration::ZERO).await, "queue: send"));
    }
    let mut got = Vec::new();
    for _ in 0..bodies.len() {
        let batch = receive(q, 10, "receive of JSON bodies").await;
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    assert_eq!(
        got.len(),
        bodies.len(),
        "queue: every body must be delivered, got {got:?}"
    );
    for (id, body) in ids.iter().zip(&bodies) {
        let d = got
            .iter()
            .find(|d| &d.message_id == id)
            .unwrap_or_else(|| panic!("queue: message {id} must be delivered"));
        assert_eq!(&d.body, body, "queue: a JSON body must round-trip exactly");
    }
}
