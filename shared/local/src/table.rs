//! `SqliteTable`: the `Table` port on one SQLite file (or in memory).
//!
//! Items live in one `items` table keyed by `(pk, sk)`, their attributes as JSON text and their
//! TTL in an `expires_at` column. Expired rows read as absent everywhere (get, query, conditions,
//! adds) and are deleted lazily: by a later write to the same key, or in bulk by
//! [`SqliteTable::purge_expired`]. Every write that reads first (conditions, adds, transactions)
//! runs inside `BEGIN IMMEDIATE`, so it is atomic across tasks, adapters and processes sharing the
//! file.

use std::path::Path;
use std::sync::Arc;

use imagemcp_core::clock::Clock;
use imagemcp_core::table::{
    Add, Condition, Item, Key, Page, Query, Table, TransactOp, check_query, check_transact,
    condition_holds, decode_cursor, is_live,
};
use imagemcp_core::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use serde_json::{Map, Value};

use crate::db::{Db, map_err};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        attrs TEXT NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS items_expires_at ON items (expires_at) WHERE expires_at IS NOT NULL;
";

/// The `Table` port on SQLite. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct SqliteTable {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTable").finish_non_exhaustive()
    }
}

impl SqliteTable {
    /// Opens the table in the SQLite file at `path`, creating the file (and its directory) when
    /// missing. The file may be shared with a [`crate::queue::SqliteQueue`] and with other
    /// processes.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
            clock,
        })
    }

    /// A table in a private in-memory database, gone when the last clone is dropped.
    pub fn open_in_memory(clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self {
            db: Db::open_in_memory(SCHEMA)?,
            clock,
        })
    }

    /// Copies the write-ahead log into the database file and empties it (`wal_checkpoint(TRUNCATE)`),
    /// e.g. before the file is copied or inspected on its own.
    pub async fn checkpoint(&self) -> Result<()> {
        self.db
            .run(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(map_err)
            })
            .await
    }

    /// Deletes every expired row and returns how many. Expired rows already read as absent; this
    /// only reclaims their space, so call it now and then (e.g. hourly).
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = self.clock.now_secs();
        self.db
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                    params![now],
                )
                .map_err(map_err)
            })
            .await
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committing only when it succeeds.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T> + Send + 'static,
    {
        let now = self.clock.now_secs();
        self.db
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_err)?;
                // On error the transaction is dropped, which rolls it back.
                let out = f(&tx, now)?;
                tx.commit().map_err(map_err)?;
                Ok(out)
            })
            .await
    }
}

/// The live item at `key`, if any.
fn read_live(conn: &Connection, key: &Key, now: i64) -> Result<Option<Item>> {
    let row = conn
        .query_row(
            "SELECT attrs, expires_at FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
        )
        .optional()
        .map_err(map_err)?;
    match row {
        Some((attrs, expires_at)) if is_live(expires_at, now) => Ok(Some(Item {
            key: key.clone(),
            attrs: parse_attrs(&attrs)?,
            expires_at,
        })),
        _ => Ok(None),
    }
}

fn parse_attrs(text: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|e| {
        Error::internal(format!(
            "a stored item's attributes are not a JSON object: {e}"
        ))
    })
}

fn write_item(conn: &Connection, item: &Item) -> Result<()> {
    let attrs = serde_json::to_string(&item.attrs).map_err(Error::internal)?;
    conn.execute(
        "INSERT OR REPLACE INTO items (pk, sk, attrs, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![item.key.pk, item.key.sk, attrs, item.expires_at],
    )
    .map_err(map_err)?;
    Ok(())
}

fn remove_item(conn: &Connection, key: &Key) -> Result<()> {
    conn.execute(
        "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
        params![key.pk, key.sk],
    )
    .map_err(map_err)?;
    Ok(())
}

/// Fails with `Conflict` unless `cond` holds for the live item at `key`.
fn require(conn: &Connection, key: &Key, cond: &Condition, now: i64, what: &str) -> Result<()> {
    if *cond == Condition::None {
        return Ok(());
    }
    let current = read_live(conn, key, now)?;
    if condition_holds(cond, current.as_ref()) {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "the condition of the {what} does not hold"
        )))
    }
}

/// The item as it will be after `add`, and the new value; nothing is written.
fn added(conn: &Connection, add: &Add, now: i64) -> Result<(Item, i64)> {
    let mut item = read_live(conn, &add.key, now)?.unwrap_or_else(|| Item {
        key: add.key.clone(),
        attrs: Map::new(),
        expires_at: add.expires_at,
    });
    let old = match item.attrs.get(&add.attr) {
        None => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            Error::invalid(
                add.attr.clone(),
                "is not an integer, so it cannot be added to",
            )
        })?,
    };
    let new = old
        .checked_add(add.delta)
        .ok_or_else(|| Error::invalid(add.attr.clone(), "the sum overflows"))?;
    if add.max.is_some_and(|max| new > max) {
        return Err(Error::Conflict(format!(
            "adding to `{}` would exceed its maximum",
            add.attr
        )));
    }
    item.attrs.insert(add.attr.clone(), Value::from(new));
    Ok((item, new))
}

