//! Signed AWS requests from the Worker: SigV4 from the `aws-sigv4` crate, sent with the Workers
//! `fetch` API.
//!
//! Why not the AWS SDK: its HTTP stack is hyper and rustls over tokio's TCP sockets, which do not
//! exist in a Worker (outbound traffic must go through `fetch`), and its runtime needs tokio's timer
//! and the system clock, which wasm32-unknown-unknown lacks. An SDK client wired to a custom
//! `fetch` connector, sleep and time source would work but adds megabytes of generated code to a
//! bundle that must start in under a second; the DynamoDB JSON protocol and S3's REST API are small
//! and stable, so the adapters speak them directly and leave the signing, the part that must be
//! exactly right, to the SDK's own signer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningInstructions, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use imagemcp_core::{Error, Result};
use worker::send::SendFuture;

pub use crate::settings::AwsTarget;

/// A response: status, headers and the whole body.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// The wall clock: `SystemTime::now()` panics on wasm32-unknown-unknown, JavaScript's `Date` does not.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(worker::Date::now().as_millis())
}

impl AwsTarget {
    fn settings(s3: bool) -> SigningSettings {
        let mut settings = SigningSettings::default();
        if s3 {
            // S3 signs the path as sent (no normalisation, no double encoding) and carries the
            // payload hash in `x-amz-content-sha256`.
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        settings
    }

    /// The SigV4 signature of `signable` for `service`, with this configuration's credentials.
    fn instructions(
        &self,
        service: &str,
        settings: SigningSettings,
        signable: SignableRequest<'_>,
    ) -> Result<SigningInstructions> {
        let identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "worker-secrets",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(now())
            .settings(settings)
            .build()
            .map_err(|e| Error::internal(format!("SigV4 parameters: {e}")))?
            .into();
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Error::internal(format!("SigV4 signing: {e}")))?
            .into_parts();
        Ok(instructions)
    }

    /// Signs `request` for `service` in place.
    pub fn sign(
        &self,
        service: &str,
        request: &mut http::Request<Vec<u8>>,
        settings: SigningSettings,
    ) -> Result<()> {
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| Error::internal(format!("SigV4 request: {e}")))?;
        let instructions = self.instructions(service, settings, signable)?;
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// A presigned GET URL for an S3 object, valid for `expires_in`.
    pub fn presign_s3_get(&self, url: &str, expires_in: Duration) -> Result<String> {
        let mut settings = Self::settings(true);
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
            })
            .ok_or_else(|| Error::internal("the S3 endpoint is not a URL"))?;
        let signable = SignableRequest::new(
            "GET",
            url,
            [("host", host.as_str())].into_iter(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| Error::internal(format!("SigV4 request: {e}")))?;
        let instructions = self.instructions("s3", settings, signable)?;
        let mut request = http::Request::get(url)
            .body(())
            .map_err(|e| Error::internal(format!("presigned URL: {e}")))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request.uri().to_string())
    }

    /// Signs and sends `request` to `service` (`dynamodb` or `s3`).
    pub async fn send(&self, service: &str, mut request: http::Request<Vec<u8>>) -> Result<Reply> {
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| Error::internal("an AWS request without a host"))?;
        request.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_str(&host).map_err(Error::internal)?,
        );
        self.sign(service, &mut request, Self::settings(service == "s3"))?;
        // Workers' fetch futures hold JavaScript values and so are `!Send`; the ports must be
        // `Send` for axum, and a Worker isolate runs one thread, so wrapping them is sound.
        SendFuture::new(fetch(request)).await
    }
}

/// Sends `request` with the Workers `fetch` API and reads the whole reply.
async fn fetch(request: http::Request<Vec<u8>>) -> Result<Reply> {
    let unavailable =
        |e: worker::Error| Error::Unavailable(format!("AWS could not be reached: {e}"));
    let (parts, body) = request.into_parts();
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        // `host` is the one header fetch sets itself (and refuses).
        if name == http::header::HOST {
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers.set(name.as_str(), value).map_err(unavailable)?;
        }
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::from(parts.method.as_str().to_owned()))
        .with_headers(headers);
    if !body.is_empty() {
        init.with_body(Some(
            worker::js_sys::Uint8Array::from(body.as_slice()).into(),
        ));
    }
    let request =
        worker::Request::new_with_init(&parts.uri.to_string(), &init).map_err(unavailable)?;
    let mut response = worker::Fetch::Request(request)
        .send()
        .await
        .map_err(unavailable)?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in response.headers().entries() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    let status = response.status_code();
    let body = response.bytes().await.map_err(unavailable)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}
