//! Native outbound HTTP with SSRF guards: the fetcher of OAuth Client ID Metadata Documents that
//! both native runtimes (the local binary and the Lambda functions) plug into
//! `imagemcp_core::fetch`. The host is resolved here, every address it resolves to must be
//! public (unless the origin is on the test allow-list), and the connection goes to the vetted
//! address only (the HTTP client is told to use it for the host, so a second DNS answer cannot swap
//! in another). No redirect is followed, the body is read to at most 64 KiB (more is refused) and
//! the whole fetch is bounded by 5 s (less where a test asks).

use std::net::SocketAddr;
use std::time::Duration;

use imagemcp_core::fetch::{
    FETCH_TIMEOUT, Fetched, MAX_DOCUMENT_BYTES, MetadataFetcher, is_public_ip,
};
use imagemcp_core::{Error, Result};

/// Fetches over reqwest (rustls), one client per fetch so each is pinned to its vetted address.
pub struct GuardedFetcher {
    /// How long a whole fetch may take.
    timeout: Duration,
}

fn refuse(reason: impl Into<String>) -> Error {
    Error::invalid("client_id", reason)
}

impl GuardedFetcher {
    /// A fetcher that gives up after [`FETCH_TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(FETCH_TIMEOUT)
    }

    /// A fetcher that gives up after `timeout`: shorter than [`FETCH_TIMEOUT`] only in tests, which
    /// then see a fetch time out without waiting the full limit.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self { timeout }
    }

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

    async fn get(&self, url: &url::Url, allow_private: bool) -> Result<Fetched> {
        let addr = Self::vetted_address(url, allow_private).await?;
        let host = url.host_str().unwrap_or_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
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

impl Default for GuardedFetcher {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl MetadataFetcher for GuardedFetcher {
    async fn fetch(&self, url: &url::Url, allow_private: bool) -> Result<Fetched> {
        // The client's own timeout covers each phase; this bounds the resolution too.
        tokio::time::timeout(self.timeout, self.get(url, allow_private))
            .await
            .map_err(|_| refuse("fetching the client metadata document timed out"))?
    }
}

#[cfg(test)]
mod tests {
    //! Against a real HTTP server on loopback: loopback is exactly what the guard refuses, so
    //! each test says whether the origin is allow-listed (`allow_private`).

    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;

    use super::*;

    const DOCUMENT: &str = r#"{"client_id":"x","redirect_uris":["http://127.0.0.1:9/cb"]}"#;

    async fn document() -> impl IntoResponse {
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "max-age=60"),
                (header::EXPIRES, "Thu, 01 Jan 2037 00:00:00 GMT"),
            ],
            DOCUMENT,
        )
    }

    /// Serves the documents of the tests on 127.0.0.1; returns its origin.
    async fn server() -> String {
        let app = Router::new()
            .route("/client.json", get(document))
            .route(
                "/redirect.json",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "http://169.254.169.254/latest/meta-data")],
                    )
                }),
            )
            .route(
                "/big.json",
                get(|| async { vec![b' '; MAX_DOCUMENT_BYTES + 1] }),
            )
            .route(
                // No Content-Length: the cap must hold while reading, not only on the header.
                "/big-stream.json",
                get(|| async {
                    let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                // Never answers: the test's runtime drops the server when the test ends.
                "/slow.json",
                get(std::future::pending::<&'static str>),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn url(origin: &str, path: &str) -> url::Url {
        url::Url::parse(&format!("{origin}{path}")).unwrap()
    }

    fn reason(e: Error) -> String {
        match e {
            Error::Invalid { field, reason } => {
                assert_eq!(field, "client_id");
                reason
            }
            other => panic!("expected an Invalid client_id error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn non_public_addresses_are_refused_unless_allow_listed() {
        let origin = server().await;
        let port = origin.rsplit(':').next().unwrap();
        for target in [
            origin.clone(),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
            "http://10.0.0.1".to_owned(),
            "http://169.254.169.254".to_owned(),
            "http://[fd00::1]".to_owned(),
        ] {
            let e = GuardedFetcher::new()
                .fetch(&url(&target, "/client.json"), false)
                .await
                .expect_err(&target);
            assert!(reason(e).contains("non-public"), "{target}");
        }
        let got = GuardedFetcher::new()
            .fetch(&url(&origin, "/client.json"), true)
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body, DOCUMENT.as_bytes());
        assert_eq!(got.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(
            got.expires.as_deref(),
            Some("Thu, 01 Jan 2037 00:00:00 GMT")
        );
        assert!(got.date.is_some(), "the server's Date header is passed on");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let origin = server().await;
        let got = GuardedFetcher::new()
            .fetch(&url(&origin, "/redirect.json"), true)
            .await
            .unwrap();
        // The redirect itself comes back (and `cimd::resolve` refuses a non-200), never the
        // metadata endpoint it points at.
        assert_eq!(got.status, 302);
        assert!(got.body.is_empty());
    }

    #[tokio::test]
    async fn oversized_documents_are_refused() {
        let origin = server().await;
        for path in ["/big.json", "/big-stream.json"] {
            let e = GuardedFetcher::new()
                .fetch(&url(&origin, path), true)
                .await
                .expect_err(path);
            assert!(reason(e).contains("larger than 64 KiB"), "{path}");
        }
    }

    #[test]
    fn the_limit_is_the_ports_unless_a_test_shortens_it() {
        assert_eq!(GuardedFetcher::new().timeout, FETCH_TIMEOUT);
    }

    #[tokio::test]
    async fn slow_documents_time_out() {
        let origin = server().await;
        let e = GuardedFetcher::with_timeout(Duration::from_millis(50))
            .fetch(&url(&origin, "/slow.json"), true)
            .await
            .expect_err("a document that never answers");
        assert!(reason(e).contains("timed out"));
    }
}
