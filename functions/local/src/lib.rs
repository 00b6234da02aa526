//! The embedded runtime: every route of the application in one process, on the local adapters
//! (SQLite, files, memory) and either OpenAI or the offline model. `main.rs` parses flags and calls
//! [`serve`]; tests call it with a listener bound to port 0.

pub mod settings;

mod files;
mod kek;
mod token_keys;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use imagemcp_app::auth::KeySpec;
use imagemcp_app::{App, Ports};
use imagemcp_core::clock::Clock;
use imagemcp_core::model::ImageModel;
use imagemcp_local::blob::FsBlobStore;
use imagemcp_local::cache::MemoryCache;
use imagemcp_local::queue::SqliteQueue;
use imagemcp_local::table::SqliteTable;
use imagemcp_native::{OsRandom, SystemClock, UuidV7Ids};
use imagemcp_offline::OfflineModel;
use settings::Settings;
use tokio::net::TcpListener;

/// How many times a queued message is tried before it is dead-lettered.
const QUEUE_MAX_ATTEMPTS: u32 = 5;

/// The secret that signs download URLs: made once per data directory, readable only by its owner.
fn url_secret(data_dir: &Path) -> Result<Vec<u8>> {
    let path = data_dir.join("url-signing.key");
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() >= 32
    {
        return Ok(bytes);
    }
    let mut secret = vec![0u8; 32];
    imagemcp_core::ids::Random::fill(&OsRandom, &mut secret);
    write_private(&path, &secret)?;
    Ok(secret)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The application and the concrete adapters the binary itself also drives.
pub struct Local {
    pub app: App,
    pub blobs: Arc<FsBlobStore>,
    pub table: Arc<SqliteTable>,
    /// The durable job queue, drained by the consumer loop `serve` runs.
    pub queue: Arc<SqliteQueue>,
}

/// How often expired rows (sessions, tombstones) are removed from the database file. They read as
/// absent from the moment they expire; this only reclaims the space.
/// The retention sweep (the files of expired Free images) runs on the same tick.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// Retention index items handled per bounded sweep call (each call is a few queries and deletes).
const SWEEP_BATCH: usize = 200;

/// Builds the application on the local adapters.
pub fn build_app(settings: &Settings) -> Result<Local> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let table = Arc::new(
        SqliteTable::open(&dir.join("imagemcp.db"), clock.clone())
            .context("opening the database")?,
    );
    let queue = Arc::new(
        SqliteQueue::open(&dir.join("queue.db"), clock.clone(), QUEUE_MAX_ATTEMPTS)
            .context("opening the queue")?,
    );
    let blobs = Arc::new(
        FsBlobStore::new(
            dir.join("blobs"),
            settings.app.public_url.clone(),
            url_secret(dir)?,
            clock.clone(),
        )
        .context("opening the file store")?,
    );
    let model: Arc<dyn ImageModel> = match &settings.app.openai {
        Some(openai) => Arc::new(imagemcp_openai::OpenAiModel::new(
            imagemcp_openai::OpenAiConfig::configured(
                openai.api_key.expose(),
                openai.base_url.as_deref(),
                &openai.image_model,
            )?,
        )?),
        None => Arc::new(OfflineModel::new()),
    };
    let ports = Ports {
        table: table.clone(),
        blobs: blobs.clone(),
        cache: Arc::new(MemoryCache::new(10_000, clock.clone())?),
        queue: queue.clone(),
        model,
        clock: clock.clone(),
        ids: Arc::new(UuidV7Ids::with_clock(clock)),
        random: Arc::new(OsRandom),
        timer: Arc::new(imagemcp_native::TokioTimer),
        keyring: Arc::new(kek::keyring(settings)?),
    };
    let fetcher = imagemcp_fetch::GuardedFetcher::with_timeout(settings.cimd_fetch_timeout);
    let mut config = settings
        .app
        .app_config(Arc::new(fetcher), |stripe| {
            Ok(Arc::new(imagemcp_stripe::StripeClient::configured(
                stripe.api_base.as_deref(),
                stripe.secret_key.expose(),
            )?))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    config.token_keys = Some(token_keys::load(dir, settings.app.token_keys.as_ref())?);
    Ok(Local {
        app: App::new(ports, config),
        blobs,
        table,
        queue,
    })
}

/// Creates an API key (every scope) for the local administrator, making the administrator and
/// the default organisation on first use, and returns the key.
pub async fn create_key(settings: &Settings, label: &str) -> Result<String> {
    let local = build_app(settings)?;
    Ok(new_admin_key(&local.app, label).await?)
}

async fn new_admin_key(app: &App, label: &str) -> imagemcp_core::Result<String> {
    let (admin, org) = app.accounts().ensure_local_admin().await?;
    Ok(app
        .keys()
        .create(&admin.id, &org.id, KeySpec::full(label))
        .await?
        .secret)
}

/// Sets the password of the account with `email` (the local administrator is made first when it is
/// the one named and does not exist yet); returns the normalised email.
pub async fn set_password(settings: &Settings, email: &str, password: &str) -> Result<String> {
    let local = build_app(settings)?;
    let accounts = local.app.accounts();
    let email = imagemcp_app::accounts::Email::parse(email)?;
    if email.as_str() == imagemcp_app::accounts::LOCAL_ADMIN_EMAIL {
        accounts.ensure_local_admin().await?;
    }
    accounts.set_password(&email, password).await?;
    Ok(email.as_str().to_owned())
}

/// Rotates the key-encryption key (when it is kept in the data directory) and re-wraps every data
/// key with the current KEK; returns the current KEK id and how many data keys were re-wrapped.
pub async fn rotate_kek(settings: &Settings) -> Result<(String, usize)> {
    if settings.app.kek.is_none() {
        // Make sure a KEK exists before rotating it.
        kek::keyring(settings)?;
        kek::rotate_file(settings)?;
    }
    let local = build_app(settings)?;
    let count = imagemcp_app::crypto::Crypto::new(&local.app.ports)
        .rewrap_all()
        .await?;
    Ok((local.app.ports.keyring.current_id().to_owned(), count))
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
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
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    mut settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local = listener.local_addr()?;
    if settings.app.public_url == format!("http://{}", settings.addr) {
        // Bound to port 0: advertise the port we actually got.
        settings.app.public_url = format!("http://{local}");
    }
    let Local {
        app,
        blobs,
        table,
        queue,
    } = build_app(&settings)?;
    // Jobs (campaign batches) are done by the shared consumer, item by item, in this process.
    // Messages a previous process was holding when it died are redelivered now, not after their
    // visibility timeout: this process is the queue file's only consumer.
    match queue.release_in_flight().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            messages = n,
            "redelivering the jobs a previous process left unfinished"
        ),
        Err(e) => tracing::warn!(error = %e, "could not release unfinished job messages"),
    }
    let consumer_app = app.clone();
    let consumer = imagemcp_local::spawn_consumer(
        queue,
        move |batch| {
            let app = consumer_app.clone();
            async move { imagemcp_app::jobs::consume(&app, &batch, QUEUE_MAX_ATTEMPTS).await }
        },
        imagemcp_local::ConsumerOptions::default(),
    );
    let sweep_app = app.clone();
    let purge = tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            match table.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "expired rows purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
            // Free images' files expire with their records (`billing::retention`).
            let now = imagemcp_core::clock::Clock::now_secs(&*sweep_app.ports.clock);
            if let Err(e) =
                imagemcp_app::billing::retention::sweep_all(&sweep_app.billing, now, SWEEP_BATCH)
                    .await
            {
                tracing::warn!(error = %e, "removing expired image files failed");
            }
        }
    });
    let (admin, _) = app.accounts().ensure_local_admin().await?;
    let first_key = if app.keys().list(&admin.id).await?.is_empty() {
        Some(new_admin_key(&app, "first-run").await?)
    } else {
        None
    };

    let router = imagemcp_app::routes::router(app)
        .merge(files::routes(blobs))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    banner(&settings, first_key.as_deref());
    tracing::info!(addr = %local, data_dir = %settings.data_dir.display(), model = if settings.app.openai.is_some() { "openai" } else { "offline" }, "imagemcp listening");
    // The peer address feeds the per-address login limit.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await?;
    purge.abort();
    consumer.shutdown().await;
    tracing::info!("imagemcp stopped");
    Ok(())
}

