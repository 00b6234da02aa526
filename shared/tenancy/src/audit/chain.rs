//! The audit log's hash chain: an entry's canonical bytes, its hash, and the walk that finds the
//! first broken link.
//!
//! Entry `n` stores `prev` = the hash of entry `n-1` (64 zeros for the first) and `hash` = SHA-256 of
//! its own canonical bytes: the JSON of every stored attribute except `hash`, object keys sorted,
//! no whitespace. Changing, removing or reordering any entry therefore breaks the link at that
//! entry; cutting entries off the end is caught by the chain head, which holds the last sequence
//! number and hash.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit entry. Nothing in it names a person in clear: the actor and target are
/// pseudonyms (keyed hashes), and their ids are sealed with their own data keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: i64,
    /// What happened, e.g. `image.generate`, `member.role_change`, `auth.login`.
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who acted: `sub_…` (a user's pseudonym in this chain), `email_…` (a login attempt for an
    /// address that has no account, by its lookup hash) or `system`.
    pub actor: String,
    /// The actor's user id, sealed with the user's own data key (gone when the user is erased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_sealed: Option<String>,
    /// What was acted on, when it is not a person: an image, key, team or export id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The person acted on (a member whose role changed, …), as a pseudonym.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user_sealed: Option<String>,
    /// Non-personal detail (model, counts, roles, reasons).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    pub prev: String,
    pub hash: String,
}

/// Writes `value` as canonical JSON: object keys sorted, no whitespace.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The canonical bytes of an entry's attributes (everything but `hash`).
pub fn canonical(attrs: &Map<String, Value>) -> String {
    let mut without = attrs.clone();
    without.remove("hash");
    let mut out = String::new();
    write_canonical(&Value::Object(without), &mut out);
    out
}

/// The hash of an entry's attributes.
pub fn hash_of(attrs: &Map<String, Value>) -> String {
    hex::encode(Sha256::digest(canonical(attrs).as_bytes()))
}

/// The first broken link of a chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Break {
    /// The sequence number where the chain stops holding.
    pub seq: u64,
    pub reason: String,
}

/// Walks entries (as stored, in sort-key order) and returns the first broken link. `slot` is the
/// sequence number the entry's sort key says it has.
pub struct Walker {
    expected_seq: u64,
    prev_hash: String,
}

impl Default for Walker {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS.to_owned(),
        }
    }
}

impl Walker {
    pub fn step(&mut self, slot: u64, attrs: &Map<String, Value>) -> Result<(), Break> {
        let broken = |reason: String| Break {
            seq: self.expected_seq,
            reason,
        };
        if slot != self.expected_seq {
            return Err(broken(format!(
                "entry {} is missing (the next stored entry is {slot})",
                self.expected_seq
            )));
        }
        let seq = attrs.get("seq").and_then(Value::as_u64);
        if seq != Some(slot) {
            return Err(broken(format!(
                "entry {slot} claims sequence number {} (moved or reordered)",
                seq.map_or("none".into(), |s| s.to_string())
            )));
        }
        if attrs.get("prev").and_then(Value::as_str) != Some(self.prev_hash.as_str()) {
            return Err(broken(format!(
                "entry {slot} does not link to the hash of entry {}",
                slot - 1
            )));
        }
        let hash = hash_of(attrs);
        if attrs.get("hash").and_then(Value::as_str) != Some(hash.as_str()) {
            return Err(broken(format!(
                "entry {slot} was altered (its content does not match its hash)"
            )));
        }
        self.expected_seq += 1;
        self.prev_hash = hash;
        Ok(())
    }

    /// Checks the end of the chain against its head (catches entries cut off the end).
    pub fn finish(&self, head: Option<(u64, &str)>) -> Result<u64, Break> {
        let last = self.expected_seq - 1;
        match head {
            None if last == 0 => Ok(0),
            None => Err(Break {
                seq: 1,
                reason: "the chain head is missing".into(),
            }),
            Some((seq, hash)) if seq == last && hash == self.prev_hash => Ok(last),
            Some((seq, _)) if seq > last => Err(Break {
                seq: last + 1,
                reason: format!("entries {} to {seq} are missing", last + 1),
            }),
            Some((seq, _)) => Err(Break {
                seq: seq.min(last),
                reason: "the chain head does not match the last entry".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": "x"}], "x": null}, "hash": "h"});
        assert_eq!(
            canonical(a.as_object().unwrap()),
            r#"{"a":{"x":null,"y":[1,{"c":"x","d":2}]},"b":1}"#
        );
    }
}
