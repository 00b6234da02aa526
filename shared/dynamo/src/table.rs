//! `DynamoTable`: the `Table` port on one DynamoDB table (single-table design), over any
//! [`Transport`].
//!
//! Items are laid out as `item` says. DynamoDB deletes expired items lazily (within days), so every
//! read filters them by the injected clock and every condition treats an expired item as absent.
//! Reads are strongly consistent: a write is visible to the next request, whichever instance
//! serves it.
//!
//! Adds: an `UpdateItem … ADD` on a live item, guarded by the bound; a missing or expired item is
//! (re)created by a conditional put, so a new quota window starts from zero and drops the old
//! window's attributes, as the contract requires. Transactions map to `TransactWriteItems`; an add
//! inside one is planned from a consistent read of its item and the whole transaction retried when
//! that item changed state under it (so a lost race is never reported as a failed condition).

use std::sync::Arc;

use imagemcp_core::clock::Clock;
use imagemcp_core::table::{
    Add, Condition, Item, Key, Page, Query, Table, TransactOp, check_query, check_transact,
    decode_cursor, is_live,
};
use imagemcp_core::{Error, Result};

use crate::error::{DynamoError, THROTTLE_RETRY_AFTER};
use crate::expr::{
    AddPlan, INCREMENT, LIVE_FILTER, always, condition_expr, create_item, increment_expr, over_max,
    split, start_key,
};
use crate::item::{self, EXPIRES_AT, PK, SK, key_attrs, stored_name};
use crate::transport::{
    ConditionCheck, DeleteItemInput, GetItemInput, PutItemInput, QueryInput, ReturnValues,
    TransactWriteItem, TransactWriteItemsInput, Transport, UpdateItemInput,
};
use crate::value::{AttributeValue, Attributes};

/// How often an add or a transaction is retried when an item it planned around changed state
/// (was created, expired or recreated) between the read and the write.
const MAX_REPLANS: usize = 8;

/// The `Table` port on DynamoDB through `T`. Cheap to clone when `T` is.
#[derive(Clone)]
pub struct DynamoTable<T> {
    pub(crate) transport: T,
    pub(crate) table: String,
    pub(crate) clock: Arc<dyn Clock>,
}

impl<T> std::fmt::Debug for DynamoTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// A failure of the DynamoDB operation `op` as the core error.
fn failed(op: &'static str) -> impl FnOnce(DynamoError) -> Error {
    move |e| e.into_error(&format!("DynamoDB {op}"))
}

