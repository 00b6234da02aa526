//! What the models cost us, attributed and budgeted: each generation's cost (integer micro-dollars,
//! from the catalog's price table) is added to the org's, the user's and the team's monthly counters
//! in the same transaction that stores the images; an org may set a monthly budget, alerted once
//! per month at 80 % (an audit event and a `tracing` warning) and, with `hard_stop`, refusing new
//! generations before any model call once it is spent.
//!
//! The hard stop compares what is already spent: one request in flight when the budget is crossed
//! can overshoot it by that request's cost (at most 4 images), never more.

use imagemcp_core::Error;
use imagemcp_core::Result;
use imagemcp_core::money::{self, BudgetState};
use imagemcp_core::rbac::Action;
use imagemcp_core::table::{Add, Condition, Item, Key, TransactOp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use crate::App;
use crate::auth::Caller;
use crate::images::record;

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
            key: record::usage_key(&caller.org, month, &counter),
            attr: "value".into(),
            delta,
            max: None,
            expires_at: None,
        })
    })
    .collect()
}

fn budget_key(org: &imagemcp_core::ids::OrgId) -> Key {
    Key::new(record::org_pk(org), "BUDGET")
}

fn alert_key(org: &imagemcp_core::ids::OrgId, month: &str) -> Key {
    Key::new(record::org_pk(org), format!("BUDGET_ALERT#{month}"))
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
pub async fn set(app: &App, caller: &Caller, args: BudgetArgs) -> Result<Option<Budget>> {
    caller.authorize(Action::ManageBilling)?;
    if !(0..=MAX_BUDGET_CENTS).contains(&args.monthly_budget_cents) {
        return Err(Error::invalid(
            "monthly_budget_cents",
            format!("must be 0 to {MAX_BUDGET_CENTS}"),
        ));
    }
    let key = budget_key(&caller.org);
    let event = crate::audit::Event::by(caller, "billing.budget_set")
        .detail("monthly_budget_cents", json!(args.monthly_budget_cents))
        .detail("hard_stop", json!(args.hard_stop));
    if args.monthly_budget_cents == 0 {
        crate::audit::commit(
            &app.ports,
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
    let item = record::to_item(key, &budget)?;
    crate::audit::commit(
        &app.ports,
        &event,
        vec![TransactOp::Put(item, Condition::None)],
    )
    .await?;
    Ok(Some(budget))
}

/// The org's budget, if one is set.
pub async fn load(app: &App, org: &imagemcp_core::ids::OrgId) -> Result<Option<Budget>> {
    match app.ports.table.get(&budget_key(org)).await? {
        Some(item) => record::from_item(item).map(Some),
        None => Ok(None),
    }
}

/// The org's model cost this calendar month, in micro-dollars.
pub async fn spent(app: &App, org: &imagemcp_core::ids::OrgId, month: &str) -> Result<u64> {
    Ok(app
        .ports
        .table
        .get(&record::usage_key(org, month, "cost_micros"))
        .await?
        .and_then(|i| i.int("value"))
        .map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// Refuses a generation before any model call when the org's hard-stop budget is spent.
pub async fn check(app: &App, caller: &Caller) -> Result<()> {
    let Some(budget) = load(app, &caller.org).await? else {
        return Ok(());
    };
    if !budget.hard_stop {
        return Ok(());
    }
    let month = record::month_of(app.ports.clock.now_ms());
    let spent = spent(app, &caller.org, &month).await?;
    if money::budget_state(spent, budget.monthly_budget_micros) == BudgetState::Reached {
        tracing::warn!(org = %caller.org, spent_micros = spent, budget_micros = budget.monthly_budget_micros, "budget hard stop: generation refused");
        return Err(Error::PlanLimit {
            reason: format!(
                "the organisation's monthly model budget of {} is spent (hard stop); an admin can raise it with openai_set_budget",
                money::format_cents(budget.monthly_budget_micros / 10_000)
            ),
            unlocking_tier: None,
            upgrade_url: format!("{}/usage", app.config.public_url),
        });
    }
    Ok(())
}

/// After a generation is stored: alerts once per month when spending reaches 80 % of the budget.
/// Returns whether this call raised the alert.
pub async fn after_generation(app: &App, caller: &Caller) -> Result<bool> {
    let Some(budget) = load(app, &caller.org).await? else {
        return Ok(false);
    };
    let month = record::month_of(app.ports.clock.now_ms());
    let spent = spent(app, &caller.org, &month).await?;
    if money::budget_state(spent, budget.monthly_budget_micros) == BudgetState::Under {
        return Ok(false);
    }
    let mut marker = Item::new(alert_key(&caller.org, &month), Map::new());
    marker.attrs.insert("spent_micros".into(), json!(spent));
    // Kept past the month, then gone.
    let marker = marker.with_ttl(app.ports.clock.now_secs() + 62 * 86_400);
    let percent = u128::from(spent) * 100 / u128::from(budget.monthly_budget_micros.max(1));
    let event = crate::audit::Event::by(caller, "billing.budget_alert")
        .detail("month", json!(month))
        .detail("spent_micros", json!(spent))
        .detail("budget_micros", json!(budget.monthly_budget_micros))
        .detail("percent", json!(percent as u64));
    match crate::audit::commit(
        &app.ports,
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
