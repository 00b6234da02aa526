//! The dispatch of the billing tools onto [`crate::billing`] (their specs sit in the registry in
//! `tools.rs`): usage, upgrade (a Checkout URL), the billing portal and the monthly budget.

use imagemcp_core::Error;
use imagemcp_core::money::{format_cents, micros_to_cents};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

use crate::App;
use crate::auth::Caller;
use crate::billing::budget::BudgetArgs;
use crate::billing::checkout::UpgradeArgs;
use crate::billing::usage::NoArgs;
use crate::images::params::parse_args;

pub(super) const USAGE: &str = "openai_usage_summary";
pub(super) const UPGRADE: &str = "openai_upgrade_plan";
pub(super) const PORTAL: &str = "openai_billing_portal";
pub(super) const SET_BUDGET: &str = "openai_set_budget";

fn done<T: Serialize>(view: &T, summary: String) -> Result<CallToolResult, Error> {
    let value = serde_json::to_value(view).map_err(Error::internal)?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(summary)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// Whether `name` is a billing tool.
pub(super) fn handles(name: &str) -> bool {
    [USAGE, UPGRADE, PORTAL, SET_BUDGET].contains(&name)
}

pub(super) async fn run(
    app: &App,
    caller: &Caller,
    name: &str,
    args: Value,
) -> Result<CallToolResult, Error> {
    match name {
        USAGE => usage(app, caller, args).await,
        UPGRADE => upgrade(app, caller, args).await,
        PORTAL => {
            parse_args::<NoArgs>(args)?;
            portal(app, caller).await
        }
        SET_BUDGET => set_budget(app, caller, args).await,
        other => Err(Error::not_found(format!("tool {other}"))),
    }
}

async fn usage(app: &App, caller: &Caller, args: Value) -> Result<CallToolResult, Error> {
    parse_args::<NoArgs>(args)?;
    let s = crate::billing::usage::summary(&app.billing, caller).await?;
    let limit = match (s.included_images, s.remaining_images) {
        (Some(inc), Some(rem)) => format!("{} of {inc} used, {rem} left", s.used_images),
        _ => format!("{} used, no limit", s.used_images),
    };
    let summary = format!(
        "{} plan ({} seat(s)), period {} to {}: {limit}; overage {} image(s) = {}; invoice so far {}; model cost this month {}.",
        s.tier,
        s.seats,
        s.period_start,
        s.period_end,
        s.overage_images,
        format_cents(s.overage_cents),
        format_cents(s.total_cents),
        format_cents(micros_to_cents(s.model_cost_micros)),
    );
    done(&s, summary)
}

async fn upgrade(app: &App, caller: &Caller, args: Value) -> Result<CallToolResult, Error> {
    let view =
        crate::billing::checkout::upgrade(&app.billing, caller, parse_args::<UpgradeArgs>(args)?)
            .await?;
    let summary = format!(
        "Open {} to subscribe to {} ({} seat(s), {}/month). The plan changes once the payment is confirmed.",
        view.checkout_url,
        view.tier,
        view.seats,
        format_cents(view.monthly_cents)
    );
    done(&view, summary)
}

async fn portal(app: &App, caller: &Caller) -> Result<CallToolResult, Error> {
    let view = crate::billing::checkout::portal(&app.billing, caller).await?;
    let summary = format!(
        "Open {} to change plan or seats, update payment details, see invoices or cancel.",
        view.portal_url
    );
    done(&view, summary)
}

async fn set_budget(app: &App, caller: &Caller, args: Value) -> Result<CallToolResult, Error> {
    let budget =
        crate::billing::budget::set(&app.billing, caller, parse_args::<BudgetArgs>(args)?).await?;
    let view = crate::billing::budget::BudgetView::from(budget);
    let summary = match &view.budget {
        Some(b) => format!(
            "Monthly model budget set to {}{}; an alert fires at 80 %.",
            format_cents(b.monthly_budget_micros / 10_000),
            if b.hard_stop { " with a hard stop" } else { "" }
        ),
        None => "Monthly model budget removed.".to_owned(),
    };
    done(&view, summary)
}
