//! `openai_delete_image`: deletes a stored image and its files; deleting it again changes nothing.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::ids::ImageId;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::structured;
use super::schema::{input, output};
use super::{Call, DESTROY_IDEMPOTENT, TaskRule, Tool};
use crate::images::params::{ImageIdArgs, parse_args};
use crate::views::DeletedView;

pub(super) const TOOL: Tool = Tool {
    name: "openai_delete_image",
    actions: &[Action::DeleteOwn, Action::DeleteAny],
    title: "Delete image",
    description: "Delete a stored image and its files. This cannot be undone.",
    input: input::<ImageIdArgs>,
    output: output::<DeletedView>,
    hints: DESTROY_IDEMPOTENT,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let caller = call.caller;
        let id = ImageId::parse(&parse_args::<ImageIdArgs>(args)?.image_id)?;
        let view = DeletedView::of(caller, &id, call.app.images().delete(caller, &id).await)?;
        let summary = if view.already_deleted {
            format!("Image {id} was already deleted; nothing more to do.")
        } else {
            format!("Deleted image {id}.")
        };
        structured(&view, Vec::new(), summary)
    })
}
