//! `openai_get_job`: a background job's progress and each finished item's result (image id and
//! file name, or the error).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::{job_result, job_state};
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::images::campaign::{self, JobIdArgs, JobView};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_get_job",
    actions: &[Action::ViewImages],
    title: "Get job",
    description: "Show a background job's progress (items done, failed) and each finished item's \
        result: image id and file name, or the error.",
    input: input::<JobIdArgs>,
    output: output::<JobView>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<JobIdArgs>(args)?;
        let id = campaign::parse_job_id(&args.job_id)?;
        let view = campaign::view(&call.app.images, call.caller, &id).await?;
        let mut head = format!("Job {} ({}) {}", view.job_id, view.kind, job_state(&view));
        // Failed items say why on their own lines; a job that failed as a whole says it here.
        if let Some(error) = view.error.as_ref().filter(|_| view.items_failed == 0) {
            head.push_str(&format!(" Error: {error}."));
        }
        job_result(call.app, call.caller, view, head).await
    })
}
