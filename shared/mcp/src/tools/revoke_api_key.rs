//! `openai_revoke_api_key`: revokes one of the caller's API keys at once.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, DESTROY, TaskRule, Tool};
use crate::images::params::parse_args;
use crate::manage::{DoneView, KeyIdArgs, Manage};

pub(super) const TOOL: Tool = Tool {
    name: "openai_revoke_api_key",
    actions: &[Action::ManageOwnKeys],
    title: "Revoke API key",
    description: "Revoke one of your API keys at once.",
    input: input::<KeyIdArgs>,
    output: output::<DoneView>,
    hints: DESTROY,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let id = parse_args::<KeyIdArgs>(args)?.key_id;
        let v = Manage::new(call.app).revoke_key(call.caller, &id).await?;
        done(&v, format!("Revoked {id}."))
    })
}
