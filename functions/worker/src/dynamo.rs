//! `DynamoTable`: the `Table` port on DynamoDB over its JSON protocol, for the Worker.
//!
//! The same table and the same item layout as `imagemcp-aws` (so a Worker and the Lambda functions
//! can share one table): `pk`/`sk` strings, the item's JSON attributes as top-level attributes
//! (numbers as `N` in serde_json's text, a reserved top-level name or one starting with `~` escaped
//! with one more `~`), and `expires_at` (N, Unix seconds) as the TTL attribute, which every read
//! and condition compares with the clock because DynamoDB deletes expired items lazily. The
//! algorithms (optimistic adds planned from a consistent read and replanned when the item changed
//! state, transactions as `TransactWriteItems`) are those of `imagemcp_aws::table`, whose module
//! documentation explains them; only the transport differs.

use std::sync::Arc;

use imagemcp_core::clock::Clock;
use imagemcp_core::table::{
    Add, Condition, Item, Key, Page, Query, Table, TransactOp, check_query, check_transact,
    decode_cursor, encode_cursor, is_live,
};
use imagemcp_core::{Error, Result};
use serde_json::{Map, Number, Value, json};

use crate::aws::AwsTarget;

const PK: &str = "pk";
const SK: &str = "sk";
const EXPIRES_AT: &str = "expires_at";
/// The prefix that escapes a top-level attribute name (as in `imagemcp_aws::attr`).
const ESCAPE: &str = "~";
/// How often an add or a transaction is replanned when its item changed state under it.
const MAX_REPLANS: usize = 8;
/// How long a throttled caller is asked to wait.
const THROTTLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The `Table` port on DynamoDB. Cheap to clone.
#[derive(Clone)]
pub struct DynamoTable {
    aws: Arc<AwsTarget>,
    table: String,
    clock: Arc<dyn Clock>,
}

// ---- attribute values (DynamoDB JSON) ----------------------------------------------------------

fn stored_name(name: &str) -> String {
    if [PK, SK, EXPIRES_AT].contains(&name) || name.starts_with(ESCAPE) {
        format!("{ESCAPE}{name}")
    } else {
        name.to_owned()
    }
}

fn user_name(stored: &str) -> &str {
    stored.strip_prefix(ESCAPE).unwrap_or(stored)
}

/// The attribute value of a JSON value.
pub(crate) fn to_attr(value: &Value) -> Value {
    match value {
        Value::Null => json!({"NULL": true}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::String(s) => json!({"S": s}),
        Value::Array(items) => json!({"L": items.iter().map(to_attr).collect::<Vec<_>>()}),
        Value::Object(map) => json!({"M": map
            .iter()
            .map(|(k, v)| (k.clone(), to_attr(v)))
            .collect::<Map<String, Value>>()}),
    }
}

fn foreign() -> Error {
    Error::internal("a stored attribute has a type this adapter never writes")
}

/// The JSON value of an attribute value.
pub(crate) fn from_attr(attr: &Value) -> Result<Value> {
    let (tag, inner) = attr
        .as_object()
        .and_then(|m| m.iter().next())
        .ok_or_else(foreign)?;
    Ok(match (tag.as_str(), inner) {
        ("NULL", _) => Value::Null,
        ("BOOL", Value::Bool(b)) => Value::Bool(*b),
        ("N", Value::String(n)) => Value::Number(number(n)?),
        ("S", Value::String(s)) => Value::String(s.clone()),
        ("L", Value::Array(items)) => {
            Value::Array(items.iter().map(from_attr).collect::<Result<_>>()?)
        }
        ("M", Value::Object(map)) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
                .collect::<Result<_>>()?,
        ),
        _ => return Err(foreign()),
    })
}

fn number(text: &str) -> Result<Number> {
    serde_json::from_str::<Number>(text)
        .map_err(|_| Error::internal("a stored number is not a valid JSON number"))
}

fn int(attr: &Value) -> Result<i64> {
    attr.get("N")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::internal("a stored counter is not a number"))
        .and_then(number)?
        .as_i64()
        .ok_or_else(|| Error::internal("a stored counter is not a 64-bit integer"))
}

fn n(v: i64) -> Value {
    json!({"N": v.to_string()})
}

fn s(v: &str) -> Value {
    json!({"S": v})
}

fn key_attrs(key: &Key) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(PK.into(), s(&key.pk));
    m.insert(SK.into(), s(&key.sk));
    m
}

