//! Encryption at rest: AES-256-GCM envelope encryption.
//!
//! Each *owner* (an organisation's partition `ORG#<org>`, or a user's `USER#<user>`) has one random
//! 256-bit data key (DEK), stored at `<owner>` / `DEK` wrapped by the deployment's key-encryption key
//! (KEK, from configuration, see [`Keyring`]) together with the KEK's id. Conversation content and
//! personal data are sealed with the owner's DEK: prompts and revised prompts of images, titles and
//! prompts of conversations, names of organisations (in the org's DEK); names and emails of users
//! (in the user's own DEK, so that deleting a user destroys the key and with it every copy of their
//! personal data that must outlive them, e.g. inside audit entries: crypto-shredding).
//!
//! A sealed value reads `enc1:<base64url(nonce ‖ ciphertext ‖ tag)>`. Its associated data binds it
//! to its owner and to the record and field it belongs to, so a ciphertext copied into another
//! record, field or organisation fails to decrypt.
//!
//! KEK rotation: configure a new current KEK and keep the old one among the previous KEKs. Data
//! keys wrapped by an old KEK are re-wrapped lazily when next unwrapped, or all at once by
//! [`Crypto::rewrap_all`] (the `imagemcp kek rotate` command); once none is left, the old KEK can
//! be dropped from the configuration. Every DEK is listed in the partition `DEKINDEX` for that.

mod keyring;

pub use keyring::{Keyring, parse_kek};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imagemcp_core::table::{Condition, Item, Key, Query, TransactOp};
use imagemcp_core::{Error, Result};
use serde_json::{Value, json};

use crate::Ports;
use keyring::KeyBytes;

/// The marker of a sealed value.
const SEALED_PREFIX: &str = "enc1:";
const NONCE_LEN: usize = 12;

fn dek_key(owner: &str) -> Key {
    Key::new(owner, "DEK")
}

fn dek_index_key(owner: &str) -> Key {
    Key::new("DEKINDEX", owner)
}

fn wrap_aad(owner: &str) -> String {
    format!("imagemcp-dek:v1|{owner}")
}

/// The associated data of a field of a stored record.
pub fn field_aad(key: &Key, field: &str) -> String {
    format!("imagemcp:v1|{}|{}|{field}", key.pk, key.sk)
}

fn seal_with(key: &KeyBytes, nonce: [u8; NONCE_LEN], aad: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let ct = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| Error::internal("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(key: &KeyBytes, aad: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::internal("a sealed value is truncated"));
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Error::internal("a sealed value is truncated"))?;
    Aes256Gcm::new(&(*key).into())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            Error::internal("a sealed value does not decrypt (wrong key, record or tampering)")
        })
}

/// Whether a stored string is a sealed value.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// The owner (DEK partition) of an organisation's data.
pub fn org_owner(org: &imagemcp_core::ids::OrgId) -> String {
    format!("ORG#{org}")
}

/// The owner (DEK partition) of a user's personal data.
pub fn user_owner(user: &imagemcp_core::ids::UserId) -> String {
    format!("USER#{user}")
}

/// An HMAC-SHA256 keyed for one purpose (`purpose` names it, e.g. `b"imagemcp/reveal-link/v1"`),
/// under a key derived from the current KEK: a KEK is never used directly, nor one derived key for
/// two purposes. Tokens made with it stop verifying when the KEK rotates, so it suits short-lived
/// tokens only.
pub fn purpose_mac(ports: &Ports, purpose: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let (_, kek) = ports.keyring.current();
    let mut derive =
        <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(kek).expect("HMAC takes any key length");
    derive.update(purpose);
    let key = derive.finalize().into_bytes();
    <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length")
}

/// Seals and opens values with the data keys of their owners.
pub struct Crypto<'a> {
    ports: &'a Ports,
}

impl<'a> Crypto<'a> {
    pub fn new(ports: &'a Ports) -> Self {
        Self { ports }
    }

