//! `openai_generate_image`: 1-4 variations from a prompt, with progress; a long generation runs as
//! a task for a client that declared the Tasks extension.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::ids::{ConversationId, ImageId};
use imagemcp_core::image_params::{ImageSize, Quality};
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::render::{generated_result, tool_error};
use super::schema::{input, output};
use super::{Call, Items, Task, TaskRule, Tool, WRITE, cost};
use crate::App;
use crate::auth::Caller;
use crate::images::Generated;
use crate::images::params::{GenerateArgs, parse_args};
use crate::jobs::Job;
use crate::views::GeneratedView;

pub(super) const TOOL: Tool = Tool {
    name: "openai_generate_image",
    actions: &[Action::Generate],
    title: "Generate image",
    description: "Generate 1-4 image variations from a text prompt with OpenAI's GPT Image models. \
        Returns a preview of each image, a resource link to the full-size file, and a conversation_id: \
        pass it back with a new prompt to refine the latest image.",
    input: input::<GenerateArgs>,
    output: output::<GeneratedView>,
    hints: WRITE,
    long_running: true,
    cost: Some(estimate),
    task: TaskRule::When(
        is_long,
        Task {
            kind: crate::images::queued::KIND,
            submit,
            result: task_result,
        },
    ),
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<GenerateArgs>(args)?;
        let g = call
            .app
            .images()
            .generate(call.caller, args, call.progress)
            .await?;
        generated_result(call.app, &g).await
    })
}

/// The variations asked for (1 to 4), at the size, quality and mode asked for.
fn estimate(app: &App, args: &Value) -> u64 {
    let n = args
        .get("n")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 4);
    cost::images_micros(app, args, n)
}

/// The most pixels a generation may have and still be answered synchronously (2560x1440).
const LONG_PIXELS: u64 = 2560 * 1440;

/// Whether a generation's estimated time is long enough to run as a task: four variations at
/// high quality or above (each high render takes tens of seconds, and four in parallel compete
/// for the same rate limit), or more than 2560x1440 pixels per image. Unparseable arguments are
/// not long: they fail fast, synchronously.
fn is_long(args: &Value) -> bool {
    let n = args.get("n").and_then(Value::as_u64).unwrap_or(1);
    let quality = args
        .get("quality")
        .and_then(Value::as_str)
        .and_then(|q| Quality::parse(q).ok())
        .unwrap_or_default();
    let slow_quality = !matches!(quality, Quality::Low | Quality::Medium);
    let pixels = args
        .get("size")
        .and_then(Value::as_str)
        .and_then(|s| ImageSize::parse(s).ok())
        .map(|s| {
            let (w, h) = s.dimensions();
            u64::from(w) * u64::from(h)
        })
        .unwrap_or(0);
    (n >= 4 && slow_quality) || pixels > LONG_PIXELS
}

/// Queues the generation as a job of one item.
fn submit<'a>(app: &'a App, caller: &'a Caller, args: Value) -> BoxFuture<'a, Result<Job, Error>> {
    Box::pin(crate::images::queued::submit(&app.images, caller, args))
}

/// The finished job's one item as the generation's result; a failed item as its tool error.
fn task_result<'a>(
    app: &'a App,
    caller: &'a Caller,
    _job: &'a Job,
    items: &'a Items,
) -> BoxFuture<'a, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let record = items.first().map(|(_, a)| a);
        if let Some(error) = record.and_then(|a| a.get("error")).and_then(Value::as_str) {
            return Ok(tool_error(error.to_owned(), json!({ "code": "failed" })));
        }
        let result = record
            .and_then(|a| a.get("result"))
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(err) = result.get("tool_error") {
            return Ok(tool_error(
                err["message"]
                    .as_str()
                    .unwrap_or("the generation failed")
                    .to_owned(),
                err["details"].clone(),
            ));
        }
        let mut images = Vec::new();
        for id in result["image_ids"].as_array().into_iter().flatten() {
            let id = ImageId::parse(id.as_str().unwrap_or_default())?;
            images.push(app.images().get(caller, &id).await?);
        }
        let conversation_id =
            ConversationId::parse(result["conversation_id"].as_str().unwrap_or_default())?;
        let conversation = app.images().conversation(caller, &conversation_id).await?;
        let generated = Generated {
            model: result["model"].as_str().unwrap_or_default().to_owned(),
            images,
            conversation,
            usage: serde_json::from_value(result["usage"].clone()).unwrap_or_default(),
            cost_micros: result["cost_micros"].as_u64().unwrap_or(0),
            failed_variations: serde_json::from_value(result["failed_variations"].clone())
                .unwrap_or_default(),
            cache: None,
            // A task's images were made by another call: their previews are read from storage.
            previews: Vec::new(),
        };
        generated_result(app, &generated).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_generations() {
        assert!(is_long(&json!({"n": 4, "quality": "high"})));
        assert!(is_long(&json!({"n": 4})), "auto counts as high");
        assert!(!is_long(&json!({"n": 4, "quality": "medium"})));
        assert!(!is_long(&json!({"n": 3, "quality": "high"})));
        assert!(is_long(&json!({"size": "3840x2160"})));
        assert!(!is_long(&json!({"size": "2560x1440"})));
        assert!(!is_long(&json!({"size": "nonsense", "n": "x"})));
    }
}
