//! `SqliteQueue`: a durable `Queue` and `PullQueue` in one SQLite table, `queue_messages`.
//!
//! The table may live in the same file as the [`crate::table::SqliteTable`] (they use different
//! tables and each holds its own connection) or in a file of its own: pass the path you prefer.
//!
//! A message is a row with a `visible_at_ms` time and an attempt count. Receiving takes the
//! database's write lock (`BEGIN IMMEDIATE`), picks visible messages, counts the attempt, gives
//! each a fresh receipt and pushes its `visible_at_ms` past the visibility timeout, all in one
//! transaction: two consumers, in this process or another, never get the same message in one
//! visibility window. Acking deletes the row; retrying makes it visible again after the delay. A
//! message that was delivered `max_attempts` times and then failed (a retry, or a visibility
//! timeout with no answer, as when the process died) becomes a dead letter: it stays in the table,
//! marked with `dead_at_ms`, and is never delivered again.
//!
//! Receipts are single-use: after a redelivery, the earlier delivery's receipt matches nothing, so
//! a late `ack` or `retry` from a consumer that overran its visibility timeout does nothing (and
//! succeeds, as SQS does), rather than acking the newer delivery.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::clock::Clock;
use imagemcp_core::queue::{Delivery, PullQueue, Queue};
use imagemcp_core::{Error, Result};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, map_err};
use crate::millis;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        visible_at_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        receipt TEXT UNIQUE,
        dead_at_ms INTEGER
    );
    CREATE INDEX IF NOT EXISTS queue_messages_ready
        ON queue_messages (visible_at_ms, seq) WHERE dead_at_ms IS NULL;
";

/// How many messages are where, for status pages and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Deliverable now.
    pub ready: u64,
    /// Delayed, retried with a delay, or received and not yet acked.
    pub waiting: u64,
    /// Out of attempts.
    pub dead: u64,
}

/// The durable queue of the embedded default. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl SqliteQueue {
    /// Opens the queue in the SQLite file at `path` (created when missing; it may be the
    /// `SqliteTable`'s file). A message is delivered at most `max_attempts` (at least 1) times.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, max_attempts: u32) -> Result<Self> {
        check_attempts(max_attempts)?;
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
            clock,
            max_attempts,
        })
    }

    /// A queue in a private in-memory database.
    pub fn open_in_memory(clock: Arc<dyn Clock>, max_attempts: u32) -> Result<Self> {
        check_attempts(max_attempts)?;
        Ok(Self {
            db: Db::open_in_memory(SCHEMA)?,
            clock,
            max_attempts,
        })
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How many messages are ready, waiting and dead.
    pub async fn counts(&self) -> Result<QueueCounts> {
        let now = self.clock.now_ms();
        let max = i64::from(self.max_attempts);
        self.write(move |conn| {
            dead_letter_expired(conn, now, max)?;
            conn.query_row(
                "SELECT
                     COALESCE(SUM(dead_at_ms IS NULL AND visible_at_ms <= ?1), 0),
                     COALESCE(SUM(dead_at_ms IS NULL AND visible_at_ms > ?1), 0),
                     COALESCE(SUM(dead_at_ms IS NOT NULL), 0)
                 FROM queue_messages",
                params![now],
                |r| {
                    let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok(QueueCounts {
                        ready: n(0)?,
                        waiting: n(1)?,
                        dead: n(2)?,
                    })
                },
            )
            .map_err(map_err)
        })
        .await
    }

    /// Makes every message that was received but neither acked nor retried visible now. For the
    /// one consumer of this file, at start-up: the process before it died holding them (a crash
    /// mid-batch), and redelivery need not wait out their visibility timeout. Attempt counts stand,
    /// so a message that crashes its consumer every time is still dead-lettered in the end.
    pub async fn release_in_flight(&self) -> Result<u64> {
        let now = self.clock.now_ms();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE queue_messages SET receipt = NULL, visible_at_ms = ?1
                     WHERE receipt IS NOT NULL AND dead_at_ms IS NULL AND visible_at_ms > ?1",
                    params![now],
                )
                .map_err(map_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committing only when it succeeds.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.db
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_err)?;
                let out = f(&tx)?;
                tx.commit().map_err(map_err)?;
                Ok(out)
            })
            .await
    }
}

fn check_attempts(max_attempts: u32) -> Result<()> {
    if max_attempts == 0 {
        Err(Error::invalid("max_attempts", "must be at least 1"))
    } else {
        Ok(())
    }
}

