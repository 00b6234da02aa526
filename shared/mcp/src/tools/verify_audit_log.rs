//! `openai_verify_audit_log`: walks the audit log's hash chain and reports whether it is intact, or
//! its first broken link.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::audit::read::{Verification, VerifyArgs};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_verify_audit_log",
    actions: &[Action::ViewAuditLog],
    title: "Verify audit log",
    description: "Walk the audit log's hash chain and report whether it is intact, or the first entry \
        where it was altered, removed or reordered.",
    input: input::<VerifyArgs>,
    output: output::<Verification>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        parse_args::<VerifyArgs>(args)?;
        let v = call.app.audit_log().verify(call.caller).await?;
        let summary = match &v.first_broken {
            None => format!("The audit chain is intact ({} entries).", v.entries_checked),
            Some(b) => format!("The audit chain is broken at entry {}: {}", b.seq, b.reason),
        };
        done(&v, summary)
    })
}
