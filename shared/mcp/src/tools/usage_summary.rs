//! `openai_usage_summary`: the organisation's plan and this period's usage, invoice so far and model
//! cost against its budget.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::money::{format_cents, micros_to_cents};
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::billing::usage::{NoArgs, UsageSummary};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_usage_summary",
    actions: &[Action::ViewUsage],
    title: "Usage summary",
    description: "Show the organisation's plan and this period's usage: images used and remaining, \
        overage so far and its price, the invoice so far (cents), and what the models cost this \
        month (micro-dollars), yours and the organisation's, against its budget.",
    input: input::<NoArgs>,
    output: output::<UsageSummary>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        parse_args::<NoArgs>(args)?;
        let s = crate::billing::usage::summary(&call.app.billing, call.caller).await?;
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
    })
}
