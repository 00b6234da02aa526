//! `S3BlobStore`: the `BlobStore` port on S3's REST API, for the Worker.
//!
//! The same bucket layout and guarantees as `imagemcp_aws::blob`: every object written with
//! server-side encryption and its content type, downloads through presigned GET URLs (at most
//! 7 days, S3's cap). Buckets are addressed path-style (`<endpoint>/<bucket>/<key>`), which S3 and
//! its emulators all accept; keys are validated `BlobKey`s (`[A-Za-z0-9._-]` segments), so they
//! need no escaping.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::blob::{Blob, BlobKey, BlobStore, FileName};
use imagemcp_core::{Error, Result};

use crate::aws::AwsTarget;

/// The longest validity S3 accepts for a presigned URL.
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub use crate::settings::Sse;

/// The `BlobStore` port on S3. Cheap to clone.
#[derive(Clone)]
pub struct S3BlobStore {
    aws: Arc<AwsTarget>,
    bucket: String,
    sse: Sse,
}

impl S3BlobStore {
    pub fn new(aws: Arc<AwsTarget>, bucket: impl Into<String>, sse: Sse) -> Self {
        Self {
            aws,
            bucket: bucket.into(),
            sse,
        }
    }

    fn url(&self, key: &BlobKey) -> String {
        format!(
            "{}/{}/{}",
            self.aws.s3_endpoint.trim_end_matches('/'),
            self.bucket,
            key.as_str()
        )
    }
}

/// The core error of a failed S3 call (`op` names it), from its status and XML error code.
fn failure(op: &str, status: u16, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("", |(code, _)| code);
    match (status, code) {
        (503, _) | (_, "SlowDown") => Error::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        (500..=599, _) => Error::Unavailable(format!("S3 {op} failed with {status}")),
        (_, "InvalidArgument") => Error::invalid(format!("S3 {op}"), "S3 refused an argument"),
        _ => Error::internal(format!("S3 {op} failed: {status} {code}")),
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        let mut request = http::Request::put(self.url(key)).header("content-type", content_type);
        request = match &self.sse {
            Sse::Aes256 => request.header("x-amz-server-side-encryption", "AES256"),
            Sse::Kms(key_id) => {
                let request = request.header("x-amz-server-side-encryption", "aws:kms");
                match key_id {
                    Some(id) => request.header("x-amz-server-side-encryption-aws-kms-key-id", id),
                    None => request,
                }
            }
        };
        let request = request.body(bytes).map_err(Error::internal)?;
        let reply = self.aws.send("s3", request).await?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(failure("PutObject", reply.status, &reply.body))
        }
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>> {
        let request = http::Request::get(self.url(key))
            .body(Vec::new())
            .map_err(Error::internal)?;
        let reply = self.aws.send("s3", request).await?;
        match reply.status {
            200 => Ok(Some(Blob {
                content_type: reply
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                bytes: reply.body,
            })),
            404 => Ok(None),
            status => Err(failure("GetObject", status, &reply.body)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        // S3 deletes of a missing key succeed, as the port promises.
        let request = http::Request::delete(self.url(key))
            .body(Vec::new())
            .map_err(Error::internal)?;
        let reply = self.aws.send("s3", request).await?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(failure("DeleteObject", reply.status, &reply.body))
        }
    }

    async fn signed_url(
        &self,
        key: &BlobKey,
        expires_in: Duration,
        download: Option<&FileName>,
    ) -> Result<Option<String>> {
        if expires_in.is_zero() || expires_in > MAX_URL_TTL {
            return Err(Error::invalid(
                "expires_in",
                "a presigned URL lives from 1 second to 7 days",
            ));
        }
        // The download name rides in the signed query, as the AWS SDK presigns it: S3 answers
        // with this `Content-Disposition`.
        let url = match download {
            Some(name) => format!(
                "{}?response-content-disposition={}",
                self.url(key),
                name.content_disposition_query()
            ),
            None => self.url(key),
        };
        self.aws.presign_s3_get(&url, expires_in).map(Some)
    }
}
