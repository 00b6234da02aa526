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
