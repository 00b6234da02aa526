//! Access tokens: short-lived EdDSA JWTs naming the user, the organisation, the scopes, the client
//! and the refresh-token family (`sid`) they came from, bound to one audience (the MCP resource).
//!
//! Verification is strict and closed: the algorithm is pinned, the `kid` must be one of ours, the
//! signature must verify, `iss` and `aud` must be exactly ours, and `exp` is checked against the
//! injected clock (not the system's, so tests can expire a token deterministically).

use imagemcp_core::rbac::Scope;
use imagemcp_core::{Error, Result};
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};

use super::keys::{ALGORITHM, KeySet};

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub org: String,
    /// Space-separated scopes (OAuth's format).
    pub scope: String,
    pub client_id: String,
    /// The refresh-token family: revoking it ends the access tokens it issued too.
    pub sid: String,
}

impl AccessClaims {
    pub fn scopes(&self) -> Result<Vec<Scope>> {
        Scope::parse_list("scope", &self.scope)
    }
}

/// Whether a bearer credential looks like a JWT (three base64url parts), as opposed to an API key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The one refusal: a client learns nothing about which check failed (the log does, at debug).
fn denied(why: &str) -> Error {
    tracing::debug!(reason = why, "access token refused");
    Error::Unauthenticated("invalid or expired access token".into())
}

/// Verifies a token against our keys, issuer, audience and the time `now_secs`.
pub fn verify(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: &str,
    now_secs: i64,
) -> Result<AccessClaims> {
    if token.len() > 4096 || !looks_like_jwt(token) {
        return Err(denied("not a JWT"));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| denied("bad header"))?;
    if header.alg != ALGORITHM {
        return Err(denied("algorithm not allowed"));
    }
    let kid = header.kid.ok_or_else(|| denied("no kid"))?;
    let key = keys.decoding(&kid).ok_or_else(|| denied("unknown kid"))?;
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // Expiry is checked below with the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
        .map_err(|_| denied("signature or claims"))?;
    let claims = data.claims;
    if claims.exp <= now_secs {
        return Err(denied("expired"));
    }
    // A token from the future was not made by this clock: refuse it (a minute of skew allowed).
    if claims.iat > now_secs + 60 {
        return Err(denied("issued in the future"));
    }
    Ok(claims)
}