impl<T: Transport> DynamoTable<T> {
    /// The table `table`, reached through `transport`, with expiry judged by `clock`.
    pub fn new(transport: impl Into<T>, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            transport: transport.into(),
            table: table.into(),
            clock,
        }
    }

    /// The raw item at `key`, live or not, read consistently.
    async fn get_raw(&self, key: &Key) -> Result<Option<Attributes>> {
        let out = self
            .transport
            .get_item(GetItemInput {
                table_name: self.table.clone(),
                key: key_attrs(key),
                consistent_read: true,
            })
            .await
            .map_err(failed("GetItem"))?;
        Ok(out.item)
    }

    /// How an add to `key` must be written, from the item's current state.
    async fn plan(&self, key: &Key, now: i64) -> Result<AddPlan> {
        AddPlan::of(self.get_raw(key).await?.as_ref(), now)
    }

    fn put_input(&self, item: Attributes, cond: Option<crate::expr::Expr>) -> PutItemInput {
        let (condition_expression, placeholders) = split(cond);
        PutItemInput {
            table_name: self.table.clone(),
            item,
            condition_expression,
            placeholders,
        }
    }

    fn delete_input(&self, key: &Key, cond: &Condition, now: i64) -> DeleteItemInput {
        let (condition_expression, placeholders) = split(condition_expr(cond, now));
        DeleteItemInput {
            table_name: self.table.clone(),
            key: key_attrs(key),
            condition_expression,
            placeholders,
        }
    }

    fn increment_input(&self, add: &Add, now: i64) -> UpdateItemInput {
        let e = increment_expr(add, now);
        UpdateItemInput {
            table_name: self.table.clone(),
            key: key_attrs(&add.key),
            update_expression: INCREMENT.to_owned(),
            condition_expression: Some(e.text),
            placeholders: e.placeholders,
            return_values: None,
        }
    }

    /// The fresh item of an add planned as `Create`, conditional on the item being as planned.
    fn create_input(&self, add: &Add, expired_at: Option<i64>) -> Result<PutItemInput> {
        let (item, e) = create_item(add, expired_at)?;
        Ok(self.put_input(item, Some(e)))
    }

    /// One attempt of an add planned as `plan`: `Ok(None)` when the item changed state since.
    async fn try_add(&self, add: &Add, plan: &AddPlan, now: i64) -> Result<Option<i64>> {
        match plan {
            AddPlan::Increment => {
                let input = UpdateItemInput {
                    return_values: Some(ReturnValues::UpdatedNew),
                    ..self.increment_input(add, now)
                };
                match self.transport.update_item(input).await {
                    Ok(out) => {
                        let value = out
                            .attributes
                            .as_ref()
                            .and_then(|a| a.get(stored_name(&add.attr).as_ref()))
                            .ok_or_else(|| Error::internal("UpdateItem returned no new value"))?;
                        Ok(Some(value.as_int()?))
                    }
                    Err(e) => match failed("UpdateItem")(e) {
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
                let input = self.create_input(add, *expired_at)?;
                match self.transport.put_item(input).await {
                    Ok(()) => Ok(Some(add.delta)),
                    Err(e) => match failed("PutItem")(e) {
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
        ops.iter()
            .zip(plans)
            .map(|(op, plan)| {
                Ok(match (op, plan) {
                    (TransactOp::Put(item, cond), _) => TransactWriteItem::Put(
                        self.put_input(item::to_item(item), condition_expr(cond, now)),
                    ),
                    (TransactOp::Delete(key, cond), _) => {
                        TransactWriteItem::Delete(self.delete_input(key, cond, now))
                    }
                    (TransactOp::Check(key, cond), _) => {
                        let e = condition_expr(cond, now).unwrap_or_else(always);
                        TransactWriteItem::ConditionCheck(ConditionCheck {
                            table_name: self.table.clone(),
                            key: key_attrs(key),
                            condition_expression: e.text,
                            placeholders: e.placeholders,
                        })
                    }
                    (TransactOp::Add(add), Some(AddPlan::Increment)) => {
                        TransactWriteItem::Update(self.increment_input(add, now))
                    }
                    (TransactOp::Add(add), plan) => {
                        let expired_at = match plan {
                            Some(AddPlan::Create { expired_at }) => *expired_at,
                            _ => None,
                        };
                        TransactWriteItem::Put(self.create_input(add, expired_at)?)
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
impl<T: Transport> Table for DynamoTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let now = self.clock.now_secs();
        match self.get_raw(key).await? {
            Some(raw) if is_live(item::expires_at(&raw)?, now) => Ok(Some(item::from_item(raw)?)),
            _ => Ok(None),
        }
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        let input = self.put_input(
            item::to_item(&item),
            condition_expr(&cond, self.clock.now_secs()),
        );
        self.transport
            .put_item(input)
            .await
            .map_err(failed("PutItem"))
    }

    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        let input = self.delete_input(key, &cond, self.clock.now_secs());
        self.transport
            .delete_item(input)
            .await
            .map_err(failed("DeleteItem"))
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        check_query(query)?;
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let now = self.clock.now_secs();

        let mut key_cond = crate::expr::Expr {
            text: "#pk = :pk".into(),
            ..Default::default()
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
        key_cond
            .name("#exp", EXPIRES_AT)
            .value(":now", AttributeValue::int(now));

        // DynamoDB applies `Limit` before the expiry filter, so a page may come back short with
        // more to read: keep reading until one item beyond the page is found or the range ends.
        let mut start = after.map(|sk| start_key(&query.pk, sk));
        let mut items: Vec<Item> = Vec::new();
        loop {
            let want = query.limit + 1 - items.len();
            let out = self
                .transport
                .query(QueryInput {
                    table_name: self.table.clone(),
                    key_condition_expression: key_cond.text.clone(),
                    filter_expression: Some(LIVE_FILTER.to_owned()),
                    placeholders: key_cond.placeholders.clone(),
                    scan_index_forward: !query.descending,
                    consistent_read: true,
                    limit: i32::try_from(want).unwrap_or(i32::MAX),
                    exclusive_start_key: start.take(),
                })
                .await
                .map_err(failed("Query"))?;
            for raw in out.items {
                items.push(item::from_item(raw)?);
            }
            match out.last_evaluated_key {
                Some(last) if items.len() <= query.limit => start = Some(last),
                _ => break,
            }
        }
        Ok(Page::overfetched(items, query.limit))
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
            let transact_items = self.transact_items(&ops, &plans, now)?;
            let reasons = match self
                .transport
                .transact_write_items(TransactWriteItemsInput { transact_items })
                .await
            {
                Ok(()) => return Ok(()),
                Err(DynamoError::Service(e)) if e.code == "TransactionCanceledException" => {
                    e.cancellation_reasons
                }
                Err(e) => return Err(failed("TransactWriteItems")(e)),
            };
            let cancelled_by = |code: &str| reasons.iter().any(|r| r.as_deref() == Some(code));
            if cancelled_by("ValidationError") {
                return Err(Error::invalid(
                    "transaction",
                    "DynamoDB rejected an operation (e.g. an add to a non-number)",
                ));
            }
            if cancelled_by("ThrottlingError") || cancelled_by("ProvisionedThroughputExceeded") {
                return Err(Error::RateLimited {
                    retry_after: THROTTLE_RETRY_AFTER,
                });
            }
            if cancelled_by("TransactionConflict") {
                // Another transaction touched one of the items: cancellations are not retried by
                // the transports, so retry here; conditions are re-evaluated.
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
