//! `openai_set_budget`: the organisation's monthly model-cost budget (an alert at 80 %, optionally a
//! hard stop).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::money::format_cents;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE_IDEMPOTENT};
use crate::billing::budget::{BudgetArgs, BudgetView};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_set_budget",
    actions: &[Action::ManageBilling],
    title: "Set budget",
    description: "Set the organisation's monthly model-cost budget in cents (0 removes it): an \
        alert is recorded once a month at 80 %; with hard_stop, generation is refused once it is \
        spent.",
    input: input::<BudgetArgs>,
    output: output::<BudgetView>,
    hints: WRITE_IDEMPOTENT,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<BudgetArgs>(args)?;
        let budget = crate::billing::budget::set(&call.app.billing, call.caller, args).await?;
        let view = BudgetView::from(budget);
        let summary = match &view.budget {
            Some(b) => format!(
                "Monthly model budget set to {}{}; an alert fires at 80 %.",
                format_cents(b.monthly_budget_micros / 10_000),
                if b.hard_stop { " with a hard stop" } else { "" }
            ),
            None => "Monthly model budget removed.".to_owned(),
        };
        done(&view, summary)
    })
}
