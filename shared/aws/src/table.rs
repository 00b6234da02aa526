//! `DynamoTable`: the `Table` port on one DynamoDB table (single-table design).
//!
//! Items are `pk` (S), `sk` (S), their JSON attributes as top-level attributes (see `attr`), and
//! `expires_at` (N, Unix seconds), the table's TTL attribute. DynamoDB deletes expired items
//! lazily (within days), so every read filters them by the injected clock and every condition
//! treats an expired item as absent. Reads are strongly consistent: a write is visible to the next
//! request, whichever Lambda instance serves it.
//!
//! Adds: an `UpdateItem … ADD` on a live item, guarded by the bound; a missing or expired item is
//! (re)created by a conditional put, so a new quota window starts from zero and drops the old
//! window's attributes, as the contract requires. Transactions map to `TransactWriteItems`; an add
//! inside one is planned from a consistent read of its item and the whole transaction retried when
//! that item changed state under it (so a lost race is never reported as a failed condition).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use imagemcp_core::clock::Clock;
use imagemcp_core::table::{
    Add, Condition, Item, Key, Page, Query, Table, TransactOp, check_query, check_transact,
    decode_cursor, encode_cursor, is_live,
};
use imagemcp_core::{Error, Result};

use crate::attr::{self, key_attrs, to_attr};
use crate::error::map_sdk;
use crate::{EXPIRES_AT, PK, SK};

/// How often an add or a transaction is retried when an item it planned around changed state
/// (was created, expired or recreated) between the read and the write.
const MAX_REPLANS: usize = 8;

/// The `Table` port on DynamoDB. Cheap to clone.
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// A condition (or update) expression with exactly the names and values it uses: DynamoDB
/// rejects unused placeholders.
#[derive(Default)]
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, placeholder: &str, name: &str) -> &mut Self {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        self
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `cond` as a condition expression evaluated at `now` (`None` for `Condition::None`).
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
            e.name("#c", &attr::stored_name(attr))
                .value(":c", to_attr(value));
        }
    }
    e.name("#exp", EXPIRES_AT).value(":now", n(now));
    Some(e)
}

/// A condition that always holds (a transaction's `Check` with `Condition::None`).
fn always() -> Expr {
    let mut e = Expr {
        text: "attribute_not_exists(#pk) OR attribute_exists(#pk)".into(),
        ..Expr::default()
    };
    e.name("#pk", PK);
    e
}

/// The state of an add's item, which decides how the add is written.
#[derive(Clone, Debug, PartialEq)]
enum AddPlan {
    /// Live: `ADD` to it, guarded by liveness and the bound.
    Increment,
    /// Missing, or expired at the given time: write a fresh item holding only the counter.
    Create { expired_at: Option<i64> },
}

/// The largest old value that keeps `old + delta` within the add's bound (and within `i64`).
fn add_limit(add: &Add) -> Option<i64> {
    match add.max {
        Some(max) => Some(max.saturating_sub(add.delta)),
        None if add.delta > 0 => Some(i64::MAX - add.delta),
        None => None,
    }
}

/// The update of a live counter: `ADD #a :d`, if still live and within its bound.
fn increment_expr(add: &Add, now: i64) -> Expr {
    let mut e = Expr {
        text: "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)".into(),
        ..Expr::default()
    };
    e.name("#pk", PK)
        .name("#exp", EXPIRES_AT)
        .value(":now", n(now))
        .name("#a", &attr::stored_name(&add.attr));
    if let Some(limit) = add_limit(add) {
        // A missing attribute counts as 0, which is within the bound only when the limit is.
        e.text.push_str(if limit >= 0 {
            " AND (attribute_not_exists(#a) OR #a <= :lim)"
        } else {
            " AND #a <= :lim"
        });
        e.value(":lim", n(limit));
    }
    e
}

