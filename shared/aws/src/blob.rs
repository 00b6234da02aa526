//! `S3BlobStore`: the `BlobStore` port on one S3 bucket, encrypted at rest, with presigned GET
//! URLs for downloads.
//!
//! Every object is written with server-side encryption (SSE-KMS with the deployment's key, or
//! SSE-S3) and its content type. Downloads never pass through a function: the app hands out a
//! presigned GET URL valid for `download_url_ttl` (S3 caps presigned URLs at 7 days).

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use imagemcp_core::blob::{Blob, BlobKey, BlobStore, FileName};
use imagemcp_core::{Error, Result};

use crate::error::map_sdk;

/// The longest validity S3 accepts for a presigned URL.
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How objects are encrypted at rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3: AES-256 with keys S3 manages.
    Aes256,
    /// SSE-KMS with this key id or ARN, or the bucket's default KMS key when `None`.
    Kms(Option<String>),
}

/// The `BlobStore` port on S3. Cheap to clone.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    sse: Sse,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>, sse: Sse) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            sse,
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        let request = match &self.sse {
            Sse::Aes256 => request.server_side_encryption(ServerSideEncryption::Aes256),
            Sse::Kms(key_id) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
        };
        request
            .send()
            .await
            .map_err(|e| map_sdk("S3 PutObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None);
            }
            Err(e) => return Err(map_sdk("S3 GetObject", e)),
        };
        let content_type = out
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::Unavailable(format!("S3 GetObject: reading the body failed: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(Blob {
            bytes,
            content_type,
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        // S3 deletes of a missing key succeed, as the port promises.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| map_sdk("S3 DeleteObject", e))?;
        Ok(())
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
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| Error::invalid("expires_in", e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            // Signed into the URL: S3 answers with this `Content-Disposition`.
            .set_response_content_disposition(download.map(FileName::content_disposition))
            .presigned(config)
            .await
            .map_err(|e| map_sdk("S3 presign GetObject", e))?;
        Ok(Some(request.uri().to_owned()))
    }
}
