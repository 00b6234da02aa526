//! API keys and the authenticated caller.
//!
//! A key reads `imk_<prefix>_<secret>`. Only a SHA-256 hash of the whole key is stored, under the
//! public prefix; lookups go by prefix and the hash is compared in constant time. A fast hash is
//! right here (unlike for passwords) because the secret is 256 random bits: there is nothing to
//! brute-force.

use imagemcp_core::ids::{KeyId, OrgId};
use imagemcp_core::table::{Condition, Item, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde_json::{Map, json};
use sha2::{Digest, Sha256};

use crate::Ports;

/// The organisation every key belongs to until accounts exist.
pub const DEFAULT_ORG: &str = "org_default";

/// Who is calling: resolved from credentials at the edge, passed to every service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub key_id: KeyId,
}

impl Caller {
    /// A stable, non-reversible end-user id for the model provider's abuse detection.
    pub fn safety_identifier(&self) -> String {
        hex::encode(&Sha256::digest(format!("{}:{}", self.org, self.key_id))[..16])
    }
}

/// A newly created key: the only time the secret exists outside the caller's hands.
pub struct NewKey {
    pub id: KeyId,
    /// The full key. Shown once, never stored.
    pub secret: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

pub struct ApiKeys<'a> {
    ports: &'a Ports,
}

fn key_item_key(prefix: &str) -> Key {
    Key::new(format!("APIKEY#{prefix}"), "KEY")
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
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

    /// Creates a key for `org`. The prefix is unique by a conditional write.
    pub async fn create(&self, org: &OrgId, label: &str) -> Result<NewKey> {
        let mut raw = [0u8; 40];
        self.ports.random.fill(&mut raw);
        let prefix = hex::encode(&raw[..6]);
        let secret = format!("imk_{prefix}_{}", hex::encode(&raw[6..]));
        let id = KeyId::generate(&*self.ports.ids);
        let mut attrs = Map::new();
        attrs.insert("key_id".into(), json!(id));
        attrs.insert("org".into(), json!(org));
        attrs.insert("hash".into(), json!(hash(&secret)));
        attrs.insert("label".into(), json!(label));
        attrs.insert("created_at".into(), json!(self.ports.clock.now_ms()));
        // The key and the org's "has keys" marker are written together, so first-run set-up
        // (which looks at the marker) never sees one without the other.
        self.ports
            .table
            .transact(vec![
                TransactOp::Put(
                    Item::new(key_item_key(&prefix), attrs),
                    Condition::NotExists,
                ),
                TransactOp::Put(Item::new(keys_marker(org), Map::new()), Condition::None),
            ])
            .await?;
        tracing::info!(key_id = %id, %org, "api key created");
        Ok(NewKey { id, secret })
    }

    /// The caller a presented key stands for. Every failure reads the same to the client.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller> {
        let denied = || Error::Unauthenticated("invalid API key".into());
        let prefix = presented
            .strip_prefix("imk_")
            .and_then(|rest| rest.split_once('_'))
            .map(|(prefix, _)| prefix)
            .filter(|p| p.len() == 12 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(denied)?;
        let item = self
            .ports
            .table
            .get(&key_item_key(prefix))
            .await?
            .ok_or_else(denied)?;
        let stored = item.str("hash").ok_or_else(denied)?;
        if !constant_time_eq(stored, &hash(presented)) {
            return Err(denied());
        }
        let org = item
            .str("org")
            .and_then(|s| OrgId::parse(s).ok())
            .ok_or_else(denied)?;
        let key_id = item
            .str("key_id")
            .and_then(|s| KeyId::parse(s).ok())
            .ok_or_else(denied)?;
        Ok(Caller { org, key_id })
    }

    /// Whether any key exists for `org` (the local binary creates one on first run).
    pub async fn any_exists(&self, org: &OrgId) -> Result<bool> {
        Ok(self.ports.table.get(&keys_marker(org)).await?.is_some())
    }
}

fn keys_marker(org: &OrgId) -> Key {
    Key::new(format!("ORG#{org}"), "KEYS")
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
