//! The local adapters against the port contract suites, plus what only they promise: durability
//! across reopen, WAL, atomicity across connections, safe paths and signed URLs, the consumer loop.

mod blob;
mod cache;
mod consumer;
mod queue;
mod table;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temporary directory handing out fresh file paths, so each contract check gets its own file.
struct Files {
    dir: tempfile::TempDir,
    n: AtomicUsize,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            n: AtomicUsize::new(0),
        }
    }

    fn next(&self, stem: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{stem}-{}", self.n.fetch_add(1, Ordering::SeqCst)))
    }
}
