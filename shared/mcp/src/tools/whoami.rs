//! `openai_whoami`: who the caller is, what this credential acts with, and every organisation they
//! belong to.

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
use crate::whoami::{Whoami, whoami};

pub(super) const TOOL: Tool = Tool {
    name: "openai_whoami",
    actions: &[Action::ViewImages],
    title: "Who am I",
    description: "Show who you are: your user id (what openai_delete_user_data asks you to confirm), \
        name and email; the organisation, team, role and scopes this credential acts with; and every \
        organisation you belong to with your teams and roles there (the org_id a login or a new key \
        can name).",
    input: input::<NoArgs>,
    output: output::<Whoami>,
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
        let me = whoami(call.app, call.caller).await?;
        let orgs: Vec<String> = me
            .organisations
            .iter()
            .map(|o| {
                format!(
                    "{} ({}, {}{})",
                    o.name,
                    o.org_id,
                    o.role,
                    if o.personal { ", personal" } else { "" }
                )
            })
            .collect();
        let who = if me.name.is_empty() {
            me.email.clone()
        } else {
            format!("{} <{}>", me.name, me.email)
        };
        let summary = format!(
            "You are {who}, user id {}: {} in {} ({}), with the scopes {}. Your organisations: {}.",
            me.user_id,
            me.role,
            me.org_name,
            me.org_id,
            me.scopes.join(" "),
            orgs.join("; ")
        );
        done(&me, summary)
    })
}
