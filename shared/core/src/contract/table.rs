//! The `Table` contract: items, conditions, queries with paging, atomic adds, transactions, TTL and
//! exact JSON round trips.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{START_MS, is_conflict, is_invalid, ok};
use crate::clock::ManualClock;
use crate::table::{Add, Condition, Item, Key, MAX_TRANSACT_ITEMS, Query, Table, TransactOp};

/// Runs every `Table` check, each against a fresh adapter from `make`.
pub async fn table_suite<T: Table>(make: impl AsyncFn(Arc<ManualClock>) -> T) {
    let fresh = async || {
        let clock = Arc::new(ManualClock::new(START_MS));
        let table = make(clock.clone()).await;
        (table, clock)
    };
    let (t, _) = fresh().await;
    get_put_delete(&t).await;
    let (t, _) = fresh().await;
    put_conditions(&t).await;
    let (t, _) = fresh().await;
    delete_conditions(&t).await;
    let (t, _) = fresh().await;
    query_prefix_and_order(&t).await;
    let (t, _) = fresh().await;
    query_paging(&t).await;
    let (t, _) = fresh().await;
    query_rejects_bad_input(&t).await;
    let (t, _) = fresh().await;
    add_counts(&t).await;
    let (t, _) = fresh().await;
    concurrent_adds_respect_max(&t).await;
    let (t, _) = fresh().await;
    transact_applies_all(&t).await;
    let (t, _) = fresh().await;
    transact_is_all_or_none(&t).await;
    let (t, _) = fresh().await;
    transact_rejects_bad_batches(&t).await;
    let (t, clock) = fresh().await;
    ttl_hides_expired_items(&t, &clock).await;
    let (t, clock) = fresh().await;
    ttl_restarts_expired_counters(&t, &clock).await;
    let (t, _) = fresh().await;
    json_round_trips_exactly(&t).await;
}

fn attrs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("test bug: attrs must be an object, got {other}"),
    }
}

fn item(pk: &str, sk: &str, v: Value) -> Item {
    Item::new(Key::new(pk, sk), attrs(v))
}

async fn get<T: Table>(t: &T, key: &Key, what: &str) -> Option<Item> {
    ok(t.get(key).await, what)
}

/// Every page of a query, following `next` until it is absent; fails on a runaway cursor.
async fn query_all<T: Table>(t: &T, mut q: Query, what: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for _ in 0..100 {
        let page = ok(t.query(&q).await, what);
        assert!(
            page.items.len() <= q.limit,
            "table: {what}: a page returned {} items for limit {}",
            page.items.len(),
            q.limit
        );
        items.extend(page.items);
        match page.next {
            Some(next) => q.cursor = Some(next),
            None => return items,
        }
    }
    panic!("table: {what}: paging did not end after 100 pages");
}

fn sks(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key.sk.as_str()).collect()
}

async fn get_put_delete<T: Table>(t: &T) {
    let key = Key::new("T#crud", "A#1");
    assert_eq!(
        get(t, &key, "get of a missing item").await,
        None,
        "table: get of a missing item must be None"
    );

    let first = item("T#crud", "A#1", json!({"name": "first", "n": 1}));
    ok(
        t.put(first.clone(), Condition::None).await,
        "put of a new item",
    );
    assert_eq!(
        get(t, &key, "get after put").await,
        Some(first),
        "table: get must return the item just put"
    );

    // A put replaces the whole item: attributes absent from the new one are gone.
    let second = item("T#crud", "A#1", json!({"name": "second"}));
    ok(
        t.put(second.clone(), Condition::None).await,
        "put over an item",
    );
    assert_eq!(
        get(t, &key, "get after overwrite").await,
        Some(second),
        "table: a put must replace the whole item"
    );

    // Items are addressed by both keys: neighbours are untouched.
    let other_sk = item("T#crud", "A#2", json!({"name": "other sk"}));
    let other_pk = item("T#crud2", "A#1", json!({"name": "other pk"}));
    ok(
        t.put(other_sk.clone(), Condition::None).await,
        "put of a neighbour",
    );
    ok(
        t.put(other_pk.clone(), Condition::None).await,
        "put of a neighbour",
    );

    ok(t.delete(&key, Condition::None).await, "delete of an item");
    assert_eq!(
        get(t, &key, "get after delete").await,
        None,
        "table: a deleted item must read as absent"
    );
    assert_eq!(
        get(t, &other_sk.key, "get of a neighbour").await,
        Some(other_sk),
        "table: delete must touch only its key (same pk)"
    );
    assert_eq!(
        get(t, &other_pk.key, "get of a neighbour").await,
        Some(other_pk),
        "table: delete must touch only its key (same sk)"
    );

    ok(
        t.delete(&key, Condition::None).await,
        "table: deleting a missing item without a condition must succeed",
    );
}

