//! What the models cost us, attributed and budgeted: each generation's cost (integer micro-dollars,
//! from the catalog's price table) is added to the org's, the user's and the team's monthly counters
//! in the same transaction that stores the images; an org may set a monthly budget, alerted once
//! per month at 80 % (an audit event and a `tracing` warning) and, with `hard_stop`, refusing new
//! generations before any model call once it is spent.
//!
//! The hard stop holds each request's estimate before the model call: a conditional add on the
//! month's in-flight counter (`USAGE#<month>#cost_held_micros`) bounded by what is left of the
//! budget, released when the request settles. Concurrent requests therefore cannot together pass
//! the budget; what is spent can exceed it only by the difference between an estimate and the
//! actual cost (token usage a little above the catalog's estimate).

use imagemcp_core::Error;
use imagemcp_core::Result;
use imagemcp_core::money::{self, BudgetState};
use imagemcp_core::rbac::Action;
use imagemcp_core::table::{Add, Condition, Item, Key, TransactOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use crate::Billing;
use imagemcp_tenancy::Caller;
use imagemcp_tenancy::{items, keys};

/// The counters a generation's cost is added to besides the org's own (`USAGE#<month>#cost_micros`):
/// the user's, the team's and, for a campaign batch item, the campaign's (its name is checked at
/// submission: a-z, 0-9, `-`, `_`).
pub fn attribution_ops(
    caller: &Caller,
    month: &str,
    cost_micros: u64,
    campaign: Option<&str>,
) -> Vec<TransactOp> {
    let delta = i64::try_from(cost_micros).unwrap_or(i64::MAX);
    [
        Some(format!("cost_micros#user#{}", caller.user)),
        Some(format!("cost_micros#team#{}", caller.team)),
        campaign.map(|c| format!("cost_micros#campaign#{c}")),
    ]
    .into_iter()
    .flatten()
    .map(|counter| {
        TransactOp::Add(Add {
            key: keys::usage_key(&caller.org, month, &counter),
            attr: "value".into(),
            delta,
            max: None,
            expires_at: None,
        })
    })
    .collect()
}

fn budget_key(org: &imagemcp_core::ids::OrgId) -> Key {
    Key::new(keys::org_pk(org), "BUDGET")
}

fn alert_key(org: &imagemcp_core::ids::OrgId, month: &str) -> Key {
    Key::new(keys::org_pk(org), format!("BUDGET_ALERT#{month}"))
}

/// `openai_set_budget`'s arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetArgs {
    /// The monthly model-cost budget in US cents (0 removes the budget).
    pub monthly_budget_cents: i64,
    /// Refuse new generations once the budget is spent (default: only alert).
    #[serde(default)]
    pub hard_stop: bool,
}

/// An org's budget and where this month stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Budget {
    pub monthly_budget_micros: u64,
    pub hard_stop: bool,
}

/// `openai_set_budget`'s result.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BudgetView {
    /// The budget now in force; absent when removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

impl From<Option<Budget>> for BudgetView {
    fn from(budget: Option<Budget>) -> Self {
        Self { budget }
    }
}

/// The largest budget accepted: $10M a month.
const MAX_BUDGET_CENTS: i64 = 1_000_000_000;

/// Sets (or with 0 removes) the org's monthly budget.
pub async fn set(ctx: &Billing, caller: &Caller, args: BudgetArgs) -> Result<Option<Budget>> {
    caller.authorize(Action::ManageBilling)?;
    if !(0..=MAX_BUDGET_CENTS).contains(&args.monthly_budget_cents) {
        return Err(Error::invalid(
            "monthly_budget_cents",
            format!("must be 0 to {MAX_BUDGET_CENTS}"),
        ));
    }
    let key = budget_key(&caller.org);
    let event = imagemcp_tenancy::audit::Event::by(caller, "billing.budget_set")
        .detail("monthly_budget_cents", json!(args.monthly_budget_cents))
        .detail("hard_stop", json!(args.hard_stop));
    if args.monthly_budget_cents == 0 {
        imagemcp_tenancy::audit::commit(
            &ctx.ports,
            &event,
            vec![TransactOp::Delete(key, Condition::None)],
        )
        .await?;
        return Ok(None);
    }
    let budget = Budget {
        monthly_budget_micros: u64::try_from(args.monthly_budget_cents).unwrap_or(0) * 10_000,
        hard_stop: args.hard_stop,
    };
    let item = items::to_item(key, &budget)?;
    imagemcp_tenancy::audit::commit(
        &ctx.ports,
        &event,
        vec![TransactOp::Put(item, Condition::None)],
    )
    .await?;
    Ok(Some(budget))
}

