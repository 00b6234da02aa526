//! The MCP benchmark: the real server over loopback HTTP, the OpenAI adapter talking to the fake
//! OpenAI server, measured side by side in one run. Prints `name: value` lines:
//! - `mcp_overhead_p50_ms` / `mcp_overhead_p99_ms`: per `tools/call` of `openai_generate_image`, the
//!   client-observed time minus the time spent inside model calls (measured by a timing wrapper
//!   around the adapter), i.e. everything imagemcp itself does: parsing, validation, preview,
//!   storage, the response.
//! - `variations_n4_over_n1`: the time of n=4 over n=1 with the fake adding 1 s to each model call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use imagemcp_app::{App, AppConfig, Ports};
use imagemcp_core::Result;
use imagemcp_core::clock::Clock;
use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Rendered,
};
use imagemcp_local::blob::FsBlobStore;
use imagemcp_local::cache::MemoryCache;
use imagemcp_local::queue::SqliteQueue;
use imagemcp_local::system::{SystemClock, UuidV7Ids};
use imagemcp_local::table::SqliteTable;
use serde_json::{Value, json};

/// Wraps a model and adds up the wall time spent inside its calls.
struct Timed {
    inner: Arc<dyn ImageModel>,
    nanos: Arc<AtomicU64>,
}

impl Timed {
    async fn time<T>(&self, f: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        self.nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
        out
    }
}

#[async_trait::async_trait]
impl ImageModel for Timed {
    fn default_model(&self) -> &str {
        self.inner.default_model()
    }
    async fn generate(&self, req: GenerateRequest) -> Result<Rendered> {
        self.time(self.inner.generate(req)).await
    }
    async fn edit(&self, req: EditRequest) -> Result<Rendered> {
        self.time(self.inner.edit(req)).await
    }
    async fn moderate(&self, text: &str) -> Result<Moderation> {
        self.time(self.inner.moderate(text)).await
    }
    async fn describe(&self, image: &InputImage) -> Result<String> {
        self.time(self.inner.describe(image)).await
    }
    async fn embed(&self, text: &str) -> Result<imagemcp_core::embed::Embedding> {
        self.time(self.inner.embed(text)).await
    }
}

struct Server {
    url: String,
    key: String,
    model_nanos: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
    _fake: fake_openai::FakeOpenAi,
}

async fn start(latency: Duration) -> anyhow::Result<Server> {
    let mut fake_config = fake_openai::FakeConfig::local();
    fake_config.latency = latency;
    let fake = fake_openai::spawn(fake_config).await?;
    let mut config = imagemcp_openai::OpenAiConfig::new(imagemcp_openai::ApiKey::new("sk-bench")?);
    config.base_url = format!("{}/v1", fake.url());
    let nanos = Arc::new(AtomicU64::new(0));
    let model = Arc::new(Timed {
        inner: Arc::new(imagemcp_openai::OpenAiModel::new(config)?),
        nanos: nanos.clone(),
    });

    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = Ports {
        table: Arc::new(SqliteTable::open(&dir.path().join("db"), clock.clone())?),
        blobs: Arc::new(FsBlobStore::new(
            dir.path().join("blobs"),
            url.clone(),
            vec![1; 32],
            clock.clone(),
        )?),
        cache: Arc::new(MemoryCache::new(1000, clock.clone())?),
        queue: Arc::new(SqliteQueue::open(
            &dir.path().join("queue"),
            clock.clone(),
            3,
        )?),
        model,
        clock: clock.clone(),
        ids: Arc::new(UuidV7Ids::with_clock(clock)),
        random: Arc::new(BenchRandom(AtomicU64::new(1))),
        keyring: Arc::new(imagemcp_app::crypto::Keyring::new(
            ("bench", [5; 32]),
            Vec::new(),
        )?),
    };
    let app = App::new(ports, AppConfig::local(url.clone()));
    let (admin, org) = app.accounts().ensure_local_admin().await?;
    let key = app
        .keys()
        .create(
            &admin.id,
            &org.id,
            imagemcp_app::auth::KeySpec::full("bench"),
        )
        .await?
        .secret;
    let router = imagemcp_app::routes::router(app);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(Server {
        url,
        key,
        model_nanos: nanos,
        _dir: dir,
        _fake: fake,
    })
}

/// Unique bytes are all the bench needs from its "random" source.
struct BenchRandom(AtomicU64);

impl imagemcp_core::ids::Random for BenchRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let n = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
                .to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
    }
}

async fn call(http: &reqwest::Client, s: &Server, args: Value) -> anyhow::Result<Duration> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "openai_generate_image", "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let start = Instant::now();
    let response = http
        .post(format!("{}/mcp", s.url))
        .bearer_auth(&s.key)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "openai_generate_image")
        .json(&body)
        .send()
        .await?;
    let value: Value = response.json().await?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        value["result"]["isError"] != json!(true),
        "tool failed: {value}"
    );
    Ok(elapsed)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let quick = start(Duration::ZERO).await?;
    let args = json!({"prompt": "a small blue square icon", "size": "1024x1024", "quality": "low", "output_format": "jpeg"});
    for _ in 0..10 {
        call(&http, &quick, args.clone()).await?;
    }
    let mut overheads = Vec::new();
    for _ in 0..200 {
        let before = quick.model_nanos.load(Ordering::SeqCst);
        let total = call(&http, &quick, args.clone()).await?;
        let model = Duration::from_nanos(quick.model_nanos.load(Ordering::SeqCst) - before);
        overheads.push(total.saturating_sub(model).as_secs_f64() * 1000.0);
    }
    overheads.sort_by(f64::total_cmp);

    let slow = start(Duration::from_secs(1)).await?;
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let n1 = call(
            &http,
            &slow,
            json!({"prompt": "a red circle", "size": "1024x1024", "quality": "low"}),
        )
        .await?;
        let n4 = call(
            &http,
            &slow,
            json!({"prompt": "a red circle", "size": "1024x1024", "quality": "low", "n": 4}),
        )
        .await?;
        ratios.push(n4.as_secs_f64() / n1.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);

    #[allow(clippy::print_stdout)]
    {
        println!("mcp_overhead_p50_ms: {:.2}", percentile(&overheads, 0.50));
        println!("mcp_overhead_p99_ms: {:.2}", percentile(&overheads, 0.99));
        println!("variations_n4_over_n1: {:.3}", ratios[1]);
    }
    Ok(())
}
