//! Identifiers: the `Ids` port that mints them and the newtypes that parse them at the edge.
//!
//! Ids are safe to embed in table keys and blob keys: `[A-Za-z0-9_-]`, 1 to 64 characters, so no
//! caller-supplied id can smuggle a key separator (`#`), a path segment (`../`) or a NUL.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::Error;

/// Mints new unique ids. Time-ordered where the adapter can (UUIDv7) so that keys sort by creation.
pub trait Ids: crate::MaybeSendSync {
    /// A new id: unique, URL-safe, and sorting after every id minted earlier by this generator.
    fn new_id(&self) -> String;
}

/// Cryptographically secure random bytes, for API keys and signing secrets. Injected so that each
/// runtime uses its own source (the OS on native, `crypto.getRandomValues` in a Worker).
pub trait Random: crate::MaybeSendSync {
    fn fill(&self, buf: &mut [u8]);
}

/// Keeps UUIDv7 values strictly increasing within one generator whatever the clock does: a fresh
/// value that would not sort after the previous one becomes the previous one's successor. Each
/// runtime's `Ids` adapter mints the fresh values (its own clock and random source); the ordering
/// rule is written once, here.
#[derive(Debug, Default)]
pub struct MonotonicV7 {
    last: std::sync::Mutex<u128>,
}

impl MonotonicV7 {
    /// `fresh`, or the previous value's successor when `fresh` would not sort after it.
    pub fn next(&self, fresh: u128) -> u128 {
        // A poisoned lock only means another thread panicked while holding a plain integer.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let next = if fresh > *last {
            fresh
        } else {
            v7_successor(*last)
        };
        *last = next;
        next
    }
}

/// The next v7 UUID after `prev` with the same version and variant bits: the 62 random bits of the
/// variant-bearing half count up, carrying into the 12 random bits beside the version, and from
/// there into the timestamp.
fn v7_successor(prev: u128) -> u128 {
    const RAND_B: u128 = (1 << 62) - 1;
    const RAND_A_SHIFT: u32 = 64;
    const RAND_A: u128 = 0xfff << RAND_A_SHIFT;
    let b = prev & RAND_B;
    if b < RAND_B {
        return prev + 1;
    }
    let a = (prev & RAND_A) >> RAND_A_SHIFT;
    if a < 0xfff {
        return (prev & !RAND_B & !RAND_A) | ((a + 1) << RAND_A_SHIFT);
    }
    // Both random fields are full: move to the next millisecond, which keeps order.
    let ts = prev >> 80;
    ((ts + 1) << 80) | (prev & (0xf << 76)) | (prev & (0b11 << 62))
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parses an id given by a caller; the error names the argument `field`.
            pub fn parse_as(field: &str, s: &str) -> Result<Self, Error> {
                if valid_id(s) && s.starts_with($prefix) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(Error::invalid(field, format!("not a valid id (expected `{}…`)", $prefix)))
                }
            }

            /// Parses an id given by a caller in the argument of the usual name.
            pub fn parse(s: &str) -> Result<Self, Error> {
                Self::parse_as($field, s)
            }

            /// Makes a new id from a fresh unique suffix.
            pub fn generate(ids: &dyn Ids) -> Self {
                Self(format!("{}{}", $prefix, ids.new_id()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An image's id (`img_…`).
    ImageId, "image_id", "img_"
);
id_type!(
    /// A conversation's id (`conv_…`): a chain of refinements.
    ConversationId, "conversation_id", "conv_"
);
id_type!(
    /// An organisation's id (`org_…`): every stored key is scoped by one.
    OrgId, "org_id", "org_"
);
id_type!(
    /// A user's id (`usr_…`).
    UserId, "user_id", "usr_"
);
id_type!(
    /// A team's id (`team_…`), within an organisation.
    TeamId, "team_id", "team_"
);
id_type!(
    /// An API key's id (`key_…`).
    KeyId, "key_id", "key_"
);
id_type!(
    /// A job's id (`job_…`): long work done by the queue consumer.
    JobId, "job_id", "job_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_successor_carries_and_keeps_version_and_variant() {
        // 01890000-0000-7abc-bfff-ffffffffffff: rand_b full, so it carries into rand_a.
        let full_b = 0x0189_0000_0000_7abc_bfff_ffff_ffff_ffff_u128;
        assert_eq!(
            v7_successor(full_b),
            0x0189_0000_0000_7abd_8000_0000_0000_0000
        );
        // Both random fields full: the next millisecond, version 7 and variant kept.
        let full = 0x0189_0000_0000_7fff_bfff_ffff_ffff_ffff_u128;
        let next = v7_successor(full);
        assert_eq!(next, 0x0189_0000_0001_7000_8000_0000_0000_0000);
        assert!(next > full);
    }

    #[test]
    fn monotonic_v7_never_goes_back() {
        let order = MonotonicV7::default();
        let a = order.next(0x0189_0000_0000_7abc_8000_0000_0000_0005);
        // An older fresh value (the clock stepped back) and an equal one both sort after `a`.
        let b = order.next(0x0188_0000_0000_7abc_8000_0000_0000_0000);
        let c = order.next(b);
        assert!(a < b && b < c, "{a:x} {b:x} {c:x}");
        assert_eq!(b, a + 1);
    }

    #[test]
    fn ids_reject_key_injection() {
        for bad in [
            "",
            "img_../x",
            "img_a#b",
            "img_a\0",
            "img_a/b",
            "img_ a",
            "conv_1",
            &format!("img_{}", "a".repeat(70)),
        ] {
            assert!(ImageId::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let err = ImageId::parse("nope").unwrap_err();
        assert!(err.to_string().contains("image_id"), "{err}");
        assert_eq!(
            ImageId::parse("img_0193abc-DEF_9").unwrap().as_str(),
            "img_0193abc-DEF_9"
        );
    }
}
