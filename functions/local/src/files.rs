//! `/files/{*key}`: serves blobs through the URLs the file store signed (the local stand-in for
//! presigned S3 URLs). No other credential is accepted or needed. A URL signed with a download name
//! is answered with `Content-Disposition: attachment; filename="<name>"`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::blob::{BlobKey, BlobStore, FileName};
use imagemcp_local::blob::FsBlobStore;

#[derive(serde::Deserialize)]
struct Signature {
    expires: i64,
    #[serde(default)]
    name: Option<String>,
    sig: String,
}

pub(crate) fn routes(blobs: Arc<FsBlobStore>) -> Router {
    Router::new()
        .route("/files/{*key}", get(serve_file))
        .with_state(blobs)
}

async fn serve_file(
    State(blobs): State<Arc<FsBlobStore>>,
    Path(key): Path<String>,
    sig: Result<Query<Signature>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(sig)) = sig else {
        return (StatusCode::FORBIDDEN, "missing or malformed signature").into_response();
    };
    let Ok(key) = BlobKey::parse(&key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let name = match sig.name.as_deref().map(FileName::parse).transpose() {
        Ok(name) => name,
        Err(_) => return (StatusCode::FORBIDDEN, "invalid file name").into_response(),
    };
    if !blobs.verify_signed(&key, sig.expires, name.as_ref(), &sig.sig) {
        return (StatusCode::FORBIDDEN, "invalid or expired signature").into_response();
    }
    match blobs.get(&key).await {
        Ok(Some(blob)) => {
            let mut response = blob.bytes.into_response();
            if let Ok(v) = HeaderValue::from_str(&blob.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            );
            if let Some(v) = name.and_then(|n| HeaderValue::from_str(&n.content_disposition()).ok())
            {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a signed file failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
