//! The `Timer` port: what a timeout waits on. Each runtime injects its own (tokio's natively,
//! `setTimeout` on the Worker), and tests a [`ManualTimer`] driven by their clock, so a hung call
//! can be timed out without a test ever sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;

use crate::clock::Clock;
use crate::{Error, Result};

/// Waits. Injected so that time in tests moves only when the test says.
#[async_trait::async_trait]
pub trait Timer: crate::MaybeSendSync {
    async fn sleep(&self, duration: Duration);
}

/// Never fires: no timeouts (a runtime without a timer).
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
    state: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    /// Each sleep's deadline and the sender that ends it.
    sleeps: Vec<(i64, oneshot::Sender<()>)>,
    /// Who waits for a number of sleepers (see [`ManualTimer::wait_for_sleepers`]).
    watchers: Vec<oneshot::Sender<()>>,
}

impl Waiting {
    fn waiting(&self) -> usize {
        // A sleep whose call finished first was dropped: it no longer waits.
        self.sleeps
            .iter()
            .filter(|(_, tx)| !tx.is_canceled())
            .count()
    }
}

impl ManualTimer {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Mutex::new(Waiting::default()),
        }
    }

    /// How many sleeps are waiting.
    pub fn waiting(&self) -> usize {
        self.state.lock().map_or(0, |s| s.waiting())
    }

    /// Resolves once at least `n` sleeps are waiting (a call is parked on its timeout).
    pub async fn wait_for_sleepers(&self, n: usize) {
        loop {
            let rx = {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                if state.waiting() >= n {
                    return;
                }
                let (tx, rx) = oneshot::channel();
                state.watchers.push(tx);
                rx
            };
            // Woken by the next sleep that registers (or by the timer's drop).
            let _ = rx.await;
        }
    }

    /// Ends every sleep whose deadline the clock has passed; returns how many.
    pub fn fire_due(&self) -> usize {
        let now = self.clock.now_ms();
        let Ok(mut state) = self.state.lock() else {
            return 0;
        };
        let (due, rest): (Vec<_>, Vec<_>) = state.sleeps.drain(..).partition(|(at, _)| *at <= now);
        state.sleeps = rest;
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
        if let Ok(mut state) = self.state.lock() {
            state.sleeps.push((at, tx));
            for watcher in state.watchers.drain(..) {
                let _ = watcher.send(());
            }
        }
        // A dropped timer ends the sleep too.
        let _ = rx.await;
    }
}

/// Runs `fut`, or gives up after `limit` with `Unavailable` naming `what`.
pub async fn within<T>(
    timer: &dyn Timer,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let fut = std::pin::pin!(fut);
    let sleep = timer.sleep(limit);
    match futures::future::select(fut, sleep).await {
        futures::future::Either::Left((result, _)) => result,
        futures::future::Either::Right(((), _)) => Err(Error::Unavailable(format!(
            "{what} timed out after {} s; retry later",
            limit.as_secs()
        ))),
    }
}
