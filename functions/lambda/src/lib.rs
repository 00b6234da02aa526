//! The AWS Lambda runtime: what the `mcp`, `api`, `webhooks` and `batch` functions share. Each
//! function's `main` (in `src/bin/`) sets up logging, calls [`build`] once per cold start, and hands
//! requests to the shared router ([`imagemcp_app::routes`]) or batches and the retention schedule to
//! [`batch_or_schedule`].
//!
//! Configuration is the environment Terraform sets (see `docs/deploy-aws.md`): the AWS SDK's own
//! (`AWS_REGION`, credentials from the execution role, `AWS_ENDPOINT_URL` against an emulator),
//! [`imagemcp_aws::AwsSettings`] (table, bucket, queues), `IMAGEMCP_PUBLIC_URL`, and secrets: the
//! Secrets Manager secrets named in `IMAGEMCP_SECRET_ARNS` (JSON objects), read once per cold start,
//! whose names win over the environment's. From them: the KEK (`IMAGEMCP_KEK`, `IMAGEMCP_KEK_ID`,
//! `IMAGEMCP_KEK_PREVIOUS`, required), the token signing keys (`IMAGEMCP_TOKEN_KEYS`; without them
//! no OAuth tokens are issued) and the model: OpenAI when `OPENAI_API_KEY` is set, the offline model
//! otherwise. Client ID Metadata Documents are fetched through `imagemcp_fetch`'s SSRF guard, as
//! the local binary does (`IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS` is for tests only).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use imagemcp_app::crypto::Keyring;
use imagemcp_app::sessions::KeySet;
use imagemcp_app::{App, AppConfig, Ports};
use imagemcp_aws::{
    AwsSettings, Clients, DynamoCache, DynamoTable, S3BlobStore, Secrets, SqsQueue,
};
use imagemcp_core::clock::Clock;
use imagemcp_core::model::ImageModel;
use imagemcp_core::queue::Delivery;
use imagemcp_native::{OsRandom, SystemClock, UuidV7Ids};
use imagemcp_offline::OfflineModel;

/// How long presigned download URLs live unless `IMAGEMCP_DOWNLOAD_URL_TTL_SECS` says otherwise:
/// short, since a link pasted into a chat outlives its purpose quickly.
const DEFAULT_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(900);

/// A function's application and the settings it was built from.
pub struct Runtime {
    pub app: App,
    pub aws: AwsSettings,
}

/// Configuration values: the secrets first, then the process environment.
#[derive(Debug, Default)]
pub struct Config {
    secrets: Secrets,
}

