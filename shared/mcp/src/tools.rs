//! The MCP tool surface as data: each tool's name, description, schemas and annotations in one
//! registry, and the dispatch of `tools/call` onto the image service.

use std::sync::{Arc, OnceLock};

use imagemcp_core::Error;
use imagemcp_core::blob::Blob;
use imagemcp_core::ids::ImageId;
use imagemcp_core::rbac::Action;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Resource, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

mod account;
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
    // Campaign batches through the queue (`images/campaign.rs`).
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
        input: input::<crate::images::campaign::CampaignArgs>,
        output: output::<crate::images::campaign::JobView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: GET_JOB,
        actions: &[Action::ViewImages],
        title: "Get job",
        description: "Show a background job's progress (items done, failed) and each finished item's \
            result: image id and file name, or the error.",
        input: input::<crate::images::campaign::JobIdArgs>,
        output: output::<crate::images::campaign::JobView>,
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
            every scope your role can use (not a narrowed key) and your user id as confirmation \
            (openai_whoami shows it). Cannot be undone.",
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
        input: input::<crate::billing::usage::NoArgs>,
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
            shown once, to you, on a page behind a one-time link (never in this result).",
        input: input::<crate::manage::CreateKeyArgs>,
        output: output::<super::reveal::KeyLinkView>,
        hints: WRITE,
        long_running: false,
    },
    ToolSpec {
        name: manage::ROTATE_KEY,
        actions: &[Action::ManageOwnKeys],
        title: "Rotate API key",
        description: "Replace one of your API keys with a new one of the same powers; the old key keeps \
            working for 24 hours so deployments can switch. The new key is shown once, to you, behind \
            a one-time link.",
        input: input::<crate::manage::KeyIdArgs>,
        output: output::<super::reveal::KeyLinkView>,
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
        input: input::<crate::billing::usage::NoArgs>,
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
        description: "Invite an email address to a team with a role. The invitation token to send (valid \
            7 days, usable once) is shown to you once behind a one-time link, never in this result.",
        input: input::<crate::manage::InviteArgs>,
        output: output::<super::reveal::InvitationLinkView>,
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
    }, // The caller's identity and the organisation's teams (see `tools/account.rs`).
    ToolSpec {
        name: account::WHOAMI,
        actions: &[Action::ViewImages],
        title: "Who am I",
        description: "Show who you are: your user id (what openai_delete_user_data asks you to confirm), \
            name and email; the organisation, team, role and scopes this credential acts with; and every \
            organisation you belong to with your teams and roles there (the org_id a login or a new key \
            can name).",
        input: input::<crate::billing::usage::NoArgs>,
        output: output::<crate::whoami::Whoami>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: account::LIST_TEAMS,
        actions: &[Action::ViewImages],
        title: "List teams",
        description: "List the organisation's teams: id, name, how many members each has, which is the \
            default team, and your role in each.",
        input: input::<crate::billing::usage::NoArgs>,
        output: output::<crate::manage::TeamListView>,
        hints: READ,
        long_running: false,
    },
    ToolSpec {
        name: account::RENAME_TEAM,
        actions: &[Action::ManageMembers],
        title: "Rename team",
        description: "Rename a team. Team names are unique in an organisation, whatever their case.",
        input: input::<crate::manage::RenameTeamArgs>,
        output: output::<crate::manage::TeamView>,
        hints: WRITE_IDEMPOTENT,
        long_running: false,
    },
    ToolSpec {
        name: account::DELETE_TEAM,
        actions: &[Action::ManageMembers],
        title: "Delete team",
        description: "Delete an empty team: one no member holds a role in. The organisation's default \
            team cannot be deleted.",
        input: input::<crate::manage::TeamIdArgs>,
        output: output::<crate::manage::DeletedTeamView>,
        hints: DESTROY,
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

/// An image as chat content: its preview (the one given, made with the image, or else read from
/// storage) and a link to the full image.
async fn image_blocks(
    app: &App,
    rec: &ImageRecord,
    made: Option<&Blob>,
) -> Result<Vec<ContentBlock>, Error> {
    let read;
    let preview = match made {
        Some(preview) => preview,
        None => {
            read = app.images().preview(rec).await?;
            &read
        }
    };
    Ok(vec![
        ContentBlock::image(
            crate::imaging::encode_base64(&preview.bytes),
            preview.content_type.clone(),
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
    for (i, rec) in g.images.iter().enumerate() {
        content.extend(image_blocks(app, rec, g.previews.get(i)).await?);
    }
    let ids: Vec<String> = g.images.iter().map(|r| r.id.to_string()).collect();
    // A cached answer says so first: the person should know nothing new was made.
    let (mut summary, verb) = match g.cache {
        Some(hit) => {
            let request = match hit.similarity_milli {
                Some(milli) => format!("a near-identical request ({}% similar)", milli / 10),
                None => "the same request".to_owned(),
            };
            (
                format!(
                    "From the cache: these images were made earlier for {request}, so nothing new was \
                     generated and no quota was used (pass fresh: true for new images). "
                ),
                "Returned",
            )
        }
        None => (String::new(), "Created"),
    };
    summary.push_str(&format!(
        "{verb} {} image(s) with {} ({}): {}. Conversation {} (turn {}); pass conversation_id to refine.",
        g.images.len(),
        g.model,
        format_args!("{}x{}", g.images[0].width, g.images[0].height),
        ids.join(", "),
        g.conversation.id,
        g.conversation.turns,
    ));
    if !g.failed_variations.is_empty() {
        summary.push_str(&format!(
            " {} variation(s) failed: {}",
            g.failed_variations.len(),
            g.failed_variations.join("; ")
        ));
    }
    structured(&view, content, summary)
}

/// The most characters of a prompt a listing shows.
const SHORT_PROMPT_CHARS: usize = 60;

/// `text` on one line, cut to `max` characters (with an ellipsis when cut).
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// A page of images for a person: each image's id, size and short prompt, then how to get the
/// next page, with the cursor itself.
fn list_text(records: &[ImageRecord], next_cursor: Option<&str>) -> String {
    let mut lines = vec![match records.len() {
        0 if next_cursor.is_none() => "No images.".to_owned(),
        n => format!("{n} image(s), newest first:"),
    }];
    for rec in records {
        lines.push(format!(
            "- {} ({}x{} {}): {}",
            rec.id,
            rec.width,
            rec.height,
            rec.format,
            one_line(&rec.prompt, SHORT_PROMPT_CHARS)
        ));
    }
    if let Some(cursor) = next_cursor {
        lines.push(format!(
            "More images: call again with cursor \"{cursor}\" for the next page."
        ));
    }
    lines.join("\n")
}

/// Submits a campaign batch from tool arguments.
pub(crate) async fn submit_campaign(
    app: &App,
    caller: &Caller,
    args: Value,
) -> Result<crate::jobs::Job, Error> {
    let args = parse_args::<crate::images::campaign::CampaignArgs>(args)?;
    crate::images::campaign::submit(&app.images, caller, args).await
}

/// A campaign job as a tool result (what a finished task of `openai_generate_campaign_batch`
/// returns): see [`job_result`].
pub(crate) async fn campaign_result(
    app: &App,
    caller: &Caller,
    id: &imagemcp_core::ids::JobId,
) -> Result<CallToolResult, Error> {
    let view = crate::images::campaign::view(&app.images, caller, id).await?;
    let head = format!("Campaign job {} {}", view.job_id, job_state(&view));
    job_result(app, caller, view, head).await
}

/// "is done: 4 of 5 item(s) done, 1 failed."
fn job_state(view: &crate::images::campaign::JobView) -> String {
    format!(
        "is {}: {} of {} item(s) done, {} failed.",
        view.status, view.items_done, view.items_total, view.items_failed
    )
}

/// The ids of the images a finished item made (a campaign item's one, a generation's several).
fn item_images(result: &Value) -> impl Iterator<Item = &str> {
    let one = result.get("image_id").and_then(Value::as_str);
    let several = result.get("image_ids").and_then(Value::as_array);
    one.into_iter()
        .chain(several.into_iter().flatten().filter_map(Value::as_str))
}

/// One finished item of a job in words: "2. spring_hero_v1.png (hero): image://img_…", or
/// "3. square: failed: why".
fn item_line(number: u32, result: &Value, links: &[String]) -> String {
    let text = |key: &str| result.get(key).and_then(Value::as_str);
    let name = match (text("file_name"), text("asset_type")) {
        (Some(file), Some(asset)) => format!("{file} ({asset})"),
        (Some(name), None) | (None, Some(name)) => name.to_owned(),
        (None, None) => format!("item {number}"),
    };
    let error = text("error").or_else(|| {
        result
            .pointer("/tool_error/message")
            .and_then(Value::as_str)
    });
    match error {
        Some(error) => format!("{number}. {name}: failed: {error}"),
        None if links.is_empty() => format!("{number}. {name}: done"),
        None => format!("{number}. {name}: {}", links.join(", ")),
    }
}

/// The most items a job's text lists one by one (its structured content has them all).
const LISTED_ITEMS: u32 = 50;

/// A job as a tool result: its view as structured content, a resource link to each finished
/// image, and in text `head`, then one line per item: its name (file name, else asset type,
/// else its number) with a link to each of its images (the resource URI, and a signed download
/// URL where the store makes one), or its error, or that it is still to come.
async fn job_result(
    app: &App,
    caller: &Caller,
    view: crate::images::campaign::JobView,
    head: String,
) -> Result<CallToolResult, Error> {
    let mut content = Vec::new();
    let mut lines = vec![head];
    for index in 0..view.items_total.min(LISTED_ITEMS) {
        let number = index + 1;
        let Some(item) = view.items.iter().find(|i| i.index == index) else {
            let state = if view.status == "cancelled" {
                "not made (cancelled)"
            } else {
                "pending"
            };
            lines.push(format!("{number}. item {number}: {state}"));
            continue;
        };
        let result = &item.result;
        let mut links = Vec::new();
        for image in item_images(result) {
            match app.images().get(caller, &ImageId::parse(image)?).await {
                Ok(rec) => {
                    links.push(match app.images().download_url(&rec).await? {
                        Some(url) => format!("{} (download: {url})", image_uri(&rec.id)),
                        None => image_uri(&rec.id),
                    });
                    content.push(resource_link(&rec));
                }
                Err(Error::Gone { .. } | Error::NotFound { .. }) => {
                    links.push(format!("{image} (since deleted)"));
                }
                Err(e) => return Err(e),
            }
        }
        lines.push(item_line(number, result, &links));
    }
    if view.items_total > LISTED_ITEMS {
        lines.push(format!(
            "… and {} more item(s): see the structured result.",
            view.items_total - LISTED_ITEMS
        ));
    }
    structured(&view, content, lines.join("\n"))
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
            let summary = list_text(&records, view.next_cursor.as_deref());
            structured(&view, content, summary)
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
            structured(&view, image_blocks(app, &rec, None).await?, summary)
        }
        DELETE => {
            let id = ImageId::parse(&parse_args::<ImageIdArgs>(args)?.image_id)?;
            let view = DeletedView::of(caller, &id, images.delete(caller, &id).await)?;
            let summary = if view.already_deleted {
                format!("Image {id} was already deleted; nothing more to do.")
            } else {
                format!("Deleted image {id}.")
            };
            structured(&view, Vec::new(), summary)
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
            // A key used before names the job it made: the answer is that job as it stands.
            let before = match args.get("idempotency_key").and_then(Value::as_str) {
                Some(key) => crate::jobs::job_for_key(app.jobs(), &caller.org, key).await?,
                None => None,
            };
            let job = submit_campaign(app, caller, args).await?;
            let view = crate::images::campaign::view(&app.images, caller, &job.id).await?;
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
        }
        GET_JOB => {
            let args = parse_args::<crate::images::campaign::JobIdArgs>(args)?;
            let id = crate::images::campaign::parse_job_id(&args.job_id)?;
            let view = crate::images::campaign::view(&app.images, caller, &id).await?;
            let mut head = format!("Job {} ({}) {}", view.job_id, view.kind, job_state(&view));
            // Failed items say why on their own lines; a job that failed as a whole says it here.
            if let Some(error) = view.error.as_ref().filter(|_| view.items_failed == 0) {
                head.push_str(&format!(" Error: {error}."));
            }
            job_result(app, caller, view, head).await
        }
        other if billing::handles(other) => billing::run(app, caller, other, args).await,
        other if account::handles(other) => account::run(app, caller, other, args).await,
        other => manage::run(app, caller, other, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_items_read_as_names_with_links_or_errors() {
        let campaign = json!({"asset_type": "hero", "image_id": "img_1",
            "file_name": "spring_hero_v1.png"});
        let links = vec!["image://img_1".to_owned()];
        assert_eq!(item_images(&campaign).collect::<Vec<_>>(), ["img_1"]);
        assert_eq!(
            item_line(1, &campaign, &links),
            "1. spring_hero_v1.png (hero): image://img_1"
        );
        let failed = json!({"error": "the Free plan's 10 images this period are used up"});
        assert_eq!(
            item_line(3, &failed, &[]),
            "3. item 3: failed: the Free plan's 10 images this period are used up"
        );
        let generation = json!({"image_ids": ["img_a", "img_b"]});
        assert_eq!(
            item_images(&generation).collect::<Vec<_>>(),
            ["img_a", "img_b"]
        );
        let refused = json!({"tool_error": {"message": "refused by the content policy"}});
        assert_eq!(
            item_line(1, &refused, &[]),
            "1. item 1: failed: refused by the content policy"
        );
    }

    #[test]
    fn short_prompts_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(one_line("a  red\nkite", 60), "a red kite");
        let long = "word ".repeat(30);
        let short = one_line(&long, 60);
        assert!(
            short.chars().count() <= 60 && short.ends_with('…'),
            "{short}"
        );
        assert!(long.starts_with(short.trim_end_matches('…')));
    }

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
            // A schema borrowed from another tool's arguments would describe that tool.
            let described = tool
                .input_schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for (other, _) in all() {
                assert!(
                    other.name == tool.name || !described.contains(other.name.as_ref()),
                    "{}: its input schema describes {}",
                    tool.name,
                    other.name
                );
            }
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use imagemcp_core::rbac::Role;

    use super::*;

    /// The tool reference a person reads.
    const DOC: &str = include_str!("../../../docs/tools.md");

    /// The `## ` sections of `docs/tools.md` that are about no single tool; the first is the table
    /// of every tool.
    const GENERAL_SECTIONS: &[&str] = &[
        "Tools at a glance",
        "Secrets: one-time reveal links",
        "Error codes",
    ];

    /// The parts every tool's section has, in this order.
    const PARTS: &[&str] = &[
        "**Arguments**",
        "**Result**",
        "**Errors**",
        "**Who may call**",
    ];

    /// Each `## ` heading of a document with the text up to the next one.
    fn sections(doc: &str) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        let mut current: Option<(&str, usize)> = None;
        let mut offset = 0;
        for line in doc.split_inclusive('\n') {
            if let Some(title) = line.strip_prefix("## ") {
                if let Some((name, start)) = current {
                    out.push((name, &doc[start..offset]));
                }
                current = Some((title.trim(), offset + line.len()));
            }
            offset += line.len();
        }
        if let Some((name, start)) = current {
            out.push((name, &doc[start..]));
        }
        out
    }

    /// The words of a text (runs of letters, digits and `_`).
    fn words(text: &str) -> Vec<&str> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect()
    }

    fn input_properties(tool: &Tool) -> Vec<String> {
        tool.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// What a document lacks for the registry's tools: a section per tool with its parts, each
    /// argument of its input schema named, and "Who may call" naming exactly the roles that
    /// `rbac::MATRIX` lets call it, its actions and their scopes.
    fn missing(doc: &str) -> Vec<String> {
        let sections = sections(doc);
        let mut problems = Vec::new();
        for (spec, (tool, _)) in TOOLS.iter().zip(all()) {
            let name = spec.name;
            let found: Vec<&str> = sections
                .iter()
                .filter(|(title, _)| *title == name)
                .map(|(_, body)| *body)
                .collect();
            let body = match found.as_slice() {
                [body] => *body,
                [] => {
                    problems.push(format!("{name}: no `## {name}` section"));
                    continue;
                }
                _ => {
                    problems.push(format!("{name}: {} sections", found.len()));
                    continue;
                }
            };
            let mut at = 0;
            for part in PARTS {
                match body[at..].find(part) {
                    Some(i) => at += i,
                    None => problems.push(format!("{name}: no {part} (in the order {PARTS:?})")),
                }
            }
            for property in input_properties(tool) {
                if !body.contains(&format!("`{property}`")) {
                    problems.push(format!(
                        "{name}: the argument `{property}` is not described"
                    ));
                }
            }
            let Some(start) = body.find("\n**Who may call**") else {
                continue;
            };
            let who = &body[start + 1..];
            let who = who
                .split_once("\n\n")
                .map_or(who, |(paragraph, _)| paragraph);
            let who_words = words(who);
            // `admin` is also a scope's name, and every tool is open to admins.
            for role in Role::ALL.iter().filter(|r| **r != Role::Admin) {
                let allowed = spec.actions.iter().any(|a| role.allows(*a));
                if allowed != who_words.contains(&role.as_str()) {
                    problems.push(format!(
                        "{name}: “Who may call” {} the role {role}, which rbac::MATRIX {}",
                        if allowed { "lacks" } else { "names" },
                        if allowed { "allows" } else { "does not allow" },
                    ));
                }
            }
            for action in spec.actions {
                for needed in [format!("`{action}`"), format!("`{}`", action.scope())] {
                    if !who.contains(&needed) {
                        problems.push(format!("{name}: “Who may call” does not name {needed}"));
                    }
                }
            }
        }
        problems
    }

    /// What a document has that the registry lacks: a section that is no tool (nor a general
    /// section), and a row of the table at the top for a tool that does not exist; the table has
    /// one row per tool.
    fn extra(doc: &str) -> Vec<String> {
        let sections = sections(doc);
        let mut problems = Vec::new();
        for (title, _) in &sections {
            if !exists(title) && !GENERAL_SECTIONS.contains(title) {
                problems.push(format!("a section `## {title}` names no tool"));
            }
        }
        let table = sections
            .iter()
            .find(|(title, _)| *title == GENERAL_SECTIONS[0])
            .map_or("", |(_, body)| *body);
        let rows: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| [`"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name))
            .collect();
        for spec in TOOLS {
            if rows.iter().filter(|r| **r == spec.name).count() != 1 {
                problems.push(format!(
                    "the table “{}” needs one row for {}",
                    GENERAL_SECTIONS[0], spec.name
                ));
            }
        }
        for row in rows.iter().filter(|r| !exists(r)) {
            problems.push(format!("the table lists {row}, which is no tool"));
        }
        problems
    }

    /// Every tool of the registry has its section in `docs/tools.md`.
    #[test]
    fn every_tool_has_its_section() {
        let problems = missing(DOC);
        assert!(
            problems.is_empty(),
            "docs/tools.md is out of step with the tool registry:\n{}",
            problems.join("\n")
        );
    }

    /// `docs/tools.md` documents no tool that does not exist.
    #[test]
    fn every_documented_tool_exists() {
        let problems = extra(DOC);
        assert!(
            problems.is_empty(),
            "docs/tools.md documents what the registry lacks:\n{}",
            problems.join("\n")
        );
    }

    /// The checks catch what they are for: a section removed, an argument left out, a role
    /// named that may not call the tool, a section or a row for a tool that does not exist.
    #[test]
    fn the_checks_catch_a_stale_document() {
        let section = |name: &str| {
            sections(DOC)
                .into_iter()
                .find(|(title, _)| *title == name)
                .map(|(_, body)| body)
                .unwrap_or_default()
        };
        let has = |problems: Vec<String>, needle: &str| problems.iter().any(|p| p.contains(needle));

        let job = section(GET_JOB);
        let without_job = DOC.replace(&format!("## {GET_JOB}\n{job}"), "");
        assert!(has(
            missing(&without_job),
            "openai_get_job: no `## openai_get_job`"
        ));

        let get = section(GET);
        let vague = get.replace("`image_id`", "the id");
        assert!(has(
            missing(&DOC.replace(get, &vague)),
            "`image_id` is not described"
        ));

        let generate = section(GENERATE);
        let open = generate.replace("admin, creator —", "admin, creator, viewer —");
        assert!(has(
            missing(&DOC.replace(generate, &open)),
            "names the role viewer"
        ));
        let closed = generate.replace("admin, creator —", "admin —");
        assert!(has(
            missing(&DOC.replace(generate, &closed)),
            "lacks the role creator"
        ));

        let ghost = format!("{DOC}\n## openai_no_such_tool\nNothing.\n");
        assert!(has(extra(&ghost), "`## openai_no_such_tool` names no tool"));
        let ghost_row = DOC.replace(
            "| [`openai_get_job`]",
            "| [`openai_no_such_tool`](#x) | | | | |\n| [`openai_get_job`]",
        );
        assert!(has(extra(&ghost_row), "lists openai_no_such_tool"));
    }

    #[test]
    fn sections_split_at_second_level_headings_only() {
        let doc = "# Title\nintro\n## a\none\n### sub\n## b\ntwo\n";
        assert_eq!(sections(doc), vec![("a", "one\n### sub\n"), ("b", "two\n")]);
    }
}