#[allow(clippy::print_stdout)]
fn banner(settings: &Settings, first_key: Option<&str>) {
    for line in banner_lines(settings, first_key) {
        println!("{line}");
    }
}

/// What the server prints when it starts: where it listens, which model draws the images (the
/// OpenAI model and the base URL it is reached at, or the offline model), and on the first run
/// the key it made and a client configuration using it.
fn banner_lines(settings: &Settings, first_key: Option<&str>) -> Vec<String> {
    let url = format!("{}/mcp", settings.app.public_url);
    let mut lines = vec![
        format!("imagemcp listening on {}", settings.app.public_url),
        format!("MCP URL: {url}"),
        match &settings.app.openai {
            Some(openai) => format!(
                "Images: OpenAI {} at {}",
                openai.image_model,
                settings::shown_url(
                    openai
                        .base_url
                        .as_deref()
                        .unwrap_or(imagemcp_openai::DEFAULT_BASE_URL)
                )
            ),
            None => "Images: the offline model (set OPENAI_API_KEY to use OpenAI)".to_owned(),
        },
    ];
    if let Some(key) = first_key {
        let config = serde_json::json!({
            "mcpServers": { "imagemcp": { "type": "http", "url": url, "headers": { "Authorization": format!("Bearer {key}") } } }
        });
        lines.extend([
            String::new(),
            "Your API key (shown once; create more with `imagemcp keys create`):".to_owned(),
            key.to_owned(),
            String::new(),
            "MCP client configuration (Claude Desktop, Cursor, …):".to_owned(),
            serde_json::to_string_pretty(&config).unwrap_or_default(),
        ]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(openai: Option<imagemcp_app::settings::OpenAiSettings>) -> Settings {
        let store = settings::StoreArgs {
            data_dir: Some("/nonexistent".into()),
            ..settings::StoreArgs::default()
        };
        let mut s = Settings::from_store(&store, |_| None).unwrap();
        s.app.openai = openai;
        s
    }

    #[test]
    fn the_banner_names_the_model_and_base_url_in_use_and_never_a_credential() {
        let lines = banner_lines(&settings(None), None);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Images: the offline model"))
        );
        let openai = imagemcp_app::settings::OpenAiSettings {
            api_key: imagemcp_app::settings::Secret::new("sk-live-abc"),
            base_url: Some("https://proxy-user:hunter2@llm.example.com/openai/v1".into()),
            image_model: "gpt-image-2".into(),
        };
        let lines = banner_lines(&settings(Some(openai)), Some("imk_first"));
        assert!(
            lines.contains(
                &"Images: OpenAI gpt-image-2 at https://llm.example.com/openai/v1".to_owned()
            ),
            "{lines:?}"
        );
        let all = lines.join("\n");
        assert!(
            !all.contains("hunter2") && !all.contains("proxy-user") && !all.contains("sk-live")
        );
        assert!(all.contains("imk_first"), "the first key is shown once");
    }
}
