//! The MCP tool surface as one registry of small files. Each tool is a file of `tools/` that
//! holds all of it: its spec (name, description, schemas, annotations), its cost rule, whether
//! and when it runs as a task, and its run (parse the arguments, call the service, render the
//! result). This file lists them in the order `tools/list` shows them, and answers for them:
//! `tools/list`, `tools/call`, and what the cost gate (`confirm`), the Tasks extension (`tasks`)
//! and the one-time links (`reveal`) ask of a tool.
//!
//! Adding a tool is one new file defining `pub(super) const TOOL: Tool`, declared here and named
//! in the `TOOLS` list.

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::{Action, Scope};
use imagemcp_service::reveal::SecretKind;
use rmcp::model::{CallToolResult, JsonObject, Tool as McpTool, ToolAnnotations};
use serde_json::{Map, Value, json};

use crate::App;
use crate::auth::Caller;
use crate::images::ProgressTx;
use crate::jobs::Job;

mod cost;
mod render;
mod schema;

pub(crate) use render::tool_error;
pub use render::{ERROR_META_KEY, error_result};

// One file per tool (the list below gives their order).
mod accept_invitation;
mod billing_portal;
mod create_api_key;
mod create_team;
mod delete_image;
mod delete_team;
mod delete_user_data;
mod edit_image;
mod export_audit_log;
mod export_user_data;
mod generate_campaign_batch;
mod generate_image;
mod get_image;
mod get_job;
mod invite_member;
mod list_api_keys;
mod list_conversations;
mod list_images;
mod list_members;
mod list_teams;
mod remove_member;
mod rename_team;
mod revoke_api_key;
mod rotate_api_key;
mod set_budget;
mod set_member_role;
mod upgrade_plan;
mod usage_summary;
mod verify_audit_log;
mod view_audit_log;
mod whoami;

/// Every tool, in the order `tools/list` shows them.
const TOOLS: &[Tool] = &[
    generate_image::TOOL,
    edit_image::TOOL,
    list_images::TOOL,
    get_image::TOOL,
    delete_image::TOOL,
    list_conversations::TOOL,
    // Campaign batches through the queue (`images/campaign.rs`).
    generate_campaign_batch::TOOL,
    get_job::TOOL,
    // The audit log, data-subject rights, keys and members.
    view_audit_log::TOOL,
    verify_audit_log::TOOL,
    export_audit_log::TOOL,
    export_user_data::TOOL,
    delete_user_data::TOOL,
    list_api_keys::TOOL,
    create_api_key::TOOL,
    rotate_api_key::TOOL,
    revoke_api_key::TOOL,
    list_members::TOOL,
    set_member_role::TOOL,
    remove_member::TOOL,
    invite_member::TOOL,
    accept_invitation::TOOL,
    create_team::TOOL,
    // The caller's identity and the organisation's teams.
    whoami::TOOL,
    list_teams::TOOL,
    rename_team::TOOL,
    delete_team::TOOL,
    // Billing.
    usage_summary::TOOL,
    upgrade_plan::TOOL,
    billing_portal::TOOL,
    set_budget::TOOL,
];

/// One MCP tool, as data: what `tools/list` shows of it, who may call it, what a call costs and
/// whether it runs as a task, and the function that runs a call.
struct Tool {
    name: &'static str,
    /// What a caller must be allowed to do to see and call the tool (any one of these).
    actions: &'static [Action],
    title: &'static str,
    description: &'static str,
    /// The JSON Schema of the arguments (`schema::input`).
    input: fn() -> JsonObject,
    /// The JSON Schema of the structured result (`schema::output`).
    output: fn() -> JsonObject,
    hints: Hints,
    /// Whether the tool reports progress while it works.
    long_running: bool,
    /// For a tool that spends money on the model, the estimated cost of a call in micro-dollars,
    /// from the catalog's price table (`cost`), before any model call: the cost gate
    /// (`confirm`) asks the caller above their threshold, and the tool's input schema gains
    /// `confirm_cost_cents`. Arguments that do not parse estimate to 0 (the tool refuses them
    /// itself, before spending anything).
    cost: Option<Estimate>,
    /// Whether a call runs as an MCP task, for a client that declared the Tasks extension.
    task: TaskRule,
    /// The secret the tool makes and offers behind a one-time link (`reveal`), never in its result.
    reveals: Option<SecretKind>,
    /// Runs a call: parses the arguments, calls the service, renders the result.
    run: Run,
}

