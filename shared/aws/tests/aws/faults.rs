//! How the adapters fail: a lost condition is `Conflict`, throttling that outlives the SDK's
//! retries is `RateLimited`, an S3 outage is `Unavailable`; none of them leaks credentials.
//! Throttling and S3 errors come from a stub speaking the services' error formats, since moto
//! never throttles.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use imagemcp_aws::{DynamoTable, S3BlobStore, Sse, provision};
use imagemcp_core::Error;
use imagemcp_core::blob::{BlobKey, BlobStore};
use imagemcp_core::clock::ManualClock;
use imagemcp_core::contract::START_MS;
use imagemcp_core::table::{Condition, Item, Key, Table, TransactOp};
use serde_json::{Map, json};

use crate::helpers::{Moto, clients_for, unique};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START_MS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_condition_is_a_conflict_and_writes_nothing() {
    let clients = Moto::shared().clients().await;
    let name = unique("faults-table");
    provision::create_table(&clients, &name).await.unwrap();
    let table = DynamoTable::new(clients.dynamodb.clone(), name, clock());
    let item = |v: i64| {
        let mut attrs = Map::new();
        attrs.insert("v".into(), json!(v));
        Item::new(Key::new("ORG#a", "IMG#1"), attrs)
    };
    table.put(item(1), Condition::NotExists).await.unwrap();
    let second = table.put(item(2), Condition::NotExists).await;
    assert!(matches!(second, Err(Error::Conflict(_))), "{second:?}");

    let tx = table
        .transact(vec![
            TransactOp::Put(
                Item::new(Key::new("ORG#a", "IMG#2"), Map::new()),
                Condition::None,
            ),
            TransactOp::Check(
                Key::new("ORG#a", "IMG#1"),
                Condition::AttrEquals("v".into(), json!(2)),
            ),
        ])
        .await;
    assert!(
        matches!(tx, Err(Error::Conflict(_))),
        "a cancelled transaction is a Conflict: {tx:?}"
    );
    assert_eq!(
        table.get(&Key::new("ORG#a", "IMG#2")).await.unwrap(),
        None,
        "nothing of it is written"
    );
    assert_eq!(
        table.get(&Key::new("ORG#a", "IMG#1")).await.unwrap(),
        Some(item(1))
    );
}

/// A stub service that answers every request with `status` and `body`, after `ok_after`
/// failures answering with `ok_body` instead, and counts the requests.
async fn stub(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
    ok_after: Option<usize>,
    ok_body: &'static str,
) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = Router::new().fallback(move |_headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if ok_after.is_some_and(|k| n >= k) {
                (StatusCode::OK, [("content-type", content_type)], ok_body).into_response()
            } else {
                (status, [("content-type", content_type)], body).into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

const DYNAMO_JSON: &str = "application/x-amz-json-1.0";
const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_that_outlives_the_retries_is_rate_limited() {
    let (url, count) = stub(StatusCode::BAD_REQUEST, DYNAMO_JSON, THROTTLED, None, "").await;
    let clients = clients_for(&url, 3).await;
    let table = DynamoTable::new(clients.dynamodb, "t", clock());
    let r = table.get(&Key::new("ORG#a", "IMG#1")).await;
    assert!(matches!(r, Err(Error::RateLimited { .. })), "{r:?}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "the SDK retries throttling before giving up"
    );
    let text = format!("{:?}", r.unwrap_err());
    assert!(
        !text.contains("test-secret-key"),
        "no credentials in errors: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brief_throttling_is_absorbed_by_the_retries() {
    let (url, count) = stub(
        StatusCode::BAD_REQUEST,
        DYNAMO_JSON,
        THROTTLED,
        Some(2),
        "{}",
    )
    .await;
    let clients = clients_for(&url, 3).await;
    let table = DynamoTable::new(clients.dynamodb, "t", clock());
    let r = table.get(&Key::new("ORG#a", "IMG#1")).await;
    assert_eq!(
        r.unwrap(),
        None,
        "the third attempt succeeds (an empty GetItem answer)"
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_map_to_unavailable_and_rate_limited() {
    let key = BlobKey::parse("orgs/a/images/x.png").unwrap();
    let (url, count) = stub(
        StatusCode::INTERNAL_SERVER_ERROR,
        "application/xml",
        "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
        None,
        "",
    )
    .await;
    let store = S3BlobStore::new(clients_for(&url, 3).await.s3, "bucket", Sse::Aes256);
    let r = store.put(&key, vec![1, 2, 3], "image/png").await;
    assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
    assert_eq!(count.load(Ordering::SeqCst), 3, "server errors are retried");

    let (url, _) = stub(
        StatusCode::SERVICE_UNAVAILABLE,
        "application/xml",
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        None,
        "",
    )
    .await;
    let store = S3BlobStore::new(clients_for(&url, 2).await.s3, "bucket", Sse::Aes256);
    let r = store.get(&key).await;
    assert!(matches!(r, Err(Error::RateLimited { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_an_internal_error_not_a_missing_blob() {
    let clients = Moto::shared().clients().await;
    let store = S3BlobStore::new(clients.s3, unique("never-created"), Sse::Aes256);
    let key = BlobKey::parse("orgs/a/images/x.png").unwrap();
    let r = store.get(&key).await;
    assert!(
        matches!(r, Err(Error::Internal(_))),
        "a misconfigured bucket must not read as an absent blob: {r:?}"
    );
    let r = store.put(&key, vec![1], "image/png").await;
    assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
}