/// The fresh item an add creates, and the condition that the item is still as planned.
fn create_item(
    add: &Add,
    expired_at: Option<i64>,
) -> Result<(HashMap<String, AttributeValue>, Expr)> {
    if add.max.is_some_and(|max| add.delta > max) {
        return Err(over_max(add));
    }
    let mut item = key_attrs(&add.key);
    item.insert(attr::stored_name(&add.attr).into_owned(), n(add.delta));
    if let Some(at) = add.expires_at {
        item.insert(EXPIRES_AT.to_owned(), n(at));
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

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    /// The raw item at `key`, live or not, read consistently.
    async fn get_raw(&self, key: &Key) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("DynamoDB GetItem", e))?;
        Ok(out.item)
    }

    /// How an add to `key` must be written, from the item's current state.
    async fn plan(&self, key: &Key, now: i64) -> Result<AddPlan> {
        Ok(match self.get_raw(key).await? {
            None => AddPlan::Create { expired_at: None },
            Some(raw) => match attr::expires_at(&raw)? {
                Some(at) if !is_live(Some(at), now) => AddPlan::Create {
                    expired_at: Some(at),
                },
                _ => AddPlan::Increment,
            },
        })
    }

    /// One attempt of an add planned as `plan`: `Ok(None)` when the item changed state since.
    async fn try_add(&self, add: &Add, plan: &AddPlan, now: i64) -> Result<Option<i64>> {
        match plan {
            AddPlan::Increment => {
                let mut e = increment_expr(add, now);
                e.value(":d", n(add.delta));
                let out = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&add.key)))
                    .update_expression("ADD #a :d")
                    .condition_expression(&e.text)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .return_values(ReturnValue::UpdatedNew)
                    .send()
                    .await;
                match out {
                    Ok(out) => {
                        let value = out
                            .attributes
                            .as_ref()
                            .and_then(|a| a.get(attr::stored_name(&add.attr).as_ref()))
                            .ok_or_else(|| Error::internal("UpdateItem returned no new value"))?;
                        Ok(Some(attr::int(value)?))
                    }
                    Err(err) => match map_sdk("DynamoDB UpdateItem", err) {
                        // Either over the bound, or no longer live: the next plan tells which.
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
                let out = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(&e.text)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .send()
                    .await;
                match out {
                    Ok(_) => Ok(Some(add.delta)),
                    Err(err) => match map_sdk("DynamoDB PutItem", err) {
                        Error::Conflict(_) => Ok(None),
                        other => Err(other),
                    },
                }
            }
        }
    }

    /// The transaction's items, with each add planned against `plans`.
    fn transact_items(
        &self,
        ops: &[TransactOp],
        plans: &[Option<AddPlan>],
        now: i64,
    ) -> Result<Vec<TransactWriteItem>> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| Error::internal(e);
        ops.iter()
            .zip(plans)
            .map(|(op, plan)| {
                Ok(match (op, plan) {
                    (TransactOp::Put(item, cond), _) => {
                        let e = condition_expr(cond, now);
                        let put = Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(attr::to_item(item)))
                            .set_condition_expression(e.as_ref().map(|e| e.text.clone()))
                            .set_expression_attribute_names(e.as_ref().and_then(Expr::names))
                            .set_expression_attribute_values(e.as_ref().and_then(Expr::values))
                            .build()
                            .map_err(built)?;
                        TransactWriteItem::builder().put(put).build()
                    }
                    (TransactOp::Delete(key, cond), _) => {
                        let e = condition_expr(cond, now);
                        let delete = Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_attrs(key)))
                            .set_condition_expression(e.as_ref().map(|e| e.text.clone()))
                            .set_expression_attribute_names(e.as_ref().and_then(Expr::names))
                            .set_expression_attribute_values(e.as_ref().and_then(Expr::values))
                            .build()
                            .map_err(built)?;
                        TransactWriteItem::builder().delete(delete).build()
                    }
                    (TransactOp::Check(key, cond), _) => {
                        let e = condition_expr(cond, now).unwrap_or_else(always);
                        let check = ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_attrs(key)))
                            .condition_expression(e.text.clone())
                            .set_expression_attribute_names(e.names())
                            .set_expression_attribute_values(e.values())
                            .build()
                            .map_err(built)?;
                        TransactWriteItem::builder().condition_check(check).build()
                    }
                    (TransactOp::Add(add), Some(AddPlan::Increment)) => {
                        let mut e = increment_expr(add, now);
                        e.value(":d", n(add.delta));
                        let update = Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_attrs(&add.key)))
                            .update_expression("ADD #a :d")
                            .condition_expression(e.text.clone())
                            .set_expression_attribute_names(e.names())
                            .set_expression_attribute_values(e.values())
                            .build()
                            .map_err(built)?;
                        TransactWriteItem::builder().update(update).build()
                    }
                    (TransactOp::Add(add), plan) => {
                        let expired_at = match plan {
                            Some(AddPlan::Create { expired_at }) => *expired_at,
                            _ => None,
                        };
                        let (item, e) = create_item(add, expired_at)?;
                        let put = Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .condition_expression(e.text.clone())
                            .set_expression_attribute_names(e.names())
                            .set_expression_attribute_values(e.values())
                            .build()
                            .map_err(built)?;
                        TransactWriteItem::builder().put(put).build()
                    }
                })
            })
            .collect()
    }

    /// The plan of every add in `ops` (`None` for the other operations).
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
            Some(raw) if is_live(attr::expires_at(&raw)?, now) => Ok(Some(attr::from_item(raw)?)),
            _ => Ok(None),
        }
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        let raw = attr::to_item(&item);
        let e = condition_expr(&cond, self.clock.now_secs());
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(raw))
            .set_condition_expression(e.as_ref().map(|e| e.text.clone()))
            .set_expression_attribute_names(e.as_ref().and_then(Expr::names))
            .set_expression_attribute_values(e.as_ref().and_then(Expr::values))
            .send()
            .await
            .map_err(|e| map_sdk("DynamoDB PutItem", e))?;
        Ok(())
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        let e = condition_expr(&cond, self.clock.now_secs());
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(e.as_ref().map(|e| e.text.clone()))
            .set_expression_attribute_names(e.as_ref().and_then(Expr::names))
            .set_expression_attribute_values(e.as_ref().and_then(Expr::values))
            .send()
            .await
            .map_err(|e| map_sdk("DynamoDB DeleteItem", e))?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        check_query(query)?;
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let now = self.clock.now_secs();

        let mut key_cond = Expr {
            text: "#pk = :pk".into(),
            ..Expr::default()
        };
        key_cond
            .name("#pk", PK)
            .value(":pk", AttributeValue::S(query.pk.clone()));
        if !query.sk_prefix.is_empty() {
            key_cond.text.push_str(" AND begins_with(#sk, :prefix)");
            key_cond
                .name("#sk", SK)
                .value(":prefix", AttributeValue::S(query.sk_prefix.clone()));
        }
        key_cond.name("#exp", EXPIRES_AT).value(":now", n(now));

        // DynamoDB applies `Limit` before the expiry filter, so a page may come back short with
        // more to read: keep reading until one item beyond the page is found or the range ends.
        let mut start = after.map(|sk| key_attrs(&Key::new(query.pk.clone(), sk)));
        let mut items: Vec<Item> = Vec::new();
        loop {
            let want = query.limit + 1 - items.len();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_cond.text)
                .filter_expression("attribute_not_exists(#exp) OR #exp > :now")
                .set_expression_attribute_names(key_cond.names())
                .set_expression_attribute_values(key_cond.values())
                .scan_index_forward(!query.descending)
                .consistent_read(true)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk("DynamoDB Query", e))?;
            for raw in out.items.unwrap_or_default() {
                items.push(attr::from_item(raw)?);
            }
            match out.last_evaluated_key {
                Some(last) if items.len() <= query.limit => start = Some(last),
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
        // Optimistic: counters are usually live, so try the increment before reading.
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
            let out = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match out {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let reasons: Vec<Option<String>> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect(),
                _ => return Err(map_sdk("DynamoDB TransactWriteItems", err)),
            };
            let failed = |code: &str| reasons.iter().any(|r| r.as_deref() == Some(code));
            if failed("ValidationError") {
                return Err(Error::invalid(
                    "transaction",
                    "DynamoDB rejected an operation (e.g. an add to a non-number)",
                ));
            }
            if failed("ThrottlingError") || failed("ProvisionedThroughputExceeded") {
                return Err(Error::RateLimited {
                    retry_after: crate::error::THROTTLE_RETRY_AFTER,
                });
            }
            if failed("TransactionConflict") {
                // Another transaction touched one of the items: the SDK does not retry
                // cancellations, so retry here; conditions are re-evaluated.
                continue;
            }
            // A condition failed. If it was an add's and its item changed state since it was
            // planned, the plan was wrong, not the caller's condition: plan again.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_expressions_use_only_their_placeholders() {
        for cond in [
            Condition::NotExists,
            Condition::Exists,
            Condition::AttrEquals("state".into(), serde_json::json!("open")),
        ] {
            let e = condition_expr(&cond, 100).unwrap();
            for name in e.names.keys().chain(e.values.keys()) {
                assert!(
                    e.text.contains(name.as_str()),
                    "{cond:?}: {name} unused in {}",
                    e.text
                );
            }
        }
        assert!(condition_expr(&Condition::None, 0).is_none());
    }

    #[test]
    fn add_limits_guard_the_bound_and_overflow() {
        let add = |delta, max| Add {
            key: Key::new("p", "s"),
            attr: "n".into(),
            delta,
            max,
            expires_at: None,
        };
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
}
