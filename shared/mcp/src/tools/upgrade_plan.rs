//! `openai_upgrade_plan`: a Stripe Checkout URL to subscribe to Pro or Team; the plan changes once the
//! payment is confirmed.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::money::format_cents;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE_IDEMPOTENT};
use crate::billing::checkout::{CheckoutView, UpgradeArgs};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_upgrade_plan",
    actions: &[Action::ManageBilling],
    title: "Upgrade plan",
    description: "Start a subscription to Pro ($29/month: 200 images, 4 variations, all modes) or \
        Team ($99/month per 5 seats: 1,000 images per 5 seats, API access, collaboration). Returns \
        a Stripe Checkout URL to open; the plan changes once the payment is confirmed.",
    input: input::<UpgradeArgs>,
    output: output::<CheckoutView>,
    hints: WRITE_IDEMPOTENT,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<UpgradeArgs>(args)?;
        let view = crate::billing::checkout::upgrade(&call.app.billing, call.caller, args).await?;
        let summary = format!(
            "Open {} to subscribe to {} ({} seat(s), {}/month). The plan changes once the payment is confirmed.",
            view.checkout_url,
            view.tier,
            view.seats,
            format_cents(view.monthly_cents)
        );
        done(&view, summary)
    })
}
