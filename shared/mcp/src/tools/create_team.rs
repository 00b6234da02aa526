//! `openai_create_team`: creates a team in the organisation.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::images::params::parse_args;
use crate::manage::{Manage, TeamArgs, TeamView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_create_team",
    actions: &[Action::ManageMembers],
    title: "Create team",
    description: "Create a team in the organisation.",
    input: input::<TeamArgs>,
    output: output::<TeamView>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<TeamArgs>(args)?;
        let v = Manage::new(call.app).create_team(call.caller, args).await?;
        done(&v, format!("Created team {}.", v.team_id))
    })
}
