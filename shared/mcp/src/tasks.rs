//! The Tasks extension (`io.modelcontextprotocol/tasks`, ext-tasks) on the 2026-07-28 revision:
//! a `tools/call` from a client that declared the extension may be answered with a task handle
//! (`resultType: "task"`), which the client polls with `tasks/get`, answers with `tasks/update`
//! and stops with `tasks/cancel`.
//!
//! A task *is* a job (`imagemcp_jobs`): its record is written to the `Table` (and its
//! messages queued) before the handle is returned, so any instance of any runtime answers for it,
//! and the task id is the job id. Tasks are tenant-scoped because jobs are: another
//! organisation's id reads as unknown. Which calls become tasks, the job each is submitted as and
//! what the finished task returns are each tool's own (its task rule, in the tool registry
//! `tools`): today `openai_generate_campaign_batch`, always (it is queued work by nature), and
//! `openai_generate_image` when its estimated time is long (four variations at high quality or
//! above, or any size above 2560x1440 pixels).
//!
//! Everything else, and every call from a client that did not declare the extension, is answered
//! as before (the result, or the job id to follow with `openai_get_job`).

use imagemcp_core::ids::JobId;
use imagemcp_core::{Error, Result};
use serde_json::{Map, Value, json};

use super::protocol::{INVALID_PARAMS, RpcError};
use crate::App;
use crate::auth::Caller;
use crate::images::record::rfc3339;
use crate::jobs::{self, Job, JobStatus};

/// The extension's identifier, in capabilities.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// The error of a request that needs a capability the client did not declare.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 =
    super::protocol::MISSING_REQUIRED_CLIENT_CAPABILITY;
/// How long a task can be polled after its creation. The job itself stays readable with
/// `openai_get_job`; only the task handle expires.
pub const TASK_TTL_MS: i64 = 24 * 3600 * 1000;
/// How often a client should poll.
pub const POLL_INTERVAL_MS: u64 = 2000;
/// Whether the request's client capabilities declare the extension.
pub fn declared(client_capabilities: &Value) -> bool {
    client_capabilities
        .get("extensions")
        .and_then(|e| e.get(EXTENSION))
        .is_some_and(Value::is_object)
}

/// The -32021 error for a client that did not declare the extension (tasks/* methods).
pub fn missing_capability() -> RpcError {
    RpcError::new(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        "Missing required client capability: declare the io.modelcontextprotocol/tasks extension in _meta[\"io.modelcontextprotocol/clientCapabilities\"].extensions",
    )
    .with_data(json!({ "requiredCapabilities": { "extensions": { EXTENSION: {} } } }))
}

/// The task id of a request, parsed; anything malformed is an unknown task.
fn task_id(params: &Value) -> std::result::Result<JobId, RpcError> {
    params
        .get("taskId")
        .and_then(Value::as_str)
        .and_then(|id| JobId::parse(id).ok())
        .ok_or_else(not_found)
}

fn not_found() -> RpcError {
    RpcError::new(INVALID_PARAMS, "Failed to retrieve task: Task not found")
}

fn internal(e: &Error) -> RpcError {
    RpcError::new(
        super::protocol::INTERNAL_ERROR,
        crate::error::public_message(e),
    )
}

/// The caller's task: a job of their organisation, of a kind that tasks stand for, whose handle
/// has not expired.
async fn load(app: &App, caller: &Caller, params: &Value) -> std::result::Result<Job, RpcError> {
    let id = task_id(params)?;
    // Every task request is authorized: seeing a task is seeing the organisation's work.
    if !caller.may(imagemcp_core::rbac::Action::ViewImages) {
        return Err(not_found());
    }
    let job = match jobs::get(app.jobs(), &caller.org, &id).await {
        Ok(job) => job,
        Err(Error::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(internal(&e)),
    };
    if !super::tools::is_task_kind(&job.kind) {
        return Err(not_found());
    }
    if app.ports.clock.now_ms() > job.created_at_ms.saturating_add(TASK_TTL_MS) {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "Failed to retrieve task: Task has expired",
        ));
    }
    Ok(job)
}

/// The task's status word (ext-tasks): queued and running jobs are `working`; a finished job is
/// `completed` even when items failed (a tool error is a result, not a protocol failure).
fn status(job: &Job) -> &'static str {
    match job.status {
        JobStatus::Queued | JobStatus::Running => "working",
        JobStatus::Done | JobStatus::Failed => "completed",
        JobStatus::Cancelled => "cancelled",
    }
}

