//! Sessions: access tokens (short-lived JWTs) and refresh tokens (opaque, stored hashed, rotated on
//! every use, grouped in families so that the reuse of a rotated token revokes the whole family).
//!
//! Layout in the `Table`:
//! - `REFRESH#<sha256(token)>` / `TOKEN`: one refresh token (`status` active or rotated), its grant
//!   and its family, with a TTL;
//! - `RFAMILY#<family>` / `META`: the family (`revoked`), with a TTL renewed on each rotation.
//!
//! A token pair is issued in one transaction with whatever consumed the grant (an authorization
//! code), so a failure writes nothing.
//!
//! A grant is for one organisation, chosen at sign-in ([`Sessions::sign_in_grant`]), and every
//! token of its family acts there. Its scopes are capped by the user's role in that organisation:
//! when granted, at each refresh and at each use, so a demotion narrows a live session at once.

pub mod access;
pub mod browser;
mod eddsa;
pub mod keys;

use std::time::Duration;

use imagemcp_core::ids::{OrgId, UserId};
use imagemcp_core::rbac::Scope;
use imagemcp_core::table::{Condition, Item, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Identity;
use crate::accounts::Accounts;
use crate::auth::{Caller, constant_time_eq};
pub use access::{AccessClaims, looks_like_jwt};
use imagemcp_tenancy::items::{from_item, to_item};
pub use keys::{KeySet, SigningKey};

/// How long an access token lives: short, because it is checked without a revocation list lookup
/// for its signature (the family check still ends it early on logout or reuse).
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an unused refresh token lives.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The client id of tokens issued by `POST /v1/auth/login` (not an OAuth client).
pub const REST_CLIENT: &str = "imagemcp-rest";

/// The issuer of our tokens and of the authorization server metadata. It ends with `/` because
/// clients (the MCP Python SDK among them) normalise an origin-only issuer URL to that form and then
/// compare the RFC 9207 `iss` parameter as a plain string.
pub fn issuer(cx: &Identity) -> String {
    format!("{}/", cx.config.public_url)
}

/// The protected resource tokens are bound to (their audience): the MCP endpoint.
pub fn resource(cx: &Identity) -> String {
    format!("{}/mcp", cx.config.public_url)
}

/// A new token pair. Secret: `Debug` hides the tokens.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub scopes: Vec<Scope>,
    /// The organisation the tokens act in.
    pub org: OrgId,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("org", &self.org)
            .finish()
    }
}

/// What a user granted a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub user: UserId,
    pub org: OrgId,
    pub scopes: Vec<Scope>,
    pub client_id: String,
}

/// A stored refresh token (no secret: the key is its hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RefreshRecord {
    family: String,
    grant: Grant,
    status: String,
    created_at_ms: i64,
}

const ACTIVE: &str = "active";
const ROTATED: &str = "rotated";

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn refresh_key(token: &str) -> Key {
    Key::new(format!("REFRESH#{}", sha256_hex(token)), "TOKEN")
}

fn family_key(family: &str) -> Key {
    Key::new(format!("RFAMILY#{family}"), "META")
}

/// The field an unusable grant (code or refresh token) is reported under: the edge maps it to
/// OAuth's `invalid_grant`.
pub const GRANT_FIELD: &str = "grant";

/// A grant that cannot be used: `invalid_grant` on the OAuth wire.
pub fn bad_grant(why: &str) -> Error {
    Error::invalid(GRANT_FIELD, why)
}

pub struct Sessions<'a> {
    cx: &'a Identity,
}

impl<'a> Sessions<'a> {
    pub fn new(cx: &'a Identity) -> Self {
        Self { cx }
    }

