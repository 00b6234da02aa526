//! `openai_list_members`: the organisation's members and their role in each team.

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
use crate::manage::{Manage, MemberListView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_list_members",
    actions: &[Action::ManageMembers],
    title: "List members",
    description: "List the organisation's members and their role in each team.",
    input: input::<NoArgs>,
    output: output::<MemberListView>,
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
        let v = Manage::new(call.app).list_members(call.caller).await?;
        let lines: Vec<String> = v
            .members
            .iter()
            .map(|m| {
                let who = match (&m.name, &m.email) {
                    (Some(name), Some(email)) => format!("{name} <{email}>"),
                    (None, Some(email)) => email.clone(),
                    _ => "(erased)".to_owned(),
                };
                let teams: Vec<String> = m
                    .teams
                    .iter()
                    .map(|t| format!("{} in {}", t.role, t.name.as_deref().unwrap_or(&t.team_id)))
                    .collect();
                format!("{who} {} ({})", m.user_id, teams.join(", "))
            })
            .collect();
        done(
            &v,
            format!("{} member(s): {}.", v.members.len(), lines.join("; ")),
        )
    })
}
