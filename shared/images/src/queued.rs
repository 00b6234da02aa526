//! A generation queued as a one-item job: how a long render runs in the background (as an MCP
//! task, for clients that declared the Tasks extension). The arguments are sealed with the
//! submitter's data key, and the item generates as the submitter, recorded with its images so a
//! crash can neither make nor charge them twice.

use imagemcp_core::{Error, Result};
use imagemcp_jobs::{self as jobs, Job};
use imagemcp_tenancy::Caller;
use serde_json::{Value, json};

use crate::Images;
use crate::job_item::{ItemNaming, ItemOutcome, JobItem, generate_result};
use crate::params::{GenerateArgs, parse_args};

/// The job kind of a queued generation.
pub const KIND: &str = "generate";
/// The associated data of a queued generation's sealed arguments.
const ARGUMENTS_AAD: &str = "JOB#generate/arguments";

/// Queues a generation as a one-item job, after the checks that fail fast (arguments, plan
/// gates), and returns the job.
pub async fn submit(cx: &Images, caller: &Caller, args: Value) -> Result<Job> {
    caller.authorize(imagemcp_core::rbac::Action::Generate)?;
    let parsed: GenerateArgs = parse_args(args.clone())?;
    imagemcp_core::prompt::Prompt::parse(&parsed.prompt)?;
    // The arguments hold the prompt: sealed with the submitter's own data key, so they are
    // encrypted at rest like every prompt, and erasing the user shreds them.
    let sealed = imagemcp_tenancy::crypto::Crypto::new(&cx.ports)
        .seal(
            &imagemcp_tenancy::crypto::user_owner(&caller.user),
            ARGUMENTS_AAD,
            &args.to_string(),
        )
        .await?;
    let spec = json!({
        "arguments": sealed,
        "submitter": crate::campaign::Submitter::of(caller),
    });
    jobs::enqueue_items(cx.jobs(), &caller.org, KIND, 1, spec, None).await
}

/// Generations run as MCP tasks, as a job kind: the one item generates as the submitter.
pub struct GenerateItems;

#[async_trait::async_trait]
impl jobs::ItemKind<Images> for GenerateItems {
    fn name(&self) -> &'static str {
        KIND
    }

    async fn run_item(&self, cx: &Images, job: &Job, index: u32) -> Result<Value> {
        generate_item(cx, job, index).await
    }
}

/// Runs the generation of a `generate` job (its one item) as its submitter. A refusal that a
/// retry cannot change (bad arguments, policy, plan) is the item's result, shown as the tool's
/// error; other failures are retried by the queue.
async fn generate_item(cx: &Images, job: &Job, index: u32) -> Result<Value> {
    let spec = job.spec.clone().unwrap_or(Value::Null);
    let submitter: crate::campaign::Submitter =
        serde_json::from_value(spec["submitter"].clone())
            .map_err(|e| Error::internal(format!("a generate job's spec is malformed: {e}")))?;
    let caller = submitter.into_caller(&job.org_id);
    let arguments = imagemcp_tenancy::crypto::Crypto::new(&cx.ports)
        .open(
            &imagemcp_tenancy::crypto::user_owner(&caller.user),
            ARGUMENTS_AAD,
            spec["arguments"].as_str().unwrap_or_default(),
        )
        .await?;
    let arguments: Value = serde_json::from_str(&arguments).map_err(Error::internal)?;
    let outcome = match parse_args::<GenerateArgs>(arguments) {
        Ok(mut args) => {
            // Recorded with the images, so a crash cannot make (or charge) them twice.
            args.job_item = Some(JobItem::new(job, index, ItemNaming::Generate));
            cx.service().generate(&caller, args, None).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(g) => Ok(generate_result(&ItemOutcome::of(&g))),
        Err(e) if permanent(&e) => Ok(json!({ "tool_error": {
            "message": imagemcp_tenancy::error::public_message(&e),
            "details": imagemcp_tenancy::error::details(&e),
        }})),
        Err(e) => Err(e),
    }
}

/// Whether an error is the request's own fault (a retry would fail the same way).
fn permanent(e: &Error) -> bool {
    let status = imagemcp_tenancy::error::status(e);
    (400..500).contains(&status) && status != 429
}
