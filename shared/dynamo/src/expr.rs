//! Condition and update expressions: the core `Condition`s, evaluated at "now" so an expired item
//! counts as absent, and the writes of an add, which depend on the state of its item.

use imagemcp_core::Error;
use imagemcp_core::Result;
use imagemcp_core::table::{Add, Condition, Key};

use crate::item::{EXPIRES_AT, PK, key_attrs, stored_name};
use crate::transport::Placeholders;
use crate::value::{AttributeValue, Attributes};

/// An expression with exactly the placeholders it uses (DynamoDB rejects unused ones).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Expr {
    pub(crate) text: String,
    pub(crate) placeholders: Placeholders,
}

impl Expr {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            ..Self::default()
        }
    }

    pub(crate) fn name(&mut self, placeholder: &str, name: &str) -> &mut Self {
        self.placeholders
            .names
            .insert(placeholder.to_owned(), name.to_owned());
        self
    }

    pub(crate) fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.placeholders
            .values
            .insert(placeholder.to_owned(), value);
        self
    }
}

/// The text and placeholders of an optional condition, as a request carries them.
pub(crate) fn split(e: Option<Expr>) -> (Option<String>, Placeholders) {
    match e {
        Some(e) => (Some(e.text), e.placeholders),
        None => (None, Placeholders::default()),
    }
}

/// The items a query filters out: those expired at `:now`.
pub(crate) const LIVE_FILTER: &str = "attribute_not_exists(#exp) OR #exp > :now";

/// `cond` as a condition expression evaluated at `now` (`None` for `Condition::None`).
pub(crate) fn condition_expr(cond: &Condition, now: i64) -> Option<Expr> {
    let mut e = match cond {
        Condition::None => return None,
        Condition::NotExists => {
            let mut e = Expr::new("attribute_not_exists(#pk) OR #exp <= :now");
            e.name("#pk", PK);
            e
        }
        Condition::Exists => {
            let mut e =
                Expr::new("attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)");
            e.name("#pk", PK);
            e
        }
        Condition::AttrEquals(attr, value) => {
            let mut e = Expr::new("#c = :c AND (attribute_not_exists(#exp) OR #exp > :now)");
            e.name("#c", &stored_name(attr))
                .value(":c", AttributeValue::from_json(value));
            e
        }
    };
    e.name("#exp", EXPIRES_AT)
        .value(":now", AttributeValue::int(now));
    Some(e)
}

/// A condition that always holds (a transaction's `Check` with `Condition::None`).
pub(crate) fn always() -> Expr {
    let mut e = Expr::new("attribute_not_exists(#pk) OR attribute_exists(#pk)");
    e.name("#pk", PK);
    e
}

/// The state of an add's item, which decides how the add is written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AddPlan {
    /// Live: `ADD` to it, guarded by liveness and the bound.
    Increment,
    /// Missing, or expired at the given time: write a fresh item holding only the counter.
    Create { expired_at: Option<i64> },
}

impl AddPlan {
    /// The plan for an item in the state `raw` (as read, live or not) at `now`.
    pub(crate) fn of(raw: Option<&Attributes>, now: i64) -> Result<Self> {
        Ok(match raw {
            None => AddPlan::Create { expired_at: None },
            Some(raw) => match crate::item::expires_at(raw)? {
                Some(at) if !imagemcp_core::table::is_live(Some(at), now) => AddPlan::Create {
                    expired_at: Some(at),
                },
                _ => AddPlan::Increment,
            },
        })
    }
}

/// The update expression of an increment (its `:d` is in [`increment_expr`]'s placeholders).
pub(crate) const INCREMENT: &str = "ADD #a :d";

/// The largest old value that keeps `old + delta` within the add's bound (and within `i64`).
fn add_limit(add: &Add) -> Option<i64> {
    match add.max {
        Some(max) => Some(max.saturating_sub(add.delta)),
        None if add.delta > 0 => Some(i64::MAX - add.delta),
        None => None,
    }
}

/// The condition of [`INCREMENT`] on a live counter: still live and within its bound.
pub(crate) fn increment_expr(add: &Add, now: i64) -> Expr {
    let mut e = Expr::new("attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)");
    e.name("#pk", PK)
        .name("#exp", EXPIRES_AT)
        .value(":now", AttributeValue::int(now))
        .name("#a", &stored_name(&add.attr));
    if let Some(limit) = add_limit(add) {
        // A missing attribute counts as 0, which is within the bound only when the limit is.
        e.text.push_str(if limit >= 0 {
            " AND (attribute_not_exists(#a) OR #a <= :lim)"
        } else {
            " AND #a <= :lim"
        });
        e.value(":lim", AttributeValue::int(limit));
    }
    e.value(":d", AttributeValue::int(add.delta));
    e
}

