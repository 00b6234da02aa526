//! `openai_billing_portal`: a Stripe Billing Portal URL to change plan or seats, payment details,
//! see invoices or cancel.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::billing::checkout::PortalView;
use crate::billing::usage::NoArgs;
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_billing_portal",
    actions: &[Action::ManageBilling],
    title: "Billing portal",
    description: "Get a Stripe Billing Portal URL to change plan or seats, update payment details, \
        see invoices or cancel.",
    input: input::<NoArgs>,
    output: output::<PortalView>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        parse_args::<NoArgs>(args)?;
        let view = crate::billing::checkout::portal(&call.app.billing, call.caller).await?;
        let summary = format!(
            "Open {} to change plan or seats, update payment details, see invoices or cancel.",
            view.portal_url
        );
        done(&view, summary)
    })
}
