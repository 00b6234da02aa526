//! Stripe events, processed exactly once and in order of state: the event id is recorded with a
//! conditional write (`NotExists`) in the same transaction as its effect, so a duplicate delivery
//! changes nothing; a subscription state older than the stored one (by the event's `created`) is
//! recorded as seen but never overwrites the newer state.
//!
//! An event's organisation is the one the customer → org map (`STRIPE#customers/CUS#<id>`, written
//! when we create the org's customer) names, never the event's metadata: a signed event is only as
//! trustworthy as whoever created the object in the Stripe account, and a customer made outside our
//! checkout (the dashboard, another integration on the account) could otherwise name any org in
//! `metadata.org_id`. Events for unknown customers are recorded and ignored (Stripe would otherwise
//! retry them for three days).

use imagemcp_core::ids::OrgId;
use imagemcp_core::table::{Condition, Item, Key, TransactOp};
use imagemcp_core::tier::{Seats, Tier};
use imagemcp_core::{Error, Result};
use serde_json::{Map, Value, json};

use super::checkout;
use super::plan::{self, OrgPlan};
use crate::Billing;
use imagemcp_tenancy::items;

/// What processing an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// Recorded, but it changed nothing (stale, unknown customer, unhandled type, bad data).
    Ignored(String),
}

fn event_key(id: &str) -> Key {
    Key::new("STRIPE#events", format!("EVT#{id}"))
}

pub fn customer_key(customer: &str) -> Key {
    Key::new("STRIPE#customers", format!("CUS#{customer}"))
}

/// How long event ids are kept: past Stripe's 3 days of retries, with margin.
const EVENT_TTL_SECS: i64 = 30 * 86_400;

/// Attempts when a concurrent event changed the plan between our read and write.
const ATTEMPTS: usize = 5;

/// Processes one verified event body.
pub async fn process(ctx: &Billing, body: &[u8]) -> Result<Outcome> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|_| Error::invalid("body", "not a JSON Stripe event"))?;
    let id = event["id"]
        .as_str()
        .filter(|s| s.starts_with("evt_") && s.len() <= 255)
        .ok_or_else(|| Error::invalid("id", "not a Stripe event id"))?;
    let kind = event["type"].as_str().unwrap_or_default();
    let created = event["created"].as_i64().unwrap_or(0);
    let object = &event["data"]["object"];
    for _ in 0..ATTEMPTS {
        if ctx.ports.table.get(&event_key(id)).await?.is_some() {
            return Ok(Outcome::Duplicate);
        }
        let (effect, outcome) = effect(ctx, kind, created, object).await?;
        let mut marker = Item::new(event_key(id), Map::new());
        marker.attrs.insert("type".into(), json!(kind));
        marker
            .attrs
            .insert("outcome".into(), json!(format!("{outcome:?}")));
        let marker = marker.with_ttl(ctx.ports.clock.now_secs() + EVENT_TTL_SECS);
        let mut ops = vec![TransactOp::Put(marker, Condition::NotExists)];
        ops.extend(effect);
        match ctx.ports.table.transact(ops).await {
            Ok(()) => {
                tracing::info!(event = id, kind, ?outcome, "stripe event processed");
                return Ok(outcome);
            }
            // A duplicate raced us (caught at the top of the loop) or the plan changed: re-read.
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Unavailable(
        "the subscription kept changing; Stripe will retry".into(),
    ))
}

/// An event recorded as seen that changes nothing.
fn ignore(why: &str) -> Result<(Vec<TransactOp>, Outcome)> {
    Ok((Vec::new(), Outcome::Ignored(why.to_owned())))
}

