//! The MCP tool surface as data: each tool's name, description, schemas and annotations in one
//! registry, and the dispatch of `tools/call` onto the image service.

use std::sync::{Arc, OnceLock};

use imagemcp_core::Error;
use imagemcp_core::ids::ImageId;
use imagemcp_core::rbac::Action;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Resource, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

mod billing;
mod manage;

use crate::App;
use crate::auth::Caller;
use crate::images::params::{EditArgs, GenerateArgs, ImageIdArgs, ListArgs, parse_args};
use crate::images::record::ImageRecord;
use crate::images::{Generated, ProgressTx};
use crate::views::{
    ConversationListView, ConversationView, DeletedView, GeneratedView, ImageListView, ImageView,
    image_uri,
};

/// What a tool does to the world, for its annotations.
#[derive(Clone, Copy)]
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
}

struct ToolSpec {
    name: &'static str,
    /// What a caller must be allowed to do to see and call the tool (any one of these).
    actions: &'static [Action],
    title: &'static str,
    description: &'static str,
    input: fn() -> JsonObject,
    output: fn() -> JsonObject,
    hints: Hints,
    /// Whether the tool reports progress while it works.
    long_running: bool,
}

/// The JSON Schema of an input (what a caller may send) or of an output (what we send: fields we
/// skip when empty are not required).
fn schema_of<T: JsonSchema>(serialize: bool) -> JsonObject {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::to_value(schema).unwrap_or_else(|_| json!({"type": "object"}));
    portable(&mut value);
    if let Some(obj) = value.as_object_mut() {
        // Clients read `title` from the tool itself; the Rust type name is noise to them. Without
        // `$schema` the MCP default dialect (2020-12) applies, and validators that only know
        // draft-07 (Ajv's default, in the TypeScript SDK) do not refuse the schema.
        obj.remove("title");
        obj.remove("$schema");
    }
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Makes a generated schema portable across clients' validators: drops formats that are not in
/// the JSON Schema vocabulary (schemars' `uint32`, `int64`, `double`… make strict validators such
/// as Ajv refuse the whole schema) and shows optional fields as simply optional rather than
/// nullable (we never send or need `null`).
fn portable(value: &mut Value) {
    const STANDARD_FORMATS: &[&str] = &[
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "uri",
        "uri-reference",
        "uuid",
        "hostname",
        "ipv4",
        "ipv6",
        "regex",
    ];
    match value {
        Value::Object(obj) => {
            if obj
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                obj.remove("format");
            }
            if obj.get("default") == Some(&Value::Null) {
                obj.remove("default");
            }
            if let Some(Value::Array(types)) = obj.get("type") {
                let non_null: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 {
                    obj.insert("type".into(), non_null[0].clone());
                }
            }
            // An optional struct comes out as `anyOf: [{$ref}, {type: null}]`: keep the one real
            // alternative, inlined, as for optional scalars above.
            if let Some(Value::Array(alternatives)) = obj.get("anyOf") {
                let real: Vec<Value> = alternatives
                    .iter()
                    .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if real.len() == 1
                    && real.len() < alternatives.len()
                    && let Value::Object(only) = &real[0]
                {
                    obj.remove("anyOf");
                    for (k, v) in only {
                        obj.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            obj.values_mut().for_each(portable);
        }
        Value::Array(items) => items.iter_mut().for_each(portable),
        _ => {}
    }
}

fn input<T: JsonSchema>() -> JsonObject {
    schema_of::<T>(false)
}

fn output<T: JsonSchema>() -> JsonObject {
    schema_of::<T>(true)
}

pub(crate) const GENERATE: &str = "openai_generate_image";
const EDIT: &str = "openai_edit_image";
const LIST: &str = "openai_list_images";
const GET: &str = "openai_get_image";
const DELETE: &str = "openai_delete_image";
const LIST_CONVERSATIONS: &str = "openai_list_conversations";
pub(crate) const CAMPAIGN: &str = "openai_generate_campaign_batch";
const GET_JOB: &str = "openai_get_job";

const READ: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
};
/// Changes state; calling it twice does it twice.
const WRITE: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
};
/// Changes state; calling it twice is the same as once.
const WRITE_IDEMPOTENT: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: true,
};
/// Removes or ends something.
const DESTROY: Hints = Hints {
    read_only: false,
    destructive: true,
    idempotent: false,
};
/// Removes something; a second call changes nothing more.
const DESTROY_IDEMPOTENT: Hints = Hints {
    read_only: false,
    destructive: true,
    idempotent: true,
};

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: GENERATE,
        actions: &[Action::Generate],
        title: "Generate image",
        description: "Generate 1-4 image variations from a text prompt with OpenAI's GPT Image models. \
            Returns a preview of each image, a resource link to the full-size file, and a conversation_id: \
            pass it back with a new prompt to refine the latest image.",
        input: input::<GenerateArgs>,
        output: output::<GeneratedView>,
        hints: WRITE,
        long_running: true,
    },
    ToolSpec {
        name: EDIT,
        actions: &[Action::Edit],
        title: "Edit image",
        description: "Edit stored images (by id) or uploaded images (base64) following a prompt, optionally \
            only inside a mask (a PNG whose transparent pixels mark the area to change).",
        input: input::<EditArgs>,
        output: output::<GeneratedView>,
        hints: WRITE,
        long_running: true,
    },
    ToolSpec {
        name: LIST,
        actions: &[Action::ViewImages],
        title: "List images",
        description: "List stored images, newest first, a page at a time.",
        input: input::<ListArgs>,
        output: output::<ImageListView>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: GET,
        actions: &[Action::ViewImages],
        title: "Get image",
        description: "Show one stored image: its preview, details and a link to the full-size file.",
        input: input::<ImageIdArgs>,
        output: output::<ImageView>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: DELETE,
        actions: &[Action::DeleteOwn, Action::DeleteAny],
        title: "Delete image",
        description: "Delete a stored image and its files. This cannot be undone.",
        input: input::<ImageIdArgs>,
        output: output::<DeletedView>,
        hints: DESTROY_IDEMPOTENT,
        long_running: false,
    },
    ToolSpec {
        name: LIST_CONVERSATIONS,
        actions: &[Action::ViewImages],
        title: "List conversations",
        description: "List conversations (chains of refinements), most recently started first.",
        input: input::<ListArgs>,
        output: output::<ConversationListView>,
        hints: READ,
        long_running: false,
    },
    // Campaign batches through the queue (issue 7, `engine/campaign.rs`).
    ToolSpec {
        name: CAMPAIGN,
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
        input: input::<crate::engine::campaign::CampaignArgs>,
        output: output::<crate::engine::campaign::JobView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: GET_JOB,
        actions: &[Action::ViewImages],
        title: "Get job",
        description: "Show a background job's progress (items done, failed) and each finished item's \
            result: image id and file name, or the error.",
        input: input::<crate::engine::campaign::JobIdArgs>,
        output: output::<crate::engine::campaign::JobView>,
        hints: READ,
        long_running: false,
    }, // Audit log, data-subject rights, keys and members (see `tools/manage.rs`).
    ToolSpec {
        name: manage::VIEW_AUDIT,
        actions: &[Action::ViewAuditLog],
        title: "View audit log",
        description: "Show the organisation's tamper-evident audit log, newest first, filtered by action \
            (exact, or a prefix ending in `.` such as `image.`), user and time; set verify to also check \
            the hash chain and report the first broken link.",
        input: input::<crate::audit::read::ViewArgs>,
        output: output::<crate::audit::read::AuditPage>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: manage::VERIFY_AUDIT,
        actions: &[Action::ViewAuditLog],
        title: "Verify audit log",
        description: "Walk the audit log's hash chain and report whether it is intact, or the first entry \
            where it was altered, removed or reordered.",
        input: input::<crate::audit::read::VerifyArgs>,
        output: output::<crate::audit::read::Verification>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: manage::EXPORT_AUDIT,
        actions: &[Action::ExportData],
        title: "Export audit log",
        description: "Export the whole audit log as JSON Lines (one stored entry per line, verifiable \
            offline) to a download link, and inline when asked.",
        input: input::<crate::audit::read::ExportArgs>,
        output: output::<crate::audit::read::AuditExport>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::EXPORT_USER,
        actions: &[Action::ViewImages],
        title: "Export my data",
        description: "Export everything stored about you (profile, memberships, images with their files \
            and prompts, conversations, audit entries, API key metadata) as a zip archive to download.",
        input: input::<crate::gdpr::ExportUserArgs>,
        output: output::<crate::gdpr::UserExport>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::DELETE_USER,
        actions: &[Action::ViewImages],
        title: "Delete my data",
        description: "Erase your account and everything of yours: profile, keys, memberships, the images \
            you created and their files. Audit entries are kept, pseudonymised. Needs a credential with \
            the `admin` scope and your user id as confirmation. Cannot be undone.",
        input: input::<crate::gdpr::DeleteUserArgs>,
        output: output::<crate::gdpr::Erasure>,
        hints: DESTROY_IDEMPOTENT,
        long_running: false,
    },
    ToolSpec {
        name: manage::LIST_KEYS,
        actions: &[Action::ManageOwnKeys],
        title: "List API keys",
        description: "List your API keys (never their secrets): scopes, team, expiry, last use.",
        input: input::<crate::audit::read::VerifyArgs>,
        output: output::<crate::manage::KeyListView>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: manage::CREATE_KEY,
        actions: &[Action::ManageOwnKeys],
        title: "Create API key",
        description: "Create an API key for yourself with scopes (images:read, images:write, admin; never \
            more than the credential you call with), an optional team binding and expiry. The key is \
            shown once.",
        input: input::<crate::manage::CreateKeyArgs>,
        output: output::<crate::manage::NewKeyView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::ROTATE_KEY,
        actions: &[Action::ManageOwnKeys],
        title: "Rotate API key",
        description: "Replace one of your API keys with a new one of the same powers; the old key keeps \
            working for 24 hours so deployments can switch.",
        input: input::<crate::manage::KeyIdArgs>,
        output: output::<crate::manage::NewKeyView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::REVOKE_KEY,
        actions: &[Action::ManageOwnKeys],
        title: "Revoke API key",
        description: "Revoke one of your API keys at once.",
        input: input::<crate::manage::KeyIdArgs>,
        output: output::<crate::manage::DoneView>,
        hints: DESTROY,
        long_running: false,
    },
    ToolSpec {
        name: manage::LIST_MEMBERS,
        actions: &[Action::ManageMembers],
        title: "List members",
        description: "List the organisation's members and their role in each team.",
        input: input::<crate::audit::read::VerifyArgs>,
        output: output::<crate::manage::MemberListView>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: manage::SET_ROLE,
        actions: &[Action::ManageMembers],
        title: "Change member role",
        description: "Change a member's role (admin, creator, reviewer, viewer) in a team. An organisation \
            always keeps one admin.",
        input: input::<crate::manage::SetRoleArgs>,
        output: output::<crate::manage::MemberView>,
        hints: WRITE_IDEMPOTENT,
        long_running: false,
    },
    ToolSpec {
        name: manage::REMOVE_MEMBER,
        actions: &[Action::ManageMembers],
        title: "Remove member",
        description: "Remove a member from the organisation (every team); their keys stop working here.",
        input: input::<crate::manage::UserIdArgs>,
        output: output::<crate::manage::DoneView>,
        hints: DESTROY,
        long_running: false,
    },
    ToolSpec {
        name: manage::INVITE,
        actions: &[Action::ManageMembers],
        title: "Invite member",
        description: "Invite an email address to a team with a role; returns the invitation token to send \
            (valid 7 days, usable once).",
        input: input::<crate::manage::InviteArgs>,
        output: output::<crate::manage::InvitationView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::ACCEPT,
        actions: &[Action::ViewImages],
        title: "Accept invitation",
        description: "Join the organisation an invitation token was sent to you for.",
        input: input::<crate::manage::AcceptArgs>,
        output: output::<crate::manage::MemberView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::CREATE_TEAM,
        actions: &[Action::ManageMembers],
        title: "Create team",
        description: "Create a team in the organisation.",
        input: input::<crate::manage::TeamArgs>,
        output: output::<crate::manage::TeamView>,
        hints: WRITE,
        long_running: false,
    }, // Billing (see `tools/billing.rs`).
    ToolSpec {
        name: billing::USAGE,
        actions: &[Action::ViewUsage],
        title: "Usage summary",
        description: "Show the organisation's plan and this period's usage: images used and remaining, \
            overage so far and its price, the invoice so far (cents), and what the models cost this \
            month (micro-dollars), yours and the organisation's, against its budget.",
        input: input::<crate::billing::usage::NoArgs>,
        output: output::<crate::billing::usage::UsageSummary>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: billing::UPGRADE,
        actions: &[Action::ManageBilling],
        title: "Upgrade plan",
        description: "Start a subscription to Pro ($29/month: 200 images, 4 variations, all modes) or \
            Team ($99/month per 5 seats: 1,000 images per 5 seats, API access, collaboration). Returns \
            a Stripe Checkout URL to open; the plan changes once the payment is confirmed.",
        input: input::<crate::billing::checkout::UpgradeArgs>,
        output: output::<crate::billing::checkout::CheckoutView>,
        hints: WRITE_IDEMPOTENT,
        long_running: false,
    },
    ToolSpec {
        name: billing::PORTAL,
        actions: &[Action::ManageBilling],
        title: "Billing portal",
        description: "Get a Stripe Billing Portal URL to change plan or seats, update payment details, \
            see invoices or cancel.",
        input: input::<crate::billing::usage::NoArgs>,
        output: output::<crate::billing::checkout::PortalView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: billing::SET_BUDGET,
        actions: &[Action::ManageBilling],
        title: "Set budget",
        description: "Set the organisation's monthly model-cost budget in cents (0 removes it): an \
            alert is recorded once a month at 80 %; with hard_stop, generation is refused once it is \
            spent.",
        input: input::<crate::billing::budget::BudgetArgs>,
        output: output::<crate::billing::budget::BudgetView>,
        hints: WRITE_IDEMPOTENT,
        long_running: false,
    },
];

