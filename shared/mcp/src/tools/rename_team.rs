//! `openai_rename_team`: renames a team (names are unique in an organisation, whatever their case).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE_IDEMPOTENT};
use crate::images::params::parse_args;
use crate::manage::{Manage, RenameTeamArgs, TeamView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_rename_team",
    actions: &[Action::ManageMembers],
    title: "Rename team",
    description: "Rename a team. Team names are unique in an organisation, whatever their case.",
    input: input::<RenameTeamArgs>,
    output: output::<TeamView>,
    hints: WRITE_IDEMPOTENT,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<RenameTeamArgs>(args)?;
        let v = Manage::new(call.app).rename_team(call.caller, args).await?;
        let summary = format!("Team {} is now named {}.", v.team_id, v.name);
        done(&v, summary)
    })
}