async fn put_conditions<T: Table>(t: &T) {
    let key = Key::new("T#cond", "X");
    let v1 = item("T#cond", "X", json!({"state": "draft", "v": 1}));
    let v2 = item("T#cond", "X", json!({"state": "final", "v": 2}));

    let r = t.put(v1.clone(), Condition::Exists).await;
    assert!(
        is_conflict(&r),
        "table: put with Exists on a missing item must be Conflict, got {r:?}"
    );
    assert_eq!(
        get(t, &key, "get after failed put").await,
        None,
        "table: a put whose Exists condition failed must write nothing"
    );

    let r = t
        .put(
            v1.clone(),
            Condition::AttrEquals("state".into(), json!("draft")),
        )
        .await;
    assert!(
        is_conflict(&r),
        "table: put with AttrEquals on a missing item must be Conflict, got {r:?}"
    );
    assert_eq!(
        get(t, &key, "get after failed put").await,
        None,
        "table: a put whose AttrEquals failed must write nothing"
    );

    ok(
        t.put(v1.clone(), Condition::NotExists).await,
        "table: put with NotExists on a missing item",
    );
    assert_eq!(
        get(t, &key, "get after conditional put").await,
        Some(v1.clone()),
        "table: put with NotExists must write"
    );

    let r = t.put(v2.clone(), Condition::NotExists).await;
    assert!(
        is_conflict(&r),
        "table: put with NotExists on a live item must be Conflict, got {r:?}"
    );
    assert_eq!(
        get(t, &key, "get after failed put").await,
        Some(v1.clone()),
        "table: a put whose NotExists failed must change nothing"
    );

    let r = t
        .put(
            v2.clone(),
            Condition::AttrEquals("state".into(), json!("final")),
        )
        .await;
    assert!(
        is_conflict(&r),
        "table: put with a mismatching AttrEquals must be Conflict, got {r:?}"
    );
    let r = t
        .put(
            v2.clone(),
            Condition::AttrEquals("missing".into(), json!("draft")),
        )
        .await;
    assert!(
        is_conflict(&r),
        "table: put with AttrEquals on a missing attribute must be Conflict, got {r:?}"
    );
    // A number is not equal to the string of its digits.
    let r = t
        .put(v2.clone(), Condition::AttrEquals("v".into(), json!("1")))
        .await;
    assert!(
        is_conflict(&r),
        "table: AttrEquals must compare JSON values, not their text, got {r:?}"
    );
    assert_eq!(
        get(t, &key, "get after failed puts").await,
        Some(v1.clone()),
        "table: failed AttrEquals puts must change nothing"
    );

    ok(
        t.put(v2.clone(), Condition::AttrEquals("v".into(), json!(1)))
            .await,
        "table: put with a matching numeric AttrEquals",
    );
    assert_eq!(
        get(t, &key, "get after conditional put").await,
        Some(v2.clone()),
        "table: put with a matching AttrEquals must write"
    );

    let v3 = item("T#cond", "X", json!({"state": "archived", "v": 3}));
    ok(
        t.put(v3.clone(), Condition::Exists).await,
        "table: put with Exists on a live item",
    );
    assert_eq!(
        get(t, &key, "get after conditional put").await,
        Some(v3),
        "table: put with Exists must write"
    );
}

