//! The `batch` function: triggered by SQS, consumes job messages through the shared consumer and
//! returns `batchItemFailures`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    imagemcp_lambda::init_tracing();
    let runtime = imagemcp_lambda::build().await?;
    let (app, max_attempts) = (&runtime.app, runtime.aws.queue_max_attempts);
    lambda_runtime::run(service_fn(async |event: LambdaEvent<SqsEvent>| {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            imagemcp_lambda::batch(app, max_attempts, event.payload).await,
        )
    }))
    .await
}
