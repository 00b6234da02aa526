//! `openai_generate_campaign_batch`: a campaign's set of images from one prompt and a template,
//! made in the background; the answer is the job (`openai_get_job` follows it), or a task for a
//! client that declared the Tasks extension.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::{job_result, job_state, structured};
use super::schema::{input, output};
use super::{Call, Items, Task, TaskRule, Tool, WRITE, cost};
use crate::App;
use crate::auth::Caller;
use crate::images::campaign::{self, CampaignArgs, JobView};
use crate::images::params::parse_args;
use crate::jobs::Job;

pub(super) const TOOL: Tool = Tool {
    name: "openai_generate_campaign_batch",
    actions: &[Action::Generate],
    title: "Generate campaign batch",
    description: "Generate a campaign's set of images from one prompt and a template: social_media_kit \
        (hero 3:2, square 1:1, story 9:16, landscape 16:9, portrait 4:5), presentation (5-10 consistent \
        16:9 slides) or email (2:1 header + 3 square images). \
        Returns a job id at once; the images are made in the background, each at its asset's exact \
        aspect ratio, named {campaign}_{asset_type}_v{version}.{ext} with {campaign} the safe form of \
        campaign_name (\"Spring Launch\" -> spring-launch); downloads and resources carry those names. \
        Follow with openai_get_job. Pass an idempotency_key so a retried submission does not start a \
        second job.",
    input: input::<CampaignArgs>,
    output: output::<JobView>,
    hints: WRITE,
    long_running: false,
    cost: Some(estimate),
    task: TaskRule::Always(Task {
        kind: campaign::KIND,
        submit,
        result: task_result,
    }),
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let (app, caller) = (call.app, call.caller);
        // A key used before names the job it made: the answer is that job as it stands.
        let before = match args.get("idempotency_key").and_then(Value::as_str) {
            Some(key) => crate::jobs::job_for_key(app.jobs(), &caller.org, key).await?,
            None => None,
        };
        let job = submit(app, caller, args).await?;
        let view = campaign::view(&app.images, caller, &job.id).await?;
        if before.as_ref() == Some(&job.id) {
            let head = format!(
                "This idempotency_key was used before, so no new job was started: campaign job {} {}",
                view.job_id,
                job_state(&view)
            );
            return job_result(app, caller, view, head).await;
        }
        let summary = format!(
            "Campaign job {} is {} with {} item(s); check it with openai_get_job.",
            view.job_id, view.status, view.items_total
        );
        structured(&view, Vec::new(), summary)
    })
}

/// Every asset of the template at the model, size and quality asked for.
fn estimate(app: &App, args: &Value) -> u64 {
    cost::model_spec(app, args).map_or(0, |spec| campaign::estimate_micros(spec, args))
}

/// Submits a campaign batch from tool arguments.
fn submit<'a>(app: &'a App, caller: &'a Caller, args: Value) -> BoxFuture<'a, Result<Job, Error>> {
    Box::pin(async move {
        let args = parse_args::<CampaignArgs>(args)?;
        campaign::submit(&app.images, caller, args).await
    })
}

/// The campaign job as it stands (what a finished task returns): see [`job_result`].
fn task_result<'a>(
    app: &'a App,
    caller: &'a Caller,
    job: &'a Job,
    _items: &'a Items,
) -> BoxFuture<'a, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let view = campaign::view(&app.images, caller, &job.id).await?;
        let head = format!("Campaign job {} {}", view.job_id, job_state(&view));
        job_result(app, caller, view, head).await
    })
}