async fn delete_conditions<T: Table>(t: &T) {
    let key = Key::new("T#delcond", "X");
    let r = t.delete(&key, Condition::Exists).await;
    assert!(
        is_conflict(&r),
        "table: delete with Exists on a missing item must be Conflict, got {r:?}"
    );

    let v = item("T#delcond", "X", json!({"owner": "ann"}));
    ok(t.put(v.clone(), Condition::None).await, "put");
    let r = t.delete(&key, Condition::NotExists).await;
    assert!(
        is_conflict(&r),
        "table: delete with NotExists on a live item must be Conflict, got {r:?}"
    );
    let r = t
        .delete(&key, Condition::AttrEquals("owner".into(), json!("bob")))
        .await;
    assert!(
        is_conflict(&r),
        "table: delete with a mismatching AttrEquals must be Conflict, got {r:?}"
    );
    assert_eq!(
        get(t, &key, "get after failed deletes").await,
        Some(v),
        "table: a delete whose condition failed must delete nothing"
    );

    ok(
        t.delete(&key, Condition::AttrEquals("owner".into(), json!("ann")))
            .await,
        "table: delete with a matching AttrEquals",
    );
    assert_eq!(
        get(t, &key, "get after delete").await,
        None,
        "table: a conditional delete that holds must delete"
    );
}

async fn query_prefix_and_order<T: Table>(t: &T) {
    // Sort keys chosen around the prefix boundary: `IMG` (the prefix without `#`), `IMG2…` and
    // `IMF…`/`IMH…` (just below and above) and `IMG$` (the byte after `#`) must all stay out.
    let inside = ["IMG#001", "IMG#002", "IMG#010", "IMG#1", "IMG#", "IMG#a#b"];
    let outside = [
        "IMG", "IMG2#001", "IMG$001", "IMF#001", "IMH#001", "img#001", "AIMG#001",
    ];
    for sk in inside.iter().chain(outside.iter()) {
        ok(
            t.put(item("T#q", sk, json!({"sk": sk})), Condition::None)
                .await,
            "put for query",
        );
    }
    ok(
        t.put(item("T#q2", "IMG#000", json!({})), Condition::None)
            .await,
        "put in another partition",
    );
    ok(
        t.put(item("T#", "IMG#000", json!({})), Condition::None)
            .await,
        "put in a partition whose key prefixes this one",
    );

    let mut expected: Vec<&str> = inside.to_vec();
    expected.sort_unstable();
    let got = query_all(t, Query::new("T#q", "IMG#", 100), "query ascending").await;
    assert_eq!(
        sks(&got),
        expected,
        "table: query by prefix `IMG#` must return exactly the items starting with it, in byte order"
    );
    for i in &got {
        assert_eq!(
            i.str("sk"),
            Some(i.key.sk.as_str()),
            "table: query must return each item's own attributes"
        );
    }

    let mut q = Query::new("T#q", "IMG#", 100);
    q.descending = true;
    let got = query_all(t, q, "query descending").await;
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(
        sks(&got),
        reversed,
        "table: a descending query must return the same items, largest sort key first"
    );

    let got = query_all(t, Query::new("T#q", "", 100), "query with an empty prefix").await;
    assert_eq!(
        got.len(),
        inside.len() + outside.len(),
        "table: an empty prefix must return the whole partition and nothing else"
    );

    let got = query_all(
        t,
        Query::new("T#none", "IMG#", 10),
        "query of an empty partition",
    )
    .await;
    assert!(
        got.is_empty(),
        "table: a query of an empty partition must return nothing, got {:?}",
        sks(&got)
    );
}

