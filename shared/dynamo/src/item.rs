//! The single-table item layout: core `Item`s ↔ DynamoDB items.
//!
//! An item is `pk` (S), `sk` (S), its JSON attributes as top-level attributes and `expires_at`
//! (N, Unix seconds), the table's TTL attribute. Attribute names are the JSON keys, except that a
//! top-level key equal to a name the table reserves (`pk`, `sk`, `expires_at`) or starting with `~`
//! is stored with one more `~` in front: any JSON object round-trips, and nothing an item holds can
//! overwrite its keys or TTL.

use std::borrow::Cow;

use imagemcp_core::table::{Item, Key};
use imagemcp_core::{Error, Result};
use serde_json::{Map, Value};

use crate::value::{AttributeValue, Attributes};

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The TTL attribute (Unix seconds).
pub const EXPIRES_AT: &str = "expires_at";

/// The prefix that escapes a top-level attribute name (see the module documentation).
const ESCAPE: &str = "~";

/// The DynamoDB name of the top-level JSON key `name`.
pub(crate) fn stored_name(name: &str) -> Cow<'_, str> {
    if [PK, SK, EXPIRES_AT].contains(&name) || name.starts_with(ESCAPE) {
        Cow::Owned(format!("{ESCAPE}{name}"))
    } else {
        Cow::Borrowed(name)
    }
}

/// The JSON key of the DynamoDB attribute name `stored`.
fn user_name(stored: &str) -> &str {
    stored.strip_prefix(ESCAPE).unwrap_or(stored)
}

/// The key attributes of `key`.
pub(crate) fn key_attrs(key: &Key) -> Attributes {
    Attributes::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The DynamoDB item of an `Item`.
pub(crate) fn to_item(item: &Item) -> Attributes {
    let mut out = key_attrs(&item.key);
    for (name, value) in &item.attrs {
        out.insert(
            stored_name(name).into_owned(),
            AttributeValue::from_json(value),
        );
    }
    if let Some(at) = item.expires_at {
        out.insert(EXPIRES_AT.to_owned(), AttributeValue::int(at));
    }
    out
}

/// The `Item` of a DynamoDB item.
pub(crate) fn from_item(mut raw: Attributes) -> Result<Item> {
    let mut take_s = |name: &str| match raw.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(Error::internal(format!(
            "a stored item has no string `{name}`"
        ))),
    };
    let key = Key::new(take_s(PK)?, take_s(SK)?);
    let expires_at = raw
        .remove(EXPIRES_AT)
        .as_ref()
        .map(AttributeValue::as_int)
        .transpose()?;
    let attrs = raw
        .iter()
        .map(|(k, v)| Ok((user_name(k).to_owned(), v.to_json()?)))
        .collect::<Result<Map<String, Value>>>()?;
    Ok(Item {
        key,
        attrs,
        expires_at,
    })
}

/// The `expires_at` of a raw item, if any.
pub(crate) fn expires_at(raw: &Attributes) -> Result<Option<i64>> {
    raw.get(EXPIRES_AT).map(AttributeValue::as_int).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reserved_names_are_escaped_and_round_trip() {
        let attrs = json!({"pk": 1, "sk": "x", "expires_at": 2, "~a": 3, "a~": 4, "gsi1pk": "G"});
        let Value::Object(attrs) = attrs else {
            unreachable!()
        };
        let item = Item::new(Key::new("p", "s"), attrs).with_ttl(9);
        let raw = to_item(&item);
        assert_eq!(
            raw["pk"],
            AttributeValue::S("p".into()),
            "the key is never overwritten"
        );
        assert_eq!(raw["expires_at"], AttributeValue::N("9".into()));
        assert_eq!(raw["~pk"], AttributeValue::N("1".into()));
        assert_eq!(raw["~~a"], AttributeValue::N("3".into()));
        assert_eq!(raw["a~"], AttributeValue::N("4".into()));
        assert_eq!(
            raw["gsi1pk"],
            AttributeValue::S("G".into()),
            "index keys stay top-level"
        );
        assert_eq!(from_item(raw).unwrap(), item);
    }

    #[test]
    fn items_round_trip_with_their_ttl() {
        let mut attrs = Map::new();
        attrs.insert("n".into(), json!(3));
        let item = Item::new(Key::new("ORG#a", "IMG#1"), attrs).with_ttl(1_800_000_060);
        assert_eq!(from_item(to_item(&item)).unwrap(), item);
    }

    #[test]
    fn an_item_without_its_keys_is_refused() {
        let raw = Attributes::from([("pk".to_owned(), AttributeValue::S("p".into()))]);
        assert!(matches!(from_item(raw), Err(Error::Internal(_))));
    }
}
