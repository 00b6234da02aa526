//! The `batch` function: triggered by SQS, consumes job messages through the shared consumer and
//! returns `batchItemFailures`; triggered by its EventBridge schedule, sweeps expired image bytes.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    imagemcp_lambda::init_tracing();
    let runtime = imagemcp_lambda::build().await?;
    let (app, max_attempts) = (&runtime.app, runtime.aws.queue_max_attempts);
    lambda_runtime::run(service_fn(async |event: LambdaEvent<serde_json::Value>| {
        let now = app.ports.clock.now_secs();
        imagemcp_lambda::batch_or_schedule(app, max_attempts, event.payload, now)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