async fn query_paging<T: Table>(t: &T) {
    let mut expected: Vec<String> = (0..23).map(|i| format!("P#{i:03}")).collect();
    for sk in &expected {
        ok(
            t.put(item("T#page", sk, json!({"i": sk})), Condition::None)
                .await,
            "put for paging",
        );
    }
    ok(
        t.put(item("T#page", "Q#000", json!({})), Condition::None)
            .await,
        "put after the prefix",
    );
    ok(
        t.put(item("T#page", "O#999", json!({})), Condition::None)
            .await,
        "put before the prefix",
    );

    for limit in [1, 5, 10, 23, 50] {
        let got = query_all(
            t,
            Query::new("T#page", "P#", limit),
            "paged query ascending",
        )
        .await;
        assert_eq!(
            sks(&got),
            expected,
            "table: paging ascending with limit {limit} must give every item once, in order"
        );
    }
    // A full first page must say more may follow.
    let first = ok(t.query(&Query::new("T#page", "P#", 5)).await, "first page");
    assert_eq!(
        sks(&first.items),
        expected[..5].iter().map(String::as_str).collect::<Vec<_>>(),
        "table: the first page must hold the smallest sort keys"
    );
    assert!(
        first.next.is_some(),
        "table: a page that stopped at its limit with items left must have a `next` cursor"
    );

    expected.reverse();
    for limit in [1, 4, 23] {
        let mut q = Query::new("T#page", "P#", limit);
        q.descending = true;
        let got = query_all(t, q, "paged query descending").await;
        assert_eq!(
            sks(&got),
            expected,
            "table: paging descending with limit {limit} must give every item once, in reverse order"
        );
    }

    // Items written behind the cursor do not appear; items ahead of it do.
    let mut q = Query::new("T#page", "P#", 10);
    let page = ok(t.query(&q).await, "first page");
    ok(
        t.put(item("T#page", "P#000a", json!({})), Condition::None)
            .await,
        "put behind the cursor",
    );
    ok(
        t.put(item("T#page", "P#999", json!({})), Condition::None)
            .await,
        "put ahead of the cursor",
    );
    q.cursor = page.next;
    let rest = query_all(t, q, "pages after a write").await;
    let rest = sks(&rest);
    assert!(
        !rest.contains(&"P#000a"),
        "table: an item written before the cursor must not appear on later pages"
    );
    assert_eq!(
        rest.last(),
        Some(&"P#999"),
        "table: an item written after the cursor must appear on later pages"
    );
    assert_eq!(
        rest.len(),
        14,
        "table: pages after the first must hold the other 13 items plus the new one, got {rest:?}"
    );
}

async fn query_rejects_bad_input<T: Table>(t: &T) {
    let r = t.query(&Query::new("T#bad", "", 0)).await;
    assert!(
        is_invalid(&r),
        "table: a query with limit 0 must be Invalid, got {r:?}"
    );
    let r = t
        .query(&Query::new("T#bad", "", crate::table::MAX_PAGE + 1))
        .await;
    assert!(
        is_invalid(&r),
        "table: a query over MAX_PAGE must be Invalid, got {r:?}"
    );
    let mut q = Query::new("T#bad", "", 10);
    q.cursor = Some("not a cursor!".into());
    let r = t.query(&q).await;
    assert!(
        is_invalid(&r),
        "table: a query with a forged cursor must be Invalid, got {r:?}"
    );
}

fn add(pk: &str, sk: &str, attr: &str, delta: i64, max: Option<i64>) -> Add {
    Add {
        key: Key::new(pk, sk),
        attr: attr.into(),
        delta,
        max,
        expires_at: None,
    }
}