/// Every tool as an MCP `Tool` object with what it requires, built once.
fn all() -> &'static [(Tool, &'static [Action])] {
    static CACHE: OnceLock<Vec<(Tool, &'static [Action])>> = OnceLock::new();
    CACHE.get_or_init(|| {
        TOOLS
            .iter()
            .map(|spec| {
                let annotations = ToolAnnotations::with_title(spec.title)
                    .read_only(spec.hints.read_only)
                    .destructive(spec.hints.destructive)
                    .idempotent(spec.hints.idempotent)
                    .open_world(!spec.hints.read_only);
                let mut input = (spec.input)();
                if super::confirm::is_costly(spec.name)
                    && let Some(Value::Object(props)) = input.get_mut("properties")
                {
                    // Taken off by the cost gate (`mcp::confirm`) before the tool parses its args.
                    props.insert(
                        super::confirm::CONFIRM_ARG.to_owned(),
                        json!({"type": "integer", "minimum": 0, "description":
                            "Confirms up front a cost up to this many cents, when the estimate is above your confirmation threshold."}),
                    );
                }
                let tool = Tool::new(spec.name, spec.description, Arc::new(input))
                    .with_title(spec.title)
                    .with_raw_output_schema(Arc::new((spec.output)()))
                    .with_annotations(annotations);
                (tool, spec.actions)
            })
            .collect()
    })
}

/// The tools this caller may call: a viewer is not shown tools that would only refuse it.
pub fn list(caller: &Caller) -> Vec<Tool> {
    all()
        .iter()
        .filter(|(_, actions)| actions.iter().any(|a| caller.may(*a)))
        .map(|(t, _)| t.clone())
        .collect()
}

/// Whether a tool exists.
pub fn exists(name: &str) -> bool {
    TOOLS.iter().any(|t| t.name == name)
}

/// The scope a caller's credential lacks for a tool its role allows, if that is all that stands in
/// the way (the HTTP edge turns it into a 403 `insufficient_scope` challenge).
pub fn missing_scope(caller: &Caller, name: &str) -> Option<imagemcp_core::rbac::Scope> {
    let spec = TOOLS.iter().find(|t| t.name == name)?;
    if spec.actions.iter().any(|a| caller.may(*a)) {
        return None;
    }
    spec.actions
        .iter()
        .find(|a| caller.role.allows(**a))
        .map(|a| a.scope())
}

/// Whether a tool reports progress.
pub fn is_long_running(name: &str) -> bool {
    TOOLS.iter().any(|t| t.name == name && t.long_running)
}

/// Runs a tool. Errors of the call itself (bad arguments, unknown ids, model failures) come back
/// as a result with `isError`, which the model on the client side can read and act on.
pub async fn call(
    app: &App,
    caller: &Caller,
    name: &str,
    args: Value,
    progress: Option<&ProgressTx>,
) -> CallToolResult {
    match run(app, caller, name, args, progress).await {
        Ok(result) => result,
        Err(err) => error_result(&err),
    }
}

/// The `_meta` key under which a tool error's machine-readable details travel.
pub const ERROR_META_KEY: &str = "io.imagemcp/error";

/// A tool error the client's model can act on: the message in text, the details (code, field,
/// retry delay) in `_meta`. Not in `structuredContent`: clients validate that against the tool's
/// output schema even on errors (the TypeScript SDK does), and an error is not an output.
pub fn error_result(err: &Error) -> CallToolResult {
    let message = crate::error::public_message(err);
    let details = crate::error::details(err);
    let text = match err {
        Error::Invalid { field, .. } => format!("Invalid argument `{field}`: {message}"),
        _ => message,
    };
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    let mut meta = rmcp::model::JsonObject::new();
    meta.insert(ERROR_META_KEY.to_owned(), details);
    result.meta = Some(rmcp::model::MetaObject(meta));
    result
}

fn structured<T: Serialize>(
    view: &T,
    mut content: Vec<ContentBlock>,
    summary: String,
) -> Result<CallToolResult, Error> {
    let value = serde_json::to_value(view).map_err(Error::internal)?;
    content.insert(0, ContentBlock::text(summary));
    let mut result = CallToolResult::success(content);
    result.structured_content = Some(value);
    Ok(result)
}

fn resource_link(rec: &ImageRecord) -> ContentBlock {
    let resource = Resource::new(image_uri(&rec.id), rec.download_name())
        .with_title(rec.prompt.chars().take(80).collect::<String>())
        .with_mime_type(rec.mime_type.clone())
        .with_size(rec.size_bytes);
    ContentBlock::resource_link(resource)
}

async fn image_blocks(app: &App, rec: &ImageRecord) -> Result<Vec<ContentBlock>, Error> {
    let preview = app.images().preview(rec).await?;
    Ok(vec![
        ContentBlock::image(
            crate::imaging::encode_base64(&preview.bytes),
            preview.content_type,
        ),
        resource_link(rec),
    ])
}

async fn urls(app: &App, records: &[ImageRecord]) -> Result<Vec<Option<String>>, Error> {
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        out.push(app.images().download_url(rec).await?);
    }
    Ok(out)
}

