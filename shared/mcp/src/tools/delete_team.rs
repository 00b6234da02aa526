//! `openai_delete_team`: deletes an empty team (never the organisation's default team).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, DESTROY, TaskRule, Tool};
use crate::images::params::parse_args;
use crate::manage::{DeletedTeamView, Manage, TeamIdArgs};

pub(super) const TOOL: Tool = Tool {
    name: "openai_delete_team",
    actions: &[Action::ManageMembers],
    title: "Delete team",
    description: "Delete an empty team: one no member holds a role in. The organisation's default \
        team cannot be deleted.",
    input: input::<TeamIdArgs>,
    output: output::<DeletedTeamView>,
    hints: DESTROY,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let team = parse_args::<TeamIdArgs>(args)?.team_id;
        let v = Manage::new(call.app)
            .delete_team(call.caller, &team)
            .await?;
        let summary = format!("Deleted the empty team {} ({}).", v.name, v.team_id);
        done(&v, summary)
    })
}
