//! `openai_edit_image`: edits stored or uploaded images following a prompt, optionally inside a
//! mask, with progress.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::generated_result;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE, cost};
use crate::App;
use crate::images::params::{EditArgs, parse_args};
use crate::views::GeneratedView;

pub(super) const TOOL: Tool = Tool {
    name: "openai_edit_image",
    actions: &[Action::Edit],
    title: "Edit image",
    description: "Edit stored images (by id) or uploaded images (base64) following a prompt, optionally \
        only inside a mask (a PNG whose transparent pixels mark the area to change).",
    input: input::<EditArgs>,
    output: output::<GeneratedView>,
    hints: WRITE,
    long_running: true,
    cost: Some(estimate),
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<EditArgs>(args)?;
        let g = call
            .app
            .images()
            .edit(call.caller, args, call.progress)
            .await?;
        generated_result(call.app, &g).await
    })
}

/// One image at the size, quality and mode asked for.
fn estimate(app: &App, args: &Value) -> u64 {
    cost::images_micros(app, args, 1)
}
