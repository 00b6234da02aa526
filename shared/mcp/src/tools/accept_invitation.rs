//! `openai_accept_invitation`: joins the organisation an invitation token was sent for.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::images::params::parse_args;
use crate::manage::{AcceptArgs, Manage, MemberView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_accept_invitation",
    actions: &[Action::ViewImages],
    title: "Accept invitation",
    description: "Join the organisation an invitation token was sent to you for.",
    input: input::<AcceptArgs>,
    output: output::<MemberView>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<AcceptArgs>(args)?;
        let v = Manage::new(call.app).accept(call.caller, args).await?;
        done(&v, "Invitation accepted.".into())
    })
}
