//! The AWS Lambda runtime: what the `mcp`, `api`, `webhooks` and `batch` functions share. Each
//! function's `main` (in `src/bin/`) sets up logging, calls [`build`] once per cold start, and hands
//! requests to the shared router ([`imagemcp_app::routes`]) or batches and the retention schedule to
//! [`batch_or_schedule`].
//!
//! Configuration ([`settings`]; every variable in `docs/settings.md`) is the environment Terraform
//! sets (see `docs/deploy-aws.md`): the AWS SDK's own
//! (`AWS_REGION`, credentials from the execution role, `AWS_ENDPOINT_URL` against an emulator),
//! [`imagemcp_aws::AwsSettings`] (table, bucket, queues), `IMAGEMCP_PUBLIC_URL`, and secrets: the
//! Secrets Manager secrets named in `IMAGEMCP_SECRET_ARNS` (JSON objects), read once per cold start,
//! whose names win over the environment's. From them: the KEK (`IMAGEMCP_KEK`, `IMAGEMCP_KEK_ID`,
//! `IMAGEMCP_KEK_PREVIOUS`, required), the token signing keys (`IMAGEMCP_TOKEN_KEYS`; without them
//! no OAuth tokens are issued) and the model: OpenAI when `OPENAI_API_KEY` is set, the offline model
//! otherwise. Client ID Metadata Documents are fetched through `imagemcp_fetch`'s SSRF guard, as
//! the local binary does (`IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS` is for tests only).

pub mod settings;

use std::sync::Arc;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use imagemcp_app::crypto::Keyring;
use imagemcp_app::settings::Settings;
use imagemcp_app::{App, AppConfig, Ports};
use imagemcp_aws::{
    AwsSettings, Clients, DynamoCache, DynamoTable, S3BlobStore, Secrets, SqsQueue,
};
use imagemcp_core::clock::Clock;
use imagemcp_core::model::ImageModel;
use imagemcp_core::queue::Delivery;
use imagemcp_native::{OsRandom, SystemClock, UuidV7Ids};
use imagemcp_offline::OfflineModel;

/// A function's application and the settings it was built from.
pub struct Runtime {
    pub app: App,
    pub aws: AwsSettings,
}

/// The application's configuration from configuration values (`var`: a function's lookup, secrets
/// first); see [`settings::shared`].
pub fn app_config(var: &dyn Fn(&str) -> Option<String>) -> Result<AppConfig> {
    app_config_of(&settings::shared(var)?)
}

/// The application's configuration from the shared settings: client metadata documents fetched
/// through `imagemcp_fetch`'s SSRF guard, as the local binary does (Lambda outside a VPC reaches
/// the internet; the guard keeps it off the metadata endpoint and anything private), and Stripe
/// when billing is on.
pub fn app_config_of(settings: &Settings) -> Result<AppConfig> {
    settings
        .app_config(Arc::new(imagemcp_fetch::GuardedFetcher::new()), |stripe| {
            Ok(Arc::new(imagemcp_stripe::StripeClient::configured(
                stripe.api_base.as_deref(),
                stripe.secret_key.expose(),
            )?))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The image model: OpenAI when a key is configured, the offline model otherwise.
fn model(settings: &Settings) -> Result<Arc<dyn ImageModel>> {
    let Some(openai) = &settings.openai else {
        return Ok(Arc::new(OfflineModel::new()));
    };
    Ok(Arc::new(imagemcp_openai::OpenAiModel::new(
        imagemcp_openai::OpenAiConfig::configured(
            openai.api_key.expose(),
            openai.base_url.as_deref(),
            &openai.image_model,
        )?,
    )?))
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
        timer: Arc::new(imagemcp_native::TokioTimer),
        keyring,
    }
}

/// Builds the application from the environment and the secrets: once per cold start.
pub async fn build() -> Result<Runtime> {
    let boot = settings::Bootstrap::from_vars(settings::env_var)?;
    let clients = Clients::from_env(boot.aws.force_path_style).await;
    let secrets = Secrets::load(&clients.secrets, &boot.secret_arns)
        .await
        .context("reading the secrets")?;
    let shared = settings::shared(settings::lookup(&secrets, settings::env_var))?;
    // Required: stored secrets and prompts are sealed with it.
    let keyring = Arc::new(
        shared
            .required_keyring()
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let app = App::new(
        ports(&clients, &boot.aws, model(&shared)?, keyring),
        app_config_of(&shared)?,
    );
    Ok(Runtime { app, aws: boot.aws })
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