impl Config {
    /// Loads the secrets named in `IMAGEMCP_SECRET_ARNS` (comma-separated; none is fine).
    pub async fn load(clients: &Clients) -> Result<Self> {
        let arns: Vec<String> = env_var("IMAGEMCP_SECRET_ARNS")
            .map(|v| {
                v.split(',')
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let secrets = Secrets::load(&clients.secrets, &arns)
            .await
            .context("reading the secrets")?;
        Ok(Self { secrets })
    }

    fn get(&self, name: &str) -> Option<String> {
        match self.secrets.get(name) {
            Some(v) if !v.is_empty() => Some(v.to_owned()),
            _ => env_var(name),
        }
    }

    /// The key-encryption keys (`IMAGEMCP_KEK`, `IMAGEMCP_KEK_ID`, `IMAGEMCP_KEK_PREVIOUS`; see
    /// `imagemcp_app::crypto`): required, since stored secrets and prompts are sealed with them.
    pub fn keyring(&self) -> Result<Keyring> {
        Keyring::from_env(|name| self.get(name)).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The application's settings from configuration values (`var`: [`Config`]'s, secrets first).
pub fn app_config(var: &dyn Fn(&str) -> Option<String>) -> Result<AppConfig> {
    let public_url = var("IMAGEMCP_PUBLIC_URL")
        .context("IMAGEMCP_PUBLIC_URL must be set to the deployment's public base URL")?;
    let mut config = AppConfig::local(public_url);
    config.allowed_origins = var("IMAGEMCP_ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    config.token_keys = match var("IMAGEMCP_TOKEN_KEYS") {
        None => None,
        Some(keys) => Some(Arc::new(
            KeySet::parse(&keys).map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
    };
    config.download_url_ttl = match var("IMAGEMCP_DOWNLOAD_URL_TTL_SECS") {
        None => DEFAULT_DOWNLOAD_URL_TTL,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|s| (60..=imagemcp_aws::blob::MAX_URL_TTL.as_secs()).contains(s))
            .map(Duration::from_secs)
            .context("IMAGEMCP_DOWNLOAD_URL_TTL_SECS must be 60 to 604800 seconds")?,
    };
    config.billing = billing(var)?;
    if let Some(v) = var("IMAGEMCP_COST_CONFIRMATION_CENTS") {
        config.cost_confirmation_cents = v
            .trim()
            .parse()
            .context("IMAGEMCP_COST_CONFIRMATION_CENTS must be a whole number of cents")?;
    }
    // Client ID Metadata Documents, fetched as the local binary does (Lambda outside a VPC reaches
    // the internet; the guard keeps it off the metadata endpoint and anything private).
    let test_allow_origins = var("IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS").unwrap_or_default();
    config.client_metadata = Some(imagemcp_fetch::cimd_config(test_allow_origins.split(',')));
    Ok(config)
}

/// Billing from the `STRIPE_*` settings (secrets or environment); `None` (billing off, the
/// unlimited local plan) without `STRIPE_SECRET_KEY`.
fn billing(
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<imagemcp_app::billing::BillingConfig>>> {
    let Some(stripe) = imagemcp_stripe::settings::StripeSettings::from_vars(var)
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        return Ok(None);
    };
    Ok(Some(Arc::new(imagemcp_app::billing::BillingConfig {
        webhook_secrets: stripe.webhook_secrets.clone(),
        pro_price: stripe.pro_price.clone(),
        team_price: stripe.team_price.clone(),
        grace_days: stripe.grace_days,
        payments: Arc::new(stripe.client().map_err(|e| anyhow::anyhow!("{e}"))?),
        meter_event: stripe.meter_event.clone(),
    })))
}

/// The image model: OpenAI when a key is configured, the offline model otherwise.
fn model(config: &Config) -> Result<Arc<dyn ImageModel>> {
    let var = |name: &str| config.get(name);
    let Some(key) = var("OPENAI_API_KEY") else {
        return Ok(Arc::new(OfflineModel::new()));
    };
    let mut config = imagemcp_openai::OpenAiConfig::new(imagemcp_openai::ApiKey::new(key)?);
    if let Some(url) = var("OPENAI_BASE_URL") {
        config.base_url = url.trim_end_matches('/').to_owned();
    }
    if let Some(model) = var("OPENAI_IMAGE_MODEL") {
        config.image_model = model;
    }
    Ok(Arc::new(imagemcp_openai::OpenAiModel::new(config)?))
}

/// The ports on AWS for `settings`, with `clients` built once.
pub fn ports(
    clients: &Clients,
    settings: &AwsSettings,
    model: Arc<dyn ImageModel>,
    keyring: Arc<Keyring>,
) -> Ports {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ports {
        table: Arc::new(DynamoTable::new(
            clients.dynamodb.clone(),
            settings.table.clone(),
            clock.clone(),
        )),
        blobs: Arc::new(S3BlobStore::new(
            clients.s3.clone(),
            settings.bucket.clone(),
            settings.sse.clone(),
        )),
        cache: Arc::new(DynamoCache::new(
            clients.dynamodb.clone(),
            settings.table.clone(),
            clock.clone(),
        )),
        queue: Arc::new(SqsQueue::new(
            clients.sqs.clone(),
            settings.queue_url.clone(),
            settings.dead_letter_queue_url.clone(),
            settings.queue_max_attempts,
        )),
        model,
        clock: clock.clone(),
        ids: Arc::new(UuidV7Ids::with_clock(clock)),
        random: Arc::new(OsRandom),
        keyring,
    }
}

/// Builds the application from the environment: once per cold start.
pub async fn build() -> Result<Runtime> {
    let aws = AwsSettings::from_env()?;
    let clients = Clients::from_env(aws.force_path_style).await;
    let config = Config::load(&clients).await?;
    let keyring = Arc::new(config.keyring()?);
    let app = App::new(
        ports(&clients, &aws, model(&config)?, keyring),
        app_config(&|name| config.get(name))?,
    );
    Ok(Runtime { app, aws })
}

/// JSON logs on stdout, which Lambda sends to CloudWatch; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .init();
}

/// The deliveries of an SQS event (the `attempt` is the record's `ApproximateReceiveCount`).
pub fn deliveries(event: SqsEvent) -> Vec<Delivery> {
    event
        .records
        .into_iter()
        .map(|record| {
            let count = record
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str);
            imagemcp_aws::queue::delivery(
                record.message_id.unwrap_or_default(),
                record.receipt_handle.unwrap_or_default(),
                record.body.as_deref().unwrap_or(""),
                count,
            )
        })
        .collect()
}

/// The `batch` function: consumes an SQS batch and reports the messages that failed, so SQS
/// redelivers only those (the event source mapping has `ReportBatchItemFailures`).
pub async fn batch(app: &App, max_attempts: u32, event: SqsEvent) -> SqsBatchResponse {
    let deliveries = deliveries(event);
    let failed = imagemcp_app::jobs::consume(app, &deliveries, max_attempts).await;
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    response
}

/// Retention index items one scheduled invocation handles (two S3 deletes and one DynamoDB delete
/// each, well inside the batch function's timeout); the rest waits for the next run of the schedule.
pub const SCHEDULED_SWEEP_MAX: usize = 1000;

/// The `batch` function's entry point: an SQS batch of job messages (answered with
/// `batchItemFailures`), or the EventBridge schedule (`"source": "aws.events"`) that runs the
/// retention sweep (`imagemcp_app::billing::retention`: the bytes of expired Free images).
pub async fn batch_or_schedule(
    app: &App,
    max_attempts: u32,
    event: serde_json::Value,
    now_secs: i64,
) -> Result<serde_json::Value> {
    if event.get("source").and_then(serde_json::Value::as_str) == Some("aws.events") {
        let swept =
            imagemcp_app::billing::retention::sweep(&app.billing, now_secs, SCHEDULED_SWEEP_MAX)
                .await?;
        return Ok(serde_json::json!({
            "entries": swept.entries, "blobs": swept.blobs, "more": swept.more
        }));
    }
    let sqs: SqsEvent = serde_json::from_value(event)
        .context("the batch function takes an SQS event or an EventBridge scheduled event")?;
    Ok(serde_json::to_value(batch(app, max_attempts, sqs).await)?)
}

/// The `webhooks` function's routes: `POST /webhooks/stripe` (404 while billing is off) and
/// `/healthz`; every other path is a JSON 404, so a misdirected webhook fails visibly.
pub fn webhooks_router(app: App) -> Router {
    imagemcp_app::routes::webhooks_router(app)
        .fallback(|| async {
            let body = serde_json::json!({"error": {"code": "not_found", "message": "no webhook is served at this path"}});
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        })
}
