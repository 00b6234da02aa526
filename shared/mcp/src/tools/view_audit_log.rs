//! `openai_view_audit_log`: the organisation's tamper-evident audit log, newest first, filtered;
//! optionally with the hash chain checked.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::audit::read::{AuditPage, ViewArgs};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_view_audit_log",
    actions: &[Action::ViewAuditLog],
    title: "View audit log",
    description: "Show the organisation's tamper-evident audit log, newest first, filtered by action \
        (exact, or a prefix ending in `.` such as `image.`), user and time; set verify to also check \
        the hash chain and report the first broken link.",
    input: input::<ViewArgs>,
    output: output::<AuditPage>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<ViewArgs>(args)?;
        let page = call.app.audit_log().view(call.caller, &args).await?;
        let mut summary = format!("{} audit entries.", page.entries.len());
        if let Some(v) = &page.verification {
            summary.push_str(&match &v.first_broken {
                None => format!(" Chain intact ({} entries).", v.entries_checked),
                Some(b) => format!(" Chain BROKEN at entry {}: {}", b.seq, b.reason),
            });
        }
        done(&page, summary)
    })
}