pub(crate) async fn generated_result(app: &App, g: &Generated) -> Result<CallToolResult, Error> {
    let view = GeneratedView::new(g, urls(app, &g.images).await?);
    let mut content = Vec::new();
    for rec in &g.images {
        content.extend(image_blocks(app, rec).await?);
    }
    let ids: Vec<String> = g.images.iter().map(|r| r.id.to_string()).collect();
    let mut summary = format!(
        "Created {} image(s) with {} ({}): {}. Conversation {} (turn {}); pass conversation_id to refine.",
        g.images.len(),
        g.model,
        format_args!("{}x{}", g.images[0].width, g.images[0].height),
        ids.join(", "),
        g.conversation.id,
        g.conversation.turns,
    );
    if let Some(hit) = g.cache {
        summary.push_str(&format!(
            " From the cache ({}): made earlier for the same request, no quota used; pass fresh: true for new images.",
            hit.tier.as_str()
        ));
    }
    if !g.failed_variations.is_empty() {
        summary.push_str(&format!(
            " {} variation(s) failed: {}",
            g.failed_variations.len(),
            g.failed_variations.join("; ")
        ));
    }
    structured(&view, content, summary)
}

/// Submits a campaign batch from tool arguments.
pub(crate) async fn submit_campaign(
    app: &App,
    caller: &Caller,
    args: Value,
) -> Result<crate::jobs::Job, Error> {
    let args = parse_args::<crate::engine::campaign::CampaignArgs>(args)?;
    crate::engine::campaign::submit(app, caller, args).await
}

