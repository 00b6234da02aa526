//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as MCP 2026-07-28
//! requires): a client whose `client_id` is an HTTPS URL is described by the JSON document at that
//! URL. We fetch it (through the runtime's [`MetadataFetcher`], which guards against SSRF), check
//! that its `client_id` is exactly the URL and that its redirect URIs are sound, and cache it as
//! its HTTP headers allow (bounded). Its `redirect_uris` are then the only ones accepted.
//!
//! The fetch itself is a port because only the runtime can do it safely: the native fetcher
//! (`imagemcp::cimd_fetch`) resolves the host, refuses private, loopback, link-local, unique-local
//! and multicast addresses, connects to the vetted address, follows no redirects, and caps the size
//! and the time; the Worker's (`imagemcp-worker`'s `cimd`) does what `fetch()` allows (no DNS
//! vetting). Without a fetcher the server does not advertise the feature and URL client ids are
//! unknown clients.

use std::time::Duration;

use imagemcp_core::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::clients::{ClientRecord, check_redirect_uri};
use crate::Identity;
use imagemcp_core::fetch::{Fetched, MAX_DOCUMENT_BYTES, MetadataFetcher};

/// How long a document is cached when its headers say nothing.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// The longest a document is cached whatever its headers say.
pub const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
const MAX_URL_LEN: usize = 2000;

/// The CIMD settings of a deployment.
#[derive(Clone)]
pub struct CimdConfig {
    pub fetcher: std::sync::Arc<dyn MetadataFetcher>,
    /// Origins (`http://127.0.0.1:4567`) whose documents may be fetched over plain http and from
    /// private addresses. For tests only: empty in every real deployment.
    pub test_allow_origins: Vec<String>,
}

impl std::fmt::Debug for CimdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdConfig")
            .field("test_allow_origins", &self.test_allow_origins)
            .finish_non_exhaustive()
    }
}

/// Whether a client id is a URL (and so names a metadata document).
pub fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

fn refuse(reason: impl Into<String>) -> Error {
    Error::invalid("client_id", reason)
}

/// Checks the shape of a URL client id: https (http only for a test-allowed origin), a path
/// other than `/`, no fragment, no credentials, no dot segments. Returns the URL and whether its
/// origin is on the test allow-list.
pub fn check_url(config: &CimdConfig, client_id: &str) -> Result<(url::Url, bool)> {
    if client_id.len() > MAX_URL_LEN {
        return Err(refuse("the client_id URL is too long"));
    }
    let url = url::Url::parse(client_id).map_err(|_| refuse("the client_id is not a URL"))?;
    let origin = url.origin().ascii_serialization();
    let allowed = config.test_allow_origins.contains(&origin);
    if url.scheme() != "https" && !allowed {
        return Err(refuse(
            "a client_id URL must use https (metadata documents are never fetched over plain http)",
        ));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(refuse("a client_id URL must have a path"));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "a client_id URL may not carry a fragment or credentials",
        ));
    }
    // `Url` normalises dot segments away: a URL that changed when parsed had some.
    if url.as_str() != client_id {
        return Err(refuse(
            "a client_id URL must be in normal form (no dot segments, lower-case scheme and host)",
        ));
    }
    Ok((url, allowed))
}

/// The fields of a metadata document we read (others are ignored).
#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    client_name: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
}

fn cache_key(client_id: &str) -> String {
    format!("cimd:{}", hex::encode(Sha256::digest(client_id.as_bytes())))
}

/// How long a response may be cached: `no-store`/`no-cache`/`private` → not at all; `max-age`
/// (or `s-maxage`) if given; else `Expires` minus `Date`; else [`DEFAULT_CACHE`]. At most
/// [`MAX_CACHE`].
pub fn cache_lifetime(fetched: &Fetched) -> Duration {
    if let Some(cc) = fetched.cache_control.as_deref() {
        let mut max_age = None;
        for directive in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            if directive == "no-store" || directive == "no-cache" {
                return Duration::ZERO;
            }
            if let Some(v) = directive
                .strip_prefix("max-age=")
                .or_else(|| directive.strip_prefix("s-maxage="))
            {
                max_age = v.trim_matches('"').parse::<u64>().ok().or(Some(0));
            }
        }
        if let Some(secs) = max_age {
            return Duration::from_secs(secs).min(MAX_CACHE);
        }
    }
    if let Some(expires) = fetched.expires.as_deref() {
        let Ok(expires) = httpdate::parse_http_date(expires) else {
            return Duration::ZERO; // An invalid Expires means already expired (RFC 9111).
        };
        let now = fetched
            .date
            .as_deref()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .unwrap_or(std::time::UNIX_EPOCH);
        return expires
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_CACHE);
    }
    DEFAULT_CACHE
}