/// Dead-letters the messages whose last attempt's visibility timeout ran out without an answer.
fn dead_letter_expired(conn: &Connection, now: i64, max_attempts: i64) -> Result<()> {
    conn.execute(
        "UPDATE queue_messages SET dead_at_ms = ?1, receipt = NULL
         WHERE dead_at_ms IS NULL AND attempts >= ?2 AND visible_at_ms <= ?1",
        params![now, max_attempts],
    )
    .map_err(map_err)?;
    Ok(())
}

fn parse_body(text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("a stored message body is not JSON: {e}")))
}

fn attempt_of(attempts: i64) -> u32 {
    u32::try_from(attempts).unwrap_or(u32::MAX)
}

#[async_trait::async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, body: Value, delay: Duration) -> Result<String> {
        let message_id = format!("msg_{}", Uuid::now_v7().simple());
        let text = serde_json::to_string(&body).map_err(Error::internal)?;
        let visible_at = self.clock.now_ms().saturating_add(millis(delay));
        let id = message_id.clone();
        self.db
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO queue_messages (message_id, body, visible_at_ms) VALUES (?1, ?2, ?3)",
                    params![id, text, visible_at],
                )
                .map_err(map_err)
            })
            .await?;
        Ok(message_id)
    }
}

#[async_trait::async_trait]
impl PullQueue for SqliteQueue {
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let hidden_until = now.saturating_add(millis(visibility));
        let max_attempts = i64::from(self.max_attempts);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.write(move |conn| {
            dead_letter_expired(conn, now, max_attempts)?;
            let picked: Vec<(i64, String, String, i64)> = {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, message_id, body, attempts FROM queue_messages
                         WHERE dead_at_ms IS NULL AND visible_at_ms <= ?1 AND attempts < ?2
                         ORDER BY visible_at_ms, seq LIMIT ?3",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![now, max_attempts, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
            };
            let mut out = Vec::with_capacity(picked.len());
            for (seq, message_id, body, attempts) in picked {
                let receipt = Uuid::new_v4().simple().to_string();
                conn.execute(
                    "UPDATE queue_messages SET attempts = attempts + 1, receipt = ?1, visible_at_ms = ?2 WHERE seq = ?3",
                    params![receipt, hidden_until, seq],
                )
                .map_err(map_err)?;
                out.push(Delivery { message_id, receipt, body: parse_body(&body)?, attempt: attempt_of(attempts + 1) });
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        let receipt = receipt.to_owned();
        self.db
            .run(move |conn| {
                let n = conn
                    .execute(
                        "DELETE FROM queue_messages WHERE receipt = ?1 AND dead_at_ms IS NULL",
                        params![receipt],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    tracing::debug!("ack of a stale or unknown receipt: nothing to do");
                }
                Ok(())
            })
            .await
    }

    async fn retry(&self, receipt: &str, delay: Duration) -> Result<()> {
        let receipt = receipt.to_owned();
        let now = self.clock.now_ms();
        let visible_at = now.saturating_add(millis(delay));
        let max_attempts = i64::from(self.max_attempts);
        self.db
            .run(move |conn| {
                let n = conn
                    .execute(
                        "UPDATE queue_messages SET
                             receipt = NULL,
                             dead_at_ms = CASE WHEN attempts >= ?3 THEN ?4 ELSE NULL END,
                             visible_at_ms = CASE WHEN attempts >= ?3 THEN visible_at_ms ELSE ?2 END
                         WHERE receipt = ?1 AND dead_at_ms IS NULL",
                        params![receipt, visible_at, max_attempts, now],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    tracing::debug!("retry of a stale or unknown receipt: nothing to do");
                }
                Ok(())
            })
            .await
    }

    /// Dead letters, oldest death first. Their `receipt` is empty: a dead letter is only read.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>> {
        let now = self.clock.now_ms();
        let max_attempts = i64::from(self.max_attempts);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.write(move |conn| {
            dead_letter_expired(conn, now, max_attempts)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT message_id, body, attempts FROM queue_messages
                     WHERE dead_at_ms IS NOT NULL ORDER BY dead_at_ms, seq LIMIT ?1",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(map_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (message_id, body, attempts) = row.map_err(map_err)?;
                out.push(Delivery {
                    message_id,
                    receipt: String::new(),
                    body: parse_body(&body)?,
                    attempt: attempt_of(attempts),
                });
            }
            Ok(out)
        })
        .await
    }
}
