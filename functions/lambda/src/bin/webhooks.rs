//! The `webhooks` function: Stripe's signed webhooks (`POST /webhooks/stripe`), the source of truth
//! of subscription state.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    imagemcp_lambda::init_tracing();
    let runtime = imagemcp_lambda::build().await?;
    lambda_http::run(imagemcp_lambda::webhooks_router(runtime.app)).await
}
