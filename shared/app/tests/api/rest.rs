//! The REST edge through the whole router, as every runtime serves it: whatever refuses a request
//! (a query string or path that does not parse, a body that is not an object or is too large, an
//! unknown route or method) answers with the documented JSON error and the right status, and
//! deleting an image twice succeeds the second time as already deleted.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use imagemcp_app::App;
use imagemcp_app::auth::KeySpec;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::TestApp;

/// An API key of the local administrator (every scope).
async fn key(app: &App) -> String {
    let (admin, org) = app.accounts().ensure_local_admin().await.unwrap();
    app.keys()
        .create(&admin.id, &org.id, KeySpec::full("rest"))
        .await
        .unwrap()
        .secret
}

/// One request; the status, the headers and the body as JSON (`Null` when it is not JSON).
async fn send(
    app: &App,
    key: &str,
    method: Method,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Body::from(body))
        .unwrap();
    let response = imagemcp_app::routes::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The documented error body: `{"error": {"code", "message", "field"?}}`, as JSON.
fn assert_error(
    (status, headers, body): &(StatusCode, axum::http::HeaderMap, Value),
    want_status: u16,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["error"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn every_refused_request_gets_the_documented_json_error() {
    let t = TestApp::new();
    let key = key(&t.app).await;
    let get = |uri: &'static str| send(&t.app, &key, Method::GET, uri, Vec::new());

    assert_error(
        &get("/v1/images?limit=abc").await,
        400,
        "invalid_argument",
        Some("limit"),
    );
    assert_error(
        &get("/v1/images?limit=-1").await,
        400,
        "invalid_argument",
        Some("limit"),
    );
    assert_error(
        &get("/v1/audit?oldest_first=perhaps").await,
        400,
        "invalid_argument",
        Some("oldest_first"),
    );
    // A path parameter that is not UTF-8 once decoded.
    assert_error(
        &get("/v1/images/%FF%FE").await,
        400,
        "invalid_argument",
        Some("id"),
    );
    assert_error(&get("/v1/no-such-route").await, 404, "not_found", None);
    let not_allowed = send(&t.app, &key, Method::PATCH, "/v1/images", Vec::new()).await;
    assert_error(&not_allowed, 405, "method_not_allowed", None);
    assert!(
        not_allowed.1[header::ALLOW]
            .to_str()
            .unwrap()
            .contains("POST"),
        "405 names the methods there are"
    );

    // A body that is not an object, or not JSON at all.
    let array = serde_json::to_vec(&json!(["a costly square", "1024x1024", "high"])).unwrap();
    assert_error(
        &send(&t.app, &key, Method::POST, "/v1/images", array).await,
        400,
        "invalid_argument",
        Some("body"),
    );
    assert_error(
        &send(&t.app, &key, Method::POST, "/v1/images", b"{oops".to_vec()).await,
        400,
        "invalid_argument",
        Some("body"),
    );
    // Over the limit: the API's 36 MiB, the sign-up form's 16 KiB.
    let huge = vec![b' '; imagemcp_app::routes::MAX_BODY_BYTES + 1];
    assert_error(
        &send(&t.app, &key, Method::POST, "/v1/images", huge.clone()).await,
        413,
        "payload_too_large",
        Some("body"),
    );
    assert_error(
        &send(
            &t.app,
            &key,
            Method::POST,
            "/v1/auth/signup",
            vec![b' '; 17 * 1024],
        )
        .await,
        413,
        "payload_too_large",
        Some("body"),
    );
    // /mcp answers JSON-RPC.
    let (status, _, body) = send(&t.app, &key, Method::POST, "/mcp", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], -32600, "{body}");

    let (images, _) = t
        .app
        .images()
        .list(&TestApp::caller("org_default"), &Default::default())
        .await
        .unwrap();
    assert!(images.is_empty(), "no refused request made an image");
}

#[tokio::test]
async fn deleting_an_image_twice_succeeds_as_already_deleted() {
    let t = TestApp::new();
    let key = key(&t.app).await;
    let body = serde_json::to_vec(&json!({"prompt": "a brass key", "quality": "low"})).unwrap();
    let (status, _, made) = send(&t.app, &key, Method::POST, "/v1/images", body).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["images"][0]["id"].as_str().unwrap();
    let uri = format!("/v1/images/{id}");
    let (status, _, first) = send(&t.app, &key, Method::DELETE, &uri, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first,
        json!({"image_id": id, "deleted": true, "already_deleted": false})
    );
    let (status, _, again) = send(&t.app, &key, Method::DELETE, &uri, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again,
        json!({"image_id": id, "deleted": true, "already_deleted": true})
    );
    let (status, _, _) = send(&t.app, &key, Method::GET, &uri, Vec::new()).await;
    assert_eq!(
        status,
        StatusCode::GONE,
        "reading it still says it was deleted"
    );
}
