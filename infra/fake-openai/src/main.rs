//! The `fake-openai` binary: serves the fake OpenAI API and prints its base URL (e.g.
//! `http://127.0.0.1:PORT`) alone on the first line of stdout, so scripts can read it; logs go to
//! stderr. Stops cleanly on SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fake_openai::FakeConfig;

#[derive(Debug, Parser)]
#[command(
    name = "fake-openai",
    about = "A local stand-in for the OpenAI Images, Responses and Moderations APIs"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", env = "FAKE_OPENAI_ADDR")]
    addr: SocketAddr,
    /// Milliseconds of latency added to every model call (all endpoints but moderations).
    #[arg(long, default_value_t = 0, env = "FAKE_OPENAI_LATENCY_MS")]
    latency_ms: u64,
    /// Accept only this bearer token (otherwise any non-empty token).
    #[arg(long, env = "FAKE_OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The largest request body accepted, in MiB.
    #[arg(long, default_value_t = 128)]
    max_body_mib: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = FakeConfig {
        addr: args.addr,
        latency: Duration::from_millis(args.latency_ms),
        api_key: args.api_key,
        max_body_bytes: args.max_body_mib.saturating_mul(1 << 20),
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    // The first line of stdout is the contract with scripts: the URL and nothing else, flushed now.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%addr, latency_ms = args.latency_ms, "fake OpenAI listening");
    fake_openai::serve(listener, config, shutdown_signal()).await?;
    tracing::info!("fake OpenAI stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