/// The `Task` object of a job and its items' records.
fn task(job: &Job, items: &[(u32, Map<String, Value>)]) -> Value {
    let last_item = items
        .iter()
        .filter_map(|(_, a)| a.get("at_ms").and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    let updated = job.updated_at_ms.max(last_item).max(job.created_at_ms);
    json!({
        "taskId": job.id,
        "status": status(job),
        "statusMessage": status_message(job, items),
        "createdAt": rfc3339(job.created_at_ms),
        "lastUpdatedAt": rfc3339(updated),
        "ttlMs": TASK_TTL_MS,
        "pollIntervalMs": POLL_INTERVAL_MS,
    })
}

/// Progress in words, item by item: "2 of 5 items done, 0 failed: hero done (img_…), …".
fn status_message(job: &Job, items: &[(u32, Map<String, Value>)]) -> String {
    let head = match job.status {
        JobStatus::Cancelled => "Cancelled: ",
        JobStatus::Done | JobStatus::Failed => "Finished: ",
        _ => "",
    };
    let mut parts = Vec::new();
    for index in 0..job.items_total {
        let record = items.iter().find(|(i, _)| *i == index).map(|(_, a)| a);
        let name = record
            .and_then(|a| a.get("result"))
            .and_then(|r| r.get("asset_type"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("item {}", index + 1), str::to_owned);
        let state = match record {
            Some(a) if a.contains_key("error") => "failed".to_owned(),
            Some(a) => match a.get("result") {
                Some(r) if r.get("tool_error").is_some() => "failed".to_owned(),
                Some(r) => match r.get("image_id").or_else(|| r.get("image_ids")) {
                    Some(id) => format!("done ({})", id_text(id)),
                    None => "done".to_owned(),
                },
                None => "done".to_owned(),
            },
            None if job.status == JobStatus::Cancelled => "cancelled".to_owned(),
            None => "pending".to_owned(),
        };
        parts.push(format!("{name} {state}"));
    }
    format!(
        "{head}{} of {} item(s) done, {} failed: {}",
        job.items_done,
        job.items_total,
        job.items_failed,
        parts.join("; ")
    )
}

fn id_text(id: &Value) -> String {
    match id {
        Value::Array(ids) => ids
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.as_str().unwrap_or_default().to_owned(),
    }
}

/// The `CreateTaskResult` for a job just submitted (`resultType: "task"`).
pub async fn created(app: &App, caller: &Caller, job: &Job) -> Result<Value> {
    let items = jobs::items(app.jobs(), &caller.org, &job.id).await?;
    let mut value = task(job, &items);
    value["resultType"] = json!("task");
    Ok(value)
}

/// `tasks/get`: the task in its current state; a completed one carries the tool's full result.
pub async fn get(
    app: &App,
    caller: &Caller,
    params: &Value,
) -> std::result::Result<Value, RpcError> {
    let job = load(app, caller, params).await?;
    let items = jobs::items(app.jobs(), &caller.org, &job.id)
        .await
        .map_err(|e| internal(&e))?;
    let mut value = task(&job, &items);
    if status(&job) == "completed" {
        let result = match super::tools::task_result(app, caller, &job, &items).await {
            Ok(r) => r,
            Err(e) => super::tools::error_result(&e),
        };
        value["result"] =
            serde_json::to_value(result).map_err(|e| internal(&Error::internal(e)))?;
    }
    Ok(value)
}

/// `tasks/update`: no task of ours ever waits on input (confirmations happen before a task is
/// created), so responses are acknowledged and ignored, as the extension asks for keys that are
/// not outstanding. The task must still be the caller's.
pub async fn update(
    app: &App,
    caller: &Caller,
    params: &Value,
) -> std::result::Result<Value, RpcError> {
    if params.get("inputResponses").is_some_and(|r| !r.is_object()) {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "inputResponses must be an object",
        ));
    }
    load(app, caller, params).await?;
    Ok(json!({}))
}

/// `tasks/cancel`: items not started are never generated (nor charged); finished items stay.
/// A task that already finished cannot be cancelled (-32602, saying so).
pub async fn cancel(
    app: &App,
    caller: &Caller,
    params: &Value,
) -> std::result::Result<Value, RpcError> {
    let job = load(app, caller, params).await?;
    // Stopping work is for whoever started it, or for someone who may delete anyone's images.
    let submitter = job
        .spec
        .as_ref()
        .and_then(|s| s.get("submitter"))
        .and_then(|s| s.get("user"))
        .and_then(Value::as_str);
    if submitter != Some(caller.user.as_str())
        && !caller.may(imagemcp_core::rbac::Action::DeleteAny)
    {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "Cannot cancel task: only its submitter or an organisation admin may cancel it",
        ));
    }
    match jobs::cancel(app.jobs(), &caller.org, &job.id).await {
        Ok(_) => Ok(json!({})),
        Err(Error::Conflict(_)) => Err(RpcError::new(
            INVALID_PARAMS,
            format!(
                "Cannot cancel task: it has already reached a terminal status ({})",
                status(&job)
            ),
        )),
        Err(Error::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(internal(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration() {
        assert!(declared(&json!({"extensions": {EXTENSION: {}}})));
        assert!(!declared(&json!({"extensions": {}})));
        assert!(!declared(&json!({})));
        assert!(!declared(&json!({"extensions": {EXTENSION: true}})));
    }
}