    fn keyring(&self) -> &Keyring {
        &self.ports.keyring
    }

    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        self.ports.random.fill(&mut n);
        n
    }

    fn wrap(&self, owner: &str, dek: &KeyBytes) -> Result<Item> {
        let (kek_id, kek) = self.keyring().current();
        let wrapped = seal_with(kek, self.nonce(), &wrap_aad(owner), dek)?;
        let mut item = Item::new(dek_key(owner), Default::default());
        item.attrs.insert("kek_id".into(), json!(kek_id));
        item.attrs
            .insert("wrapped".into(), json!(URL_SAFE_NO_PAD.encode(wrapped)));
        item.attrs
            .insert("created_at_ms".into(), json!(self.ports.clock.now_ms()));
        Ok(item)
    }

    fn unwrap(&self, owner: &str, item: &Item) -> Result<KeyBytes> {
        let kek_id = item.str("kek_id").unwrap_or_default();
        let kek = self.keyring().kek(kek_id).ok_or_else(|| {
            Error::internal(format!(
                "the data key of {owner} is wrapped by KEK `{kek_id}`, which is not configured"
            ))
        })?;
        let wrapped = URL_SAFE_NO_PAD
            .decode(item.str("wrapped").unwrap_or_default())
            .map_err(|_| Error::internal("a wrapped data key is corrupt"))?;
        open_with(kek, &wrap_aad(owner), &wrapped)?
            .try_into()
            .map_err(|_| Error::internal("a wrapped data key has the wrong length"))
    }

    /// The owner's data key, made on first use when `create` is set.
    async fn data_key(&self, owner: &str, create: bool) -> Result<Option<KeyBytes>> {
        if let Some(key) = self.keyring().cached(owner) {
            return Ok(Some(key));
        }
        let table = &self.ports.table;
        if let Some(item) = table.get(&dek_key(owner)).await? {
            let key = self.unwrap(owner, &item)?;
            if item.str("kek_id") != Some(self.keyring().current_id()) {
                self.rewrap(owner, &item, &key).await;
            }
            self.keyring().remember(owner, key);
            return Ok(Some(key));
        }
        if !create {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        self.ports.random.fill(&mut key);
        let item = self.wrap(owner, &key)?;
        let index = Item::new(dek_index_key(owner), Default::default());
        match table
            .transact(vec![
                TransactOp::Put(item, Condition::NotExists),
                TransactOp::Put(index, Condition::None),
            ])
            .await
        {
            Ok(()) => {
                self.keyring().remember(owner, key);
                Ok(Some(key))
            }
            // Another request made the key first: use theirs.
            Err(Error::Conflict(_)) => {
                let item = table
                    .get(&dek_key(owner))
                    .await?
                    .ok_or_else(|| Error::internal("data key vanished while being made"))?;
                let key = self.unwrap(owner, &item)?;
                self.keyring().remember(owner, key);
                Ok(Some(key))
            }
            Err(e) => Err(e),
        }
    }

    /// Re-wraps a data key with the current KEK. Best effort: conditional on the item not having
    /// changed, and a failure only leaves the key wrapped by its (still configured) old KEK.
    async fn rewrap(&self, owner: &str, old: &Item, key: &KeyBytes) {
        let Ok(mut item) = self.wrap(owner, key) else {
            return;
        };
        if let Some(created) = old.attrs.get("created_at_ms") {
            item.attrs.insert("created_at_ms".into(), created.clone());
        }
        let cond = Condition::AttrEquals(
            "wrapped".into(),
            old.attrs.get("wrapped").cloned().unwrap_or(Value::Null),
        );
        match self.ports.table.put(item, cond).await {
            Ok(()) => tracing::info!(
                owner,
                kek = self.keyring().current_id(),
                "data key re-wrapped"
            ),
            Err(e) => tracing::debug!(owner, error = %e, "data key not re-wrapped"),
        }
    }

    /// Re-wraps every data key still wrapped by an older KEK; returns how many were re-wrapped.
    pub async fn rewrap_all(&self) -> Result<usize> {
        let mut query = Query::new("DEKINDEX", "", imagemcp_core::table::MAX_PAGE);
        let mut count = 0;
        loop {
            let page = self.ports.table.query(&query).await?;
            for entry in &page.items {
                let owner = entry.key.sk.as_str();
                let Some(item) = self.ports.table.get(&dek_key(owner)).await? else {
                    continue;
                };
                if item.str("kek_id") == Some(self.keyring().current_id()) {
                    continue;
                }
                let key = self.unwrap(owner, &item)?;
                self.rewrap(owner, &item, &key).await;
                count += 1;
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        Ok(count)
    }

    /// Destroys an owner's data key: everything sealed with it becomes unreadable for good.
    pub async fn destroy(&self, owner: &str) -> Result<()> {
        self.ports
            .table
            .transact(vec![
                TransactOp::Delete(dek_key(owner), Condition::None),
                TransactOp::Delete(dek_index_key(owner), Condition::None),
            ])
            .await?;
        self.keyring().forget(owner);
        Ok(())
    }

    /// Seals `plain` with the owner's data key, bound to `aad`.
    pub async fn seal(&self, owner: &str, aad: &str, plain: &str) -> Result<String> {
        let key = self
            .data_key(owner, true)
            .await?
            .ok_or_else(|| Error::internal("no data key"))?;
        let sealed = seal_with(&key, self.nonce(), aad, plain.as_bytes())?;
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// Opens a sealed value; `None` when the owner's key was destroyed (crypto-shredded data).
    pub async fn try_open(&self, owner: &str, aad: &str, sealed: &str) -> Result<Option<String>> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| Error::internal("a stored value that must be sealed is not"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Error::internal("a sealed value is corrupt"))?;
        let Some(key) = self.data_key(owner, false).await? else {
            return Ok(None);
        };
        let plain = open_with(&key, aad, &bytes)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| Error::internal("a sealed value is not text"))
    }

    /// Opens a sealed value whose key must exist.
    pub async fn open(&self, owner: &str, aad: &str, sealed: &str) -> Result<String> {
        self.try_open(owner, aad, sealed)
            .await?
            .ok_or_else(|| Error::internal(format!("the data key of {owner} is missing")))
    }

    /// Seals the named string attributes of an item (absent or null ones are left alone), with the
    /// data key of the item's partition and the item's key and field as associated data.
    pub async fn seal_item(&self, item: &mut Item, fields: &[&str]) -> Result<()> {
        let owner = item.key.pk.clone();
        self.seal_item_as(&owner, item, fields).await
    }

    /// [`Crypto::seal_item`] with the data key of another owner (a user's fields stored elsewhere).
    pub async fn seal_item_as(&self, owner: &str, item: &mut Item, fields: &[&str]) -> Result<()> {
        for field in fields {
            if let Some(Value::String(plain)) = item.attrs.get(*field) {
                let sealed = self
                    .seal(owner, &field_aad(&item.key, field), plain)
                    .await?;
                item.attrs
                    .insert((*field).to_owned(), Value::String(sealed));
            }
        }
        Ok(())
    }

    /// Opens what [`Crypto::seal_item`] sealed.
    pub async fn open_item(&self, item: &mut Item, fields: &[&str]) -> Result<()> {
        let owner = item.key.pk.clone();
        self.open_item_as(&owner, item, fields).await
    }

    /// Opens what [`Crypto::seal_item_as`] sealed.
    pub async fn open_item_as(&self, owner: &str, item: &mut Item, fields: &[&str]) -> Result<()> {
        for field in fields {
            if let Some(Value::String(sealed)) = item.attrs.get(*field) {
                let plain = self
                    .open(owner, &field_aad(&item.key, field), sealed)
                    .await?;
                item.attrs.insert((*field).to_owned(), Value::String(plain));
            }
        }
        Ok(())
    }

    /// A keyed hash of `value` under the owner's data key: a stable pseudonym that cannot be
    /// reversed or recomputed without the key (and never again once the key is destroyed).
    pub async fn pseudonym(&self, owner: &str, value: &str) -> Result<String> {
        use hmac::{Hmac, Mac};
        let key = self
            .data_key(owner, true)
            .await?
            .ok_or_else(|| Error::internal("no data key"))?;
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key)
            .map_err(|_| Error::internal("bad hmac key"))?;
        mac.update(b"imagemcp-pseudonym:v1|");
        mac.update(value.as_bytes());
        Ok(format!(
            "sub_{}",
            hex::encode(&mac.finalize().into_bytes()[..16])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_binds_the_associated_data() {
        let key = [3u8; 32];
        let sealed = seal_with(&key, [1; 12], "a", b"secret prompt").unwrap();
        assert_eq!(open_with(&key, "a", &sealed).unwrap(), b"secret prompt");
        assert!(open_with(&key, "b", &sealed).is_err());
        assert!(open_with(&[4u8; 32], "a", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(open_with(&key, "a", &flipped).is_err());
        assert!(open_with(&key, "a", &sealed[..10]).is_err());
    }
}
