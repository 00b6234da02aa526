//! The native fetcher of Client ID Metadata Documents, guarded against server-side request
//! forgery: the host is resolved here, every address it resolves to must be public (unless the
//! origin is on the test allow-list), and the connection goes to the vetted address only (the
//! HTTP client is told to use it for the host, so a second DNS answer cannot swap in another).
//! No redirect is followed, the body is read to at most 64 KiB (more is refused) and the whole
//! fetch is bounded by 5 s.

use std::net::SocketAddr;

use imagemcp_app::oauth::cimd::{
    FETCH_TIMEOUT, Fetched, MAX_DOCUMENT_BYTES, MetadataFetcher, is_public_ip,
};
use imagemcp_core::{Error, Result};

/// Fetches over reqwest (rustls), one client per fetch so each is pinned to its vetted address.
pub(crate) struct GuardedFetcher;

fn refuse(reason: impl Into<String>) -> Error {
    Error::invalid("client_id", reason)
}

impl GuardedFetcher {
    async fn vetted_address(url: &url::Url, allow_private: bool) -> Result<SocketAddr> {
        let host = url
            .host_str()
            .ok_or_else(|| refuse("the client_id URL has no host"))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| refuse("the client_id URL has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| refuse("the client_id URL's host does not resolve"))?
            .collect();
        if addrs.is_empty() {
            return Err(refuse("the client_id URL's host does not resolve"));
        }
        // Every answer must be public: picking the public one of a mixed answer would leave the
        // door open to a rebinding resolver.
        if !allow_private && addrs.iter().any(|a| !is_public_ip(a.ip())) {
            return Err(refuse(
                "the client_id URL's host resolves to a private, loopback, link-local or otherwise non-public address",
            ));
        }
        Ok(addrs[0])
    }

    async fn get(url: &url::Url, allow_private: bool) -> Result<Fetched> {
        let addr = Self::vetted_address(url, allow_private).await?;
        let host = url.host_str().unwrap_or_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .resolve(host, addr)
            .build()
            .map_err(Error::internal)?;
        let mut response = client
            .get(url.as_str())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    refuse("fetching the client metadata document timed out")
                } else {
                    refuse("the client metadata document could not be fetched")
                }
            })?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut fetched = Fetched {
            status: response.status().as_u16(),
            body: Vec::new(),
            cache_control: header("cache-control"),
            expires: header("expires"),
            date: header("date"),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(refuse("the client metadata document is larger than 64 KiB"));
        }
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                refuse("fetching the client metadata document timed out")
            } else {
                refuse("the client metadata document could not be read")
            }
        })? {
            if fetched.body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(refuse("the client metadata document is larger than 64 KiB"));
            }
            fetched.body.extend_from_slice(&chunk);
        }
        Ok(fetched)
    }
}

#[async_trait::async_trait]
impl MetadataFetcher for GuardedFetcher {
    async fn fetch(&self, url: &url::Url, allow_private: bool) -> Result<Fetched> {
        // The client's own timeout covers each phase; this bounds the resolution too.
        tokio::time::timeout(FETCH_TIMEOUT, Self::get(url, allow_private))
            .await
            .map_err(|_| refuse("fetching the client metadata document timed out"))?
    }
}