/// A tool's cost rule: a call's estimated cost in micro-dollars.
pub(crate) type Estimate = fn(&App, &Value) -> u64;

/// A tool's run.
type Run = for<'a> fn(Call<'a>, Value) -> BoxFuture<'a, Result<CallToolResult, Error>>;

/// What a tool runs with.
#[derive(Clone, Copy)]
struct Call<'a> {
    app: &'a App,
    caller: &'a Caller,
    /// Where progress goes, when the client asked for it (long-running tools only).
    progress: Option<&'a ProgressTx>,
}

/// What a tool does to the world, for its annotations.
#[derive(Clone, Copy)]
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
}

/// Reads only.
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

/// Whether a tool's call runs as an MCP task (`tasks`) for a client that declared the Tasks
/// extension; every other call, and every call from another client, is answered as it runs.
#[derive(Clone, Copy)]
enum TaskRule {
    Never,
    /// Every call (the tool's work is queued by nature).
    Always(Task),
    /// The calls whose arguments this says yes to (arguments that do not parse should say no:
    /// they fail fast, synchronously).
    When(fn(&Value) -> bool, Task),
}

/// How a tool's call runs as a task. A task *is* a job.
#[derive(Clone, Copy)]
struct Task {
    /// The kind of job the call is submitted as.
    kind: &'static str,
    /// Submits the call as a job (the arguments are the call's).
    submit: Submit,
    /// What the call would have returned, once its job has finished (`tasks/get`).
    result: TaskResult,
}

/// Submits a call as a job.
type Submit = for<'a> fn(&'a App, &'a Caller, Value) -> BoxFuture<'a, Result<Job, Error>>;

/// A finished job's items, by index: `result` or `error`, and `at_ms` (`jobs::items`).
type Items = [(u32, Map<String, Value>)];

/// The tool result a finished job stands for.
type TaskResult = for<'a> fn(
    &'a App,
    &'a Caller,
    &'a Job,
    &'a Items,
) -> BoxFuture<'a, Result<CallToolResult, Error>>;

impl TaskRule {
    /// The task a call with these arguments runs as, if it does.
    fn task(&self, args: &Value) -> Option<&Task> {
        match self {
            TaskRule::Never => None,
            TaskRule::Always(task) => Some(task),
            TaskRule::When(long, task) => long(args).then_some(task),
        }
    }

    /// The task of any call, whatever its arguments.
    fn any(&self) -> Option<&Task> {
        match self {
            TaskRule::Never => None,
            TaskRule::Always(task) | TaskRule::When(_, task) => Some(task),
        }
    }
}

