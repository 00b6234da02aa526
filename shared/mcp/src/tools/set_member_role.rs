//! `openai_set_member_role`: changes a member's role in a team (an organisation always keeps one
//! admin).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE_IDEMPOTENT};
use crate::images::params::parse_args;
use crate::manage::{Manage, MemberView, SetRoleArgs};

pub(super) const TOOL: Tool = Tool {
    name: "openai_set_member_role",
    actions: &[Action::ManageMembers],
    title: "Change member role",
    description: "Change a member's role (admin, creator, reviewer, viewer) in a team. An organisation \
        always keeps one admin.",
    input: input::<SetRoleArgs>,
    output: output::<MemberView>,
    hints: WRITE_IDEMPOTENT,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<SetRoleArgs>(args)?;
        let v = Manage::new(call.app).set_role(call.caller, args).await?;
        done(&v, format!("Updated the roles of {}.", v.user_id))
    })
}