fn to_item(item: &Item) -> Map<String, Value> {
    let mut out = key_attrs(&item.key);
    for (name, value) in &item.attrs {
        out.insert(stored_name(name), to_attr(value));
    }
    if let Some(at) = item.expires_at {
        out.insert(EXPIRES_AT.into(), n(at));
    }
    out
}

fn from_item(mut raw: Map<String, Value>) -> Result<Item> {
    let mut take_s = |name: &str| match raw.remove(name) {
        Some(Value::Object(mut m)) => match m.remove("S") {
            Some(Value::String(s)) => Ok(s),
            _ => Err(Error::internal(format!(
                "a stored item has no string `{name}`"
            ))),
        },
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

fn expires_at(raw: &Map<String, Value>) -> Result<Option<i64>> {
    raw.get(EXPIRES_AT).map(int).transpose()
}

// ---- expressions -------------------------------------------------------------------------------

/// A condition (or update) expression with exactly the names and values it uses.
#[derive(Default)]
struct Expr {
    text: String,
    names: Map<String, Value>,
    values: Map<String, Value>,
}

impl Expr {
    fn name(&mut self, placeholder: &str, name: &str) -> &mut Self {
        self.names
            .insert(placeholder.into(), Value::String(name.into()));
        self
    }

    fn value(&mut self, placeholder: &str, value: Value) -> &mut Self {
        self.values.insert(placeholder.into(), value);
        self
    }

    /// Adds the expression's fields to a request body, under `field` for the text.
    fn apply(&self, field: &str, body: &mut Map<String, Value>) {
        body.insert(field.into(), Value::String(self.text.clone()));
        if !self.names.is_empty() {
            body.insert(
                "ExpressionAttributeNames".into(),
                Value::Object(self.names.clone()),
            );
        }
        if !self.values.is_empty() {
            body.insert(
                "ExpressionAttributeValues".into(),
                Value::Object(self.values.clone()),
            );
        }
    }
}

fn condition_expr(cond: &Condition, now: i64) -> Option<Expr> {
    let mut e = Expr::default();
    match cond {
        Condition::None => return None,
        Condition::NotExists => {
            e.text = "attribute_not_exists(#pk) OR #exp <= :now".into();
            e.name("#pk", PK);
        }
        Condition::Exists => {
            e.text = "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)".into();
            e.name("#pk", PK);
        }
        Condition::AttrEquals(attr, value) => {
            e.text = "#c = :c AND (attribute_not_exists(#exp) OR #exp > :now)".into();
            e.name("#c", &stored_name(attr)).value(":c", to_attr(value));
        }
    }
    e.name("#exp", EXPIRES_AT).value(":now", n(now));
    Some(e)
}

fn always() -> Expr {
    let mut e = Expr {
        text: "attribute_not_exists(#pk) OR attribute_exists(#pk)".into(),
        ..Expr::default()
    };
    e.name("#pk", PK);
    e
}

#[derive(Clone, Debug, PartialEq)]
enum AddPlan {
    Increment,
    Create { expired_at: Option<i64> },
}

fn add_limit(add: &Add) -> Option<i64> {
    match add.max {
        Some(max) => Some(max.saturating_sub(add.delta)),
        None if add.delta > 0 => Some(i64::MAX - add.delta),
        None => None,
    }
}

fn increment_expr(add: &Add, now: i64) -> Expr {
    let mut e = Expr {
        text: "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)".into(),
        ..Expr::default()
    };
    e.name("#pk", PK)
        .name("#exp", EXPIRES_AT)
        .value(":now", n(now))
        .name("#a", &stored_name(&add.attr));
    if let Some(limit) = add_limit(add) {
        e.text.push_str(if limit >= 0 {
            " AND (attribute_not_exists(#a) OR #a <= :lim)"
        } else {
            " AND #a <= :lim"
        });
        e.value(":lim", n(limit));
    }
    e.value(":d", n(add.delta));
    e
}

fn create_item(add: &Add, expired_at: Option<i64>) -> Result<(Map<String, Value>, Expr)> {
    if add.max.is_some_and(|max| add.delta > max) {
        return Err(over_max(add));
    }
    let mut item = key_attrs(&add.key);
    item.insert(stored_name(&add.attr), n(add.delta));
    if let Some(at) = add.expires_at {
        item.insert(EXPIRES_AT.into(), n(at));
    }
    let mut e = Expr::default();
    match expired_at {
        None => {
            e.text = "attribute_not_exists(#pk)".into();
            e.name("#pk", PK);
        }
        Some(at) => {
            e.text = "#exp = :old".into();
            e.name("#exp", EXPIRES_AT).value(":old", n(at));
        }
    }
    Ok((item, e))
}

fn over_max(add: &Add) -> Error {
    Error::Conflict(format!("adding to `{}` would exceed its maximum", add.attr))
}

/// A DynamoDB error reply: its code (the part of `__type` after `#`), message and, for a
/// cancelled transaction, the reason code of each operation.
struct Failure {
    code: String,
    message: String,
    reasons: Vec<Option<String>>,
}

fn classify(op: &str, failure: &Failure) -> Error {
    match failure.code.as_str() {
        "ConditionalCheckFailedException" | "TransactionConflictException" => {
            Error::Conflict(format!("DynamoDB {op}: the condition does not hold"))
        }
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded" => Error::RateLimited {
            retry_after: THROTTLE_RETRY_AFTER,
        },
        "ValidationException" => Error::invalid(format!("DynamoDB {op}"), &failure.message),
        "InternalServerError" | "ServiceUnavailable" | "" => {
            Error::Unavailable(format!("DynamoDB {op} failed: {}", failure.message))
        }
        code => Error::internal(format!("DynamoDB {op} failed: {code}: {}", failure.message)),
    }
}

impl DynamoTable {
    pub fn new(aws: Arc<AwsTarget>, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            aws,
            table: table.into(),
            clock,
        }
    }

    /// One DynamoDB API call: `Ok(body)` on success, `Err(failure)` on an error reply.
    async fn call(
        &self,
        op: &str,
        mut body: Map<String, Value>,
    ) -> Result<std::result::Result<Map<String, Value>, Failure>> {
        if op != "TransactWriteItems" {
            body.insert("TableName".into(), Value::String(self.table.clone()));
        }
        let request = http::Request::post(format!(
            "{}/",
            self.aws.dynamodb_endpoint.trim_end_matches('/')
        ))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .body(serde_json::to_vec(&Value::Object(body)).map_err(Error::internal)?)
        .map_err(Error::internal)?;
        let reply = self.aws.send("dynamodb", request).await?;
        let parsed: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if (200..300).contains(&reply.status) {
            return match parsed {
                Value::Object(m) => Ok(Ok(m)),
                _ => Err(Error::Unavailable(format!(
                    "DynamoDB {op} answered with no JSON"
                ))),
            };
        }
        if reply.status >= 500 {
            return Err(Error::Unavailable(format!(
                "DynamoDB {op} failed with {}",
                reply.status
            )));
        }
        let kind = parsed["__type"].as_str().unwrap_or("");
        let code = kind.rsplit('#').next().unwrap_or("").to_owned();
        let message = parsed
            .get("message")
            .or_else(|| parsed.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        let reasons = parsed["CancellationReasons"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        r["Code"]
                            .as_str()
                            .filter(|c| *c != "None")
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Err(Failure {
            code,
            message,
            reasons,
        }))
    }

    /// A call whose every error reply is mapped to the core error.
    async fn call_ok(&self, op: &str, body: Map<String, Value>) -> Result<Map<String, Value>> {
        self.call(op, body).await?.map_err(|f| classify(op, &f))
    }

    async fn get_raw(&self, key: &Key) -> Result<Option<Map<String, Value>>> {
        let mut body = Map::new();
        body.insert("Key".into(), Value::Object(key_attrs(key)));
        body.insert("ConsistentRead".into(), Value::Bool(true));
        let mut out = self.call_ok("GetItem", body).await?;
        Ok(match out.remove("Item") {
            Some(Value::Object(item)) => Some(item),
            _ => None,
        })
    }

    async fn plan(&self, key: &Key, now: i64) -> Result<AddPlan> {
        Ok(match self.get_raw(key).await? {
            None => AddPlan::Create { expired_at: None },
            Some(raw) => match expires_at(&raw)? {
                Some(at) if !is_live(Some(at), now) => AddPlan::Create {
                    expired_at: Some(at),
                },
                _ => AddPlan::Increment,
            },
        })
    }

    async fn try_add(&self, add: &Add, plan: &AddPlan, now: i64) -> Result<Option<i64>> {
        match plan {
            AddPlan::Increment => {
                let mut body = Map::new();
                body.insert("Key".into(), Value::Object(key_attrs(&add.key)));
                body.insert("UpdateExpression".into(), json!("ADD #a :d"));
                body.insert("ReturnValues".into(), json!("UPDATED_NEW"));
                increment_expr(add, now).apply("ConditionExpression", &mut body);
                match self.call("UpdateItem", body).await? {
                    Ok(out) => {
                        let value = out
                            .get("Attributes")
                            .and_then(|a| a.get(stored_name(&add.attr)))
                            .ok_or_else(|| Error::internal("UpdateItem returned no new value"))?;
                        Ok(Some(int(value)?))
                    }
                    Err(failure) => match classify("UpdateItem", &failure) {
                        Error::Conflict(_) => match self.plan(&add.key, now).await? {
                            AddPlan::Increment => Err(over_max(add)),
                            AddPlan::Create { .. } => Ok(None),
                        },
                        other => Err(other),
                    },
                }
            }
            AddPlan::Create { expired_at } => {
                let (item, e) = create_item(add, *expired_at)?;
                let mut body = Map::new();
                body.insert("Item".into(), Value::Object(item));
                e.apply("ConditionExpression", &mut body);
                match self.call("PutItem", body).await? {
                    Ok(_) => Ok(Some(add.delta)),
                    Err(failure) => match classify("PutItem", &failure) {
                        Error::Conflict(_) => Ok(None),
                        other => Err(other),
                    },
                }
            }
        }
    }

    fn transact_items(
        &self,
        ops: &[TransactOp],
        plans: &[Option<AddPlan>],
        now: i64,
    ) -> Result<Vec<Value>> {
        let table = Value::String(self.table.clone());
        ops.iter()
            .zip(plans)
            .map(|(op, plan)| {
                let mut body = Map::new();
                body.insert("TableName".into(), table.clone());
                let kind = match (op, plan) {
                    (TransactOp::Put(item, cond), _) => {
                        body.insert("Item".into(), Value::Object(to_item(item)));
                        if let Some(e) = condition_expr(cond, now) {
                            e.apply("ConditionExpression", &mut body);
                        }
                        "Put"
                    }
                    (TransactOp::Delete(key, cond), _) => {
                        body.insert("Key".into(), Value::Object(key_attrs(key)));
                        if let Some(e) = condition_expr(cond, now) {
                            e.apply("ConditionExpression", &mut body);
                        }
                        "Delete"
                    }
                    (TransactOp::Check(key, cond), _) => {
                        body.insert("Key".into(), Value::Object(key_attrs(key)));
                        condition_expr(cond, now)
                            .unwrap_or_else(always)
                            .apply("ConditionExpression", &mut body);
                        "ConditionCheck"
                    }
                    (TransactOp::Add(add), Some(AddPlan::Increment)) => {
                        body.insert("Key".into(), Value::Object(key_attrs(&add.key)));
                        body.insert("UpdateExpression".into(), json!("ADD #a :d"));
                        increment_expr(add, now).apply("ConditionExpression", &mut body);
                        "Update"
                    }
                    (TransactOp::Add(add), plan) => {
                        let expired_at = match plan {
                            Some(AddPlan::Create { expired_at }) => *expired_at,
                            _ => None,
                        };
                        let (item, e) = create_item(add, expired_at)?;
                        body.insert("Item".into(), Value::Object(item));
                        e.apply("ConditionExpression", &mut body);
                        "Put"
                    }
                };
                Ok(json!({ kind: body }))
            })
            .collect()
    }

    async fn plans(&self, ops: &[TransactOp], now: i64) -> Result<Vec<Option<AddPlan>>> {
        let mut plans = Vec::with_capacity(ops.len());
        for op in ops {
            plans.push(match op {
                TransactOp::Add(add) => Some(self.plan(&add.key, now).await?),
                _ => None,
            });
        }
        Ok(plans)
    }
}

#[async_trait::async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let now = self.clock.now_secs();
        match self.get_raw(key).await? {
            Some(raw) if is_live(expires_at(&raw)?, now) => Ok(Some(from_item(raw)?)),
            _ => Ok(None),
        }
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        let mut body = Map::new();
        body.insert("Item".into(), Value::Object(to_item(&item)));
        if let Some(e) = condition_expr(&cond, self.clock.now_secs()) {
            e.apply("ConditionExpression", &mut body);
        }
        self.call_ok("PutItem", body).await.map(drop)
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        let mut body = Map::new();
        body.insert("Key".into(), Value::Object(key_attrs(key)));
        if let Some(e) = condition_expr(&cond, self.clock.now_secs()) {
            e.apply("ConditionExpression", &mut body);
        }
        self.call_ok("DeleteItem", body).await.map(drop)
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        check_query(query)?;
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let now = self.clock.now_secs();
        let mut key_cond = Expr {
            text: "#pk = :pk".into(),
            ..Expr::default()
        };
        key_cond.name("#pk", PK).value(":pk", s(&query.pk));
        if !query.sk_prefix.is_empty() {
            key_cond.text.push_str(" AND begins_with(#sk, :prefix)");
            key_cond
                .name("#sk", SK)
                .value(":prefix", s(&query.sk_prefix));
        }
        key_cond.name("#exp", EXPIRES_AT).value(":now", n(now));

        // DynamoDB applies `Limit` before the expiry filter: read on until one item beyond the
        // page is found or the range ends.
        let mut start = after.map(|sk| key_attrs(&Key::new(query.pk.clone(), sk)));
        let mut items: Vec<Item> = Vec::new();
        loop {
            let want = query.limit + 1 - items.len();
            let mut body = Map::new();
            key_cond.apply("KeyConditionExpression", &mut body);
            body.insert(
                "FilterExpression".into(),
                json!("attribute_not_exists(#exp) OR #exp > :now"),
            );
            body.insert("ScanIndexForward".into(), Value::Bool(!query.descending));
            body.insert("ConsistentRead".into(), Value::Bool(true));
            body.insert("Limit".into(), json!(want));
            if let Some(start) = start.take() {
                body.insert("ExclusiveStartKey".into(), Value::Object(start));
            }
            let mut out = self.call_ok("Query", body).await?;
            if let Some(Value::Array(raw)) = out.remove("Items") {
                for raw in raw {
                    match raw {
                        Value::Object(raw) => items.push(from_item(raw)?),
                        _ => return Err(foreign()),
                    }
                }
            }
            match out.remove("LastEvaluatedKey") {
                Some(Value::Object(last)) if items.len() <= query.limit => start = Some(last),
                _ => break,
            }
        }
        let next = if items.len() > query.limit {
            items.truncate(query.limit);
            items.last().map(|i| encode_cursor(&i.key.sk))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn add(&self, add: Add) -> Result<i64> {
        let now = self.clock.now_secs();
        let mut plan = AddPlan::Increment;
        for _ in 0..MAX_REPLANS {
            if let Some(value) = self.try_add(&add, &plan, now).await? {
                return Ok(value);
            }
            plan = self.plan(&add.key, now).await?;
        }
        Err(Error::Unavailable(format!(
            "the counter `{}` kept changing; try again",
            add.attr
        )))
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<()> {
        check_transact(&ops)?;
        let now = self.clock.now_secs();
        for _ in 0..MAX_REPLANS {
            let plans = self.plans(&ops, now).await?;
            let items = self.transact_items(&ops, &plans, now)?;
            let mut body = Map::new();
            body.insert("TransactItems".into(), Value::Array(items));
            let failure = match self.call("TransactWriteItems", body).await? {
                Ok(_) => return Ok(()),
                Err(failure) => failure,
            };
            if failure.code != "TransactionCanceledException" {
                return Err(classify("TransactWriteItems", &failure));
            }
            let reasons = failure.reasons;
            let failed = |code: &str| reasons.iter().any(|r| r.as_deref() == Some(code));
            if failed("ValidationError") {
                return Err(Error::invalid(
                    "transaction",
                    "DynamoDB rejected an operation (e.g. an add to a non-number)",
                ));
            }
            if failed("ThrottlingError") || failed("ProvisionedThroughputExceeded") {
                return Err(Error::RateLimited {
                    retry_after: THROTTLE_RETRY_AFTER,
                });
            }
            if failed("TransactionConflict") {
                continue;
            }
            let mut replan = false;
            for ((op, plan), reason) in ops.iter().zip(&plans).zip(&reasons) {
                if let (TransactOp::Add(add), Some(plan)) = (op, plan)
                    && reason.as_deref() == Some("ConditionalCheckFailed")
                    && self.plan(&add.key, now).await? != *plan
                {
                    replan = true;
                }
            }
            if !replan {
                return Err(Error::Conflict(
                    "a condition of the transaction does not hold".into(),
                ));
            }
        }
        Err(Error::Unavailable(
            "the transaction's items kept changing; try again".into(),
        ))
    }
}