async fn add_counts<T: Table>(t: &T) {
    let key = Key::new("T#add", "C");
    assert_eq!(
        ok(
            t.add(add("T#add", "C", "used", 3, None)).await,
            "add creating the item"
        ),
        3,
        "table: an add to a missing item must start from 0"
    );
    let created = get(t, &key, "get after add")
        .await
        .expect("table: an add must create a missing item");
    assert_eq!(
        created.int("used"),
        Some(3),
        "table: the created item must hold the added value"
    );
    assert_eq!(
        created.expires_at, None,
        "table: an add without expires_at must create an item without TTL"
    );

    assert_eq!(
        ok(
            t.add(add("T#add", "C", "used", 4, None)).await,
            "second add"
        ),
        7,
        "table: adds must accumulate"
    );
    assert_eq!(
        ok(
            t.add(add("T#add", "C", "used", -2, None)).await,
            "negative add"
        ),
        5,
        "table: a negative add must subtract"
    );
    assert_eq!(
        ok(
            t.add(add("T#add", "C", "other", 1, None)).await,
            "add to a second attribute"
        ),
        1,
        "table: a missing attribute of a live item must start from 0"
    );

    let r = t.add(add("T#add", "C", "used", 6, Some(10))).await;
    assert!(
        is_conflict(&r),
        "table: an add over its max must be Conflict, got {r:?}"
    );
    assert_eq!(
        get(t, &key, "get after refused add")
            .await
            .and_then(|i| i.int("used")),
        Some(5),
        "table: an add refused by its max must change nothing"
    );
    assert_eq!(
        ok(
            t.add(add("T#add", "C", "used", 5, Some(10))).await,
            "add up to max"
        ),
        10,
        "table: an add reaching exactly its max must succeed"
    );

    let r = t.add(add("T#add", "NEW", "used", 11, Some(10))).await;
    assert!(
        is_conflict(&r),
        "table: an add over its max must be Conflict even when it would create the item, got {r:?}"
    );
    assert_eq!(
        get(t, &Key::new("T#add", "NEW"), "get after refused add").await,
        None,
        "table: an add refused by its max must not create the item"
    );

    // An add keeps the other attributes of the item.
    ok(
        t.put(
            item("T#add", "K", json!({"plan": "pro", "n": 1})),
            Condition::None,
        )
        .await,
        "put",
    );
    ok(
        t.add(add("T#add", "K", "n", 1, None)).await,
        "add to a put item",
    );
    let kept = get(t, &Key::new("T#add", "K"), "get after add").await;
    assert_eq!(
        kept.map(|i| i.attrs),
        Some(attrs(json!({"plan": "pro", "n": 2}))),
        "table: an add must change only its attribute"
    );

    // Adding to something that is not an integer fails and changes nothing.
    let r = t.add(add("T#add", "K", "plan", 1, None)).await;
    assert!(
        r.is_err(),
        "table: an add to a string attribute must fail, got {r:?}"
    );
    assert_eq!(
        get(t, &Key::new("T#add", "K"), "get")
            .await
            .and_then(|i| i.str("plan").map(str::to_owned))
            .as_deref(),
        Some("pro"),
        "table: a failed add must change nothing"
    );

    // expires_at is set when the add creates the item.
    let mut with_ttl = add("T#add", "TTL", "n", 1, None);
    with_ttl.expires_at = Some(START_MS / 1000 + 3600);
    ok(t.add(with_ttl).await, "add with expires_at");
    let created = get(t, &Key::new("T#add", "TTL"), "get").await;
    assert_eq!(
        created.and_then(|i| i.expires_at),
        Some(START_MS / 1000 + 3600),
        "table: an add creating an item must set its expires_at"
    );
}

async fn concurrent_adds_respect_max<T: Table>(t: &T) {
    ok(
        t.add(add("T#race", "Q", "used", 20, None)).await,
        "seed the counter",
    );
    let calls = (0..50).map(|_| t.add(add("T#race", "Q", "used", 1, Some(50))));
    let results = futures::future::join_all(calls).await;
    let mut granted: Vec<i64> = Vec::new();
    let mut refused = 0;
    for r in results {
        match r {
            Ok(v) => granted.push(v),
            Err(crate::Error::Conflict(_)) => refused += 1,
            Err(e) => {
                panic!("table: a concurrent add failed with {e} instead of succeeding or Conflict")
            }
        }
    }
    granted.sort_unstable();
    assert_eq!(
        granted,
        (21..=50).collect::<Vec<_>>(),
        "table: 50 concurrent adds bounded at 50 from 20 must grant exactly 30, each seeing a distinct value"
    );
    assert_eq!(
        refused, 20,
        "table: the 20 adds over the bound must be refused"
    );
    let final_value = get(t, &Key::new("T#race", "Q"), "get")
        .await
        .and_then(|i| i.int("used"));
    assert_eq!(
        final_value,
        Some(50),
        "table: after the race the counter must sit exactly at its bound"
    );
}

