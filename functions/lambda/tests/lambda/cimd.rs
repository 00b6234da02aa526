//! Client ID Metadata Documents on Lambda: the configuration `imagemcp_lambda::app_config` builds
//! from the functions' settings advertises them, and an API Gateway v2 event for `/oauth/authorize`
//! naming a document URL (served on loopback, allow-listed by `IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS`)
//! is answered with the sign-in page for that client, the document fetched once and then served
//! from the DynamoDB cache, also to another instance. Without the allow-list the same URL is
//! refused, and its https twin is stopped by the SSRF guard before any connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use imagemcp_app::App;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{TestStack, fixture};

const PUBLIC_URL: &str = "https://imagemcp.example";
const REDIRECT: &str = "http://127.0.0.1:9/cimd-callback";

/// Serves `/client.json` (a valid document naming its own URL) on 127.0.0.1, counting fetches.
async fn documents() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let doc = json!({
        "client_id": format!("{origin}/client.json"),
        "client_name": "Lambda CIMD Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/client.json",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let doc = doc.clone();
            async move { ([("cache-control", "max-age=300")], axum::Json(doc)) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (origin, fetches)
}

/// The application's configuration as a function builds it from these settings.
fn lambda_config(allow_origins: Option<&str>) -> imagemcp_app::AppConfig {
    let mut vars = HashMap::from([
        ("IMAGEMCP_PUBLIC_URL", PUBLIC_URL.to_owned()),
        // A fixed seed (32 bytes of base64url): sign-in needs token keys.
        (
            "IMAGEMCP_TOKEN_KEYS",
            "lambda-1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc".to_owned(),
        ),
    ]);
    if let Some(origins) = allow_origins {
        vars.insert("IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS", origins.to_owned());
    }
    imagemcp_lambda::app_config(&|name| vars.get(name).cloned()).expect("the Lambda configuration")
}

/// An API Gateway v2 GET event for `path?query`, run through the router as `lambda_http` does;
/// the status and the body as text.
async fn get_event(app: &App, path: &str, query: &str) -> (u16, String) {
    let mut event = fixture("apigw-v2-get-healthz.json");
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["path"] = json!(path);
    let request = lambda_http::request::from_str(&event.to_string()).expect("a Lambda HTTP event");
    let response = imagemcp_app::routes::router(app.clone())
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn authorize_query(client_id: &str, redirect_uri: &str) -> String {
    serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "s1"),
        // base64url(SHA-256("verifier")): only its shape is checked before the code exchange.
        (
            "code_challenge",
            "iMnq5o6zALKXGivsnlom_0F5_WYda32GHkxlV7mq7hQ",
        ),
        ("code_challenge_method", "S256"),
        ("scope", "images:read images:write"),
        ("resource", &format!("{PUBLIC_URL}/mcp")),
    ])
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_document_clients_are_accepted_through_the_handler() {
    let (origin, fetches) = documents().await;
    // A trailing slash, as an operator might write it: the origin still matches.
    let stack = TestStack::with_config(lambda_config(Some(&format!("{origin}/")))).await;

    let (status, body) = get_event(&stack.app, "/.well-known/oauth-authorization-server", "").await;
    assert_eq!(status, 200, "{body}");
    let meta: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        meta["client_id_metadata_document_supported"], true,
        "{meta}"
    );

    let client_id = format!("{origin}/client.json");
    let (status, page) = get_event(
        &stack.app,
        "/oauth/authorize",
        &authorize_query(&client_id, REDIRECT),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Lambda CIMD Client") && page.contains("Sign in"),
        "the sign-in page names the document's client: {page}"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // Only the document's redirect URIs are accepted.
    let (status, page) = get_event(
        &stack.app,
        "/oauth/authorize",
        &authorize_query(&client_id, "http://127.0.0.1:9/elsewhere"),
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("redirect URI is not registered"), "{page}");

    // Another instance (a second cold start on the same table) is served from the DynamoDB cache.
    let other = App::new(
        imagemcp_lambda::ports(
            &stack.clients,
            &stack.settings,
            Arc::new(imagemcp_offline::OfflineModel::new()),
            Arc::new(imagemcp_app::crypto::Keyring::new(("test-1", [7; 32]), Vec::new()).unwrap()),
        ),
        lambda_config(Some(&origin)),
    );
    let (status, page) = get_event(
        &other,
        "/oauth/authorize",
        &authorize_query(&client_id, REDIRECT),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Lambda CIMD Client"), "{page}");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the document's max-age=300 is honoured across instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_allow_list_a_loopback_document_is_refused() {
    let (origin, fetches) = documents().await;
    let stack = TestStack::with_config(lambda_config(None)).await;
    let (_, body) = get_event(&stack.app, "/.well-known/oauth-authorization-server", "").await;
    let meta: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        meta["client_id_metadata_document_supported"], true,
        "{meta}"
    );

    let (status, page) = get_event(
        &stack.app,
        "/oauth/authorize",
        &authorize_query(&format!("{origin}/client.json"), REDIRECT),
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("must use https"), "{page}");

    // Over https the URL passes the scheme check and reaches the guarded fetcher, which refuses
    // the loopback address before connecting.
    let https = origin.replacen("http://", "https://", 1);
    let (status, page) = get_event(
        &stack.app,
        "/oauth/authorize",
        &authorize_query(&format!("{https}/client.json"), REDIRECT),
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("non-public address"), "{page}");
    assert_eq!(fetches.load(Ordering::SeqCst), 0, "nothing was fetched");
}