/// The client a URL client id names, from the cache or freshly fetched and checked. `Ok(None)`
/// when this deployment has no fetcher (CIMD unsupported).
pub async fn resolve(cx: &Identity, client_id: &str) -> Result<Option<ClientRecord>> {
    let Some(config) = cx.config.client_metadata.as_ref() else {
        return Ok(None);
    };
    let (url, allow_private) = check_url(config, client_id)?;
    let key = cache_key(client_id);
    if let Some(bytes) = cx.ports.cache.get(&key).await?
        && let Ok(record) = serde_json::from_slice::<ClientRecord>(&bytes)
    {
        return Ok(Some(record));
    }
    let fetched = config.fetcher.fetch(&url, allow_private).await?;
    if fetched.status != 200 {
        return Err(refuse(format!(
            "the client metadata document answered HTTP {} (it must answer 200, without redirects)",
            fetched.status
        )));
    }
    if fetched.body.len() > MAX_DOCUMENT_BYTES {
        return Err(refuse("the client metadata document is larger than 64 KiB"));
    }
    let doc: Document = serde_json::from_slice(&fetched.body).map_err(|e| {
        refuse(format!(
            "the client metadata document is not valid metadata JSON: {e}"
        ))
    })?;
    if doc.client_id != client_id {
        return Err(refuse(
            "the client metadata document names another client_id than its own URL",
        ));
    }
    if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > 10 {
        return Err(refuse(
            "the client metadata document must list 1 to 10 redirect_uris",
        ));
    }
    for uri in &doc.redirect_uris {
        check_redirect_uri(uri).map_err(|e| match e {
            Error::Invalid { reason, .. } => refuse(format!("in the metadata document: {reason}")),
            other => other,
        })?;
    }
    if doc
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err(refuse(
            "only public clients are supported: token_endpoint_auth_method must be `none`",
        ));
    }
    if doc.grant_types.as_ref().is_some_and(|g| {
        g.iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
    }) || doc
        .response_types
        .as_ref()
        .is_some_and(|r| r.iter().any(|t| t != "code"))
    {
        return Err(refuse(
            "the metadata document asks for grant or response types other than authorization_code and code",
        ));
    }
    let scope = match doc.scope.as_deref() {
        Some(s) => imagemcp_core::rbac::Scope::join(
            &imagemcp_core::rbac::Scope::parse_list("scope", s)
                .map_err(|e| refuse(e.to_string()))?,
        ),
        None => "images:read images:write".to_owned(),
    };
    let name: String = doc
        .client_name
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let record = ClientRecord {
        client_id: client_id.to_owned(),
        client_name: name,
        redirect_uris: doc.redirect_uris,
        scope,
        created_at_ms: cx.ports.clock.now_ms(),
    };
    let lifetime = cache_lifetime(&fetched);
    if !lifetime.is_zero() {
        let bytes = serde_json::to_vec(&record).map_err(Error::internal)?;
        cx.ports.cache.put(&key, bytes, lifetime).await?;
    }
    tracing::info!(client_id = %record.client_id, "client metadata document accepted");
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never called: `check_url` only reads the allow-list.
    struct Unused;

    #[async_trait::async_trait]
    impl MetadataFetcher for Unused {
        async fn fetch(&self, _url: &url::Url, _allow_private: bool) -> Result<Fetched> {
            Err(Error::internal("not used"))
        }
    }

    #[test]
    fn client_id_urls() {
        let config = CimdConfig {
            fetcher: std::sync::Arc::new(Unused),
            test_allow_origins: vec!["http://127.0.0.1:4567".into()],
        };
        let ok = |u: &str| check_url(&config, u).map(|(_, allowed)| allowed);
        assert!(!ok("https://app.example/client.json").unwrap());
        assert!(ok("http://127.0.0.1:4567/client.json").unwrap());
        for bad in [
            "http://app.example/client.json",
            "http://127.0.0.1:4568/client.json",
            "https://app.example/",
            "https://app.example",
            "https://app.example/client.json#x",
            "https://user:pw@app.example/client.json",
            "https://app.example/a/../client.json",
            "HTTPS://APP.example/client.json",
            "ftp://app.example/client.json",
            "not a url",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_headers() {
        let with = |cc: Option<&str>, expires: Option<&str>| Fetched {
            cache_control: cc.map(str::to_owned),
            expires: expires.map(str::to_owned),
            date: Some("Tue, 24 Nov 2026 00:00:00 GMT".into()),
            ..Default::default()
        };
        assert_eq!(
            cache_lifetime(&with(Some("max-age=60"), None)).as_secs(),
            60
        );
        assert_eq!(
            cache_lifetime(&with(Some("public, max-age=99999999"), None)),
            MAX_CACHE
        );
        assert!(cache_lifetime(&with(Some("no-store"), None)).is_zero());
        assert!(cache_lifetime(&with(Some("max-age=60, no-cache"), None)).is_zero());
        assert_eq!(
            cache_lifetime(&with(None, Some("Tue, 24 Nov 2026 00:02:00 GMT"))).as_secs(),
            120
        );
        assert!(cache_lifetime(&with(None, Some("garbage"))).is_zero());
        assert_eq!(cache_lifetime(&with(None, None)), DEFAULT_CACHE);
    }
}
