//! The polling consumer loop of the embedded default: receives batches from a `PullQueue`, hands
//! each to a handler, acks what succeeded and retries what failed with exponential backoff.
//!
//! The handler sees the same thing the Lambda (SQS batch) and Worker (Queues batch) entry points
//! see: a batch of deliveries in, the `message_id`s of the failed ones out (SQS's
//! `ReportBatchItemFailures` shape). Delivery is at least once: a handler that overruns the
//! visibility timeout, or a process that dies mid-batch, sees the message again, so handlers must
//! be idempotent (they are: jobs are items in the `Table`, done once by conditional writes).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::queue::{Delivery, PullQueue};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the loop polls and backs off. `ConsumerOptions::default()` gives the values noted on each
/// field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// The most deliveries per handler call (default 10).
    pub batch_size: usize,
    /// How long a received batch stays invisible to other receivers (default 5 minutes): longer
    /// than the slowest batch, or messages are done twice.
    pub visibility: Duration,
    /// The pause after an empty receive or a failed one (default 250 ms).
    pub poll_interval: Duration,
    /// The delay before a failed message's second attempt (default 5 s); each later attempt
    /// doubles it, up to `retry_max`.
    pub retry_base: Duration,
    /// The longest retry delay (default 15 minutes).
    pub retry_max: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            batch_size: 10,
            visibility: Duration::from_secs(300),
            poll_interval: Duration::from_millis(250),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(900),
        }
    }
}

impl ConsumerOptions {
    /// The delay before redelivering a message whose attempt number `attempt` (1-based) failed.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// What the loop has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerProgress {
    /// Batches handed to the handler and then acked or retried.
    pub batches: u64,
    pub acked: u64,
    pub retried: u64,
    /// Queue calls that failed (receive, ack or retry); each is logged.
    pub errors: u64,
}

/// The running loop. Dropping the handle stops the loop after its current batch, without waiting.
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: watch::Sender<bool>,
    progress: watch::Receiver<ConsumerProgress>,
    task: JoinHandle<()>,
}

impl ConsumerHandle {
    /// Watches the loop's progress (e.g. `wait_for(|p| p.batches >= 1)`).
    pub fn progress(&self) -> watch::Receiver<ConsumerProgress> {
        self.progress.clone()
    }

    /// Stops the loop: it finishes the batch in hand (handler, then acks and retries) and takes no
    /// other. Returns when it has stopped. Wrap in a timeout if a handler may hang.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the queue consumer loop ended abnormally");
        }
    }
}

/// Spawns the consumer loop on the current tokio runtime.
///
/// `handler` gets each batch (1 to `opts.batch_size` deliveries) and returns the `message_id`s
/// that failed: those are retried after [`ConsumerOptions::retry_delay`] (or dead-lettered when
/// out of attempts), the rest are acked. A handler that panics fails its whole batch.
pub fn spawn_consumer<Q, F, Fut>(queue: Arc<Q>, handler: F, opts: ConsumerOptions) -> ConsumerHandle
where
    Q: PullQueue + ?Sized + 'static,
    F: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<String>> + Send + 'static,
{
    let (stop, stop_rx) = watch::channel(false);
    let (progress_tx, progress) = watch::channel(ConsumerProgress::default());
    let task = tokio::spawn(run(queue, handler, opts, stop_rx, progress_tx));
    ConsumerHandle {
        stop,
        progress,
        task,
    }
}

async fn run<Q, F, Fut>(
    queue: Arc<Q>,
    handler: F,
    opts: ConsumerOptions,
    mut stop: watch::Receiver<bool>,
    progress: watch::Sender<ConsumerProgress>,
) where
    Q: PullQueue + ?Sized + 'static,
    F: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<String>> + Send + 'static,
{
    let batch_size = opts.batch_size.max(1);
    loop {
        // A dropped handle closes the channel: that too means stop.
        if *stop.borrow() || stop.has_changed().is_err() {
            return;
        }
        let batch = match queue.receive(batch_size, opts.visibility).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "queue receive failed");
                progress.send_modify(|p| p.errors += 1);
                if pause_or_stop(&mut stop, opts.poll_interval).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            if pause_or_stop(&mut stop, opts.poll_interval).await {
                return;
            }
            continue;
        }

        let handed: Vec<(String, String, u32)> = batch
            .iter()
            .map(|d| (d.message_id.clone(), d.receipt.clone(), d.attempt))
            .collect();
        // The handler runs as its own task so that a panic in it fails the batch, not the loop.
        let failed: HashSet<String> = match tokio::spawn(handler(batch)).await {
            Ok(failed) => failed.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "the queue handler panicked; its batch will be retried");
                handed.iter().map(|(id, _, _)| id.clone()).collect()
            }
        };

        let (mut acked, mut retried, mut errors) = (0, 0, 0);
        for (message_id, receipt, attempt) in &handed {
            let outcome = if failed.contains(message_id) {
                retried += 1;
                queue.retry(receipt, opts.retry_delay(*attempt)).await
            } else {
                acked += 1;
                queue.ack(receipt).await
            };
            if let Err(e) = outcome {
                // The message comes back after its visibility timeout: at least once still holds.
                tracing::warn!(error = %e, message_id = %message_id, "queue ack/retry failed");
                errors += 1;
            }
        }
        progress.send_modify(|p| {
            p.batches += 1;
            p.acked += acked;
            p.retried += retried;
            p.errors += errors;
        });
    }
}

/// Waits `pause`; returns true when told to stop first (or when the handle was dropped).
async fn pause_or_stop(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
        () = tokio::time::sleep(pause) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let opts = ConsumerOptions {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(60),
            ..ConsumerOptions::default()
        };
        let delays: Vec<u64> = (1..=6).map(|a| opts.retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(opts.retry_delay(0).as_secs(), 5);
        assert_eq!(opts.retry_delay(u32::MAX), Duration::from_secs(60));
    }
}
