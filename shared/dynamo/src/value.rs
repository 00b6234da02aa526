//! DynamoDB attribute values, SDK-free, and their exact mapping to and from JSON values.
//!
//! [`AttributeValue`] serializes exactly as DynamoDB's JSON wire format (`{"S": "x"}`, `{"N": "1"}`,
//! `{"BOOL": true}`, `{"NULL": true}`, `{"L": [...]}`, `{"M": {...}}`, `{"B": "<base64>"}`), so a
//! transport speaking that protocol sends it as it is, and one on an SDK converts it variant by
//! variant.
//!
//! The JSON mapping is exact both ways: strings are `S`, booleans `BOOL`, null `NULL`, arrays `L`,
//! objects `M`, and numbers `N` written as serde_json prints them (the shortest text that parses
//! back to the same `f64`, or the integer's digits) and parsed back by serde_json, so an `i64` or
//! an `f64` reads back bit for bit. DynamoDB may normalise a number's text (`1.50` → `1.5`), never
//! its value; only an integral float (`1.0`) comes back as an integer, which JSON does not tell
//! apart anyway. Binaries (`B`) hold cache entries and have no JSON form.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};

/// The attributes of an item, a key or an expression's values, by name.
pub type Attributes = HashMap<String, AttributeValue>;

/// One DynamoDB attribute value of the types this crate writes (sets are never written, so meeting
/// one means the table holds something foreign).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttributeValue {
    S(String),
    /// A number in its decimal text, as DynamoDB keeps it.
    N(String),
    #[serde(rename = "BOOL")]
    Bool(bool),
    /// Always `true` on the wire.
    #[serde(rename = "NULL")]
    Null(bool),
    L(Vec<AttributeValue>),
    M(Attributes),
    /// Raw bytes, base64 on the wire.
    B(#[serde(with = "base64_bytes")] Vec<u8>),
}

impl AttributeValue {
    /// The attribute value of a JSON value.
    pub fn from_json(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null(true),
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::N(n.to_string()),
            Value::String(s) => Self::S(s.clone()),
            Value::Array(items) => Self::L(items.iter().map(Self::from_json).collect()),
            Value::Object(map) => Self::M(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The JSON value of this attribute value; a binary has none.
    pub fn to_json(&self) -> Result<Value> {
        Ok(match self {
            Self::Null(_) => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::N(n) => Value::Number(number(n)?),
            Self::S(s) => Value::String(s.clone()),
            Self::L(items) => Value::Array(items.iter().map(Self::to_json).collect::<Result<_>>()?),
            Self::M(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_json()?)))
                    .collect::<Result<_>>()?,
            ),
            Self::B(_) => return Err(foreign()),
        })
    }

    /// The number `n`.
    pub fn int(n: i64) -> Self {
        Self::N(n.to_string())
    }

    /// This value as an `i64`, for counters and TTLs.
    pub fn as_int(&self) -> Result<i64> {
        match self {
            Self::N(n) => number(n)?
                .as_i64()
                .ok_or_else(|| Error::internal("a stored counter is not a 64-bit integer")),
            _ => Err(Error::internal("a stored counter is not a number")),
        }
    }
}

/// The error for a stored attribute of a type this crate never writes.
pub fn foreign() -> Error {
    Error::internal("a stored attribute has a type this adapter never writes")
}

/// A DynamoDB number as a JSON number (integers stay integers when they fit 64 bits).
fn number(text: &str) -> Result<Number> {
    serde_json::from_str::<Number>(text)
        .map_err(|_| Error::internal("a stored number is not a valid JSON number"))
}

/// `B` values as base64 text, DynamoDB's JSON encoding of binaries.
mod base64_bytes {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        bytes: &[u8],
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
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
            assert_eq!(AttributeValue::from_json(&v).to_json().unwrap(), v, "{v}");
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
    fn values_serialize_as_dynamodb_json() {
        let v = AttributeValue::from_json(&json!({"a": [null, true, 1.5, "x"]}));
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"M": {"a": {"L": [{"NULL": true}, {"BOOL": true}, {"N": "1.5"}, {"S": "x"}]}}})
        );
        let b = AttributeValue::B(vec![0, 1, 254, 255]);
        assert_eq!(serde_json::to_value(&b).unwrap(), json!({"B": "AAH+/w=="}));
        for wire in [
            json!({"M": {"a": {"L": [{"NULL": true}, {"BOOL": false}, {"N": "-2"}]}}}),
            json!({"B": "AAH+/w=="}),
        ] {
            let parsed: AttributeValue = serde_json::from_value(wire.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
        }
    }

    #[test]
    fn foreign_types_are_refused() {
        // A string set is valid DynamoDB, but never written here.
        assert!(serde_json::from_value::<AttributeValue>(json!({"SS": ["a"]})).is_err());
        assert!(matches!(
            AttributeValue::B(vec![1]).to_json(),
            Err(Error::Internal(_))
        ));
        assert!(matches!(
            AttributeValue::S("1".into()).as_int(),
            Err(Error::Internal(_))
        ));
    }
}
