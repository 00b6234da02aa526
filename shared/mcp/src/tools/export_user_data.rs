//! `openai_export_user_data`: everything stored about the caller, as a zip archive to download.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::gdpr::{ExportUserArgs, Gdpr, UserExport};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_export_user_data",
    actions: &[Action::ViewImages],
    title: "Export my data",
    description: "Export everything stored about you (profile, memberships, images with their files \
        and prompts, conversations, audit entries, API key metadata) as a zip archive to download.",
    input: input::<ExportUserArgs>,
    output: output::<UserExport>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        parse_args::<ExportUserArgs>(args)?;
        let e = Gdpr::new(call.app).export(call.caller).await?;
        let summary = format!(
            "Your data ({} images, {} bytes) is ready{}",
            e.images,
            e.size_bytes,
            e.url
                .as_deref()
                .map(|u| format!(": {u}"))
                .unwrap_or_default()
        );
        done(&e, summary)
    })
}