/// A campaign job as a tool result: its view, and a link to each finished image (what a
/// finished task of `openai_generate_campaign_batch` returns).
pub(crate) async fn campaign_result(
    app: &App,
    caller: &Caller,
    id: &imagemcp_core::ids::JobId,
) -> Result<CallToolResult, Error> {
    let view = crate::engine::campaign::view(app, caller, id).await?;
    let mut content = Vec::new();
    for item in &view.items {
        if let Some(image) = item.result.get("image_id").and_then(Value::as_str) {
            let rec = app.images().get(caller, &ImageId::parse(image)?).await?;
            content.push(resource_link(&rec));
        }
    }
    let summary = format!(
        "Campaign job {} is {}: {} of {} item(s) done, {} failed.",
        view.job_id, view.status, view.items_done, view.items_total, view.items_failed
    );
    structured(&view, content, summary)
}

async fn run(
    app: &App,
    caller: &Caller,
    name: &str,
    args: Value,
    progress: Option<&ProgressTx>,
) -> Result<CallToolResult, Error> {
    let images = app.images();
    match name {
        GENERATE => {
            let g = images
                .generate(caller, parse_args::<GenerateArgs>(args)?, progress)
                .await?;
            generated_result(app, &g).await
        }
        EDIT => {
            let g = images
                .edit(caller, parse_args::<EditArgs>(args)?, progress)
                .await?;
            generated_result(app, &g).await
        }
        LIST => {
            let args = parse_args::<ListArgs>(args)?;
            let (records, next) = images.list(caller, &args).await?;
            let urls = urls(app, &records).await?;
            let view = ImageListView {
                images: records
                    .iter()
                    .zip(urls)
                    .map(|(r, u)| ImageView::new(r, u))
                    .collect(),
                next_cursor: next,
            };
            let content = records.iter().map(resource_link).collect();
            let more = if view.next_cursor.is_some() {
                " More are available: pass next_cursor as cursor."
            } else {
                ""
            };
            structured(
                &view,
                content,
                format!("{} image(s).{more}", view.images.len()),
            )
        }
        GET => {
            let id = ImageId::parse(&parse_args::<ImageIdArgs>(args)?.image_id)?;
            let rec = images.get(caller, &id).await?;
            let url = images.download_url(&rec).await?;
            let view = ImageView::new(&rec, url);
            let summary = format!(
                "Image {} ({}x{} {}): {}",
                rec.id, rec.width, rec.height, rec.format, rec.prompt
            );
            structured(&view, image_blocks(app, &rec).await?, summary)
        }
        DELETE => {
            let id = ImageId::parse(&parse_args::<ImageIdArgs>(args)?.image_id)?;
            images.delete(caller, &id).await?;
            let view = DeletedView {
                image_id: id.to_string(),
                deleted: true,
            };
            structured(&view, Vec::new(), format!("Deleted image {id}."))
        }
        LIST_CONVERSATIONS => {
            let args = parse_args::<ListArgs>(args)?;
            let (records, next) = images.list_conversations(caller, &args).await?;
            let view = ConversationListView {
                conversations: records.iter().map(ConversationView::from).collect(),
                next_cursor: next,
            };
            structured(
                &view,
                Vec::new(),
                format!("{} conversation(s).", view.conversations.len()),
            )
        }
        CAMPAIGN => {
            let job = submit_campaign(app, caller, args).await?;
            let view = crate::engine::campaign::view(app, caller, &job.id).await?;
            let summary = format!(
                "Campaign job {} queued with {} item(s); check it with openai_get_job.",
                view.job_id, view.items_total
            );
            structured(&view, Vec::new(), summary)
        }
        GET_JOB => {
            let args = parse_args::<crate::engine::campaign::JobIdArgs>(args)?;
            let id = crate::engine::campaign::parse_job_id(&args.job_id)?;
            let view = crate::engine::campaign::view(app, caller, &id).await?;
            let summary = format!(
                "Job {} is {}: {} of {} item(s) done, {} failed.",
                view.job_id, view.status, view.items_done, view.items_total, view.items_failed
            );
            structured(&view, Vec::new(), summary)
        }
        other if billing::handles(other) => billing::run(app, caller, other, args).await,
        other => manage::run(app, caller, other, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_portable() {
        for (tool, _) in all() {
            let text = serde_json::to_string(&tool.input_schema).unwrap()
                + &serde_json::to_string(&tool.output_schema).unwrap();
            for bad in [
                "\"$schema\"",
                "uint32",
                "uint64",
                "\"null\"",
                "\"title\":\"GenerateArgs\"",
            ] {
                assert!(!text.contains(bad), "{}: schema contains {bad}", tool.name);
            }
            assert_eq!(
                tool.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                tool.name
            );
        }
    }
}