/// The registered tool of that name.
fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Every tool as an MCP `Tool` object with what it requires, built once.
fn all() -> &'static [(McpTool, &'static [Action])] {
    static CACHE: OnceLock<Vec<(McpTool, &'static [Action])>> = OnceLock::new();
    CACHE.get_or_init(|| TOOLS.iter().map(|t| (t.mcp(), t.actions)).collect())
}

impl Tool {
    /// The tool as `tools/list` shows it.
    fn mcp(&self) -> McpTool {
        let annotations = ToolAnnotations::with_title(self.title)
            .read_only(self.hints.read_only)
            .destructive(self.hints.destructive)
            .idempotent(self.hints.idempotent)
            .open_world(!self.hints.read_only);
        let mut input = (self.input)();
        if self.cost.is_some()
            && let Some(Value::Object(props)) = input.get_mut("properties")
        {
            // Taken off by the cost gate (`mcp::confirm`) before the tool parses its args.
            props.insert(
                super::confirm::CONFIRM_ARG.to_owned(),
                json!({"type": "integer", "minimum": 0, "description":
                    "Confirms up front a cost up to this many cents, when the estimate is above your confirmation threshold."}),
            );
        }
        McpTool::new(self.name, self.description, Arc::new(input))
            .with_title(self.title)
            .with_raw_output_schema(Arc::new((self.output)()))
            .with_annotations(annotations)
    }
}

/// The tools this caller may call: a viewer is not shown tools that would only refuse it.
pub fn list(caller: &Caller) -> Vec<McpTool> {
    all()
        .iter()
        .filter(|(_, actions)| actions.iter().any(|a| caller.may(*a)))
        .map(|(t, _)| t.clone())
        .collect()
}

/// Whether a tool exists.
pub fn exists(name: &str) -> bool {
    find(name).is_some()
}

/// The scope a caller's credential lacks for a tool its role allows, if that is all that stands in
/// the way (the HTTP edge turns it into a 403 `insufficient_scope` challenge).
pub fn missing_scope(caller: &Caller, name: &str) -> Option<Scope> {
    let tool = find(name)?;
    if tool.actions.iter().any(|a| caller.may(*a)) {
        return None;
    }
    tool.actions
        .iter()
        .find(|a| caller.role.allows(**a))
        .map(|a| a.scope())
}

/// Whether a tool reports progress.
pub fn is_long_running(name: &str) -> bool {
    find(name).is_some_and(|t| t.long_running)
}

/// A tool's cost rule, if it spends money on the model.
pub(crate) fn cost_rule(name: &str) -> Option<Estimate> {
    find(name).and_then(|t| t.cost)
}

/// The secret a tool offers behind a one-time link, if it makes one.
pub(crate) fn reveals(name: &str) -> Option<SecretKind> {
    find(name).and_then(|t| t.reveals)
}

/// Whether this call runs as a task (for a client that declared the Tasks extension).
pub(crate) fn runs_as_task(name: &str, args: &Value) -> bool {
    find(name).is_some_and(|t| t.task.task(args).is_some())
}

/// Submits a call that [`runs_as_task`] as its job.
pub(crate) async fn submit_task(
    app: &App,
    caller: &Caller,
    name: &str,
    args: Value,
) -> Result<Job, Error> {
    match find(name).and_then(|t| t.task.task(&args)) {
        Some(task) => (task.submit)(app, caller, args).await,
        None => Err(Error::internal(format!("{name} does not run as a task"))),
    }
}

/// Whether jobs of this kind are tasks (some tool runs as one).
pub(crate) fn is_task_kind(kind: &str) -> bool {
    task_of_kind(kind).is_some()
}

fn task_of_kind(kind: &str) -> Option<&'static Task> {
    TOOLS
        .iter()
        .filter_map(|t| t.task.any())
        .find(|task| task.kind == kind)
}

