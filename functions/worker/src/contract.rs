//! Test-only routes (feature `contract`, never in a deployed bundle) that run the core's port
//! contract suites against this Worker's adapters inside workerd: `POST /__test/contract/<suite>`
//! with the table or bucket to use in `?name=`. A broken promise panics inside the suite; the
//! panic hook logs it and the request fails, which the host test (tests/e2e/test_worker.py)
//! reports with the log.

use std::sync::Arc;

use imagemcp_core::contract;
use worker::Env;

use crate::aws::AwsTarget;
use crate::dynamo::DynamoTable;
use crate::kv::KvCache;
use crate::s3::{S3BlobStore, Sse};

/// Runs the suite the path names and answers `200 passed`, or `404` for an unknown suite.
pub(crate) async fn handle(
    req: &worker::HttpRequest,
    env: &Env,
    aws: Arc<AwsTarget>,
) -> worker::Result<http::Response<axum::body::Body>> {
    let suite = req
        .uri()
        .path()
        .trim_start_matches("/__test/contract/")
        .to_owned();
    let name = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("name="))
        .unwrap_or("")
        .to_owned();
    match suite.as_str() {
        "table" => {
            contract::table_suite(async |clock| DynamoTable::new(aws.clone(), name.clone(), clock))
                .await
        }
        "quota" => {
            contract::quota_suite(async |clock| DynamoTable::new(aws.clone(), name.clone(), clock))
                .await
        }
        "blob" => {
            contract::blob_store_suite(async |_clock| {
                S3BlobStore::new(aws.clone(), name.clone(), Sse::Aes256)
            })
            .await
        }
        "cache" => {
            let kv = env.kv("CACHE")?;
            contract::cache_suite(async |clock| KvCache::new(kv.clone(), clock)).await
        }
        _ => {
            return http::Response::builder()
                .status(404)
                .body(axum::body::Body::from("no such suite"))
                .map_err(|e| worker::Error::RustError(e.to_string()));
        }
    }
    Ok(http::Response::new(axum::body::Body::from(format!(
        "{suite}: passed"
    ))))
}
