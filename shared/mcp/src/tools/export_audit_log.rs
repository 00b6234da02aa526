//! `openai_export_audit_log`: the whole audit log as JSON Lines, to a download link (and inline when
//! asked).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::audit::read::{AuditExport, ExportArgs};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_export_audit_log",
    actions: &[Action::ExportData],
    title: "Export audit log",
    description: "Export the whole audit log as JSON Lines (one stored entry per line, verifiable \
        offline) to a download link, and inline when asked.",
    input: input::<ExportArgs>,
    output: output::<AuditExport>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<ExportArgs>(args)?;
        let e = call.app.audit_log().export(call.caller, &args).await?;
        let summary = format!(
            "Exported {} audit entries ({} bytes){}",
            e.entries,
            e.size_bytes,
            e.url
                .as_deref()
                .map(|u| format!(": {u}"))
                .unwrap_or_default()
        );
        done(&e, summary)
    })
}
