//! JSON values ↔ DynamoDB attribute values, and items ↔ the core `Item`.
//!
//! The mapping is exact both ways: strings are `S`, booleans `BOOL`, null `NULL`, arrays `L`,
//! objects `M`, and numbers `N` written as serde_json prints them (the shortest text that parses
//! back to the same `f64`, or the integer's digits) and parsed back by serde_json, so an `i64` or
//! an `f64` reads back bit for bit. DynamoDB may normalise a number's text (`1.50` → `1.5`), never
//! its value; only an integral float (`1.0`) comes back as an integer, which JSON does not tell
//! apart anyway.
//!
//! Attribute names are the JSON keys, except that a top-level key equal to a name the table
//! reserves (`pk`, `sk`, `expires_at`) or starting with `~` is stored with one more `~` in front:
//! any JSON object round-trips, and nothing an item holds can overwrite its keys or TTL.

use std::borrow::Cow;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use imagemcp_core::table::{Item, Key};
use imagemcp_core::{Error, Result};
use serde_json::{Map, Number, Value};

use crate::{EXPIRES_AT, PK, SK};

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

/// The attribute value of a JSON value.
pub(crate) fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

/// The JSON value of an attribute value; sets and binaries are not written by this adapter, so
/// meeting one means the table holds something foreign.
pub(crate) fn from_attr(attr: &AttributeValue) -> Result<Value> {
    Ok(match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(from_attr).collect::<Result<_>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
                .collect::<Result<_>>()?,
        ),
        _ => {
            return Err(Error::internal(
                "a stored attribute has a type this adapter never writes",
            ));
        }
    })
}

/// A DynamoDB number as a JSON number (integers stay integers when they fit 64 bits).
pub(crate) fn number(text: &str) -> Result<Number> {
    serde_json::from_str::<Number>(text)
        .map_err(|_| Error::internal("a stored number is not a valid JSON number"))
}

/// A DynamoDB number as an `i64`, for counters and TTLs.
pub(crate) fn int(attr: &AttributeValue) -> Result<i64> {
    match attr {
        AttributeValue::N(n) => number(n)?
            .as_i64()
            .ok_or_else(|| Error::internal("a stored counter is not a 64-bit integer")),
        _ => Err(Error::internal("a stored counter is not a number")),
    }
}

/// The key attributes of `key`.
pub(crate) fn key_attrs(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The DynamoDB item of an `Item`.
pub(crate) fn to_item(item: &Item) -> HashMap<String, AttributeValue> {
    let mut out = key_attrs(&item.key);
    for (name, value) in &item.attrs {
        out.insert(stored_name(name).into_owned(), to_attr(value));
    }
    if let Some(at) = item.expires_at {
        out.insert(EXPIRES_AT.to_owned(), AttributeValue::N(at.to_string()));
    }
    out
}

/// The `Item` of a DynamoDB item.
pub(crate) fn from_item(mut raw: HashMap<String, AttributeValue>) -> Result<Item> {
    let mut take_s = |name: &str| match raw.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(Error::internal(format!(
            "a stored item has no string `{name}`"
        ))),
    };
    let key = Key::new(take_s(PK)?, take_s(SK)?);
    let expires_at = raw.remove(EXPIRES_AT).as_ref().map(int).transpose()?;
    let attrs = raw
        .iter()
        .map(|(k, v)| Ok((user_name(k).to_owned(), from_attr(v)?)))
        .collect::<Result<Map<String, Value>>>()?;
    Ok(Item {
        key,
        attrs,
        expires_at,
    })
}

/// The `expires_at` of a raw item, if any.
pub(crate) fn expires_at(raw: &HashMap<String, AttributeValue>) -> Result<Option<i64>> {
    raw.get(EXPIRES_AT).map(int).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        for v in [
            json!(null),
            json!(true),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1.0e-7),
            json!(123.456_789_012_345_67),
            json!(-0.25),
            json!(""),
            json!("ünï 🎨 \u{0}"),
            json!([1, "two", [], {}, [null]]),
            json!({"a": {"b": [1.5, {"c": false}]}, "with space": 1}),
        ] {
            assert_eq!(from_attr(&to_attr(&v)).unwrap(), v, "{v}");
        }
    }

    #[test]
    fn normalised_number_text_keeps_its_value() {
        // What DynamoDB may send back for what we wrote.
        assert_eq!(number("1E-7").unwrap().as_f64(), Some(1.0e-7));
        assert_eq!(number("0.0000001").unwrap().as_f64(), Some(1.0e-7));
        assert_eq!(number("-17").unwrap().as_i64(), Some(-17));
    }

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
}
