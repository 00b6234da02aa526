//! Builds the application in-process on the local adapters (SQLite in memory, files in a temp
//! dir, the offline model), with a blob store that can be told to fail, for tests of what a failed
//! call leaves behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use imagemcp_app::auth::Caller;
use imagemcp_app::crypto::Keyring;
use imagemcp_app::{App, AppConfig, Ports};
use imagemcp_core::blob::{Blob, BlobKey, BlobStore, FileName};
use imagemcp_core::clock::{Clock, ManualClock};
use imagemcp_core::ids::{OrgId, Random, TeamId, UserId};
use imagemcp_core::rbac::{Role, Scope};
use imagemcp_core::table::{Add, Condition, Item, Key, Page, Query, Table, TransactOp};
use imagemcp_core::{Error, Result};
use imagemcp_local::blob::FsBlobStore;
use imagemcp_local::cache::MemoryCache;
use imagemcp_local::queue::SqliteQueue;
use imagemcp_local::table::SqliteTable;
use imagemcp_native::UuidV7Ids;
use imagemcp_offline::OfflineModel;

/// A blob store that fails every `put` while `fail_puts` is set.
pub(crate) struct FlakyBlobs {
    pub(crate) inner: FsBlobStore,
    pub(crate) fail_puts: AtomicBool,
    /// How many reads (`get`) the store has answered.
    pub(crate) gets: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl BlobStore for FlakyBlobs {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("injected blob store failure".into()));
        }
        self.inner.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn signed_url(
        &self,
        key: &BlobKey,
        expires_in: Duration,
        download: Option<&FileName>,
    ) -> Result<Option<String>> {
        self.inner.signed_url(key, expires_in, download).await
    }
}

/// A `Table` that remembers every key ever written, so a test can read back *everything* in
/// storage (the logical equivalent of a full table scan).
pub(crate) struct KeyLog {
    pub(crate) inner: Arc<SqliteTable>,
    pub(crate) keys: std::sync::Mutex<std::collections::BTreeSet<Key>>,
    /// Every key read with `get`, in order (how often a request reads an item).
    pub(crate) reads: std::sync::Mutex<Vec<Key>>,
}

impl KeyLog {
    fn log(&self, key: &Key) {
        self.keys.lock().expect("key log").insert(key.clone());
    }
}

#[async_trait::async_trait]
impl Table for KeyLog {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.reads.lock().expect("read log").push(key.clone());
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        self.log(&item.key);
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        self.inner.delete(key, cond).await
    }
    async fn query(&self, query: &Query) -> Result<Page> {
        self.inner.query(query).await
    }
    async fn add(&self, add: Add) -> Result<i64> {
        self.log(&add.key);
        self.inner.add(add).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<()> {
        for op in &ops {
            self.log(op.key());
        }
        self.inner.transact(ops).await
    }
}

/// A deterministic "random" source: tests need unique, not unpredictable, bytes.
struct CountingRandom(std::sync::atomic::AtomicU64);

impl Random for CountingRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let n = self.0.fetch_add(1, Ordering::SeqCst).to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
    }
}

/// The KEK of the tests: fixed, so a test can rebuild the app on the same storage.
pub(crate) fn test_keyring() -> Keyring {
    Keyring::new(("test-kek-1", [42; 32]), Vec::new()).expect("keyring")
}

/// Signs up one account per name, as `<name in lower case>@example.com` with one password.
pub(crate) async fn people<const N: usize>(
    app: &App,
    names: [&str; N],
) -> [imagemcp_app::accounts::UserRecord; N] {
    let accounts = app.accounts();
    let mut out = Vec::with_capacity(N);
    for name in names {
        let email = format!("{}@example.com", name.to_lowercase());
        out.push(
            accounts
                .sign_up(&email, Some("a long password"), name)
                .await
                .expect("sign-up"),
        );
    }
    out.try_into()
        .unwrap_or_else(|_| unreachable!("one account per name"))
}

pub(crate) struct TestApp {
    pub(crate) app: App,
    pub(crate) blobs: Arc<FlakyBlobs>,
    pub(crate) table: Arc<SqliteTable>,
    /// Every key written through the app.
    pub(crate) written: Arc<KeyLog>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
}

impl TestApp {
    pub(crate) fn new() -> Self {
        Self::build(false)
    }

    /// The app on a SQLite file (`table.db` in the temp dir), for tests that read raw storage.
    pub(crate) fn on_disk() -> Self {
        Self::build(true)
    }

    fn build(on_disk: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let manual = Arc::new(ManualClock::new(1_795_478_400_000));
        let clock: Arc<dyn Clock> = manual.clone();
        let table = Arc::new(
            if on_disk {
                SqliteTable::open(&dir.path().join("table.db"), clock.clone())
            } else {
                SqliteTable::open_in_memory(clock.clone())
            }
            .expect("table"),
        );
        let written = Arc::new(KeyLog {
            inner: table.clone(),
            keys: Default::default(),
            reads: Default::default(),
        });
        let fs = FsBlobStore::new(
            dir.path().join("blobs"),
            "http://test".into(),
            vec![7; 32],
            clock.clone(),
        )
        .expect("blobs");
        let blobs = Arc::new(FlakyBlobs {
            inner: fs,
            fail_puts: AtomicBool::new(false),
            gets: Default::default(),
        });
        let ports = Ports {
            table: written.clone(),
            blobs: blobs.clone(),
            cache: Arc::new(MemoryCache::new(100, clock.clone()).expect("cache")),
            queue: Arc::new(SqliteQueue::open_in_memory(clock.clone(), 3).expect("queue")),
            model: Arc::new(OfflineModel::new()),
            clock: clock.clone(),
            ids: Arc::new(UuidV7Ids::new()),
            random: Arc::new(CountingRandom(Default::default())),
            timer: Arc::new(imagemcp_native::TokioTimer),
            keyring: Arc::new(test_keyring()),
        };
        Self {
            app: Self::app_on(ports, AppConfig::local("http://test")),
            blobs,
            table,
            written,
            dir,
            clock: manual,
        }
    }

    /// An app on `ports` with the generation cache off: these tests count model calls, quota and
    /// images per request; the engine suite turns the cache on where it is the subject.
    pub(crate) fn app_on(ports: Ports, config: AppConfig) -> App {
        let mut engine = imagemcp_app::engine::Engine::default_for(&ports);
        engine.config.cache.enabled_by_default = false;
        App::with_engine(ports, config, engine)
    }

    /// An admin of `org` holding every scope.
    pub(crate) fn caller(org: &str) -> Caller {
        Self::caller_as(org, "usr_test", Role::Admin, &[Scope::Admin])
    }

    pub(crate) fn caller_as(org: &str, user: &str, role: Role, scopes: &[Scope]) -> Caller {
        Caller {
            user: UserId::parse(user).expect("user"),
            org: OrgId::parse(org).expect("org"),
            team: TeamId::parse("team_test").expect("team"),
            role,
            scopes: scopes.to_vec(),
            credential: format!("key_{user}"),
        }
    }

    /// How many files the blob store holds.
    pub(crate) fn blob_files(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            if e.path().is_dir() {
                                count(&e.path())
                            } else {
                                usize::from(!e.file_name().to_string_lossy().ends_with(".meta"))
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(&self.dir.path().join("blobs"))
    }
}
