//! The key-encryption keys (KEKs) of a deployment: the current one wraps new data keys, older ones
//! only unwrap data keys wrapped before a rotation. Each has an id, stored beside every wrapped key,
//! so decryption finds the right KEK after any number of rotations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine;
use imagemcp_core::bounded::Bounded;
use imagemcp_core::{Error, Result};

/// A 256-bit AES key.
pub(crate) type KeyBytes = [u8; 32];

/// The most unwrapped data keys a process keeps, and the bytes they may weigh (owner ids and keys).
pub(crate) const DATA_KEY_CACHE: (usize, usize) = (10_000, 2 << 20);

/// The KEKs plus a per-process cache of unwrapped data keys (a data key never changes, only its
/// wrapping does, so a cached one stays right across KEK rotations), bounded by
/// [`DATA_KEY_CACHE`], least recently used out first.
pub struct Keyring {
    current: String,
    keks: BTreeMap<String, KeyBytes>,
    pub(crate) cache: Mutex<Bounded<String, KeyBytes>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keks", &self.keks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn valid_kek_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Decodes a KEK given as base64 of 32 bytes (the `IMAGEMCP_KEK` format). The error never echoes
/// the value.
pub fn parse_kek(field: &str, base64_key: &str) -> Result<KeyBytes> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_key.trim())
        .map_err(|_| Error::invalid(field, "is not valid base64"))?;
    bytes
        .try_into()
        .map_err(|_| Error::invalid(field, "must be base64 of exactly 32 bytes"))
}

impl Keyring {
    /// A keyring whose current KEK is `current`; `previous` are older KEKs kept to unwrap data keys
    /// that have not been re-wrapped yet.
    pub fn new(current: (&str, KeyBytes), previous: Vec<(String, KeyBytes)>) -> Result<Self> {
        let mut keks = BTreeMap::new();
        for (id, key) in previous {
            if !valid_kek_id(&id) {
                return Err(Error::invalid("kek id", "use 1 to 64 of [A-Za-z0-9._-]"));
            }
            keks.insert(id, key);
        }
        if !valid_kek_id(current.0) {
            return Err(Error::invalid("kek id", "use 1 to 64 of [A-Za-z0-9._-]"));
        }
        keks.insert(current.0.to_owned(), current.1);
        Ok(Self {
            current: current.0.to_owned(),
            keks,
            cache: Mutex::new(Bounded::new(DATA_KEY_CACHE.0, DATA_KEY_CACHE.1)),
        })
    }

    /// Parses the keyring from configuration: the current KEK id and base64 key, plus older KEKs
    /// as `id:base64` entries.
    /// Errors name the variable at fault (`IMAGEMCP_KEK`, `IMAGEMCP_KEK_ID`,
    /// `IMAGEMCP_KEK_PREVIOUS`; see `crate::settings`).
    pub fn from_config(current_id: &str, current_b64: &str, previous: &[String]) -> Result<Self> {
        const IDS: &str = "ids use 1 to 64 of [A-Za-z0-9._-]";
        if !valid_kek_id(current_id) {
            return Err(Error::invalid("IMAGEMCP_KEK_ID", IDS));
        }
        let current = parse_kek("IMAGEMCP_KEK", current_b64)?;
        let mut older = Vec::new();
        for entry in previous.iter().filter(|e| !e.trim().is_empty()) {
            let (id, key) = entry.trim().split_once(':').ok_or_else(|| {
                Error::invalid("IMAGEMCP_KEK_PREVIOUS", "entries read `id:base64`")
            })?;
            if !valid_kek_id(id) {
                return Err(Error::invalid("IMAGEMCP_KEK_PREVIOUS", IDS));
            }
            older.push((id.to_owned(), parse_kek("IMAGEMCP_KEK_PREVIOUS", key)?));
        }
        Self::new((current_id, current), older)
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    pub(crate) fn current(&self) -> (&str, &KeyBytes) {
        // The constructor always inserts the current KEK.
        (&self.current, &self.keks[&self.current])
    }

    /// Whether the ring holds the KEK `id` (the current one or a previous one still accepted).
    pub fn knows(&self, id: &str) -> bool {
        self.kek(id).is_some()
    }

    pub(crate) fn kek(&self, id: &str) -> Option<&KeyBytes> {
        self.keks.get(id)
    }

    pub(crate) fn cached(&self, owner: &str) -> Option<KeyBytes> {
        self.cache.lock().ok()?.get(owner).copied()
    }

    pub(crate) fn remember(&self, owner: &str, key: KeyBytes) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(owner.to_owned(), key, owner.len() + key.len());
        }
    }

    pub(crate) fn forget(&self, owner: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_errors_never_echo_the_key() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let ring = Keyring::from_config("k2", &b64, &[format!("k1:{b64}")]).unwrap();
        assert_eq!(ring.current_id(), "k2");
        assert!(ring.kek("k1").is_some());
        let err = Keyring::from_config("k1", "c2VjcmV0LXZhbHVl", &[])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
        assert!(Keyring::from_config("bad id", &b64, &[]).is_err());
        assert!(!format!("{ring:?}").contains(&b64));
    }

    #[test]
    fn the_data_key_cache_keeps_the_recently_used_within_its_bounds() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let ring = Keyring::from_config("k1", &b64, &[]).unwrap();
        let owner = |i: usize| format!("ORG#org_{i:032}");
        ring.remember(&owner(0), [1; 32]);
        for i in 1..=DATA_KEY_CACHE.0 + 10 {
            // The first owner stays in use, so it is never the one evicted.
            assert!(ring.cached(&owner(0)).is_some());
            ring.remember(&owner(i), [2; 32]);
        }
        let cache = ring.cache.lock().unwrap();
        assert_eq!(cache.len(), DATA_KEY_CACHE.0);
        assert!(cache.bytes() <= DATA_KEY_CACHE.1);
        assert!(cache.peek(&owner(0)).is_some() && cache.peek(&owner(1)).is_none());
    }
}
