//! `openai_rotate_api_key`: replaces one of the caller's keys (the old one works 24 more hours); the
//! new key is offered once behind a one-time link (`reveal`), never in the result.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use imagemcp_service::reveal::SecretKind;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::images::params::parse_args;
use crate::manage::{KeyIdArgs, Manage};
use crate::reveal::{self, KeyLinkView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_rotate_api_key",
    actions: &[Action::ManageOwnKeys],
    title: "Rotate API key",
    description: "Replace one of your API keys with a new one of the same powers; the old key keeps \
        working for 24 hours so deployments can switch. The new key is shown once, to you, behind \
        a one-time link.",
    input: input::<KeyIdArgs>,
    output: output::<KeyLinkView>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: Some(SecretKind::ApiKey),
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let id = parse_args::<KeyIdArgs>(args)?.key_id;
        let key = Manage::new(call.app).rotate_key(call.caller, &id).await?;
        let summary = format!(
            "Rotated {id} to {}; the old key works for 24 more hours.",
            key.record.key_id
        );
        reveal::key_result(call.app, call.caller, key, summary).await
    })
}
