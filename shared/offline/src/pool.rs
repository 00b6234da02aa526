//! The offline model's render threads: a fixed set, one per core, on which every render, edit and
//! decode of the process runs.
//!
//! Not tokio's blocking pool: that pool starts a thread for each task that finds none idle and
//! retires idle ones, so over a long run the renders land on dozens of different threads. glibc
//! gives each thread an arena and keeps a freed multi-megabyte pixel buffer in it for the next
//! allocation, so every thread that ever rendered held on to its buffers, and the process stayed at
//! the peak of the busiest moment (docs/engine.md, "Memory"). On a fixed set of threads that is one
//! arena per core; and the work in flight is bounded too: renders past the cores wait in the queue,
//! holding only their request.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, LazyLock, Mutex};

use imagemcp_core::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// The queue the render threads take their work from; `None` when no thread could be started
/// (the work then runs on the caller's thread).
static QUEUE: LazyLock<Option<Mutex<Sender<Job>>>> = LazyLock::new(start);

/// How many render threads run: one per core.
pub(super) fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

fn start() -> Option<Mutex<Sender<Job>>> {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let mut started = 0;
    for i in 0..threads() {
        let rx = rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("offline-render-{i}"))
            .spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = next else { return };
                    // A job that panics loses its own answer (its caller gets an error), not the
                    // thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            });
        match thread {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(error = %e, "an offline render thread did not start"),
        }
    }
    (started > 0).then(|| Mutex::new(tx))
}

/// Runs `work` on a render thread and waits for its answer without blocking the caller's thread.
pub(super) async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    match QUEUE.as_ref() {
        Some(queue) => queue
            .lock()
            .map_err(|_| Error::internal("the render queue lock is poisoned"))?
            .send(job)
            .map_err(|_| Error::internal("the render threads have stopped"))?,
        None => job(),
    }
    rx.await
        .map_err(|_| Error::internal("an offline render failed before it answered"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_fixed_render_threads_and_a_panic_spares_them() {
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..4 * threads() {
            let name = run(|| std::thread::current().name().map(str::to_owned)).await;
            names.insert(name.unwrap().unwrap_or_default());
        }
        assert!(names.len() <= threads(), "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("offline-render-")));
        let panicked = run(|| -> u32 { panic!("a bad render") }).await;
        assert!(panicked.is_err());
        for _ in 0..threads() {
            assert_eq!(run(|| 7).await.unwrap(), 7, "every thread still works");
        }
    }
}
