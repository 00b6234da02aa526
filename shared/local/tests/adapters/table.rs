//! `SqliteTable`: the contract in memory and on files, durability, WAL, cross-connection atomicity.

use std::sync::Arc;

use imagemcp_core::clock::{Clock, ManualClock};
use imagemcp_core::contract;
use imagemcp_core::table::{Add, Condition, Item, Key, Table};
use imagemcp_local::SqliteTable;
use serde_json::json;

use crate::Files;

#[tokio::test]
async fn in_memory_table_meets_the_contract() {
    contract::table_suite(async |clock| SqliteTable::open_in_memory(clock).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_table_meets_the_contract() {
    let files = Files::new();
    contract::table_suite(async |clock| SqliteTable::open(&files.next("table.db"), clock).unwrap())
        .await;
}

#[tokio::test]
async fn items_persist_across_reopen() {
    let files = Files::new();
    let path = files.next("data").join("nested").join("imagemcp.db");
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let item = Item::new(
        Key::new("ORG#1", "USER#ann"),
        json!({"role": "admin"}).as_object().unwrap().clone(),
    );
    {
        let t = SqliteTable::open(&path, clock.clone()).unwrap();
        t.put(item.clone(), Condition::NotExists).await.unwrap();
        t.add(Add {
            key: Key::new("ORG#1", "QUOTA"),
            attr: "used".into(),
            delta: 7,
            max: None,
            expires_at: None,
        })
        .await
        .unwrap();
    }
    let t = SqliteTable::open(&path, clock).unwrap();
    assert_eq!(
        t.get(&item.key).await.unwrap(),
        Some(item),
        "a put item must survive reopening the file"
    );
    let quota = t
        .get(&Key::new("ORG#1", "QUOTA"))
        .await
        .unwrap()
        .and_then(|i| i.int("used"));
    assert_eq!(
        quota,
        Some(7),
        "an added counter must survive reopening the file"
    );
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let files = Files::new();
    let path = files.next("wal.db");
    let t = SqliteTable::open(&path, Arc::new(ManualClock::new(0))).unwrap();
    t.put(
        Item::new(Key::new("a", "b"), Default::default()),
        Condition::None,
    )
    .await
    .unwrap();
    // journal_mode=WAL is stored in the file itself, so a new connection reports it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap().to_string_lossy()
    ));
    assert!(
        wal.exists(),
        "a WAL file must sit beside the database while it is open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bounded_adds_are_exact_across_connections_and_threads() {
    // Two adapters on one file stand for two processes: SQLite's file lock, taken by
    // BEGIN IMMEDIATE, is what keeps their read-check-write sequences apart, and the busy
    // timeout is what makes the loser wait instead of failing.
    let files = Files::new();
    let path = files.next("shared.db");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(contract::START_MS));
    let a = Arc::new(SqliteTable::open(&path, clock.clone()).unwrap());
    let b = Arc::new(SqliteTable::open(&path, clock).unwrap());
    let mut tasks = Vec::new();
    for i in 0..120 {
        let t = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            t.add(Add {
                key: Key::new("ORG#1", "QUOTA"),
                attr: "used".into(),
                delta: 1,
                max: Some(75),
                expires_at: None,
            })
            .await
        }));
    }
    let mut granted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(v) => granted.push(v),
            Err(imagemcp_core::Error::Conflict(_)) => {}
            Err(e) => panic!("an add failed with {e}"),
        }
    }
    granted.sort_unstable();
    assert_eq!(
        granted,
        (1..=75).collect::<Vec<_>>(),
        "exactly 75 adds must be granted, each a distinct value"
    );
    let used = a
        .get(&Key::new("ORG#1", "QUOTA"))
        .await
        .unwrap()
        .and_then(|i| i.int("used"));
    assert_eq!(used, Some(75));
}

#[tokio::test]
async fn purge_deletes_only_expired_rows() {
    let files = Files::new();
    let path = files.next("purge.db");
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let t = SqliteTable::open(&path, clock.clone()).unwrap();
    let now = contract::START_MS / 1000;
    for (sk, ttl) in [
        ("a", Some(now + 10)),
        ("b", Some(now + 10)),
        ("c", Some(now + 1000)),
        ("d", None),
    ] {
        let mut item = Item::new(Key::new("P", sk), Default::default());
        item.expires_at = ttl;
        t.put(item, Condition::None).await.unwrap();
    }
    assert_eq!(
        t.purge_expired().await.unwrap(),
        0,
        "nothing has expired yet"
    );
    clock.advance_ms(10_000);
    assert_eq!(t.purge_expired().await.unwrap(), 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 2, "the live rows must stay");
}

#[tokio::test]
async fn deleted_items_leave_no_trace_in_the_file() {
    let files = Files::new();
    let path = files.next("erase.db");
    let t = SqliteTable::open(&path, Arc::new(ManualClock::new(0))).unwrap();
    let secret = "ada.lovelace.erased@example.com";
    let mut attrs = serde_json::Map::new();
    attrs.insert("email".into(), serde_json::json!(secret));
    t.put(
        Item::new(Key::new("USER#1", "PROFILE"), attrs),
        Condition::None,
    )
    .await
    .unwrap();
    let checkpoint = |path: &std::path::Path| {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    };
    checkpoint(&path);
    assert!(
        std::fs::read(&path)
            .unwrap()
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the test must see the data first"
    );
    t.delete(&Key::new("USER#1", "PROFILE"), Condition::None)
        .await
        .unwrap();
    checkpoint(&path);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "secure_delete must overwrite the freed row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_table_meets_the_quota_contract() {
    let files = Files::new();
    contract::quota_suite(async |clock| SqliteTable::open(&files.next("quota.db"), clock).unwrap())
        .await;
}