async fn transact_applies_all<T: Table>(t: &T) {
    ok(
        t.put(item("T#tx", "OLD", json!({"v": 1})), Condition::None)
            .await,
        "put",
    );
    ok(
        t.put(
            item("T#tx", "GUARD", json!({"state": "open"})),
            Condition::None,
        )
        .await,
        "put",
    );
    let ops = vec![
        TransactOp::Put(item("T#tx", "NEW", json!({"v": 2})), Condition::NotExists),
        TransactOp::Delete(Key::new("T#tx", "OLD"), Condition::Exists),
        TransactOp::Check(
            Key::new("T#tx", "GUARD"),
            Condition::AttrEquals("state".into(), json!("open")),
        ),
        TransactOp::Add(add("T#tx", "COUNT", "n", 5, Some(5))),
    ];
    ok(
        t.transact(ops).await,
        "table: a transaction whose conditions all hold",
    );
    assert_eq!(
        get(t, &Key::new("T#tx", "NEW"), "get")
            .await
            .and_then(|i| i.int("v")),
        Some(2),
        "table: a transaction's put must be applied"
    );
    assert_eq!(
        get(t, &Key::new("T#tx", "OLD"), "get").await,
        None,
        "table: a transaction's delete must be applied"
    );
    assert_eq!(
        get(t, &Key::new("T#tx", "COUNT"), "get")
            .await
            .and_then(|i| i.int("n")),
        Some(5),
        "table: a transaction's add must be applied (creating the item)"
    );
    assert_eq!(
        get(t, &Key::new("T#tx", "GUARD"), "get")
            .await
            .and_then(|i| i.str("state").map(str::to_owned))
            .as_deref(),
        Some("open"),
        "table: a check must not change its item"
    );
}

async fn transact_is_all_or_none<T: Table>(t: &T) {
    ok(
        t.put(item("T#txf", "KEEP", json!({"v": 1})), Condition::None)
            .await,
        "put",
    );
    ok(t.add(add("T#txf", "COUNT", "n", 1, None)).await, "add");
    let before = (
        get(t, &Key::new("T#txf", "KEEP"), "get").await,
        get(t, &Key::new("T#txf", "COUNT"), "get").await,
    );
    let failing_last = |last: TransactOp| {
        vec![
            TransactOp::Put(item("T#txf", "NEW", json!({"v": 2})), Condition::None),
            TransactOp::Delete(Key::new("T#txf", "KEEP"), Condition::None),
            TransactOp::Add(add("T#txf", "COUNT", "n", 1, None)),
            TransactOp::Add(add("T#txf", "NEWCOUNT", "n", 1, None)),
            last,
        ]
    };
    let failures = [
        (
            "a Check on a missing item",
            TransactOp::Check(Key::new("T#txf", "MISSING"), Condition::Exists),
        ),
        (
            "a Put with NotExists on a live item",
            TransactOp::Put(item("T#txf", "OTHER", json!({})), Condition::NotExists),
        ),
        (
            "a Delete with a mismatching AttrEquals",
            TransactOp::Delete(
                Key::new("T#txf", "OTHER"),
                Condition::AttrEquals("v".into(), json!(99)),
            ),
        ),
        (
            "an Add over its max",
            TransactOp::Add(add("T#txf", "CAP", "n", 2, Some(1))),
        ),
    ];
    ok(
        t.put(item("T#txf", "OTHER", json!({"v": 1})), Condition::None)
            .await,
        "put",
    );
    for (what, op) in failures {
        let r = t.transact(failing_last(op)).await;
        assert!(
            is_conflict(&r),
            "table: a transaction with {what} must be Conflict, got {r:?}"
        );
        let after = (
            get(t, &Key::new("T#txf", "KEEP"), "get").await,
            get(t, &Key::new("T#txf", "COUNT"), "get").await,
        );
        assert_eq!(
            after, before,
            "table: a transaction with {what} must not apply its delete or its add"
        );
        assert_eq!(
            get(t, &Key::new("T#txf", "NEW"), "get").await,
            None,
            "table: a transaction with {what} must not apply its put"
        );
        assert_eq!(
            get(t, &Key::new("T#txf", "NEWCOUNT"), "get").await,
            None,
            "table: a transaction with {what} must not create items by adds"
        );
        assert_eq!(
            get(t, &Key::new("T#txf", "CAP"), "get").await,
            None,
            "table: a refused add in a transaction must not create its item"
        );
    }
}

