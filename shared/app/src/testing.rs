//! Test support (feature `testing`, never in a deployed build): [`write_canary_everywhere`]
//! stores a canary prompt through every path of the application that stores a prompt, for each
//! runtime's tests to then scan its raw storage (the SQLite files, the DynamoDB items) for the
//! canary in clear with [`find_canary`].

use std::time::Duration;

use imagemcp_core::queue::PullQueue;
use imagemcp_core::{Error, Result};
use serde_json::{Value, json};

use crate::App;
use crate::auth::Caller;
use crate::images::params::{EditArgs, GenerateArgs, parse_args};

/// The canary prompt. Its words are chosen not to occur by chance in stored bytes (ids, hashes,
/// base64); `Kierkegaard42x` holds a digit, so the semantic cache's intent guard keeps it too.
pub const CANARY: &str = "a violet heron quoting Kierkegaard42x in Reykjavik";

/// What must not be found in raw storage: the canary and each of its distinctive words.
pub const CANARY_FRAGMENTS: &[&str] = &[CANARY, "Kierkegaard42x", "Reykjavik", "quoting"];

/// The first canary fragment found in `bytes` (ASCII case-insensitively), if any.
pub fn find_canary(bytes: &[u8]) -> Option<&'static str> {
    CANARY_FRAGMENTS.iter().copied().find(|needle| {
        bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    })
}

/// What the scenario made, read back through the services (in clear, as their owner sees it), so
/// a scan that finds nothing proves the canary was stored sealed, not that nothing was stored.
#[derive(Debug)]
pub struct CanaryWritten {
    pub images: usize,
    pub jobs: usize,
}

/// One 2026-07-28 `tools/call` through the MCP handler, as a client that declared form
/// elicitation; the JSON-RPC result.
async fn call_tool(app: &App, caller: &Caller, params: Value) -> Result<Value> {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    });
    let name = params["name"].as_str().unwrap_or_default().to_owned();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let mut headers = http::HeaderMap::new();
    for (header, value) in [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", name.as_str()),
    ] {
        headers.insert(
            header,
            http::HeaderValue::from_str(value).map_err(Error::internal)?,
        );
    }
    let body = serde_json::to_vec(&body).map_err(Error::internal)?;
    let reply = crate::mcp::handle(app, caller, &http::Method::POST, &headers, body.into()).await;
    match reply.body {
        crate::mcp::McpBody::Json(message) if message.get("result").is_some() => {
            Ok(message["result"].clone())
        }
        crate::mcp::McpBody::Json(message) => {
            Err(Error::internal(format!("tools/call failed: {message}")))
        }
        _ => Err(Error::internal(
            "tools/call did not answer with one message",
        )),
    }
}

/// Delivers `queue`'s messages to the job consumer until none is left (failures go back at once).
pub async fn drain(app: &App, queue: &dyn PullQueue) -> Result<()> {
    for _ in 0..50 {
        let batch = queue.receive(10, Duration::from_secs(120)).await?;
        if batch.is_empty() {
            return Ok(());
        }
        let failed = crate::jobs::consume(app, &batch, 3).await;
        for d in &batch {
            if failed.contains(&d.message_id) {
                queue.retry(&d.receipt, Duration::ZERO).await?;
            } else {
                queue.ack(&d.receipt).await?;
            }
        }
    }
    Err(Error::internal("the queue did not drain"))
}

/// Stores [`CANARY`] through every path that stores a prompt, as `caller` (an admin of an
/// organisation with billing off): a generation confirmed through the MCP cost confirmation
/// (images, conversation, usage, audit, the confirmation's single-use marker, both cache tiers),
/// a refinement, an edit, a campaign batch and a generation run as a task (their jobs and items,
/// consumed from `queue`), and an answer to a handshake-era confirmation (elicitation state).
pub async fn write_canary_everywhere(
    app: &App,
    caller: &Caller,
    queue: &dyn PullQueue,
) -> Result<CanaryWritten> {
    crate::engine::cache::set_enabled(app.generation_cache(), caller, true).await?;
    use crate::billing::confirmation::{SettingScope, set_threshold};
    set_threshold(&app.billing, caller, SettingScope::User, 0).await?;
    let generate = json!({"name": "openai_generate_image",
        "arguments": {"prompt": CANARY, "quality": "low"}});
    let mut result = call_tool(app, caller, generate.clone()).await?;
    if result["resultType"] == "input_required" {
        let mut confirmed = generate;
        confirmed["requestState"] = result["requestState"].clone();
        confirmed["inputResponses"] =
            json!({"confirm_cost": {"action": "accept", "content": {"confirm": true}}});
        result = call_tool(app, caller, confirmed).await?;
    }
    let first = &result["structuredContent"]["images"][0];
    let (Some(image_id), Some(conversation_id)) = (
        first["id"].as_str().map(str::to_owned),
        result["structuredContent"]["conversation_id"]
            .as_str()
            .map(str::to_owned),
    ) else {
        return Err(Error::internal(format!("the generation failed: {result}")));
    };
    let images = app.images();
    let refine: GenerateArgs = parse_args(json!({"prompt": format!("{CANARY}, closer"),
        "conversation_id": conversation_id, "quality": "low"}))?;
    images.generate(caller, refine, None).await?;
    let edit: EditArgs = parse_args(json!({"prompt": format!("{CANARY}, at dusk"),
        "image_ids": [image_id], "quality": "low"}))?;
    images.edit(caller, edit, None).await?;
    let campaign = parse_args(json!({"campaign_name": "Canary Launch",
        "template_type": "email", "core_prompt": CANARY, "quality": "low"}))?;
    let campaign = crate::images::campaign::submit(&app.images, caller, campaign).await?;
    let task = crate::images::queued::submit(
        &app.images,
        caller,
        json!({"prompt": format!("{CANARY}, as a task"), "quality": "low"}),
    )
    .await?;
    crate::mcp::confirm::store_reply(
        app,
        "canary-session",
        "imagemcp-confirm-canary",
        &json!({"result": {"action": "accept", "content": {"confirm": true}}}),
    )
    .await?;
    drain(app, queue).await?;

    // Everything reads back in clear for its owner.
    let (listed, _) = images
        .list(
            caller,
            &crate::images::params::ListArgs {
                limit: Some(100),
                cursor: None,
            },
        )
        .await?;
    if listed.iter().filter(|r| r.prompt.contains(CANARY)).count() != listed.len() {
        return Err(Error::internal("an image does not read back its prompt"));
    }
    for (id, prompt_in_spec) in [(&campaign.id, true), (&task.id, false)] {
        let job = crate::jobs::get(app.jobs(), &caller.org, id).await?;
        let spec = job.spec.map(|s| s.to_string()).unwrap_or_default();
        // A task's arguments are sealed once more inside its spec (with the user's key).
        if job.status != crate::jobs::JobStatus::Done || spec.contains(CANARY) != prompt_in_spec {
            return Err(Error::internal(format!(
                "job {id} is {:?} or does not read back its spec",
                job.status
            )));
        }
    }
    Ok(CanaryWritten {
        images: listed.len(),
        jobs: 2,
    })
}
