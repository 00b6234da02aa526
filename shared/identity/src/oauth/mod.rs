//! The OAuth 2.1 authorization server for MCP clients: authorization requests, single-use codes
//! bound to client, redirect URI, resource and PKCE challenge, and their exchange for tokens.
//!
//! Codes are `OAUTHCODE#<sha256(code)>` / `CODE` with a one-minute TTL. Exchanging one deletes it
//! (conditionally: only one exchange can win) in the same transaction that stores the new token
//! family, so a failed exchange writes nothing and a code never yields two token pairs.

pub mod cimd;
pub mod clients;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imagemcp_core::ids::{OrgId, UserId};
use imagemcp_core::rbac::Scope;
use imagemcp_core::table::{Condition, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Identity;
use crate::auth::constant_time_eq;
use crate::sessions::{self, Grant, Sessions, TokenPair};
pub use clients::{ClientRecord, Clients};
use imagemcp_tenancy::items::{from_item, to_item};

/// How long an authorization code may wait to be exchanged.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// The scopes a request naming none asks for: all of them. What is granted is always capped by
/// the user's role in the organisation chosen on the consent page, so this is "whatever my role
/// there allows".
pub const DEFAULT_SCOPES: &[Scope] = Scope::ALL;

/// The parameters of an authorization request, as received (query string or form).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    pub state: Option<String>,
    #[serde(default)]
    pub code_challenge: String,
    #[serde(default)]
    pub code_challenge_method: String,
    pub scope: Option<String>,
    #[serde(default)]
    pub resource: String,
}

/// An authorization request whose client and redirect URI are known good: from here on, errors
/// may be sent back to the redirect URI.
#[derive(Clone, Debug)]
pub struct ValidRequest {
    pub client: ClientRecord,
    pub params: AuthorizeParams,
    pub scopes: Vec<Scope>,
}

/// Why an authorization request failed.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Page(String),
    /// The request is bad but the redirect URI is registered: send `error` there.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Validates an authorization request: first the client and the exact redirect URI (or an error
/// page), then everything else (or an error sent to the client).
pub async fn validate(
    cx: &Identity,
    params: AuthorizeParams,
) -> Result<ValidRequest, AuthorizeError> {
    let client = match Clients::new(cx).get(&params.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(AuthorizeError::Page("Unknown client.".into())),
        // A metadata document that cannot be used: say why (the reason names no secret).
        Err(Error::Invalid { reason, .. }) => {
            return Err(AuthorizeError::Page(format!(
                "This client cannot be used: {reason}."
            )));
        }
        Err(e) => {
            tracing::warn!(error = %e, "client lookup failed");
            return Err(AuthorizeError::Page("Please try again later.".into()));
        }
    };
    if !client.has_redirect(&params.redirect_uri) {
        return Err(AuthorizeError::Page(
            "The redirect URI is not registered for this client.".into(),
        ));
    }
    let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: params.redirect_uri.clone(),
        state: params.state.clone(),
        error,
        description: description.to_owned(),
    };
    if params.response_type != "code" {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if params.code_challenge_method != "S256" {
        return Err(fail(
            "invalid_request",
            "PKCE is required with code_challenge_method=S256 (plain is not accepted)",
        ));
    }
    if params.code_challenge.len() != 43
        || !params
            .code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    if params.resource != sessions::resource(cx) {
        return Err(fail(
            "invalid_target",
            "resource must be this server's MCP endpoint",
        ));
    }
    if params.state.as_ref().is_some_and(|s| s.len() > 1000) {
        return Err(fail("invalid_request", "state is too long"));
    }
    let scopes = match params.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Scope::parse_list("scope", s).map_err(|_| {
            fail(
                "invalid_scope",
                "unknown scope (images:read, images:write, admin)",
            )
        })?,
        None => DEFAULT_SCOPES.to_vec(),
    };
    Ok(ValidRequest {
        client,
        params,
        scopes,
    })
}

/// The redirect that answers an authorization request: `code` or `error`, `state`, and `iss`
/// (RFC 9207) so the client can tell which server answered.
pub fn redirect_url(cx: &Identity, redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        // Registered URIs were parsed at registration; this cannot happen for them.
        Err(_) => return redirect_uri.to_owned(),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        q.append_pair("iss", &sessions::issuer(cx));
    }
    url.to_string()
}

#[derive(Debug, Serialize, Deserialize)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    resource: String,
    code_challenge: String,
    scopes: Vec<Scope>,
    user: UserId,
    org: OrgId,
}

fn code_key(code: &str) -> Key {
    Key::new(
        format!("OAUTHCODE#{}", hex::encode(Sha256::digest(code.as_bytes()))),
        "CODE",
    )
}

/// Issues a code for an approved request: `grant` is what the user approved (their organisation
/// and the scopes asked for, capped by their role there; [`Sessions::sign_in_grant`]).
pub async fn issue_code(cx: &Identity, req: &ValidRequest, grant: &Grant) -> Result<String> {
    let mut raw = [0u8; 32];
    cx.ports.random.fill(&mut raw);
    let code = format!("imc_{}", hex::encode(raw));
    let record = CodeRecord {
        client_id: req.client.client_id.clone(),
        redirect_uri: req.params.redirect_uri.clone(),
        resource: req.params.resource.clone(),
        code_challenge: req.params.code_challenge.clone(),
        scopes: grant.scopes.clone(),
        user: grant.user.clone(),
        org: grant.org.clone(),
    };
    let item = to_item(code_key(&code), &record)?
        .with_ttl(cx.ports.clock.now_secs() + CODE_TTL.as_secs() as i64);
    cx.ports.table.put(item, Condition::NotExists).await?;
    Ok(code)
}

/// Whether a PKCE verifier matches an S256 challenge. The verifier must be 43-128 characters of
/// the unreserved set (RFC 7636).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed
        && constant_time_eq(
            &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            challenge,
        )
}

use crate::sessions::bad_grant;

/// Exchanges a code (the `authorization_code` grant). Every check runs before the one transaction
/// that consumes the code and stores the token family.
pub async fn exchange_code(
    cx: &Identity,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
    resource: Option<&str>,
) -> Result<TokenPair> {
    if !code.starts_with("imc_") || code.len() != 68 {
        return Err(bad_grant("unknown or expired code"));
    }
    let key = code_key(code);
    let item = cx
        .ports
        .table
        .get(&key)
        .await?
        .ok_or_else(|| bad_grant("unknown or expired code"))?;
    let record: CodeRecord = from_item(item)?;
    if !constant_time_eq(&record.client_id, client_id) {
        return Err(bad_grant("the code was issued to another client"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(bad_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    if resource.is_some_and(|r| r != record.resource) {
        return Err(Error::invalid(
            "resource",
            "differs from the authorization request",
        ));
    }
    if !pkce_matches(verifier, &record.code_challenge) {
        return Err(bad_grant("code_verifier does not match the code_challenge"));
    }
    let grant = Grant {
        user: record.user,
        org: record.org,
        scopes: record.scopes,
        client_id: record.client_id,
    };
    let (pair, mut ops) = Sessions::new(cx).issue_ops(&grant)?;
    ops.push(TransactOp::Delete(key, Condition::Exists));
    cx.ports.table.transact(ops).await.map_err(|e| match e {
        // Someone exchanged it a moment earlier.
        Error::Conflict(_) => bad_grant("unknown or expired code"),
        other => other,
    })?;
    tracing::info!(client_id = %grant.client_id, user = %grant.user, "authorization code exchanged");
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
    }
}
