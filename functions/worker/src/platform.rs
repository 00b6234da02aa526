//! The Worker's clock, ids, random source and timer: JavaScript's `Date.now()`,
//! `crypto.getRandomValues` and `setTimeout` (std's clocks panic on wasm32-unknown-unknown).

use std::time::Duration;

use imagemcp_core::clock::Clock;
use imagemcp_core::ids::{Ids, MonotonicV7, Random};
use imagemcp_core::timer::Timer;
use worker::send::SendFuture;

/// The wall clock of the isolate. Workers advance it only on I/O (a Spectre mitigation), which is
/// all the app needs: timestamps and expiries, never benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> i64 {
        i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX)
    }
}

/// `crypto.getRandomValues`, through getrandom's `wasm_js` backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsRandom;

impl Random for JsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // No key may be made from weak randomness: failing here is the only safe answer.
        getrandom::fill(buf).expect("crypto.getRandomValues failed");
    }
}

/// UUIDv7 ids in their simple form, strictly increasing within an isolate (core's `MonotonicV7`,
/// as `imagemcp-local`'s `UuidV7Ids`: the isolate's clock stands still between I/O).
#[derive(Debug, Default)]
pub struct UuidV7Ids {
    order: MonotonicV7,
}

impl Ids for UuidV7Ids {
    fn new_id(&self) -> String {
        let millis = worker::Date::now().as_millis();
        let mut tail = [0u8; 10];
        JsRandom.fill(&mut tail);
        let fresh = uuid::Builder::from_unix_timestamp_millis(millis, &tail)
            .into_uuid()
            .as_u128();
        uuid::Uuid::from_u128(self.order.next(fresh))
            .simple()
            .to_string()
    }
}

/// The engine's timeouts on `setTimeout` (`worker::Delay`).
#[derive(Clone, Copy, Debug, Default)]
pub struct DelayTimer;

#[async_trait::async_trait]
impl Timer for DelayTimer {
    async fn sleep(&self, duration: Duration) {
        // A `Delay` holds a JavaScript closure (`!Send`); the isolate has one thread.
        SendFuture::new(worker::Delay::from(duration)).await;
    }
}

/// A log line for the Worker's console, written when the formatter drops it.
pub struct ConsoleLine(Vec<u8>);

impl std::io::Write for ConsoleLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let line = line.trim_end();
        if !line.is_empty() {
            worker::console_log!("{line}");
        }
    }
}

/// Sends `tracing` events to the console, where `wrangler tail` and the dashboard show them.
pub fn init_tracing() {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(|| ConsoleLine(Vec::new()))
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .finish();
    // Already set by an earlier start of this isolate: keep that one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}