/// The org's budget, if one is set.
pub async fn load(ctx: &Billing, org: &imagemcp_core::ids::OrgId) -> Result<Option<Budget>> {
    match ctx.ports.table.get(&budget_key(org)).await? {
        Some(item) => items::from_item(item).map(Some),
        None => Ok(None),
    }
}

/// The org's model cost this calendar month, in micro-dollars.
pub async fn spent(ctx: &Billing, org: &imagemcp_core::ids::OrgId, month: &str) -> Result<u64> {
    Ok(ctx
        .ports
        .table
        .get(&keys::usage_key(org, month, "cost_micros"))
        .await?
        .and_then(|i| i.int("value"))
        .map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// The refusal of a generation by the org's hard-stop budget.
fn refused(ctx: &Billing, budget: &Budget, spent: u64, estimate: u64) -> Error {
    tracing::warn!(
        budget_micros = budget.monthly_budget_micros,
        spent_micros = spent,
        estimate_micros = estimate,
        "budget hard stop: generation refused"
    );
    Error::PlanLimit {
        reason: format!(
            "the organisation's monthly model budget of {} would be passed (hard stop: {} spent, this request is estimated at {}); an admin can raise it with openai_set_budget",
            money::format_cents(budget.monthly_budget_micros / 10_000),
            money::format_cents(spent / 10_000),
            money::format_cents(estimate.div_ceil(10_000)),
        ),
        unlocking_tier: None,
        upgrade_url: format!("{}/usage", ctx.config.public_url),
    }
}

/// A request's estimate held against the org's hard-stop budget while it runs.
#[derive(Debug)]
pub struct Hold {
    pub(crate) key: Key,
    pub(crate) micros: i64,
}

impl Hold {
    /// The add that gives the estimate back.
    pub(crate) fn release_add(&self) -> Add {
        Add {
            key: self.key.clone(),
            attr: "value".into(),
            delta: -self.micros,
            max: None,
            expires_at: None,
        }
    }

    /// Gives the estimate back (the actual cost is in the month's `cost_micros` by now, or nothing
    /// was made). Never conditional; a failed release only makes the stop stricter until month end.
    pub async fn release(self, ctx: &Billing) {
        if let Err(e) = ctx.ports.table.add(self.release_add()).await {
            tracing::warn!(error = %e, "budget hold release failed");
        }
    }
}

/// A hold not taken yet: the add that takes it, bounded by what is left of the budget. [`hold`]
/// runs it alone; a job item runs it in the transaction that records the hold.
pub(crate) struct PlannedHold {
    pub(crate) hold: Hold,
    pub(crate) add: Add,
    budget: Budget,
    spent: u64,
    estimate: u64,
}

impl PlannedHold {
    /// The refusal when the add does not fit.
    pub(crate) fn refusal(&self, ctx: &Billing) -> Error {
        refused(ctx, &self.budget, self.spent, self.estimate)
    }

    /// Whether the add fits now: what other requests hold plus this estimate within the room.
    pub(crate) async fn fits(&self, ctx: &Billing) -> Result<bool> {
        let held = ctx
            .ports
            .table
            .get(&self.add.key)
            .await?
            .and_then(|i| i.int("value"))
            .unwrap_or(0);
        Ok(self
            .add
            .max
            .is_none_or(|max| held.saturating_add(self.add.delta) <= max))
    }
}

/// What holding `estimate_micros` against the org's hard-stop budget takes, or its refusal when
/// what is spent and this estimate would pass it. `None` when the org has no hard-stop budget.
pub(crate) async fn plan_hold(
    ctx: &Billing,
    caller: &Caller,
    estimate_micros: u64,
) -> Result<Option<PlannedHold>> {
    let Some(budget) = load(ctx, &caller.org).await? else {
        return Ok(None);
    };
    if !budget.hard_stop {
        return Ok(None);
    }
    let month = items::month_of(ctx.ports.clock.now_ms());
    let spent = spent(ctx, &caller.org, &month).await?;
    let room = budget.monthly_budget_micros.saturating_sub(spent);
    if estimate_micros > room
        || money::budget_state(spent, budget.monthly_budget_micros) == BudgetState::Reached
    {
        return Err(refused(ctx, &budget, spent, estimate_micros));
    }
    let key = keys::usage_key(&caller.org, &month, "cost_held_micros");
    let micros = i64::try_from(estimate_micros).unwrap_or(i64::MAX);
    let add = Add {
        key: key.clone(),
        attr: "value".into(),
        delta: micros,
        max: Some(i64::try_from(room).unwrap_or(i64::MAX)),
        // Held estimates are given back when requests settle; the counter goes with its month.
        expires_at: Some(ctx.ports.clock.now_secs() + 62 * 86_400),
    };
    Ok(Some(PlannedHold {
        hold: Hold { key, micros },
        add,
        budget,
        spent,
        estimate: estimate_micros,
    }))
}

/// Holds `estimate_micros` against the org's hard-stop budget, or refuses the request before any
/// model call when what is spent, what other requests hold and this estimate would pass it.
/// `None` when the org has no hard-stop budget.
pub async fn hold(ctx: &Billing, caller: &Caller, estimate_micros: u64) -> Result<Option<Hold>> {
    let Some(planned) = plan_hold(ctx, caller, estimate_micros).await? else {
        return Ok(None);
    };
    match ctx.ports.table.add(planned.add.clone()).await {
        Ok(_) => Ok(Some(planned.hold)),
        Err(Error::Conflict(_)) => Err(planned.refusal(ctx)),
        Err(e) => Err(e),
    }
}

/// After a generation is stored: alerts once per month when spending reaches 80 % of the budget.
/// Returns whether this call raised the alert.
pub async fn after_generation(ctx: &Billing, caller: &Caller) -> Result<bool> {
    let Some(budget) = load(ctx, &caller.org).await? else {
        return Ok(false);
    };
    let month = items::month_of(ctx.ports.clock.now_ms());
    let spent = spent(ctx, &caller.org, &month).await?;
    if money::budget_state(spent, budget.monthly_budget_micros) == BudgetState::Under {
        return Ok(false);
    }
    let mut marker = Item::new(alert_key(&caller.org, &month), Map::new());
    marker.attrs.insert("spent_micros".into(), json!(spent));
    // Kept past the month, then gone.
    let marker = marker.with_ttl(ctx.ports.clock.now_secs() + 62 * 86_400);
    let percent = u128::from(spent) * 100 / u128::from(budget.monthly_budget_micros.max(1));
    let event = imagemcp_tenancy::audit::Event::by(caller, "billing.budget_alert")
        .detail("month", json!(month))
        .detail("spent_micros", json!(spent))
        .detail("budget_micros", json!(budget.monthly_budget_micros))
        .detail("percent", json!(percent as u64));
    match imagemcp_tenancy::audit::commit(
        &ctx.ports,
        &event,
        vec![TransactOp::Put(marker, Condition::NotExists)],
    )
    .await
    {
        Ok(_) => {
            tracing::warn!(org = %caller.org, month, spent_micros = spent, budget_micros = budget.monthly_budget_micros, percent = percent as u64, "budget alert: 80% of the monthly model budget spent");
            Ok(true)
        }
        // Already alerted this month.
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
