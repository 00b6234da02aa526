//! A local stand-in for the OpenAI API (Images, Responses and Moderations), validating requests with
//! the same `imagemcp_core::catalog` the app uses, returning real decodable images, and taking
//! injected faults and latency, for tests and benchmarks that must not reach the real API.
//!
//! In-process use (Rust tests): `let fake = fake_openai::spawn(FakeConfig::local()).await?;` then
//! point a client at `fake.base_url()`. As a process: the `fake-openai` binary prints its URL.

mod control;
mod embeddings;
mod error;
mod faults;
mod http;
mod images;
mod moderation;
mod params;
mod render;
mod responses;
mod state;
mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::Fault;
pub use state::{RecordedFile, RecordedRequest};

/// How long a shutdown waits for requests in flight (a hung one would otherwise block it for as long
/// as its injected hang).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How the fake is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeConfig {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Latency added to every model call (every endpoint but moderations), on top of any injected.
    pub latency: Duration,
    /// When set, only this bearer token is accepted (others get OpenAI's 401 `invalid_api_key`);
    /// otherwise any non-empty token is.
    pub api_key: Option<String>,
    /// The largest request body accepted: sixteen 50 MB images would need 800 MB, more than a test
    /// fake should buffer.
    pub max_body_bytes: usize,
}

impl FakeConfig {
    /// Loopback, a free port, no latency, any key, 128 MiB bodies.
    pub fn local() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency: Duration::ZERO,
            api_key: None,
            max_body_bytes: 128 << 20,
        }
    }
}

/// A running fake. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeOpenAi {
    /// The bound address.
    pub addr: SocketAddr,
    state: Arc<state::State>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// Binds `config.addr` and serves on a background task of the current tokio runtime.
pub async fn spawn(config: FakeConfig) -> std::io::Result<FakeOpenAi> {
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(state::State::new(config.latency, config.api_key.clone()));
    let (tx, rx) = oneshot::channel::<()>();
    let app = http::router(state.clone(), config.max_body_bytes);
    let handle = tokio::spawn(run(listener, app, async {
        let _ = rx.await;
    }));
    Ok(FakeOpenAi {
        addr,
        state,
        shutdown: Some(tx),
        handle: Some(handle),
    })
}

/// Serves on `listener` until `shutdown` completes (for the binary, which owns its signals).
pub async fn serve(
    listener: TcpListener,
    config: FakeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(state::State::new(config.latency, config.api_key.clone()));
    run(
        listener,
        http::router(state, config.max_body_bytes),
        shutdown,
    )
    .await
}

async fn run(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result,
        () = shutdown => {}
    }
    let _ = stop_tx.send(());
    // Requests still in flight get a short grace period, then are dropped.
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

impl FakeOpenAi {
    /// `http://127.0.0.1:PORT`: the server root (the control API is under `/_fake`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: what a client uses as its OpenAI base URL.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Queues faults, as `POST /_fake/faults` does.
    ///
    /// # Panics
    /// If a fault is malformed (see [`Fault::check`]): this is for tests, where that is a bug.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        let faults: Vec<Fault> = faults.into_iter().collect();
        for f in &faults {
            if let Err(why) = f.check() {
                panic!("malformed fault {f:?}: {why}");
            }
        }
        self.state.push_faults(faults);
    }

    /// The faults still queued.
    pub fn faults(&self) -> Vec<Fault> {
        self.state.faults()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// The requests received on one endpoint (`/images/generations`, with or without `/v1`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        let wanted = faults::normalize_path(path);
        self.state
            .requests()
            .into_iter()
            .filter(|r| faults::normalize_path(&r.path) == wanted)
            .collect()
    }

    /// Forgets faults, requests and conversations, as `POST /_fake/reset` does.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(handle) => handle.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}
