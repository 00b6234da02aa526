//! The table's decisions on answers DynamoDB gives only under races or load (a counter expiring
//! between the read and the write, a cancelled or throttled transaction, short filtered pages),
//! driven through a scripted transport that records every request as its wire JSON. The contract
//! suites run the same code against DynamoDB itself (moto, and workerd for the Worker).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use imagemcp_core::Error;
use imagemcp_core::clock::ManualClock;
use imagemcp_core::table::{Add, Condition, Item, Key, Query, Table, TransactOp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::{DynamoError, ServiceError};
use crate::transport::*;
use crate::{DynamoCache, DynamoTable};

const NOW: i64 = 1_800_000_000;

/// Answers requests from a script, in order, and records them.
#[derive(Clone, Default)]
struct Scripted {
    requests: Arc<Mutex<Vec<(&'static str, Value)>>>,
    replies: Arc<Mutex<VecDeque<Result<Value, DynamoError>>>>,
}

impl Scripted {
    fn reply(&self, reply: Result<Value, DynamoError>) -> &Self {
        self.replies.lock().unwrap().push_back(reply);
        self
    }

    fn ok(&self, body: Value) -> &Self {
        self.reply(Ok(body))
    }

    fn fail(&self, code: &str) -> &Self {
        self.reply(Err(DynamoError::Service(ServiceError::new(code, None))))
    }

    fn cancelled(&self, reasons: &[&str]) -> &Self {
        self.reply(Err(DynamoError::Service(ServiceError::cancelled(
            None,
            reasons.iter().map(|r| Some((*r).to_owned())),
        ))))
    }

    fn requests(&self) -> Vec<(&'static str, Value)> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }

    fn answer<O: DeserializeOwned>(
        &self,
        op: &'static str,
        input: &impl Serialize,
    ) -> Result<O, DynamoError> {
        self.requests
            .lock()
            .unwrap()
            .push((op, serde_json::to_value(input).unwrap()));
        let reply = self.replies.lock().unwrap().pop_front();
        let body = reply.unwrap_or_else(|| panic!("no reply scripted for {op}"))?;
        Ok(serde_json::from_value(body).unwrap())
    }
}

#[async_trait::async_trait]
impl Transport for Scripted {
    async fn get_item(&self, input: GetItemInput) -> Result<GetItemOutput, DynamoError> {
        self.answer("GetItem", &input)
    }
    async fn put_item(&self, input: PutItemInput) -> Result<(), DynamoError> {
        self.answer::<Value>("PutItem", &input).map(drop)
    }
    async fn update_item(&self, input: UpdateItemInput) -> Result<UpdateItemOutput, DynamoError> {
        self.answer("UpdateItem", &input)
    }
    async fn delete_item(&self, input: DeleteItemInput) -> Result<(), DynamoError> {
        self.answer::<Value>("DeleteItem", &input).map(drop)
    }
    async fn query(&self, input: QueryInput) -> Result<QueryOutput, DynamoError> {
        self.answer("Query", &input)
    }
    async fn transact_write_items(
        &self,
        input: TransactWriteItemsInput,
    ) -> Result<(), DynamoError> {
        self.answer::<Value>("TransactWriteItems", &input).map(drop)
    }
}

fn table(transport: &Scripted) -> DynamoTable<Scripted> {
    DynamoTable::new(
        transport.clone(),
        "t",
        Arc::new(ManualClock::new(NOW * 1000)),
    )
}

fn quota_add() -> Add {
    Add {
        key: Key::new("ORG#a", "QUOTA#2027-01"),
        attr: "used".into(),
        delta: 1,
        max: Some(10),
        expires_at: Some(NOW + 60),
    }
}

/// A stored counter item as `GetItem` answers it, expiring at `expires_at`.
fn counter(expires_at: i64) -> Value {
    json!({"Item": {
        "pk": {"S": "ORG#a"}, "sk": {"S": "QUOTA#2027-01"},
        "used": {"N": "3"}, "expires_at": {"N": expires_at.to_string()},
    }})
}

#[tokio::test]
async fn requests_are_dynamodb_json() {
    let t = Scripted::default();
    t.ok(json!({}));
    let mut attrs = Map::new();
    attrs.insert("pk".into(), json!("shadow"));
    attrs.insert("n".into(), json!(1.5));
    let item = Item::new(Key::new("ORG#a", "IMG#1"), attrs).with_ttl(NOW + 5);
    table(&t).put(item, Condition::NotExists).await.unwrap();
    assert_eq!(
        t.requests(),
        vec![(
            "PutItem",
            json!({
                "TableName": "t",
                "Item": {
                    "pk": {"S": "ORG#a"}, "sk": {"S": "IMG#1"}, "~pk": {"S": "shadow"},
                    "n": {"N": "1.5"}, "expires_at": {"N": (NOW + 5).to_string()},
                },
                "ConditionExpression": "attribute_not_exists(#pk) OR #exp <= :now",
                "ExpressionAttributeNames": {"#pk": "pk", "#exp": "expires_at"},
                "ExpressionAttributeValues": {":now": {"N": NOW.to_string()}},
            })
        )]
    );

    t.ok(json!({}));
    table(&t)
        .delete(&Key::new("ORG#a", "IMG#1"), Condition::None)
        .await
        .unwrap();
    assert_eq!(
        t.requests()[0].1,
        json!({"TableName": "t", "Key": {"pk": {"S": "ORG#a"}, "sk": {"S": "IMG#1"}}}),
        "no condition means no expression fields at all"
    );
}

#[tokio::test]
async fn an_add_is_tried_first_and_read_only_when_it_fails() {
    let t = Scripted::default();
    t.ok(json!({"Attributes": {"used": {"N": "4"}}}));
    assert_eq!(table(&t).add(quota_add()).await.unwrap(), 4);
    let requests = t.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (op, update) = &requests[0];
    assert_eq!(*op, "UpdateItem");
    assert_eq!(update["UpdateExpression"], "ADD #a :d");
    assert_eq!(update["ReturnValues"], "UPDATED_NEW");
    assert_eq!(
        update["ExpressionAttributeValues"][":lim"],
        json!({"N": "9"})
    );
}

#[tokio::test]
async fn an_add_to_an_expired_counter_recreates_it_from_zero() {
    let t = Scripted::default();
    // The increment's condition fails; the read shows the counter expired; the re-creation wins.
    t.fail("ConditionalCheckFailedException")
        .ok(counter(NOW))
        .ok(counter(NOW))
        .ok(json!({}));
    assert_eq!(table(&t).add(quota_add()).await.unwrap(), 1);
    let requests = t.requests();
    let ops: Vec<_> = requests.iter().map(|(op, _)| *op).collect();
    assert_eq!(ops, ["UpdateItem", "GetItem", "GetItem", "PutItem"]);
    let put = &requests[3].1;
    assert_eq!(put["ConditionExpression"], "#exp = :old");
    assert_eq!(
        put["ExpressionAttributeValues"][":old"],
        json!({"N": NOW.to_string()})
    );
    assert_eq!(put["Item"]["used"], json!({"N": "1"}));
}

#[tokio::test]
async fn an_add_over_its_bound_on_a_live_counter_is_a_conflict() {
    let t = Scripted::default();
    t.fail("ConditionalCheckFailedException")
        .ok(counter(NOW + 60));
    let e = table(&t).add(quota_add()).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("maximum")),
        "{e:?}"
    );
}

fn transaction() -> Vec<TransactOp> {
    vec![
        TransactOp::Put(
            Item::new(Key::new("ORG#a", "IMG#1"), Map::new()),
            Condition::NotExists,
        ),
        TransactOp::Add(quota_add()),
    ]
}

#[tokio::test]
async fn a_transaction_whose_counter_expired_under_it_is_replanned() {
    let t = Scripted::default();
    t.ok(counter(NOW + 60)) // planned: increment
        .cancelled(&["None", "ConditionalCheckFailed"])
        .ok(counter(NOW)) // the counter expired meanwhile: replan
        .ok(counter(NOW))
        .ok(json!({}));
    table(&t).transact(transaction()).await.unwrap();
    let requests = t.requests();
    let ops: Vec<_> = requests.iter().map(|(op, _)| *op).collect();
    assert_eq!(
        ops,
        [
            "GetItem",
            "TransactWriteItems",
            "GetItem",
            "GetItem",
            "TransactWriteItems"
        ]
    );
    let first = &requests[1].1["TransactItems"];
    assert_eq!(first[1]["Update"]["UpdateExpression"], "ADD #a :d");
    assert!(first[1]["Update"].get("ReturnValues").is_none());
    let second = &requests[4].1["TransactItems"];
    assert_eq!(second[0]["Put"]["TableName"], "t");
    assert_eq!(second[1]["Put"]["ConditionExpression"], "#exp = :old");
}

#[tokio::test]
async fn a_failed_condition_of_the_callers_is_a_conflict() {
    let t = Scripted::default();
    t.ok(counter(NOW + 60))
        .cancelled(&["ConditionalCheckFailed", "None"]);
    let e = table(&t).transact(transaction()).await.unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
    // An add's failed condition with its item as planned is the bound, not a race: also a conflict.
    t.ok(counter(NOW + 60))
        .cancelled(&["None", "ConditionalCheckFailed"])
        .ok(counter(NOW + 60));
    let e = table(&t).transact(transaction()).await.unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
}

#[tokio::test]
async fn cancellation_reasons_decide_the_error() {
    let t = Scripted::default();
    t.ok(counter(NOW + 60))
        .cancelled(&["ThrottlingError", "None"]);
    let e = table(&t).transact(transaction()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");

    t.ok(counter(NOW + 60))
        .cancelled(&["None", "ValidationError"]);
    let e = table(&t).transact(transaction()).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");

    // A conflicting transaction elsewhere: retried, with the conditions evaluated again.
    t.ok(counter(NOW + 60))
        .cancelled(&["TransactionConflict", "None"])
        .ok(counter(NOW + 60))
        .ok(json!({}));
    table(&t).transact(transaction()).await.unwrap();

    t.ok(counter(NOW + 60)).fail("ThrottlingException");
    let e = table(&t).transact(transaction()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
}

#[tokio::test]
async fn a_query_reads_past_pages_the_expiry_filter_emptied() {
    let t = Scripted::default();
    let item = |sk: &str| json!({"pk": {"S": "ORG#a"}, "sk": {"S": sk}});
    t.ok(json!({"Items": [], "LastEvaluatedKey": item("IMG#1")}))
        .ok(json!({"Items": [item("IMG#2"), item("IMG#3")], "LastEvaluatedKey": item("IMG#3")}));
    let mut query = Query::new("ORG#a", "IMG#", 1);
    query.descending = true;
    let page = table(&t).query(&query).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].key.sk, "IMG#2");
    assert_eq!(
        page.next,
        Some(imagemcp_core::table::encode_cursor("IMG#2"))
    );
    let requests = t.requests();
    assert_eq!(requests.len(), 2);
    let (first, second) = (&requests[0].1, &requests[1].1);
    assert_eq!(first["Limit"], 2);
    assert_eq!(first["ScanIndexForward"], false);
    assert_eq!(first["ConsistentRead"], true);
    assert_eq!(
        first["KeyConditionExpression"],
        "#pk = :pk AND begins_with(#sk, :prefix)"
    );
    assert_eq!(
        first["FilterExpression"],
        "attribute_not_exists(#exp) OR #exp > :now"
    );
    assert!(first.get("ExclusiveStartKey").is_none());
    assert_eq!(second["ExclusiveStartKey"], item("IMG#1"));
}

#[tokio::test]
async fn cache_entries_are_binary_ttl_items() {
    let t = Scripted::default();
    let cache =
        DynamoCache::<Scripted>::new(t.clone(), "t", Arc::new(ManualClock::new(NOW * 1000)));
    use imagemcp_core::cache::Cache;
    t.ok(json!({}));
    cache
        .put("k", vec![1, 2, 3], std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        t.requests()[0].1,
        json!({"TableName": "t", "Item": {
            "pk": {"S": "CACHE#k"}, "sk": {"S": "V"}, "v": {"B": "AQID"},
            "expires_at": {"N": (NOW + 60).to_string()},
        }})
    );
    t.ok(json!({"Item": {"pk": {"S": "CACHE#k"}, "sk": {"S": "V"}, "v": {"B": "AQID"}, "expires_at": {"N": (NOW + 1).to_string()}}}))
        .ok(json!({"Item": {"pk": {"S": "CACHE#k"}, "sk": {"S": "V"}, "v": {"B": "AQID"}, "expires_at": {"N": NOW.to_string()}}}));
    assert_eq!(cache.get("k").await.unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(cache.get("k").await.unwrap(), None, "expired at now");
    assert_eq!(t.requests()[0].1["ConsistentRead"], false);
}
