//! The `Timer` the engine's timeouts wait on: tokio's on native runtimes, a manual one in tests, so
//! a hung model call can be timed out without a test ever sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use imagemcp_core::clock::Clock;

/// Waits. Injected so that time in tests moves only when the test says.
#[async_trait::async_trait]
pub trait Timer: imagemcp_core::MaybeSendSync {
    async fn sleep(&self, duration: Duration);
}

/// Sleeps on tokio's timer (native runtimes).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTimer;

#[cfg(not(target_arch = "wasm32"))]
#[async_trait::async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Never fires: no timeouts (a runtime without a timer, until it injects one).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTimer;

#[async_trait::async_trait]
impl Timer for NoTimer {
    async fn sleep(&self, _duration: Duration) {
        std::future::pending::<()>().await;
    }
}

/// A timer driven by a (manual) clock: a sleep ends when the test has advanced the clock past its
/// deadline and called [`ManualTimer::fire_due`].
pub struct ManualTimer {
    clock: Arc<dyn Clock>,
    pending: Mutex<Vec<(i64, oneshot::Sender<()>)>>,
    registered: tokio::sync::Notify,
}

impl ManualTimer {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            pending: Mutex::new(Vec::new()),
            registered: tokio::sync::Notify::new(),
        }
    }

    /// How many sleeps are waiting.
    pub fn waiting(&self) -> usize {
        // A sleep whose call finished first was dropped: it no longer waits.
        self.pending
            .lock()
            .map_or(0, |p| p.iter().filter(|(_, tx)| !tx.is_canceled()).count())
    }

    /// Resolves once at least `n` sleeps are waiting (a call is parked on its timeout).
    pub async fn wait_for_sleepers(&self, n: usize) {
        loop {
            let notified = self.registered.notified();
            if self.waiting() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Ends every sleep whose deadline the clock has passed; returns how many.
    pub fn fire_due(&self) -> usize {
        let now = self.clock.now_ms();
        let Ok(mut pending) = self.pending.lock() else {
            return 0;
        };
        let (due, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(at, _)| *at <= now);
        *pending = rest;
        let fired = due.len();
        for (_, tx) in due {
            let _ = tx.send(());
        }
        fired
    }
}

#[async_trait::async_trait]
impl Timer for ManualTimer {
    async fn sleep(&self, duration: Duration) {
        let (tx, rx) = oneshot::channel();
        let at = self
            .clock
            .now_ms()
            .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        if let Ok(mut pending) = self.pending.lock() {
            pending.push((at, tx));
        }
        self.registered.notify_waiters();
        // A dropped timer ends the sleep too.
        let _ = rx.await;
    }
}

/// Runs `fut`, or gives up after `limit` with `Unavailable` naming `what`.
pub async fn within<T>(
    timer: &dyn Timer,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = imagemcp_core::Result<T>>,
) -> imagemcp_core::Result<T> {
    let fut = std::pin::pin!(fut);
    let sleep = timer.sleep(limit);
    match futures::future::select(fut, sleep).await {
        futures::future::Either::Left((result, _)) => result,
        futures::future::Either::Right(((), _)) => Err(imagemcp_core::Error::Unavailable(format!(
            "{what} timed out after {} s; retry later",
            limit.as_secs()
        ))),
    }
}
