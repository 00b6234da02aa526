//! API keys and the authenticated caller.
//!
//! A key reads `imk_<prefix>_<secret>`. Only a SHA-256 hash of the whole key is stored, under the
//! public prefix; lookups go by prefix and the hash is compared in constant time. A fast hash is
//! right here (unlike for passwords) because the secret is 208 random bits: there is nothing to
//! brute-force.
//!
//! A key belongs to a user in an organisation, carries scopes, may be bound to one team and may
//! expire. Its scopes are capped by what its owner's role there can use ([`Role::scopes`]): when
//! it is made (so a reviewer's key never records `admin`) and again at every use (so a demotion
//! takes effect at once). Rotation makes a new key and leaves the old one working for [`ROTATION_GRACE`], so
//! deployed integrations can be updated without downtime; revocation ends a key at once.

use std::time::Duration;

use imagemcp_core::ids::{KeyId, OrgId, TeamId, UserId};
use imagemcp_core::rbac::Scope;
use imagemcp_core::table::{Condition, Key, Query, TransactOp};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Accounts;
use imagemcp_tenancy::Ports;
use imagemcp_tenancy::items::{from_item, to_item};

pub use imagemcp_tenancy::caller::{Caller, DEFAULT_ORG};

/// How long a rotated key keeps working: a day, long enough to roll a deployment, short enough
/// that a leaked old key dies soon.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// How stale `last_used_at` may get before a use rewrites it: one write a minute per key at most,
/// instead of one per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A newly created key: the only time the secret exists outside the caller's hands.
pub struct NewKey {
    pub id: KeyId,
    /// The full key. Shown once, never stored.
    pub secret: String,
    pub record: KeyRecord,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// What is stored of a key (no secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub prefix: String,
    pub user: UserId,
    pub org: OrgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamId>,
    pub scopes: Vec<Scope>,
    pub label: String,
    pub created_at_ms: i64,
    /// Unix ms after which the key is refused (an expiry, or the end of a rotation's grace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<KeyId>,
}

/// What a new key may do.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySpec {
    pub label: String,
    pub scopes: Vec<Scope>,
    pub team: Option<TeamId>,
    pub expires_in: Option<Duration>,
}

impl KeySpec {
    /// A key with every scope its owner's role can use, no team binding and no expiry.
    pub fn full(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            scopes: vec![Scope::Admin],
            team: None,
            expires_in: None,
        }
    }
}

pub struct ApiKeys<'a> {
    ports: &'a Ports,
}

fn secret_key(prefix: &str) -> Key {
    Key::new(format!("APIKEY#{prefix}"), "KEY")
}

