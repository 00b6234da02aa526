//! OAuth clients registered dynamically (RFC 7591): public clients (no secret, PKCE required) with
//! a fixed list of redirect URIs, stored as `OAUTHCLIENT#<client_id>` / `META`.

use imagemcp_core::table::{Condition, Key};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Identity;
use imagemcp_tenancy::items::{from_item, to_item};

const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;

/// What a client asked to register with (unknown fields are ignored, as RFC 7591 allows).
#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
}

/// A registered client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub scope: String,
    pub created_at_ms: i64,
}

impl ClientRecord {
    /// The RFC 7591 registration response.
    pub fn to_response(&self) -> Value {
        serde_json::json!({
            "client_id": self.client_id,
            "client_id_issued_at": self.created_at_ms / 1000,
            "client_name": self.client_name,
            "redirect_uris": self.redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": self.scope,
        })
    }

    /// Whether `uri` is one of the registered redirect URIs, compared exactly.
    pub fn has_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
}

fn key(client_id: &str) -> Key {
    Key::new(format!("OAUTHCLIENT#{client_id}"), "META")
}

fn bad_metadata(reason: impl Into<String>) -> Error {
    Error::invalid("client_metadata", reason)
}

/// Whether a host is the loopback interface (where plain http is safe enough: nothing leaves the
/// machine).
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Checks one redirect URI: absolute, https (http only on loopback), no fragment, no credentials.
pub fn check_redirect_uri(uri: &str) -> Result<()> {
    if uri.len() > MAX_URI_LEN {
        return Err(bad_metadata("a redirect URI is too long"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| bad_metadata("a redirect URI is not a URL"))?;
    let host = parsed
        .host()
        .ok_or_else(|| bad_metadata("a redirect URI has no host"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        _ => {
            return Err(bad_metadata(
                "redirect URIs must use https (http only for loopback addresses)",
            ));
        }
    }
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad_metadata(
            "redirect URIs may not carry a fragment or credentials",
        ));
    }
    Ok(())
}

pub struct Clients<'a> {
    cx: &'a Identity,
}

impl<'a> Clients<'a> {
    pub fn new(cx: &'a Identity) -> Self {
        Self { cx }
    }

    /// Registers a public client. Every check runs before the one write.
    pub async fn register(&self, req: RegistrationRequest) -> Result<ClientRecord> {
        if req.redirect_uris.is_empty() || req.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(Error::invalid(
                "redirect_uris",
                format!("give 1 to {MAX_REDIRECT_URIS} redirect URIs"),
            ));
        }
        for uri in &req.redirect_uris {
            check_redirect_uri(uri).map_err(|e| match e {
                Error::Invalid { reason, .. } => Error::invalid("redirect_uris", reason),
                other => other,
            })?;
        }
        if let Some(method) = req.token_endpoint_auth_method.as_deref()
            && method != "none"
        {
            return Err(bad_metadata(
                "only public clients are supported: token_endpoint_auth_method must be `none` (PKCE protects the code)",
            ));
        }
        if let Some(grants) = &req.grant_types
            && grants
                .iter()
                .any(|g| g != "authorization_code" && g != "refresh_token")
        {
            return Err(bad_metadata(
                "grant_types may only be authorization_code and refresh_token",
            ));
        }
        if let Some(types) = &req.response_types
            && types.iter().any(|t| t != "code")
        {
            return Err(bad_metadata("response_types may only be `code`"));
        }
        let scope = match req.scope.as_deref() {
            Some(s) => imagemcp_core::rbac::Scope::join(
                &imagemcp_core::rbac::Scope::parse_list("scope", s)
                    .map_err(|e| bad_metadata(e.to_string()))?,
            ),
            None => "images:read images:write".to_owned(),
        };
        let name: String = req
            .client_name
            .or(req.client_uri)
            .unwrap_or_else(|| "Unnamed client".into())
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        let mut raw = [0u8; 16];
        self.cx.ports.random.fill(&mut raw);
        let record = ClientRecord {
            client_id: format!("mcp_{}", hex::encode(raw)),
            client_name: name,
            redirect_uris: req.redirect_uris,
            scope,
            created_at_ms: self.cx.ports.clock.now_ms(),
        };
        self.cx
            .ports
            .table
            .put(
                to_item(key(&record.client_id), &record)?,
                Condition::NotExists,
            )
            .await?;
        tracing::info!(client_id = %record.client_id, "oauth client registered");
        Ok(record)
    }

    /// A registered client, by id, or the client a Client ID Metadata Document URL describes
    /// (see [`super::cimd`]). Ids that could not be ours are not looked up.
    pub async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        if super::cimd::is_url_client_id(client_id) {
            return super::cimd::resolve(self.cx, client_id).await;
        }
        if client_id.len() != 36
            || !client_id.starts_with("mcp_")
            || !client_id[4..].bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Ok(None);
        }
        self.cx
            .ports
            .table
            .get(&key(client_id))
            .await?
            .map(from_item)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::check_redirect_uri;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://client.example/cb",
            "http://127.0.0.1:9999/callback",
            "http://localhost/cb",
            "http://[::1]:3000/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://client.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "javascript:alert(1)",
            "https://client.example/cb#frag",
            "https://user:pw@client.example/cb",
            "/relative",
            "file:///etc/passwd",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
