//! `openai_create_api_key`: a new API key for the caller; the key is offered once behind a one-time
//! link (`reveal`), never in the result.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use imagemcp_service::reveal::SecretKind;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::images::params::parse_args;
use crate::manage::{CreateKeyArgs, Manage};
use crate::reveal::{self, KeyLinkView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_create_api_key",
    actions: &[Action::ManageOwnKeys],
    title: "Create API key",
    description: "Create an API key for yourself with scopes (images:read, images:write, admin; never \
        more than the credential you call with), an optional team binding and expiry. The key is \
        shown once, to you, on a page behind a one-time link (never in this result).",
    input: input::<CreateKeyArgs>,
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
        let args = parse_args::<CreateKeyArgs>(args)?;
        let key = Manage::new(call.app).create_key(call.caller, args).await?;
        let summary = format!("Created key {}.", key.record.key_id);
        reveal::key_result(call.app, call.caller, key, summary).await
    })
}
