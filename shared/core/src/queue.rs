//! The `Queue` port: long work is sent as messages and done by a consumer, at least once.
//!
//! Producers only `send`. Where the platform pushes batches to a function (SQS → Lambda, Cloudflare
//! Queues → Worker) the runtime calls the shared consumer directly; where we poll (the embedded
//! SQLite queue, SQS from a long-running process) the adapter also implements [`PullQueue`].

use std::time::Duration;

use serde_json::Value;

use crate::Result;

/// A message as the consumer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Stable across redeliveries of the same message.
    pub message_id: String,
    /// Identifies this delivery, for `ack`/`retry`.
    pub receipt: String,
    pub body: Value,
    /// 1 on the first delivery.
    pub attempt: u32,
}

#[async_trait::async_trait]
pub trait Queue: crate::MaybeSendSync {
    /// Enqueues a message; returns its id.
    async fn send(&self, body: Value, delay: Duration) -> Result<String>;
}

/// A queue the process pulls from. A received message is invisible to other receivers for the
/// visibility timeout; unless acked in that time it is delivered again. After `max_attempts`
/// deliveries without an ack it moves to the dead-letter store instead.
#[async_trait::async_trait]
pub trait PullQueue: Queue {
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>>;
    /// The message is done: it is never delivered again.
    async fn ack(&self, receipt: &str) -> Result<()>;
    /// The message failed: deliver it again after `delay` (or dead-letter it when out of attempts).
    async fn retry(&self, receipt: &str, delay: Duration) -> Result<()>;
    /// Messages that ran out of attempts, oldest first.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>>;
}
