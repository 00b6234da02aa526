//! Encryption at rest: raw storage holds no plaintext prompt, name or email; a ciphertext moved to
//! another record does not decrypt; the KEK rotates without losing data.

use std::sync::Arc;

use imagemcp_app::App;
use imagemcp_app::crypto::{Crypto, Keyring};
use imagemcp_app::images::params::parse_args;
use imagemcp_core::Error;
use imagemcp_core::rbac::{Role, Scope};
use imagemcp_core::table::{Condition, Key, Table};
use serde_json::json;

use crate::helpers::TestApp;

const PROMPT: &str = "a violet heron reading Kierkegaard in Reykjavik";
const NAME: &str = "Zephyrine Okonkwo-Lindqvist";
const EMAIL: &str = "zephyrine.ol@example.org";

/// Every byte of the SQLite database (main file and write-ahead log).
fn raw_db(t: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["table.db", "table.db-wal"] {
        if let Ok(b) = std::fs::read(t.dir.path().join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A user with a creator role in their own org, who generated and refined one image.
async fn seeded(t: &TestApp) -> (imagemcp_app::auth::Caller, imagemcp_core::ids::ImageId) {
    let user = t
        .app
        .accounts()
        .sign_up(EMAIL, Some("a long password"), NAME)
        .await
        .unwrap();
    let mut caller = TestApp::caller_as(
        user.personal_org.as_str(),
        user.id.as_str(),
        Role::Admin,
        &[Scope::Admin],
    );
    caller.org = user.personal_org.clone();
    let made = t
        .app
        .images()
        .generate(
            &caller,
            parse_args(json!({"prompt": PROMPT})).unwrap(),
            None,
        )
        .await
        .unwrap();
    (caller, made.images[0].id.clone())
}

#[tokio::test]
async fn raw_storage_holds_no_plaintext_prompt_name_or_email() {
    let t = TestApp::on_disk();
    let (caller, id) = seeded(&t).await;
    // Read back through the services: everything is there in clear for its owner.
    let rec = t.app.images().get(&caller, &id).await.unwrap();
    assert_eq!(rec.prompt, PROMPT);
    let (convs, _) = t
        .app
        .images()
        .list_conversations(&caller, &Default::default())
        .await
        .unwrap();
    assert_eq!(convs[0].last_prompt, PROMPT);
    let user = t.app.accounts().user(&caller.user).await.unwrap().unwrap();
    assert_eq!((user.name.as_str(), user.email.as_str()), (NAME, EMAIL));
    // …and nowhere in clear on disk.
    let raw = raw_db(&t);
    assert!(raw.len() > 10_000, "the database was read");
    for needle in [
        PROMPT,
        "Kierkegaard",
        NAME,
        "Okonkwo",
        EMAIL,
        "zephyrine.ol",
    ] {
        assert!(!contains(&raw, needle), "{needle:?} found in raw storage");
    }
    assert!(contains(&raw, "enc1:"), "sealed values are stored");
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_record_does_not_decrypt() {
    let t = TestApp::new();
    let (caller, first) = seeded(&t).await;
    let second = t
        .app
        .images()
        .generate(
            &caller,
            parse_args(json!({"prompt": "a plain square"})).unwrap(),
            None,
        )
        .await
        .unwrap()
        .images[0]
        .id
        .clone();
    let key_of = |id: &imagemcp_core::ids::ImageId| {
        Key::new(format!("ORG#{}", caller.org), format!("IMG#{id}"))
    };
    let from = t.table.get(&key_of(&first)).await.unwrap().unwrap();
    let mut to = t.table.get(&key_of(&second)).await.unwrap().unwrap();
    to.attrs
        .insert("prompt".into(), from.attrs["prompt"].clone());
    t.table.put(to, Condition::None).await.unwrap();
    let err = t.app.images().get(&caller, &second).await.unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err}");
    assert!(t.app.images().get(&caller, &first).await.is_ok());

    // Nor into the same record of another organisation (another data key).
    let crypto = Crypto::new(&t.app.ports);
    let sealed = crypto.seal("ORG#org_x", "aad", "secret").await.unwrap();
    assert_eq!(
        crypto.open("ORG#org_x", "aad", &sealed).await.unwrap(),
        "secret"
    );
    assert!(crypto.open("ORG#org_y", "aad", &sealed).await.is_err());
    assert!(crypto.open("ORG#org_x", "other", &sealed).await.is_err());
}

/// The same storage, seen through an app with another keyring (a restarted deployment).
fn with_keyring(t: &TestApp, keyring: Keyring) -> App {
    let mut ports = t.app.ports.clone();
    ports.keyring = Arc::new(keyring);
    App::new(ports, (*t.app.config).clone())
}

#[tokio::test]
async fn the_kek_rotates_lazily_or_all_at_once_and_old_keks_can_then_go() {
    let t = TestApp::new();
    let (caller, id) = seeded(&t).await;
    let dek_kek = |t: &TestApp| {
        let table = t.table.clone();
        let org = caller.org.clone();
        async move {
            table
                .get(&Key::new(format!("ORG#{org}"), "DEK"))
                .await
                .unwrap()
                .unwrap()
                .str("kek_id")
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(dek_kek(&t).await, "test-kek-1");

    let rotated = with_keyring(
        &t,
        Keyring::new(
            ("test-kek-2", [43; 32]),
            vec![("test-kek-1".into(), [42; 32])],
        )
        .unwrap(),
    );
    // Lazily: reading re-wraps the org's data key with the new KEK.
    assert_eq!(
        rotated.images().get(&caller, &id).await.unwrap().prompt,
        PROMPT
    );
    assert_eq!(dek_kek(&t).await, "test-kek-2");
    // All at once: the rest (the user's own data key, …).
    let n = Crypto::new(&rotated.ports).rewrap_all().await.unwrap();
    assert!(n >= 1, "the user's data key was still on the old KEK");
    assert_eq!(Crypto::new(&rotated.ports).rewrap_all().await.unwrap(), 0);

    // The old KEK is no longer needed.
    let only_new = with_keyring(
        &t,
        Keyring::new(("test-kek-2", [43; 32]), Vec::new()).unwrap(),
    );
    assert_eq!(
        only_new.images().get(&caller, &id).await.unwrap().prompt,
        PROMPT
    );
    let user = only_new
        .accounts()
        .user(&caller.user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, EMAIL);

    // A wrong KEK opens nothing.
    let wrong = with_keyring(
        &t,
        Keyring::new(("test-kek-2", [44; 32]), Vec::new()).unwrap(),
    );
    assert!(wrong.images().get(&caller, &id).await.is_err());
}

/// A `Cache` that keeps a copy of every key and value written, so a test can scan what the cache
/// stored (the local cache lives in memory, not in a file).
struct RecordingCache {
    inner: imagemcp_local::cache::MemoryCache,
    written: std::sync::Mutex<Vec<u8>>,
}

#[async_trait::async_trait]
impl imagemcp_core::cache::Cache for RecordingCache {
    async fn get(&self, key: &str) -> imagemcp_core::Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: std::time::Duration,
    ) -> imagemcp_core::Result<()> {
        {
            let mut written = self.written.lock().unwrap();
            written.extend_from_slice(key.as_bytes());
            written.extend_from_slice(&value);
        }
        self.inner.put(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> imagemcp_core::Result<()> {
        self.inner.delete(key).await
    }
}

/// Every prompt-bearing path (images, conversations, the cost confirmation, both cache tiers, a
/// refinement, an edit, a campaign job, a generation task, their items, audit entries, elicitation
/// state) stores the canary sealed: neither the SQLite files (after a checkpoint, and their
/// write-ahead logs) nor what the cache was given hold it in clear.
#[tokio::test]
async fn a_canary_prompt_written_through_every_path_is_nowhere_in_clear_on_disk() {
    use imagemcp_app::testing::{find_canary, write_canary_everywhere};
    let t = TestApp::on_disk();
    let queue = Arc::new(
        imagemcp_local::queue::SqliteQueue::open(
            &t.dir.path().join("queue.db"),
            t.app.ports.clock.clone(),
            3,
        )
        .unwrap(),
    );
    let cache = Arc::new(RecordingCache {
        inner: imagemcp_local::cache::MemoryCache::new(100, t.app.ports.clock.clone()).unwrap(),
        written: Default::default(),
    });
    let (app, _fake) = crate::billing::on_fake_openai(&t, |ports| {
        ports.queue = queue.clone();
        ports.cache = cache.clone();
    })
    .await;
    let caller = TestApp::caller("org_canary");
    let written = write_canary_everywhere(&app, &caller, queue.as_ref())
        .await
        .unwrap();
    // A generation, a refinement, an edit, four campaign items and a task.
    assert_eq!(written.images, 8, "{written:?}");

    t.table.checkpoint().await.unwrap();
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(t.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            raw.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(raw.len() > 50_000, "the databases were read");
    assert!(contains(&raw, "enc1:"), "sealed values are stored");
    assert!(contains(&raw, "JOB#"), "the jobs are in the scanned file");
    assert_eq!(find_canary(&raw), None, "in the SQLite files");
    let cached = cache.written.lock().unwrap().clone();
    assert!(contains(&cached, "sem:"), "the semantic index was written");
    assert_eq!(find_canary(&cached), None, "in the cache");
}

/// A job recorded before specs were sealed (its `spec` a plain object) is still read, and runs.
#[tokio::test]
async fn a_job_stored_with_an_unsealed_spec_is_still_read_and_run() {
    let t = TestApp::new();
    let queue = Arc::new(
        imagemcp_local::queue::SqliteQueue::open_in_memory(t.app.ports.clock.clone(), 3).unwrap(),
    );
    let mut ports = t.app.ports.clone();
    ports.queue = queue.clone();
    let app = TestApp::app_on(ports, (*t.app.config).clone());
    let caller = TestApp::caller("org_old");
    let args =
        parse_args(json!({"campaign": "old", "template": "email", "prompt": PROMPT})).unwrap();
    let job = imagemcp_app::images::campaign::submit(&app.images, &caller, args)
        .await
        .unwrap();
    let key = Key::new(format!("ORG#{}", caller.org), format!("JOB#{}", job.id));
    let mut stored = t.table.get(&key).await.unwrap().unwrap();
    let sealed = stored.str("spec").unwrap().to_owned();
    assert!(imagemcp_app::crypto::is_sealed(&sealed), "{sealed}");
    // Rewrite it as a job from before: the spec in clear, as an object.
    stored
        .attrs
        .insert("spec".into(), serde_json::to_value(&job.spec).unwrap());
    t.table.put(stored, Condition::None).await.unwrap();
    let read = imagemcp_app::jobs::get(app.jobs(), &caller.org, &job.id)
        .await
        .unwrap();
    assert_eq!(read.spec, job.spec);

    imagemcp_app::testing::drain(&app, queue.as_ref())
        .await
        .unwrap();
    let done = imagemcp_app::jobs::get(app.jobs(), &caller.org, &job.id)
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.items_done),
        (imagemcp_app::jobs::JobStatus::Done, 4)
    );
    // Rewritten by the consumer, the spec is sealed again.
    let after = t.table.get(&key).await.unwrap().unwrap();
    assert!(imagemcp_app::crypto::is_sealed(after.str("spec").unwrap()));
}