/// The tool result a finished task stands for: what `tools/call` would have returned.
pub(crate) async fn task_result(
    app: &App,
    caller: &Caller,
    job: &Job,
    items: &Items,
) -> Result<CallToolResult, Error> {
    match task_of_kind(&job.kind) {
        Some(task) => (task.result)(app, caller, job, items).await,
        None => Err(Error::internal(format!(
            "a job of kind {} is no task",
            job.kind
        ))),
    }
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
    let result = match find(name) {
        Some(tool) => {
            let call = Call {
                app,
                caller,
                progress,
            };
            (tool.run)(call, args).await
        }
        None => Err(Error::not_found(format!("tool {name}"))),
    };
    result.unwrap_or_else(|err| error_result(&err))
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

    #[test]
    fn every_tool_has_a_unique_name_of_its_file() {
        let mut names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        assert!(names.iter().all(|n| n.starts_with("openai_")), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TOOLS.len(), "a name is registered twice");
        // The list's lines name the files; each file's tool is that name with `openai_`.
        let source = include_str!("tools.rs");
        let start = source.find("const TOOLS: &[Tool] = &[").unwrap();
        let end = start + source[start..].find("];").unwrap();
        let files: Vec<&str> = source[start..end]
            .lines()
            .skip(1)
            .map(str::trim)
            .filter_map(|l| l.strip_suffix("::TOOL,"))
            .collect();
        let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        let expected: Vec<String> = files.iter().map(|f| format!("openai_{f}")).collect();
        assert_eq!(names, expected);
    }

    /// The cost gate asks for exactly the tools with a cost rule, and they show
    /// `confirm_cost_cents`; no other tool does.
    #[test]
    fn costly_tools_are_those_with_a_cost_rule() {
        let costly: Vec<&str> = TOOLS
            .iter()
            .filter(|t| crate::confirm::is_costly(t.name))
            .map(|t| t.name)
            .collect();
        assert_eq!(
            costly,
            [
                "openai_generate_image",
                "openai_edit_image",
                "openai_generate_campaign_batch"
            ]
        );
        for (tool, _) in all() {
            let confirms = tool
                .input_schema
                .get("properties")
                .and_then(|p| p.get(crate::confirm::CONFIRM_ARG))
                .is_some();
            assert_eq!(
                confirms,
                cost_rule(&tool.name).is_some(),
                "{}: confirm_cost_cents in its schema, or not, as it has a cost rule",
                tool.name
            );
        }
        assert!(!crate::confirm::is_costly("openai_no_such_tool"));
    }

    #[test]
    fn the_task_rules_name_their_tools_and_job_kinds() {
        let long = json!({"n": 4, "quality": "high"});
        let short = json!({"n": 1, "quality": "low"});
        let tasks: Vec<(&str, bool, bool)> = TOOLS
            .iter()
            .filter(|t| t.task.any().is_some())
            .map(|t| {
                (
                    t.name,
                    runs_as_task(t.name, &long),
                    runs_as_task(t.name, &short),
                )
            })
            .collect();
        assert_eq!(
            tasks,
            [
                ("openai_generate_image", true, false),
                ("openai_generate_campaign_batch", true, true),
            ]
        );
        assert!(is_task_kind(crate::images::queued::KIND));
        assert!(is_task_kind(crate::images::campaign::KIND));
        assert!(!is_task_kind("ping"));
        let mut kinds: Vec<&str> = TOOLS
            .iter()
            .filter_map(|t| t.task.any())
            .map(|t| t.kind)
            .collect();
        let count = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), count, "two tools' tasks are one kind of job");
    }

    #[test]
    fn only_the_tools_that_make_a_secret_reveal_one() {
        let revealing: Vec<(&str, SecretKind)> = TOOLS
            .iter()
            .filter_map(|t| Some((t.name, t.reveals?)))
            .collect();
        assert_eq!(
            revealing,
            [
                ("openai_create_api_key", SecretKind::ApiKey),
                ("openai_rotate_api_key", SecretKind::ApiKey),
                ("openai_invite_member", SecretKind::Invitation),
            ]
        );
    }

    /// Only the generating tools report progress.
    #[test]
    fn long_running_tools_are_the_generating_ones() {
        let long: Vec<&str> = TOOLS
            .iter()
            .filter(|t| is_long_running(t.name))
            .map(|t| t.name)
            .collect();
        assert_eq!(long, ["openai_generate_image", "openai_edit_image"]);
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

    fn input_properties(tool: &McpTool) -> Vec<String> {
        tool.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The tools in the order of the table at the top of a document.
    fn table_rows(doc: &str) -> Vec<&str> {
        let sections = sections(doc);
        let table = sections
            .iter()
            .find(|(title, _)| *title == GENERAL_SECTIONS[0])
            .map_or("", |(_, body)| *body);
        table
            .lines()
            .filter_map(|l| l.strip_prefix("| [`"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name))
            .collect()
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
        let rows = table_rows(doc);
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

    /// The registry lists the tools (and `tools/list` shows them) in the order of the table at
    /// the top of `docs/tools.md`, and so do the sections below it.
    #[test]
    fn the_registry_is_in_the_documented_order() {
        let registered: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        assert_eq!(table_rows(DOC), registered);
        let listed: Vec<&str> = all().iter().map(|(t, _)| t.name.as_ref()).collect();
        assert_eq!(listed, registered);
        let documented: Vec<&str> = sections(DOC)
            .into_iter()
            .map(|(title, _)| title)
            .filter(|title| exists(title))
            .collect();
        assert_eq!(documented, registered);
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

        let get_job = get_job::TOOL.name;
        let job = section(get_job);
        let without_job = DOC.replace(&format!("## {get_job}\n{job}"), "");
        assert!(has(
            missing(&without_job),
            "openai_get_job: no `## openai_get_job`"
        ));

        let get = section(get_image::TOOL.name);
        let vague = get.replace("`image_id`", "the id");
        assert!(has(
            missing(&DOC.replace(get, &vague)),
            "`image_id` is not described"
        ));

        let generate = section(generate_image::TOOL.name);
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