    fn keys(&self) -> Result<&'a KeySet> {
        self.cx.config.token_keys.as_deref().ok_or_else(|| {
            Error::Unavailable("this deployment has no token signing keys configured".into())
        })
    }

    fn random_hex(&self, bytes: usize) -> String {
        let mut raw = vec![0u8; bytes];
        self.cx.ports.random.fill(&mut raw);
        hex::encode(raw)
    }

    fn access_token(&self, grant: &Grant, family: &str) -> Result<String> {
        let now = self.cx.ports.clock.now_secs();
        let claims = AccessClaims {
            iss: issuer(self.cx),
            sub: grant.user.to_string(),
            aud: resource(self.cx),
            exp: now + ACCESS_TOKEN_TTL.as_secs() as i64,
            iat: now,
            jti: self.random_hex(16),
            org: grant.org.to_string(),
            scope: Scope::join(&grant.scopes),
            client_id: grant.client_id.clone(),
            sid: family.to_owned(),
        };
        self.keys()?.sign(&claims)
    }

    fn refresh_item(&self, token: &str, family: &str, grant: &Grant) -> Result<Item> {
        let now = self.cx.ports.clock.now_ms();
        let record = RefreshRecord {
            family: family.to_owned(),
            grant: grant.clone(),
            status: ACTIVE.into(),
            created_at_ms: now,
        };
        Ok(to_item(refresh_key(token), &record)?
            .with_ttl(now / 1000 + REFRESH_TOKEN_TTL.as_secs() as i64))
    }

    fn family_item(&self, family: &str, grant: &Grant) -> Item {
        let now = self.cx.ports.clock.now_secs();
        let mut item = Item::new(family_key(family), Default::default())
            .with_ttl(now + REFRESH_TOKEN_TTL.as_secs() as i64);
        item.attrs.insert("revoked".into(), json!(false));
        item.attrs.insert("user".into(), json!(grant.user));
        item
    }

    /// A new token pair in a new family, and the writes that store it: the caller adds them to
    /// its own transaction (with the consumption of the code that granted it).
    pub fn issue_ops(&self, grant: &Grant) -> Result<(TokenPair, Vec<TransactOp>)> {
        let family = self.random_hex(16);
        let refresh = format!("imr_{}", self.random_hex(32));
        let access = self.access_token(grant, &family)?;
        let ops = vec![
            TransactOp::Put(self.family_item(&family, grant), Condition::NotExists),
            TransactOp::Put(
                self.refresh_item(&refresh, &family, grant)?,
                Condition::NotExists,
            ),
        ];
        Ok((
            TokenPair {
                access_token: access,
                refresh_token: refresh,
                expires_in: ACCESS_TOKEN_TTL.as_secs(),
                scopes: grant.scopes.clone(),
                org: grant.org.clone(),
            },
            ops,
        ))
    }

    /// What a sign-in of `user` grants `client_id`: the organisation asked for (the user must be
    /// a member; "not found" otherwise, as for one that does not exist) or the one last used, and
    /// the scopes asked for capped by the user's role there — all the role can use when none are
    /// asked for. The organisation becomes the user's last used one.
    pub async fn sign_in_grant(
        &self,
        user: &crate::accounts::UserRecord,
        org: Option<&OrgId>,
        asked: Option<&[Scope]>,
        client_id: &str,
    ) -> Result<Grant> {
        let accounts = Accounts::new(&self.cx.ports);
        let (org, member) = accounts.choose_org(user, org).await?;
        let scopes = member.effective_scopes(&org.default_team, None, asked.unwrap_or(Scope::ALL));
        if scopes.is_empty() {
            return Err(Error::invalid(
                "scope",
                "grants nothing in this organisation",
            ));
        }
        accounts.remember_org(&user.id, &org.id).await;
        Ok(Grant {
            user: user.id.clone(),
            org: org.id,
            scopes,
            client_id: client_id.to_owned(),
        })
    }

    /// The grant's scopes capped by the user's current role in its organisation; `invalid_grant`
    /// once the user has left it.
    async fn current_scopes(&self, grant: &Grant) -> Result<Vec<Scope>> {
        let accounts = Accounts::new(&self.cx.ports);
        let gone = || bad_grant("you are no longer a member of this organisation");
        let member = accounts
            .membership(&grant.org, &grant.user)
            .await?
            .ok_or_else(gone)?;
        let org = accounts.org(&grant.org).await?.ok_or_else(gone)?;
        let scopes = member.effective_scopes(&org.default_team, None, &grant.scopes);
        if scopes.is_empty() {
            return Err(gone());
        }
        Ok(scopes)
    }

    /// Issues a token pair on its own (REST login).
    pub async fn issue(&self, grant: &Grant) -> Result<TokenPair> {
        let (pair, ops) = self.issue_ops(grant)?;
        self.cx.ports.table.transact(ops).await?;
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair (same family, same grant, optionally narrower
    /// scopes). The old token is marked rotated in the same transaction that stores the new one;
    /// presenting a rotated token again revokes the family.
    pub async fn refresh(
        &self,
        presented: &str,
        client_id: &str,
        scopes: Option<Vec<Scope>>,
    ) -> Result<TokenPair> {
        self.keys()?;
        if !presented.starts_with("imr_") || presented.len() > 200 {
            return Err(bad_grant("unknown refresh token"));
        }
        let table = &self.cx.ports.table;
        let item = table
            .get(&refresh_key(presented))
            .await?
            .ok_or_else(|| bad_grant("unknown refresh token"))?;
        let record: RefreshRecord = from_item(item.clone())?;
        if !constant_time_eq(&record.grant.client_id, client_id) {
            return Err(bad_grant("the token was issued to another client"));
        }
        let family = table
            .get(&family_key(&record.family))
            .await?
            .ok_or_else(|| bad_grant("the session has ended"))?;
        if family.attrs.get("revoked") != Some(&json!(false)) {
            return Err(bad_grant("the session was revoked"));
        }
        if record.status != ACTIVE {
            self.revoke_family(&record.family).await?;
            tracing::warn!(family = %record.family, user = %record.grant.user, "refresh token reuse: family revoked");
            return Err(bad_grant(
                "refresh token reuse detected; the session was revoked",
            ));
        }
        let mut grant = record.grant.clone();
        if let Some(asked) = scopes {
            if !asked.iter().all(|s| Scope::granted(&grant.scopes, *s)) {
                return Err(Error::invalid(
                    "scope",
                    "may only narrow the scopes originally granted",
                ));
            }
            grant.scopes = Scope::intersect(&asked, &grant.scopes);
        }
        // The new access token carries what the role allows now; the family keeps the grant, so
        // a member promoted back gets its scopes again at the next refresh.
        let issued = Grant {
            scopes: self.current_scopes(&grant).await?,
            ..grant.clone()
        };
        let refresh = format!("imr_{}", self.random_hex(32));
        let access = self.access_token(&issued, &record.family)?;
        let mut rotated = item;
        rotated.attrs.insert("status".into(), json!(ROTATED));
        let ops = vec![
            TransactOp::Put(
                rotated,
                Condition::AttrEquals("status".into(), json!(ACTIVE)),
            ),
            TransactOp::Put(
                self.refresh_item(&refresh, &record.family, &grant)?,
                Condition::NotExists,
            ),
            TransactOp::Put(
                self.family_item(&record.family, &grant),
                Condition::AttrEquals("revoked".into(), json!(false)),
            ),
        ];
        match table.transact(ops).await {
            Ok(()) => {}
            // Another request rotated this token first: this one is a reuse.
            Err(Error::Conflict(_)) => {
                self.revoke_family(&record.family).await?;
                return Err(bad_grant(
                    "refresh token reuse detected; the session was revoked",
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: ACCESS_TOKEN_TTL.as_secs(),
            scopes: issued.scopes,
            org: issued.org,
        })
    }

    /// Ends a family: every refresh token of it is refused from now on, and so is every access
    /// token it issued.
    pub async fn revoke_family(&self, family: &str) -> Result<()> {
        let table = &self.cx.ports.table;
        let Some(mut item) = table.get(&family_key(family)).await? else {
            return Ok(());
        };
        item.attrs.insert("revoked".into(), json!(true));
        table.put(item, Condition::Exists).await
    }

    /// Logs out the session a refresh token belongs to. Unknown tokens are ignored (RFC 7009).
    pub async fn revoke_refresh(&self, presented: &str) -> Result<()> {
        if let Some(item) = self.cx.ports.table.get(&refresh_key(presented)).await? {
            let record: RefreshRecord = from_item(item)?;
            self.revoke_family(&record.family).await?;
        }
        Ok(())
    }

    /// Checks an email and password behind the login guard. Every failure reads the same ("email
    /// or password is incorrect"), and an unknown email costs the same argon2 work as a known one.
    pub async fn password_login(
        &self,
        email: &str,
        password: &str,
        ip: &str,
    ) -> Result<crate::accounts::UserRecord> {
        let wrong = || Error::Unauthenticated("email or password is incorrect".into());
        let Ok(email) = crate::accounts::Email::parse(email) else {
            let _ =
                crate::accounts::passwords::verify(password, crate::accounts::passwords::decoy());
            return Err(wrong());
        };
        let guard = crate::accounts::login_guard::LoginGuard::new(&self.cx.ports);
        let hash = email.lookup_hash();
        guard.check(&hash, ip).await?;
        let user = Accounts::new(&self.cx.ports).user_by_email(&email).await?;
        let stored = user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .unwrap_or(crate::accounts::passwords::decoy());
        let ok = password.chars().count() <= crate::accounts::passwords::MAX_PASSWORD_CHARS
            && crate::accounts::passwords::verify(password, stored);
        // Every attempt is audited: a success and a failure of a known account in the account's
        // personal org; a failure for an unknown email in the shared login chain, under the
        // email's hash (never the address).
        use crate::audit::{self, Actor, Chain, Event};
        let event = match &user {
            Some(u) => Event::new(
                Chain::Org(u.personal_org.clone()),
                "auth.login",
                Actor::User(u.id.clone()),
            ),
            None => Event::new(Chain::Logins, "auth.login", Actor::EmailHash(hash.clone())),
        };
        match user {
            Some(user) if ok && user.password_hash.is_some() => {
                guard.record_success(&hash).await?;
                audit::record(&self.cx.ports, event).await?;
                tracing::info!(user = %user.id, "login succeeded");
                Ok(user)
            }
            _ => {
                guard.record_failure(&hash, ip).await?;
                audit::record(&self.cx.ports, event.failed()).await?;
                tracing::info!("login failed");
                Err(wrong())
            }
        }
    }

    /// The caller an access token stands for. The role comes from the membership now (like API
    /// keys), the scopes from the token, capped by that role.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        let denied = || Error::Unauthenticated("invalid or expired access token".into());
        let keys = self.keys().map_err(|_| denied())?;
        let claims = access::verify(
            keys,
            token,
            &issuer(self.cx),
            &resource(self.cx),
            self.cx.ports.clock.now_secs(),
        )?;
        let user = UserId::parse(&claims.sub).map_err(|_| denied())?;
        let org = OrgId::parse(&claims.org).map_err(|_| denied())?;
        let scopes = claims.scopes().map_err(|_| denied())?;
        let family = self
            .cx
            .ports
            .table
            .get(&family_key(&claims.sid))
            .await?
            .ok_or_else(denied)?;
        if family.attrs.get("revoked") != Some(&json!(false)) {
            return Err(denied());
        }
        let accounts = Accounts::new(&self.cx.ports);
        let member = accounts.membership(&org, &user).await?.ok_or_else(denied)?;
        let org_rec = accounts.org(&org).await?.ok_or_else(denied)?;
        let (team, role) = member
            .acting(&org_rec.default_team, None)
            .ok_or_else(denied)?;
        Ok(Caller {
            user,
            org,
            team,
            role,
            scopes: Scope::intersect(&scopes, &role.scopes()),
            credential: format!("tok_{}", claims.sid),
        })
    }
}
