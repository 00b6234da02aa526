//! `openai_get_image`: one stored image, its preview, details and a link to the full-size file.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::ids::ImageId;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::{image_blocks, structured};
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::images::params::{ImageIdArgs, parse_args};
use crate::views::ImageView;

pub(super) const TOOL: Tool = Tool {
    name: "openai_get_image",
    actions: &[Action::ViewImages],
    title: "Get image",
    description: "Show one stored image: its preview, details and a link to the full-size file.",
    input: input::<ImageIdArgs>,
    output: output::<ImageView>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let images = call.app.images();
        let id = ImageId::parse(&parse_args::<ImageIdArgs>(args)?.image_id)?;
        let rec = images.get(call.caller, &id).await?;
        let url = images.download_url(&rec).await?;
        let view = ImageView::new(&rec, url);
        let summary = format!(
            "Image {} ({}x{} {}): {}",
            rec.id, rec.width, rec.height, rec.format, rec.prompt
        );
        structured(&view, image_blocks(call.app, &rec, None).await?, summary)
    })
}