async fn transact_rejects_bad_batches<T: Table>(t: &T) {
    let too_many: Vec<TransactOp> = (0..=MAX_TRANSACT_ITEMS)
        .map(|i| {
            TransactOp::Put(
                item("T#txb", &format!("K{i:02}"), json!({})),
                Condition::None,
            )
        })
        .collect();
    let r = t.transact(too_many).await;
    assert!(
        is_invalid(&r),
        "table: a transaction of {} operations must be Invalid, got {r:?}",
        MAX_TRANSACT_ITEMS + 1
    );
    assert_eq!(
        get(t, &Key::new("T#txb", "K00"), "get").await,
        None,
        "table: an oversized transaction must write nothing"
    );

    let max: Vec<TransactOp> = (0..MAX_TRANSACT_ITEMS)
        .map(|i| {
            TransactOp::Put(
                item("T#txb", &format!("M{i:02}"), json!({})),
                Condition::None,
            )
        })
        .collect();
    ok(
        t.transact(max).await,
        "table: a transaction of exactly MAX_TRANSACT_ITEMS operations",
    );
    let written = query_all(t, Query::new("T#txb", "M", 100), "query").await;
    assert_eq!(
        written.len(),
        MAX_TRANSACT_ITEMS,
        "table: every put of a full transaction must be applied"
    );

    let same_key = vec![
        TransactOp::Put(item("T#txb", "SAME", json!({})), Condition::None),
        TransactOp::Add(add("T#txb", "SAME", "n", 1, None)),
    ];
    let r = t.transact(same_key).await;
    assert!(
        is_invalid(&r),
        "table: two operations on one key must be Invalid, got {r:?}"
    );
    assert_eq!(
        get(t, &Key::new("T#txb", "SAME"), "get").await,
        None,
        "table: a transaction with two ops on one key must write nothing"
    );

    let r = t.transact(Vec::new()).await;
    assert!(
        is_invalid(&r),
        "table: an empty transaction must be Invalid, got {r:?}"
    );
}

async fn ttl_hides_expired_items<T: Table>(t: &T, clock: &ManualClock) {
    let now = START_MS / 1000;
    let key = Key::new("T#ttl", "S#1");
    let session = item("T#ttl", "S#1", json!({"user": "ann"})).with_ttl(now + 60);
    ok(
        t.put(session.clone(), Condition::None).await,
        "put with TTL",
    );
    ok(
        t.put(
            item("T#ttl", "S#2", json!({"user": "bob"})).with_ttl(now + 600),
            Condition::None,
        )
        .await,
        "put with a later TTL",
    );
    ok(
        t.put(item("T#ttl", "S#3", json!({"user": "cy"})), Condition::None)
            .await,
        "put without TTL",
    );

    assert_eq!(
        get(t, &key, "get before expiry").await,
        Some(session),
        "table: an item before its expires_at must read back with it"
    );
    clock.advance_ms(59_000);
    assert!(
        get(t, &key, "get just before expiry").await.is_some(),
        "table: an item must stay live until its expires_at"
    );
    clock.advance_ms(1_000);

    assert_eq!(
        get(t, &key, "get at expiry").await,
        None,
        "table: an item whose expires_at has come must read as absent"
    );
    let live = query_all(t, Query::new("T#ttl", "S#", 10), "query after expiry").await;
    assert_eq!(
        sks(&live),
        ["S#2", "S#3"],
        "table: a query must skip expired items"
    );
    let mut desc = Query::new("T#ttl", "S#", 1);
    desc.descending = true;
    let live = query_all(t, desc, "paged descending query after expiry").await;
    assert_eq!(
        sks(&live),
        ["S#3", "S#2"],
        "table: paging must skip expired items"
    );

    let r = t
        .put(
            item("T#ttl", "S#1", json!({"v": "exists?"})),
            Condition::Exists,
        )
        .await;
    assert!(
        is_conflict(&r),
        "table: Exists must fail on an expired item, got {r:?}"
    );
    let r = t
        .put(
            item("T#ttl", "S#1", json!({"v": "attr?"})),
            Condition::AttrEquals("user".into(), json!("ann")),
        )
        .await;
    assert!(
        is_conflict(&r),
        "table: AttrEquals must fail on an expired item, got {r:?}"
    );
    let r = t.delete(&key, Condition::Exists).await;
    assert!(
        is_conflict(&r),
        "table: a delete with Exists must fail on an expired item, got {r:?}"
    );
    let r = t
        .transact(vec![TransactOp::Check(key.clone(), Condition::Exists)])
        .await;
    assert!(
        is_conflict(&r),
        "table: a transaction's Check Exists must fail on an expired item, got {r:?}"
    );

    let fresh = item("T#ttl", "S#1", json!({"user": "dee"}));
    ok(
        t.put(fresh.clone(), Condition::NotExists).await,
        "table: NotExists must hold over an expired item",
    );
    assert_eq!(
        get(t, &key, "get after re-put").await,
        Some(fresh),
        "table: a put over an expired item must leave only the new item, without the old TTL"
    );
}

