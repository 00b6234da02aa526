//! The `webhooks` function: Stripe and Slack webhooks once they land; a JSON 404 until then.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    imagemcp_lambda::init_tracing();
    lambda_http::run(imagemcp_lambda::webhooks_router()).await
}
