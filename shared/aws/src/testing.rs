//! Test support for this crate and the runtimes built on it (feature `testing`): the moto
//! emulator, started from the repository's `.venv` on a free loopback port
//! (`infra/moto/serve.py`), clients pointed at it, and freshly provisioned resources. Each test makes
//! its own table, bucket and queues, so tests share an emulator without touching each other's data.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::settings::AwsSettings;
use crate::{Clients, Sse, provision};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};

/// A running moto server; it exits when its stdin closes, i.e. with this test process.
pub struct Moto {
    pub url: String,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

/// The repository root (this crate lives in `shared/aws`).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Moto {
    /// Starts a moto server of its own.
    pub fn start() -> Moto {
        let python = root().join(".venv/bin/python");
        assert!(
            python.exists(),
            "moto is installed in .venv by scripts/setup-python (tests/requirements-aws.txt); run it first"
        );
        let mut child = Command::new(python)
            .arg(root().join("infra/moto/serve.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let stdout = child.stdout.take().expect("moto's stdout");
        let mut line = String::new();
        // Blocks on the pipe until moto prints its URL (or exits, giving an empty line).
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("moto's first line");
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "moto did not start: {line:?}"
        );
        let stdin = child.stdin.take().expect("moto's stdin");
        Moto {
            url,
            _child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        }
    }

    /// The moto shared by the tests that run on real time.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    /// The moto whose clock the queue suite sets; used by that suite alone.
    pub fn clocked() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    /// Clients for this emulator, with fast retries so fault tests do not wait on backoff.
    pub async fn clients(&self) -> Clients {
        clients_for(&self.url, 3).await
    }

    /// Sets moto's clock to `now_ms` (it runs on from there).
    pub async fn set_clock(&self, now_ms: i64) {
        reqwest::Client::new()
            .post(format!("{}/_clock", self.url))
            .json(&serde_json::json!({ "now_ms": now_ms }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("moto's clock is set");
    }
}

/// Clients for any endpoint (moto, or a stub that fails on purpose), making `attempts` attempts.
pub async fn clients_for(url: &str, attempts: u32) -> Clients {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "test-secret-key",
            None,
            None,
            "tests",
        ))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .timeout_config(crate::settings::timeouts())
        .load()
        .await;
    Clients::from_config(&shared, true)
}

/// A name no other test in this process uses (tables, buckets and queues are per test).
pub fn unique(stem: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{stem}-{}", N.fetch_add(1, Ordering::SeqCst))
}

/// A table, bucket and queue pair of their own on `moto`, and the settings naming them.
pub async fn stack(moto: &Moto, max_attempts: u32) -> (Clients, AwsSettings) {
    let clients = moto.clients().await;
    let table = unique("table");
    let bucket = unique("bucket");
    provision::create_table(&clients, &table)
        .await
        .expect("table created");
    provision::create_bucket(&clients, &bucket)
        .await
        .expect("bucket created");
    let urls = provision::create_queues(
        &clients,
        &unique("queue"),
        max_attempts,
        Duration::from_secs(30),
    )
    .await
    .expect("queues created");
    let settings = AwsSettings {
        table,
        bucket,
        queue_url: urls.queue,
        dead_letter_queue_url: Some(urls.dead_letters),
        queue_max_attempts: max_attempts,
        sse: Sse::Aes256,
        force_path_style: true,
    };
    (clients, settings)
}