/// The writes an event makes (besides its id record) and what they amount to.
async fn effect(
    ctx: &Billing,
    kind: &str,
    created: i64,
    object: &Value,
) -> Result<(Vec<TransactOp>, Outcome)> {
    let customer = object["customer"].as_str().or_else(|| {
        (object["object"] == "customer")
            .then(|| object["id"].as_str())
            .flatten()
    });
    let org = match kind {
        "checkout.session.completed" => return bind_checkout(ctx, customer, object).await,
        _ => match org_of(ctx, customer).await? {
            Some(org) => org,
            None => {
                if object["metadata"]["org_id"].is_string() {
                    // Worth an operator's look: something on the account names our orgs.
                    tracing::warn!(
                        customer = customer.unwrap_or_default(),
                        kind,
                        "stripe event names an organisation in metadata for a customer we never created; ignored"
                    );
                }
                return ignore("event for an unknown customer");
            }
        },
    };
    let key = plan::plan_key(&org);
    let stored = ctx.ports.table.get(&key).await?;
    let current: OrgPlan = match &stored {
        Some(item) => items::from_item(item.clone())?,
        None => OrgPlan::free(),
    };
    if created < current.state_at {
        return ignore("older than the stored subscription state");
    }
    let mut next = current.clone();
    next.state_at = created;
    next.customer_id = customer.map(str::to_owned).or(next.customer_id);
    match kind {
        "customer.subscription.created" | "customer.subscription.updated" => {
            let Some(tier) = tier_of(ctx, object) else {
                return ignore("subscription for an unknown price");
            };
            let item = &object["items"]["data"][0];
            let seats = match Seats::parse(item["quantity"].as_i64().unwrap_or(1)) {
                Ok(s) => s,
                Err(_) => return ignore("subscription with an invalid seat count"),
            };
            next.tier = tier.id().into();
            next.seats = seats.get();
            next.status = object["status"].as_str().unwrap_or("active").into();
            next.subscription_id = object["id"].as_str().map(str::to_owned);
            // Since API version 2025-03-31 the period lives on the item; older versions on the root.
            let period = |field: &str| item[field].as_i64().or_else(|| object[field].as_i64());
            next.period_start = period("current_period_start").unwrap_or(created);
            next.period_end = period("current_period_end").unwrap_or(created);
            if next.status == "active" {
                next.grace_until = None;
            }
        }
        "customer.subscription.deleted" => {
            // Deleted mid-period: Free from now, counted by calendar month again.
            next.tier = "free".into();
            next.seats = 1;
            next.status = "canceled".into();
            next.subscription_id = None;
            next.grace_until = None;
        }
        "invoice.paid" => {
            if next.status == "past_due" {
                next.status = "active".into();
            }
            next.grace_until = None;
        }
        "invoice.payment_failed" => {
            let grace = ctx
                .config
                .stripe
                .as_ref()
                .map_or(0, |b| i64::from(b.grace_days));
            next.status = "past_due".into();
            // Only the first failure starts the clock; retries do not extend it.
            next.grace_until = next.grace_until.or(Some(created + grace * 86_400));
        }
        "customer.deleted" => {
            next = OrgPlan {
                state_at: created,
                ..OrgPlan::free()
            };
        }
        _ => return ignore("unhandled event type"),
    }
    // Optimistic concurrency: the plan must still be what we read.
    let cond = match &stored {
        Some(_) => Condition::AttrEquals("state_at".into(), json!(current.state_at)),
        None => Condition::NotExists,
    };
    let item = items::to_item(key, &next)?;
    let mut ops = vec![TransactOp::Put(item, cond)];
    if kind == "customer.deleted"
        && let Some(customer) = customer
    {
        ops.push(TransactOp::Delete(customer_key(customer), Condition::None));
    }
    Ok((ops, Outcome::Applied))
}

/// A completed Checkout Session binds its customer to the org in `client_reference_id` only when
/// that org's recorded customer (`ORG#<org>/STRIPE_CUSTOMER`, written before we opened the session)
/// is this customer: the one place event data names an org, checked against what we stored.
async fn bind_checkout(
    ctx: &Billing,
    customer: Option<&str>,
    session: &Value,
) -> Result<(Vec<TransactOp>, Outcome)> {
    let (Some(org), Some(customer)) = (session["client_reference_id"].as_str(), customer) else {
        return ignore("checkout session without org or customer");
    };
    let Ok(org) = OrgId::parse(org) else {
        return ignore("checkout session for an unknown organisation");
    };
    let recorded = ctx
        .ports
        .table
        .get(&checkout::customer_record_key(&org))
        .await?;
    if recorded.as_ref().and_then(|i| i.str("customer_id")) != Some(customer) {
        tracing::warn!(
            customer,
            "checkout session names an organisation whose recorded customer is another; ignored"
        );
        return ignore("checkout session for a customer we did not record for the organisation");
    }
    let mut item = Item::new(customer_key(customer), Map::new());
    item.attrs.insert("org".into(), json!(org));
    Ok((
        vec![TransactOp::Put(item, Condition::None)],
        Outcome::Applied,
    ))
}

/// The org an event is about: the one our customer → org map names, or none.
async fn org_of(ctx: &Billing, customer: Option<&str>) -> Result<Option<OrgId>> {
    let Some(customer) = customer else {
        return Ok(None);
    };
    match ctx.ports.table.get(&customer_key(customer)).await? {
        Some(item) => item.str("org").map(OrgId::parse).transpose(),
        None => Ok(None),
    }
}

/// The tier a subscription's first price buys.
fn tier_of(ctx: &Billing, subscription: &Value) -> Option<Tier> {
    let billing = ctx.config.stripe.as_ref()?;
    let price = subscription["items"]["data"][0]["price"]["id"].as_str()?;
    if price == billing.pro_price {
        Some(Tier::Pro)
    } else if price == billing.team_price {
        Some(Tier::Team)
    } else {
        None
    }
}
