//! The usage summary of an organisation's current period: images used and remaining, overage so
//! far in cents, and what the models cost us in micro-dollars. The data behind the
//! `openai_usage_summary` tool and the usage page.

use imagemcp_core::Result;
use imagemcp_core::money::{self, Invoice};
use imagemcp_core::rbac::Action;
use imagemcp_core::tier::Tier;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{plan, quota};
use crate::Billing;
use imagemcp_tenancy::Caller;
use imagemcp_tenancy::{items, keys};

/// The arguments of a tool that takes none.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UsageSummary {
    /// `free`, `pro`, `team` or `local` (billing off).
    pub tier: String,
    pub seats: u32,
    /// The usage period's id (`2026-11`, or `P<unix start>` for a subscription period).
    pub period: String,
    /// The period's first day (UTC), `YYYY-MM-DD`.
    pub period_start: String,
    /// The period's last day (UTC), `YYYY-MM-DD`.
    pub period_end: String,
    pub used_images: u64,
    /// Absent when unlimited (never `null`: the tool's output schema has no nullable fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included_images: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_images: Option<u64>,
    pub overage_images: u64,
    pub overage_cents: u64,
    /// What the period's invoice comes to so far.
    pub total_cents: u64,
    /// This calendar month's model cost (OpenAI prices), in micro-dollars.
    pub model_cost_micros: u64,
    /// The caller's own share of it.
    pub my_model_cost_micros: u64,
    /// The org's monthly model budget, if set, in micro-dollars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_micros: Option<u64>,
    pub budget_hard_stop: bool,
}

/// The caller's organisation's usage now.
pub async fn summary(ctx: &Billing, caller: &Caller) -> Result<UsageSummary> {
    caller.authorize(Action::ViewUsage)?;
    let plan = plan::load(ctx, &caller.org).await?;
    let now_ms = ctx.ports.clock.now_ms();
    let tier = plan.effective_tier(now_ms / 1000);
    let period = plan.period_id(now_ms);
    let (start_ms, end_ms) = plan.period_bounds(now_ms);
    let table = &ctx.ports.table;
    let read = async |key| -> Result<u64> {
        let item = table.get(&key).await?;
        Ok(item
            .and_then(|i| i.int("images").or_else(|| i.int("value")))
            .map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    };
    // Billing off meters nothing: the images are the month's stored-image counter.
    let used = if tier == Tier::Local {
        let month = items::month_of(now_ms);
        read(keys::usage_key(&caller.org, &month, "images")).await?
    } else {
        read(quota::counter_key(caller, &period)).await?
    };
    let month = items::month_of(now_ms);
    let cost = read(keys::usage_key(&caller.org, &month, "cost_micros")).await?;
    let mine = read(keys::usage_key(
        &caller.org,
        &month,
        &format!("cost_micros#user#{}", caller.user),
    ))
    .await?;
    let budget = super::budget::load(ctx, &caller.org).await?;
    let Invoice {
        included_images,
        overage_images,
        overage_cents,
        total_cents,
        ..
    } = money::invoice(tier, plan.seats(), used);
    Ok(UsageSummary {
        tier: tier.id().to_owned(),
        seats: plan.seats().get(),
        period,
        period_start: items::date_of(start_ms),
        // The end is exclusive: its last day is the one before.
        period_end: items::date_of(end_ms.saturating_sub(1).max(start_ms)),
        used_images: used,
        included_images,
        remaining_images: included_images.map(|inc| inc.saturating_sub(used)),
        overage_images,
        overage_cents,
        total_cents,
        model_cost_micros: cost,
        my_model_cost_micros: mine,
        budget_micros: budget.as_ref().map(|b| b.monthly_budget_micros),
        budget_hard_stop: budget.is_some_and(|b| b.hard_stop),
    })
}