fn index_key(user: &UserId, id: &KeyId) -> Key {
    Key::new(format!("USER#{user}"), format!("KEY#{id}"))
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl<'a> ApiKeys<'a> {
    pub fn new(ports: &'a Ports) -> Self {
        Self { ports }
    }

    /// Creates a key for `user` in `org`. The user must be a member; the prefix is unique by a
    /// conditional write; the key and its listing entry are written together.
    pub async fn create(&self, user: &UserId, org: &OrgId, spec: KeySpec) -> Result<NewKey> {
        self.create_by(user, org, spec, user).await
    }

    /// [`ApiKeys::create`] on behalf of `actor` (an admin issuing a key to a member), who is the
    /// one the audit log names.
    pub async fn create_by(
        &self,
        user: &UserId,
        org: &OrgId,
        spec: KeySpec,
        actor: &UserId,
    ) -> Result<NewKey> {
        let (new, ops) = self.create_ops(user, org, spec).await?;
        let mut event = key_event(&new.record, "key.create");
        event.actor = imagemcp_tenancy::audit::Actor::User(actor.clone());
        if actor != user {
            event = event.target_user(user);
        }
        let event = event
            .target(&new.id)
            .detail("scopes", serde_json::json!(new.record.scopes))
            .detail("team_id", serde_json::json!(new.record.team))
            .detail("expires_at_ms", serde_json::json!(new.record.expires_at_ms));
        imagemcp_tenancy::audit::commit(self.ports, &event, ops).await?;
        tracing::info!(key_id = %new.id, user = %user, org = %org, "api key created");
        Ok(new)
    }

    /// A new key and the writes that store it.
    async fn create_ops(
        &self,
        user: &UserId,
        org: &OrgId,
        spec: KeySpec,
    ) -> Result<(NewKey, Vec<TransactOp>)> {
        if spec.scopes.is_empty() {
            return Err(Error::invalid(
                "scopes",
                "give at least one scope (images:read, images:write, admin)",
            ));
        }
        if spec.label.chars().count() > 100 {
            return Err(Error::invalid("label", "must be at most 100 characters"));
        }
        let accounts = Accounts::new(self.ports);
        let member = accounts
            .membership(org, user)
            .await?
            .ok_or_else(|| Error::not_found(format!("member {user}")))?;
        if let Some(team) = &spec.team
            && member.role_in(team).is_none()
        {
            return Err(Error::invalid(
                "team_id",
                "you are not a member of that team",
            ));
        }
        let org_rec = accounts
            .org(org)
            .await?
            .ok_or_else(|| Error::not_found(format!("organisation {org}")))?;
        let scopes =
            member.effective_scopes(&org_rec.default_team, spec.team.as_ref(), &spec.scopes);
        if scopes.is_empty() {
            return Err(Error::not_found(format!("member {user}")));
        }
        let mut raw = [0u8; 32];
        self.ports.random.fill(&mut raw);
        let prefix = hex::encode(&raw[..6]);
        let secret = format!("imk_{prefix}_{}", hex::encode(&raw[6..]));
        let now = self.ports.clock.now_ms();
        let record = KeyRecord {
            id: KeyId::generate(&*self.ports.ids),
            prefix: prefix.clone(),
            user: user.clone(),
            org: org.clone(),
            team: spec.team,
            scopes,
            label: spec.label,
            created_at_ms: now,
            expires_at_ms: spec
                .expires_in
                .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            last_used_at_ms: None,
            replaced_by: None,
        };
        let mut secret_item = to_item(secret_key(&prefix), &record)?;
        secret_item
            .attrs
            .insert("hash".into(), serde_json::json!(hash(&secret)));
        let ops = vec![
            TransactOp::Put(secret_item, Condition::NotExists),
            TransactOp::Put(
                to_item(index_key(user, &record.id), &record)?,
                Condition::NotExists,
            ),
        ];
        Ok((
            NewKey {
                id: record.id.clone(),
                secret,
                record,
            },
            ops,
        ))
    }

    /// The caller a presented key stands for. Every failure reads the same to the client.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller> {
        let denied = || Error::Unauthenticated("invalid, expired or revoked API key".into());
        let prefix = presented
            .strip_prefix("imk_")
            .and_then(|rest| rest.split_once('_'))
            .map(|(prefix, _)| prefix)
            .filter(|p| p.len() == 12 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(denied)?;
        let item = self
            .ports
            .table
            .get(&secret_key(prefix))
            .await?
            .ok_or_else(denied)?;
        let stored = item.str("hash").ok_or_else(denied)?.to_owned();
        if !constant_time_eq(&stored, &hash(presented)) {
            return Err(denied());
        }
        let record: KeyRecord = from_item(item)?;
        let now = self.ports.clock.now_ms();
        if record.expires_at_ms.is_some_and(|at| at <= now) {
            return Err(denied());
        }
        // The role comes from the membership now, not from when the key was made: a member who
        // was demoted or removed loses the power of their keys at once.
        let accounts = Accounts::new(self.ports);
        let member = accounts
            .membership(&record.org, &record.user)
            .await?
            .ok_or_else(denied)?;
        let org = accounts.org(&record.org).await?.ok_or_else(denied)?;
        let (team, role) = member
            .acting(&org.default_team, record.team.as_ref())
            .ok_or_else(denied)?;
        if record
            .last_used_at_ms
            .is_none_or(|at| now - at > LAST_USED_RESOLUTION_MS)
        {
            self.touch(&record, now).await;
        }
        Ok(Caller {
            user: record.user,
            org: record.org,
            team,
            role,
            scopes: Scope::intersect(&record.scopes, &role.scopes()),
            credential: record.id.to_string(),
        })
    }

    /// Records a use. Best effort: a failure to record must not fail the request.
    async fn touch(&self, record: &KeyRecord, now: i64) {
        for key in [
            secret_key(&record.prefix),
            index_key(&record.user, &record.id),
        ] {
            if let Ok(Some(mut item)) = self.ports.table.get(&key).await {
                item.attrs
                    .insert("last_used_at_ms".into(), serde_json::json!(now));
                if let Err(e) = self.ports.table.put(item, Condition::Exists).await {
                    tracing::debug!(error = %e, "last_used_at not recorded");
                }
            }
        }
    }

    /// The user's keys (no secrets), newest first.
    pub async fn list(&self, user: &UserId) -> Result<Vec<KeyRecord>> {
        let mut query = Query::new(format!("USER#{user}"), "KEY#", 1000);
        query.descending = true;
        let page = self.ports.table.query(&query).await?;
        page.items.into_iter().map(from_item).collect()
    }

    /// What a key may do now: its scopes capped by its owner's current role in its organisation
    /// (none once the owner has left it).
    pub async fn effective_scopes(&self, record: &KeyRecord) -> Result<Vec<Scope>> {
        let accounts = Accounts::new(self.ports);
        let (Some(member), Some(org)) = (
            accounts.membership(&record.org, &record.user).await?,
            accounts.org(&record.org).await?,
        ) else {
            return Ok(Vec::new());
        };
        Ok(member.effective_scopes(&org.default_team, record.team.as_ref(), &record.scopes))
    }

    async fn own(&self, user: &UserId, id: &KeyId) -> Result<KeyRecord> {
        let item = self
            .ports
            .table
            .get(&index_key(user, id))
            .await?
            .ok_or_else(|| Error::not_found(format!("key {id}")))?;
        from_item(item)
    }

    /// Revokes a key at once.
    pub async fn revoke(&self, user: &UserId, id: &KeyId) -> Result<()> {
        let record = self.own(user, id).await?;
        imagemcp_tenancy::audit::commit(
            self.ports,
            &key_event(&record, "key.revoke").target(id),
            vec![
                TransactOp::Delete(secret_key(&record.prefix), Condition::None),
                TransactOp::Delete(index_key(user, id), Condition::Exists),
            ],
        )
        .await?;
        tracing::info!(key_id = %id, user = %user, "api key revoked");
        Ok(())
    }

    /// Replaces a key with a new one of the same powers; the old one keeps working for
    /// [`ROTATION_GRACE`] (or until its own expiry, if sooner). The new key and the old key's end
    /// are written in one transaction, conditional on the old key not having been rotated already.
    pub async fn rotate(&self, user: &UserId, id: &KeyId) -> Result<NewKey> {
        let old = self.own(user, id).await?;
        if old.replaced_by.is_some() {
            return Err(Error::Conflict(format!("key {id} was already rotated")));
        }
        let now = self.ports.clock.now_ms();
        let remaining = old
            .expires_at_ms
            .map(|at| Duration::from_millis((at - now).max(0) as u64));
        let spec = KeySpec {
            label: old.label.clone(),
            scopes: old.scopes.clone(),
            team: old.team.clone(),
            expires_in: remaining,
        };
        let (new, mut ops) = self.create_ops(user, &old.org, spec).await?;
        let grace_end = now + ROTATION_GRACE.as_millis() as i64;
        let ends = old.expires_at_ms.map_or(grace_end, |at| at.min(grace_end));
        for key in [secret_key(&old.prefix), index_key(user, id)] {
            let mut item = self
                .ports
                .table
                .get(&key)
                .await?
                .ok_or_else(|| Error::not_found(format!("key {id}")))?;
            item.attrs
                .insert("expires_at_ms".into(), serde_json::json!(ends));
            item.attrs
                .insert("replaced_by".into(), serde_json::json!(new.id));
            // Fails if the key was revoked meanwhile.
            ops.push(TransactOp::Put(
                item,
                Condition::AttrEquals("created_at_ms".into(), serde_json::json!(old.created_at_ms)),
            ));
        }
        let event = key_event(&old, "key.rotate")
            .target(id)
            .detail("new_key_id", serde_json::json!(new.id))
            .detail("old_key_expires_at_ms", serde_json::json!(ends));
        imagemcp_tenancy::audit::commit(self.ports, &event, ops).await?;
        tracing::info!(old = %id, new = %new.id, user = %user, "api key rotated");
        Ok(new)
    }
}

/// The audit event of a change to a key, made by its owner in the key's organisation.
fn key_event(record: &KeyRecord, action: &'static str) -> imagemcp_tenancy::audit::Event {
    imagemcp_tenancy::audit::Event::new(
        imagemcp_tenancy::audit::Chain::Org(record.org.clone()),
        action,
        imagemcp_tenancy::audit::Actor::User(record.user.clone()),
    )
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
