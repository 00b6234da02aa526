//! The `Table` port: DynamoDB-shaped items addressed by a partition key and a sort key.
//!
//! Every domain rule that needs atomicity (uniqueness, quotas, idempotency) is written once above
//! this port with conditional puts, atomic adds and all-or-none transactions, so every adapter
//! (SQLite, DynamoDB, …) gives the same guarantees.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The most operations one `transact` call may carry (DynamoDB allows 100; we keep to 25 so that
/// every adapter can honour it cheaply).
pub const MAX_TRANSACT_ITEMS: usize = 25;

/// The most items one query page returns.
pub const MAX_PAGE: usize = 1000;

/// An item's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// One item: its key, its attributes (a JSON object) and an optional expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub key: Key,
    pub attrs: Map<String, Value>,
    /// Unix seconds after which the item reads as absent (the DynamoDB TTL attribute).
    pub expires_at: Option<i64>,
}

impl Item {
    pub fn new(key: Key, attrs: Map<String, Value>) -> Self {
        Self {
            key,
            attrs,
            expires_at: None,
        }
    }

    pub fn with_ttl(mut self, expires_at: i64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// A string attribute, if present and a string.
    pub fn str(&self, attr: &str) -> Option<&str> {
        self.attrs.get(attr).and_then(Value::as_str)
    }

    /// An integer attribute, if present and an integer.
    pub fn int(&self, attr: &str) -> Option<i64> {
        self.attrs.get(attr).and_then(Value::as_i64)
    }
}

/// The precondition of a write. A write whose condition does not hold changes nothing and fails
/// with [`Error::Conflict`].
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Condition {
    #[default]
    None,
    /// No live item has this key.
    NotExists,
    /// A live item has this key.
    Exists,
    /// A live item has this key and its attribute equals the value.
    AttrEquals(String, Value),
}

/// A query: every live item of one partition whose sort key starts with a prefix, in sort-key order.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub pk: String,
    pub sk_prefix: String,
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: usize,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
    /// Newest (largest sort key) first.
    pub descending: bool,
}

impl Query {
    pub fn new(pk: impl Into<String>, sk_prefix: impl Into<String>, limit: usize) -> Self {
        Self {
            pk: pk.into(),
            sk_prefix: sk_prefix.into(),
            limit,
            cursor: None,
            descending: false,
        }
    }
}

/// One page of a query. `next` is set when more items may follow.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

impl Page {
    /// The page of the first `limit` of `items`, which were read one beyond the page: that one's
    /// presence says another page follows, and `next` resumes after the page's last item.
    pub fn overfetched(mut items: Vec<Item>, limit: usize) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| encode_cursor(&i.key.sk))
        } else {
            None
        };
        Page { items, next }
    }
}

/// An atomic numeric add. The item is created when missing (the attribute starting at 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Add {
    pub key: Key,
    pub attr: String,
    pub delta: i64,
    /// When set, the add fails with `Conflict` (and changes nothing) if the new value would exceed it.
    pub max: Option<i64>,
    /// Expiry to set on the item when the add creates it.
    pub expires_at: Option<i64>,
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactOp {
    Put(Item, Condition),
    Delete(Key, Condition),
    Check(Key, Condition),
    Add(Add),
}

impl TransactOp {
    pub fn key(&self) -> &Key {
        match self {
            TransactOp::Put(item, _) => &item.key,
            TransactOp::Delete(key, _) | TransactOp::Check(key, _) => key,
            TransactOp::Add(add) => &add.key,
        }
    }
}

#[async_trait::async_trait]
pub trait Table: crate::MaybeSendSync {
    /// The live item at `key`, or `None` (also for an expired one).
    async fn get(&self, key: &Key) -> Result<Option<Item>>;
    /// Writes the whole item if `cond` holds.
    async fn put(&self, item: Item, cond: Condition) -> Result<()>;
    /// Deletes the item if `cond` holds (deleting a missing item with `Condition::None` succeeds).
    async fn delete(&self, key: &Key, cond: Condition) -> Result<()>;
    /// One page of live items.
    async fn query(&self, query: &Query) -> Result<Page>;
    /// Atomically adds to a numeric attribute and returns the new value.
    async fn add(&self, add: Add) -> Result<i64>;
    /// All operations or none: if any condition fails, nothing is written and the error is
    /// `Conflict`. At most [`MAX_TRANSACT_ITEMS`] operations, no two on the same key.
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<()>;
}

/// The checks every adapter applies to a transaction before running it.
pub fn check_transact(ops: &[TransactOp]) -> Result<()> {
    if ops.is_empty() || ops.len() > MAX_TRANSACT_ITEMS {
        return Err(Error::invalid(
            "transaction",
            format!(
                "must have 1 to {MAX_TRANSACT_ITEMS} operations, got {}",
                ops.len()
            ),
        ));
    }
    let mut keys: Vec<&Key> = ops.iter().map(TransactOp::key).collect();
    keys.sort();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(
            "transaction",
            "two operations on the same item",
        ));
    }
    Ok(())
}

/// The checks every adapter applies to a query before running it.
pub fn check_query(query: &Query) -> Result<()> {
    if query.limit == 0 || query.limit > MAX_PAGE {
        return Err(Error::invalid("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    Ok(())
}

/// Whether an item with `expires_at` is live at `now_secs`.
pub fn is_live(expires_at: Option<i64>, now_secs: i64) -> bool {
    expires_at.is_none_or(|at| at > now_secs)
}

/// Whether `cond` holds for the current live item (`None` when absent).
pub fn condition_holds(cond: &Condition, current: Option<&Item>) -> bool {
    match cond {
        Condition::None => true,
        Condition::NotExists => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::AttrEquals(attr, value) => {
            current.and_then(|i| i.attrs.get(attr)) == Some(value)
        }
    }
}

/// A query cursor: the sort key of the last item returned, encoded so it is opaque to callers and
/// cannot be confused with a raw key. Adapters that page by sort key share this encoding.
pub fn encode_cursor(last_sk: &str) -> String {
    hex::encode(last_sk.as_bytes())
}

/// The sort key inside a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<String> {
    hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Error::invalid("cursor", "not a cursor returned by this server"))
}
