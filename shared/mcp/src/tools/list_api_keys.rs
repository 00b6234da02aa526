//! `openai_list_api_keys`: the caller's API keys, never their secrets.

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
use crate::manage::{KeyListView, Manage};

pub(super) const TOOL: Tool = Tool {
    name: "openai_list_api_keys",
    actions: &[Action::ManageOwnKeys],
    title: "List API keys",
    description: "List your API keys (never their secrets): scopes, team, expiry, last use.",
    input: input::<NoArgs>,
    output: output::<KeyListView>,
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
        let keys = Manage::new(call.app).list_keys(call.caller).await?;
        done(&keys, format!("{} key(s).", keys.keys.len()))
    })
}
