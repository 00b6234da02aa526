//! `openai_list_teams`: the organisation's teams, their size, the default one, and the caller's role
//! in each.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::billing::usage::NoArgs;
use crate::images::params::parse_args;
use crate::manage::{Manage, TeamListView, TeamView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_list_teams",
    actions: &[Action::ViewImages],
    title: "List teams",
    description: "List the organisation's teams: id, name, how many members each has, which is the \
        default team, and your role in each.",
    input: input::<NoArgs>,
    output: output::<TeamListView>,
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
        let v = Manage::new(call.app).list_teams(call.caller).await?;
        let lines: Vec<String> = v.teams.iter().map(team_line).collect();
        let summary = format!("{} team(s): {}.", v.teams.len(), lines.join("; "));
        done(&v, summary)
    })
}

/// "Design (team_…, 3 member(s), default)".
fn team_line(t: &TeamView) -> String {
    format!(
        "{} ({}, {} member(s){})",
        t.name,
        t.team_id,
        t.member_count,
        if t.default { ", default" } else { "" }
    )
}
