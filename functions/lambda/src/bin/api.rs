//! The `api` function: the REST API and web pages behind the HTTP API (buffered responses), from
//! the shared router.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    imagemcp_lambda::init_tracing();
    let runtime = imagemcp_lambda::build().await?;
    lambda_http::run(imagemcp_app::routes::router(runtime.app)).await
}