/// The fresh item an add creates, and the condition that the item is still as planned.
pub(crate) fn create_item(add: &Add, expired_at: Option<i64>) -> Result<(Attributes, Expr)> {
    if add.max.is_some_and(|max| add.delta > max) {
        return Err(over_max(add));
    }
    let mut item = key_attrs(&add.key);
    item.insert(
        stored_name(&add.attr).into_owned(),
        AttributeValue::int(add.delta),
    );
    if let Some(at) = add.expires_at {
        item.insert(EXPIRES_AT.to_owned(), AttributeValue::int(at));
    }
    let e = match expired_at {
        None => {
            let mut e = Expr::new("attribute_not_exists(#pk)");
            e.name("#pk", PK);
            e
        }
        Some(at) => {
            let mut e = Expr::new("#exp = :old");
            e.name("#exp", EXPIRES_AT)
                .value(":old", AttributeValue::int(at));
            e
        }
    };
    Ok((item, e))
}

/// The error of an add whose new value would pass its bound.
pub(crate) fn over_max(add: &Add) -> Error {
    Error::Conflict(format!("adding to `{}` would exceed its maximum", add.attr))
}

/// The key a query resumes after: the item with sort key `sk` in partition `pk`.
pub(crate) fn start_key(pk: &str, sk: String) -> Attributes {
    key_attrs(&Key::new(pk, sk))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder an expression declares appears in its text (and, since the text is built
    /// from them, every one it uses is declared).
    fn assert_uses_its_placeholders(e: &Expr, also: &str) {
        let text = format!("{} {also}", e.text);
        for name in e
            .placeholders
            .names
            .keys()
            .chain(e.placeholders.values.keys())
        {
            assert!(text.contains(name.as_str()), "{name} unused in {text}");
        }
    }

    #[test]
    fn condition_expressions_use_only_their_placeholders() {
        for cond in [
            Condition::NotExists,
            Condition::Exists,
            Condition::AttrEquals("state".into(), serde_json::json!("open")),
        ] {
            assert_uses_its_placeholders(&condition_expr(&cond, 100).unwrap(), "");
        }
        assert!(condition_expr(&Condition::None, 0).is_none());
        assert_uses_its_placeholders(&always(), "");
        let add = add(1, Some(3));
        assert_uses_its_placeholders(&increment_expr(&add, 0), INCREMENT);
        assert_uses_its_placeholders(&create_item(&add, None).unwrap().1, "");
        assert_uses_its_placeholders(&create_item(&add, Some(5)).unwrap().1, "");
    }

    fn add(delta: i64, max: Option<i64>) -> Add {
        Add {
            key: Key::new("p", "s"),
            attr: "n".into(),
            delta,
            max,
            expires_at: None,
        }
    }

    #[test]
    fn add_limits_guard_the_bound_and_overflow() {
        assert_eq!(add_limit(&add(1, Some(50))), Some(49));
        assert_eq!(add_limit(&add(2, Some(1))), Some(-1));
        assert_eq!(add_limit(&add(5, None)), Some(i64::MAX - 5));
        assert_eq!(add_limit(&add(-5, None)), None);
        let e = increment_expr(&add(2, Some(1)), 0);
        assert!(
            e.text.ends_with("AND #a <= :lim"),
            "a negative limit refuses a missing attribute: {}",
            e.text
        );
    }

    #[test]
    fn an_add_past_its_bound_creates_nothing() {
        assert!(matches!(
            create_item(&add(5, Some(4)), None),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn expired_items_are_planned_as_absent() {
        let mut raw = key_attrs(&Key::new("p", "s"));
        assert_eq!(
            AddPlan::of(None, 10).unwrap(),
            AddPlan::Create { expired_at: None }
        );
        assert_eq!(AddPlan::of(Some(&raw), 10).unwrap(), AddPlan::Increment);
        raw.insert(EXPIRES_AT.into(), AttributeValue::int(11));
        assert_eq!(AddPlan::of(Some(&raw), 10).unwrap(), AddPlan::Increment);
        raw.insert(EXPIRES_AT.into(), AttributeValue::int(10));
        assert_eq!(
            AddPlan::of(Some(&raw), 10).unwrap(),
            AddPlan::Create {
                expired_at: Some(10)
            }
        );
    }
}
