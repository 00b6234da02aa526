//! The `mcp` function: `/mcp` behind a function URL in response-streaming mode, so progress
//! notifications reach the client as server-sent events while a generation runs. It serves the
//! shared router whole (the infrastructure sends it only `/mcp`), so every route behaves the same
//! whichever function answers.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    imagemcp_lambda::init_tracing();
    let runtime = imagemcp_lambda::build().await?;
    lambda_http::run_with_streaming_response(imagemcp_app::routes::router(runtime.app)).await
}
