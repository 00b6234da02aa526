//! One SQLite connection, used off the async runtime: the plumbing shared by `SqliteTable` and
//! `SqliteQueue`.
//!
//! Each adapter owns one connection behind a mutex and runs every statement on tokio's blocking
//! pool, so a slow disk never stalls the runtime. Writers open their transactions with
//! `BEGIN IMMEDIATE`, which takes the database's write lock up front: a read-check-write sequence
//! cannot interleave with another writer's, whether that writer is in this process (another
//! adapter on the same file) or in another process, and a waiting writer is queued by the busy
//! timeout instead of failing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagemcp_core::{Error, Result};
use rusqlite::{Connection, ErrorCode};

/// How long a writer waits for another's lock before giving up with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating when missing) the database file at `path`, in WAL mode, and runs `schema`.
    pub(crate) fn open(path: &Path, schema: &str) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Unavailable(format!("cannot create the data directory: {e}"))
            })?;
        }
        let conn = Connection::open(path).map_err(map_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        // WAL lets readers go on while one writer commits, and survives a crash mid-write;
        // NORMAL sync is durable across process crashes (only power loss may drop the last
        // commits), the usual pairing with WAL.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(map_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Unavailable(format!(
                "the database refused WAL mode (got {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(map_err)?;
        // Deleted rows are overwritten with zeros, not left in free pages: an erased user
        // (GDPR) must not survive in the database file.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(map_err)?;
        Self::init(conn, schema)
    }

    /// A private in-memory database (for tests and throwaway runs).
    pub(crate) fn open_in_memory(schema: &str) -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(map_err)?, schema)
    }

    fn init(conn: Connection, schema: &str) -> Result<Self> {
        // Two adapters opening one new file at once both run the schema; the write lock makes
        // the second wait and then find every `IF NOT EXISTS` satisfied.
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {schema} COMMIT;"))
            .map_err(map_err)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let work = move || {
            // A panic while holding the lock cannot leave a transaction open (rusqlite rolls
            // back on drop), so a poisoned connection is still sound to use.
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        };
        // Outside a tokio runtime (a plain executor in a test or a script) there is no blocking
        // pool to protect, so the work simply runs here.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt
                .spawn_blocking(work)
                .await
                .map_err(|e| Error::internal(format!("a database task failed: {e}")))?,
            Err(_) => work(),
        }
    }
}

/// Maps SQLite's errors into core's: lock contention is `Unavailable` (worth retrying), the rest
/// is `Internal`.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            Error::Unavailable("the database is busy".into())
        }
        Some(ErrorCode::DiskFull) => Error::Unavailable("the disk is full".into()),
        _ => Error::internal(e),
    }
}