#[async_trait::async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let key = key.clone();
        let now = self.clock.now_secs();
        self.db.run(move |conn| read_live(conn, &key, now)).await
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        self.write(move |conn, now| {
            require(conn, &item.key, &cond, now, "put")?;
            write_item(conn, &item)
        })
        .await
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        let key = key.clone();
        self.write(move |conn, now| {
            require(conn, &key, &cond, now, "delete")?;
            remove_item(conn, &key)
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        check_query(query)?;
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let query = query.clone();
        let now = self.clock.now_secs();
        self.db
            .run(move |conn| run_query(conn, &query, after, now))
            .await
    }

    async fn add(&self, add: Add) -> Result<i64> {
        self.write(move |conn, now| {
            let (item, new) = added(conn, &add, now)?;
            write_item(conn, &item)?;
            Ok(new)
        })
        .await
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<()> {
        check_transact(&ops)?;
        self.write(move |conn, now| {
            // No two operations share a key, so every condition can be checked against the state
            // before the transaction, and the writes applied afterwards, in any order.
            let mut writes: Vec<Item> = Vec::new();
            let mut removes: Vec<&Key> = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                let what = format!("transaction's operation {i}");
                match op {
                    TransactOp::Put(item, cond) => {
                        require(conn, &item.key, cond, now, &what)?;
                        writes.push(item.clone());
                    }
                    TransactOp::Delete(key, cond) => {
                        require(conn, key, cond, now, &what)?;
                        removes.push(key);
                    }
                    TransactOp::Check(key, cond) => require(conn, key, cond, now, &what)?,
                    TransactOp::Add(add) => writes.push(added(conn, add, now)?.0),
                }
            }
            for item in &writes {
                write_item(conn, item)?;
            }
            for key in removes {
                remove_item(conn, key)?;
            }
            Ok(())
        })
        .await
    }
}

/// One page of `query`, starting after the sort key `after` (in the query's direction).
fn run_query(conn: &Connection, query: &Query, after: Option<String>, now: i64) -> Result<Page> {
    // `sk >= prefix` (and `sk < upper` when the prefix allows one) lets SQLite walk only the
    // primary key's range; the `substr` test is the exact prefix match.
    let mut sql = String::from(
        "SELECT sk, attrs, expires_at FROM items
         WHERE pk = ?1 AND sk >= ?2 AND substr(sk, 1, length(?2)) = ?2
           AND (expires_at IS NULL OR expires_at > ?3)",
    );
    let mut args: Vec<SqlValue> = vec![
        query.pk.clone().into(),
        query.sk_prefix.clone().into(),
        now.into(),
        page_fetch(query.limit).into(),
    ];
    if let Some(upper) = prefix_upper_bound(&query.sk_prefix) {
        args.push(upper.into());
        sql.push_str(&format!(" AND sk < ?{}", args.len()));
    }
    if let Some(after) = after {
        args.push(after.into());
        let op = if query.descending { "<" } else { ">" };
        sql.push_str(&format!(" AND sk {op} ?{}", args.len()));
    }
    sql.push_str(if query.descending {
        " ORDER BY sk DESC LIMIT ?4"
    } else {
        " ORDER BY sk ASC LIMIT ?4"
    });

    let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .map_err(map_err)?;
    let mut items = Vec::new();
    for row in rows {
        let (sk, attrs, expires_at) = row.map_err(map_err)?;
        items.push(Item {
            key: Key::new(query.pk.clone(), sk),
            attrs: parse_attrs(&attrs)?,
            expires_at,
        });
    }
    // One row more than the page was fetched: its presence says another page follows.
    Ok(Page::overfetched(items, query.limit))
}

fn page_fetch(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
}

/// The smallest string above every string starting with `prefix`, when it is cheap to name: the
/// prefix with its last character, if ASCII below DEL, moved up by one.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let last = prefix.chars().last()?;
    if !last.is_ascii() || last == '\u{7f}' {
        return None;
    }
    let mut upper = prefix[..prefix.len() - 1].to_owned();
    upper.push(char::from(last as u8 + 1));
    Some(upper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagemcp_core::clock::ManualClock;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    #[test]
    fn works_without_a_tokio_runtime() {
        // Outside a runtime each call runs inline, so one poll completes it.
        let t = SqliteTable::open_in_memory(Arc::new(ManualClock::new(0))).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let item = Item::new(Key::new("p", "s"), Map::new());
        let put = pin!(t.put(item.clone(), Condition::NotExists)).poll(&mut cx);
        assert!(matches!(put, Poll::Ready(Ok(()))), "{put:?}");
        let got = pin!(t.get(&item.key)).poll(&mut cx);
        assert!(
            matches!(got, Poll::Ready(Ok(Some(ref i))) if *i == item),
            "{got:?}"
        );
    }

    #[test]
    fn upper_bound_excludes_exactly_what_lacks_the_prefix() {
        assert_eq!(prefix_upper_bound("IMG#").as_deref(), Some("IMG$"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("é"), None);
        assert_eq!(prefix_upper_bound("a\u{7f}"), None);
        let upper = prefix_upper_bound("IMG#").unwrap();
        assert!("IMG#\u{10ffff}" < upper.as_str() && "IMG$" >= upper.as_str());
    }
}