async fn ttl_restarts_expired_counters<T: Table>(t: &T, clock: &ManualClock) {
    // Quota windows are counters that expire: a new window must start from zero.
    let now = START_MS / 1000;
    let window = |delta| Add {
        key: Key::new("T#quota", "DAY"),
        attr: "used".into(),
        delta,
        max: Some(10),
        expires_at: Some(clock_secs(clock) + 60),
    };
    assert_eq!(
        ok(t.add(window(7)).await, "add in the first window"),
        7,
        "table: the first add of a window"
    );
    let r = t.add(window(7)).await;
    assert!(
        is_conflict(&r),
        "table: an add over max within the window must be Conflict, got {r:?}"
    );
    let item = get(t, &Key::new("T#quota", "DAY"), "get").await;
    assert_eq!(
        item.and_then(|i| i.expires_at),
        Some(now + 60),
        "table: an add to a live item must keep its expires_at"
    );

    clock.advance_ms(60_000);
    assert_eq!(
        ok(t.add(window(7)).await, "add after expiry"),
        7,
        "table: an add to an expired item must start again from 0"
    );
    let item = get(t, &Key::new("T#quota", "DAY"), "get").await;
    assert_eq!(
        item.and_then(|i| i.expires_at),
        Some(now + 120),
        "table: an add recreating an expired item must set the new expires_at"
    );
}

fn clock_secs(clock: &ManualClock) -> i64 {
    crate::clock::Clock::now_secs(clock)
}

async fn json_round_trips_exactly<T: Table>(t: &T) {
    // Floats avoid integral values (1.0): DynamoDB normalises numbers, so 1.0 would come back as 1.
    let attrs_in = attrs(json!({
        "empty": "",
        "text": "plain",
        "unicode": "héllo wörld — 日本語 🎨 \u{0} \"quoted\" \\ back\nslash\ttab",
        "zero": 0,
        "int": 42,
        "negative": -17,
        "big": i64::MAX,
        "small": i64::MIN,
        "float": 1.5,
        "tiny": 1.0e-7,
        "neg_float": -0.25,
        "long_float": 123.456_789_012_345_67,
        "yes": true,
        "no": false,
        "nothing": null,
        "list": [1, "two", 3.5, false, null, [], {}, [[1, 2], {"deep": ["x"]}]],
        "empty_list": [],
        "empty_object": {},
        "nested": {"a": {"b": {"c": [{"d": "e"}, 7, -8.75]}}, "ünïcödé key": "v", "with space": 1},
    }));
    let it = Item::new(Key::new("T#json", "ITEM#ü"), attrs_in.clone())
        .with_ttl(START_MS / 1000 + 86_400);
    ok(
        t.put(it.clone(), Condition::None).await,
        "put of every JSON kind",
    );
    let back = get(t, &it.key, "get of every JSON kind")
        .await
        .expect("table: the JSON item must read back");
    for (name, value) in &attrs_in {
        assert_eq!(
            back.attrs.get(name),
            Some(value),
            "table: attribute `{name}` must round-trip exactly"
        );
    }
    assert_eq!(
        back, it,
        "table: the item must round-trip exactly (no attribute added or lost)"
    );
    let queried = query_all(
        t,
        Query::new("T#json", "ITEM#", 10),
        "query of the JSON item",
    )
    .await;
    assert_eq!(
        queried,
        vec![it],
        "table: query must return the same exact item as get"
    );
}
