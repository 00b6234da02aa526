//! `openai_list_conversations`: the conversations (chains of refinements), most recently started
//! first.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::structured;
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::images::params::{ListArgs, parse_args};
use crate::views::{ConversationListView, ConversationView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_list_conversations",
    actions: &[Action::ViewImages],
    title: "List conversations",
    description: "List conversations (chains of refinements), most recently started first.",
    input: input::<ListArgs>,
    output: output::<ConversationListView>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<ListArgs>(args)?;
        let (records, next) = call
            .app
            .images()
            .list_conversations(call.caller, &args)
            .await?;
        let view = ConversationListView {
            conversations: records.iter().map(ConversationView::from).collect(),
            next_cursor: next,
        };
        structured(
            &view,
            Vec::new(),
            format!("{} conversation(s).", view.conversations.len()),
        )
    })
}
