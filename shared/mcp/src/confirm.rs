//! Cost confirmation: every generating tool's cost is estimated from the catalog's price table
//! before any model call, and a call estimated above the caller's confirmation threshold is not
//! run until the caller confirms it.
//!
//! How the server asks depends on what the client can do:
//! - 2026-07-28 with the `elicitation` capability (form mode): an `InputRequiredResult`
//!   (`resultType: "input_required"`) carrying a form elicitation and a `requestState`. The
//!   client retries the call with `inputResponses` and the state echoed back. The state is
//!   authenticated (HMAC-SHA256 under a key derived from the deployment's current KEK) and binds
//!   the caller (credential, user, org), the tool, a SHA-256 of the canonical arguments, the
//!   estimate and an expiry; a valid state is single-use (its nonce is written with `NotExists`
//!   before the work starts, so a replay is refused).
//! - Otherwise: a tool error stating the estimate and naming the `confirm_cost_cents` argument;
//!   calling again with `confirm_cost_cents` at or above the estimate confirms.
//!
//! A decline stores nothing and costs nothing: the gate runs before the tool, and a declined or
//! refused call writes no nonce, no image and no usage.
//!
//! Whose threshold applies and what it is are billing's (`imagemcp_billing::confirmation`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use imagemcp_core::table::{Condition, Item, Key};
use imagemcp_core::{Error, Result};
use rmcp::model::CallToolResult;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::protocol::{INVALID_PARAMS, RpcError};
use super::tools::tool_error;
use crate::App;
use crate::auth::Caller;

/// The argument that confirms a cost up front, in cents.
pub const CONFIRM_ARG: &str = "confirm_cost_cents";
/// How long a `requestState` stays valid.
pub const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// The key of our one input request.
pub const INPUT_KEY: &str = "confirm_cost";
/// What the state's MAC key is derived for (a KEK is never used directly for two purposes).
const KEY_PURPOSE: &[u8] = b"imagemcp/mcp-request-state/v1";

/// Whether a tool spends money on the model: it has a cost rule in the tool registry.
pub fn is_costly(tool: &str) -> bool {
    super::tools::cost_rule(tool).is_some()
}

/// Micro-dollars as whole cents, rounded up (an estimate never undershoots).
pub fn cents(micros: u64) -> u64 {
    micros.div_ceil(10_000)
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// The estimated cost of a call, in micro-dollars: the tool's cost rule (see `tools`), from the
/// catalog's price table. Arguments that do not parse estimate to 0: the tool refuses them itself,
/// before spending anything. A tool without a cost rule costs nothing.
pub fn estimate_micros(app: &App, tool: &str, args: &Value) -> u64 {
    super::tools::cost_rule(tool).map_or(0, |estimate| estimate(app, args))
}

/// What the gate decided about a call.
#[derive(Debug)]
pub enum Gate {
    /// Run the tool with these arguments (the confirmation argument removed).
    Proceed(Value),
    /// Answer with this `InputRequiredResult`.
    Ask(Value),
    /// Answer with this tool result (confirmation needed, or declined) without running the tool.
    Refuse(CallToolResult),
    /// The request itself is bad (a `requestState` that does not verify, or was used).
    Reject(RpcError),
    /// Handshake era, client declared elicitation: send it this `elicitation/create` request on
    /// the call's stream and run the tool with these arguments if the answer accepts.
    Elicit { request: Value, args: Value },
}

/// What the client can be asked with.
pub struct Asker<'a> {
    /// Whether the request is on 2026-07-28 (input-required results exist).
    pub modern: bool,
    pub client_capabilities: &'a Value,
    /// The call's `params` (for `requestState` and `inputResponses`).
    pub params: &'a Value,
}

/// Whether the client declared form-mode elicitation (an empty object means form).
pub fn supports_form(client_capabilities: &Value) -> bool {
    match client_capabilities.get("elicitation") {
        Some(Value::Object(e)) => e.is_empty() || e.contains_key("form"),
        _ => false,
    }
}

/// Whether the client declared URL-mode elicitation (`elicitation: {url: {}}`, 2025-11-25 on).
pub fn supports_url(client_capabilities: &Value) -> bool {
    client_capabilities
        .get("elicitation")
        .and_then(Value::as_object)
        .is_some_and(|e| e.contains_key("url"))
}

/// Decides whether a call may run now. Cheap and write-free, except that a confirmed
/// `requestState` is consumed (its nonce written once) just before the call proceeds.
pub async fn gate(app: &App, caller: &Caller, tool: &str, args: Value, ask: Asker<'_>) -> Gate {
    let mut args = match args {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        // Never let through what the estimate cannot read by name.
        other => return Gate::Reject(super::protocol::arguments_not_an_object(&other)),
    };
    let confirmed = args.remove(CONFIRM_ARG);
    let args = Value::Object(args);
    if !is_costly(tool) {
        return Gate::Proceed(args);
    }
    let confirmed = match confirmed {
        None => None,
        Some(v) => match v.as_u64() {
            Some(c) => Some(c),
            None => {
                return Gate::Refuse(super::tools::error_result(&Error::invalid(
                    CONFIRM_ARG,
                    "must be a whole number of cents, 0 or more",
                )));
            }
        },
    };
    let estimate = cents(estimate_micros(app, tool, &args));
    let threshold = match crate::billing::confirmation::threshold_cents(&app.billing, caller).await
    {
        Ok(t) => t,
        Err(e) => return Gate::Refuse(super::tools::error_result(&e)),
    };
    if estimate <= threshold || confirmed.is_some_and(|c| c >= estimate) {
        return Gate::Proceed(args);
    }
    if ask.modern
        && let Some(state) = ask.params.get("requestState")
    {
        return answered(app, caller, tool, args, estimate, state, ask.params).await;
    }
    if ask.modern && supports_form(ask.client_capabilities) {
        return match input_required(app, caller, tool, &args, estimate, threshold) {
            Ok(v) => Gate::Ask(v),
            Err(e) => Gate::Refuse(super::tools::error_result(&e)),
        };
    }
    if !ask.modern && supports_form(ask.client_capabilities) {
        let mut nonce = [0u8; 16];
        app.ports.random.fill(&mut nonce);
        let (message, schema) = form(tool, estimate, threshold);
        let request = json!({
            "jsonrpc": "2.0",
            "id": format!("{ELICIT_ID_PREFIX}{}", hex::encode(nonce)),
            "method": "elicitation/create",
            "params": { "message": message, "requestedSchema": schema },
        });
        return Gate::Elicit { request, args };
    }
    Gate::Refuse(needs_confirmation(estimate, threshold))
}

/// The tool error of a call that needs confirming: the estimate and the argument that confirms.
pub fn needs_confirmation(estimate: u64, threshold: u64) -> CallToolResult {
    let text = format!(
        "This call is estimated to cost {} ({estimate} cents), above your confirmation threshold of {}. \
         Nothing was generated or charged. To go ahead, call the tool again with the same arguments plus \
         \"{CONFIRM_ARG}\": {estimate} (or more).",
        dollars(estimate),
        dollars(threshold)
    );
    tool_error(
        text,
        json!({ "code": "confirmation_required", "estimate_cents": estimate,
                "threshold_cents": threshold, "argument": CONFIRM_ARG }),
    )
}

fn declined() -> CallToolResult {
    tool_error(
        "The cost was not confirmed, so nothing was generated and nothing was charged.".into(),
        json!({ "code": "declined" }),
    )
}

/// Who and which call a `requestState` was issued for, until when, and its single-use nonce.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct Binding {
    v: u8,
    credential: String,
    user: String,
    org: String,
    tool: String,
    /// SHA-256 (hex) of the canonical arguments.
    args: String,
    pub(super) expires_at_ms: i64,
    pub(super) nonce: String,
}

impl Binding {
    /// A binding to this caller's call of `tool` with `args`, with a fresh nonce.
    pub(super) fn new(
        app: &App,
        caller: &Caller,
        tool: &str,
        args: &Value,
        expires_at_ms: i64,
    ) -> Self {
        let mut nonce = [0u8; 16];
        app.ports.random.fill(&mut nonce);
        Binding {
            v: 1,
            credential: caller.credential.clone(),
            user: caller.user.to_string(),
            org: caller.org.to_string(),
            tool: tool.to_owned(),
            args: args_digest(args),
            expires_at_ms,
            nonce: hex::encode(nonce),
        }
    }

    /// Why this state cannot answer this call, if it cannot.
    pub(super) fn refusal(
        &self,
        app: &App,
        caller: &Caller,
        tool: &str,
        args: &Value,
    ) -> Option<&'static str> {
        if self.v != 1
            || self.credential != caller.credential
            || self.user != caller.user.as_str()
            || self.org != caller.org.as_str()
        {
            return Some("it was issued to another caller");
        }
        if self.tool != tool || self.args != args_digest(args) {
            return Some("it was issued for another call (tool or arguments differ)");
        }
        if app.ports.clock.now_ms() > self.expires_at_ms {
            return Some("it has expired");
        }
        None
    }
}

/// The integrity-protected content of a cost confirmation's `requestState`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct State {
    #[serde(flatten)]
    binding: Binding,
    estimate_cents: u64,
}

/// JSON with object keys sorted, so equal arguments hash equally whatever their order.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

pub(super) fn args_digest(args: &Value) -> String {
    hex::encode(Sha256::digest(canonical(args).as_bytes()))
}

/// `payload` as `base64url(json).base64url(HMAC-SHA256)` under the key of `purpose`.
pub(super) fn seal_state<T: Serialize>(app: &App, purpose: &[u8], payload: &T) -> Result<String> {
    let payload = serde_json::to_vec(payload).map_err(Error::internal)?;
    let mut m = crate::crypto::purpose_mac(&app.ports, purpose);
    m.update(&payload);
    let tag = m.finalize().into_bytes();
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    ))
}

/// What [`seal_state`] sealed for `purpose`, if its MAC verifies (compared in constant time by
/// `verify_slice`).
pub(super) fn open_state<T: DeserializeOwned>(app: &App, purpose: &[u8], token: &str) -> Option<T> {
    let (payload, tag) = token.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut m = crate::crypto::purpose_mac(&app.ports, purpose);
    m.update(&payload);
    m.verify_slice(&tag).ok()?;
    serde_json::from_slice(&payload).ok()
}

fn seal(app: &App, state: &State) -> Result<String> {
    seal_state(app, KEY_PURPOSE, state)
}

fn open(app: &App, token: &str) -> Option<State> {
    open_state(app, KEY_PURPOSE, token)
}

/// Marks a `requestState`'s nonce used (`ORG#<org>` / `MRTRSTATE#<nonce>`, written once, kept
/// until the state expires). `Ok(false)`: it was used before.
pub(super) async fn use_nonce(
    app: &App,
    caller: &Caller,
    nonce: &str,
    expires_at_ms: i64,
    tool: &str,
) -> Result<bool> {
    let Value::Object(attrs) = json!({ "tool": tool }) else {
        return Err(Error::internal("a nonce record is not an object"));
    };
    let key = Key::new(format!("ORG#{}", caller.org), format!("MRTRSTATE#{nonce}"));
    let item = Item::new(key, attrs).with_ttl(expires_at_ms / 1000 + 1);
    match app.ports.table.put(item, Condition::NotExists).await {
        Ok(()) => Ok(true),
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn input_required(
    app: &App,
    caller: &Caller,
    tool: &str,
    args: &Value,
    estimate: u64,
    threshold: u64,
) -> Result<Value> {
    let state = State {
        binding: Binding::new(
            app,
            caller,
            tool,
            args,
            app.ports.clock.now_ms() + STATE_TTL_MS,
        ),
        estimate_cents: estimate,
    };
    let (message, schema) = form(tool, estimate, threshold);
    Ok(json!({
        "resultType": "input_required",
        "inputRequests": { INPUT_KEY: {
            "method": "elicitation/create",
            "params": { "mode": "form", "message": message, "requestedSchema": schema },
        }},
        "requestState": seal(app, &state)?,
    }))
}

/// The question and its one-field form.
fn form(tool: &str, estimate: u64, threshold: u64) -> (String, Value) {
    let message = format!(
        "{tool} is estimated to cost {} ({estimate} cents), above your confirmation threshold of {}. Go ahead?",
        dollars(estimate),
        dollars(threshold)
    );
    let schema = json!({
        "type": "object",
        "properties": { "confirm": {
            "type": "boolean",
            "title": format!("Spend about {}", dollars(estimate)),
            "description": "Generate now and charge the estimated cost.",
            "default": false,
        }},
        "required": ["confirm"],
    });
    (message, schema)
}

/// The id prefix of our `elicitation/create` requests (handshake era); the rest is a random nonce.
pub const ELICIT_ID_PREFIX: &str = "imagemcp-confirm-";
/// How long a handshake-era confirmation waits for the user's answer.
pub const ELICIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// How often the waiting call looks for the answer.
const ELICIT_POLL: std::time::Duration = std::time::Duration::from_millis(200);

fn reply_key(session: &str, request_id: &str) -> Key {
    Key::new(
        format!("MCPSESSION#{session}"),
        format!("REPLY#{request_id}"),
    )
}

/// Stores a client's response to one of our `elicitation/create` requests, for the call waiting
/// on it (which may run on another instance). Written once: a second response is ignored.
pub async fn store_reply(
    app: &App,
    session: &str,
    request_id: &str,
    message: &Value,
) -> Result<()> {
    let reply = message
        .get("result")
        .cloned()
        .unwrap_or_else(|| json!({ "action": "cancel" }));
    let Value::Object(attrs) = json!({ "reply": reply }) else {
        return Err(Error::internal("a reply is not an object"));
    };
    let expires = app.ports.clock.now_secs() + ELICIT_WAIT.as_secs() as i64;
    let item = Item::new(reply_key(session, request_id), attrs).with_ttl(expires);
    match app.ports.table.put(item, Condition::NotExists).await {
        Ok(()) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a request id is one of our `elicitation/create` requests (a cost confirmation, or a
/// one-time link shown through URL-mode elicitation).
pub fn is_elicitation_id(id: &str) -> bool {
    id.len() <= 100 && (id.starts_with(ELICIT_ID_PREFIX) || id.starts_with(REVEAL_ID_PREFIX))
}

/// The id prefix of our URL-mode `elicitation/create` requests (handshake era).
pub const REVEAL_ID_PREFIX: &str = "imagemcp-reveal-";

/// Waits for the client's answer to our `elicitation/create` request (polling the `Table`, so the
/// answer may reach any instance) and consumes it. `None`: no answer within [`ELICIT_WAIT`].
pub async fn await_answer(app: &App, session: &str, request_id: &str) -> Result<Option<Value>> {
    let key = reply_key(session, request_id);
    let deadline = app.ports.clock.now_ms() + ELICIT_WAIT.as_millis() as i64;
    loop {
        if let Some(item) = app.ports.table.get(&key).await? {
            // Consumed once; a failed delete only leaves an item that expires.
            let _ = app.ports.table.delete(&key, Condition::Exists).await;
            return Ok(Some(
                item.attrs.get("reply").cloned().unwrap_or(Value::Null),
            ));
        }
        if app.ports.clock.now_ms() > deadline {
            return Ok(None);
        }
        app.engine.timer().sleep(ELICIT_POLL).await;
    }
}

/// Whether an answer to our cost question accepts the cost.
pub fn accepts_cost(reply: &Value) -> bool {
    reply.get("action").and_then(Value::as_str) == Some("accept")
        && reply
            .get("content")
            .and_then(|c| c.get("confirm"))
            .and_then(Value::as_bool)
            == Some(true)
}

/// Waits for the answer to our cost question and says whether it accepts the cost; no answer
/// within [`ELICIT_WAIT`] is a decline.
pub async fn await_reply(app: &App, session: &str, request_id: &str) -> Result<bool> {
    Ok(await_answer(app, session, request_id)
        .await?
        .is_some_and(|reply| accepts_cost(&reply)))
}

/// The result of a call whose cost the user did not confirm.
pub fn declined_result() -> CallToolResult {
    declined()
}

fn bad_state(why: &str) -> Gate {
    Gate::Reject(RpcError::new(
        INVALID_PARAMS,
        format!("requestState refused: {why}; call the tool again without requestState"),
    ))
}

/// A retry carrying a `requestState`: verified, then the user's answer read.
async fn answered(
    app: &App,
    caller: &Caller,
    tool: &str,
    args: Value,
    estimate: u64,
    token: &Value,
    params: &Value,
) -> Gate {
    let Some(state) = token.as_str().and_then(|t| open(app, t)) else {
        return bad_state("it is malformed or was altered");
    };
    if let Some(why) = state.binding.refusal(app, caller, tool, &args) {
        return bad_state(why);
    }
    if state.estimate_cents != estimate {
        return bad_state("it was issued for another call (tool or arguments differ)");
    }
    let response = params.get("inputResponses").and_then(|r| r.get(INPUT_KEY));
    let Some(response) = response else {
        // Asked but not answered: ask again, as the MRTR pattern recommends.
        let threshold = crate::billing::confirmation::threshold_cents(&app.billing, caller)
            .await
            .unwrap_or(app.config.cost_confirmation_cents);
        return match input_required(app, caller, tool, &args, estimate, threshold) {
            Ok(v) => Gate::Ask(v),
            Err(e) => Gate::Refuse(super::tools::error_result(&e)),
        };
    };
    if !accepts_cost(response) {
        return Gate::Refuse(declined());
    }
    // Single use: the nonce is written once, before any spending; a second use finds it.
    match use_nonce(
        app,
        caller,
        &state.binding.nonce,
        state.binding.expires_at_ms,
        tool,
    )
    .await
    {
        Ok(true) => Gate::Proceed(args),
        Ok(false) => bad_state("it has already been used"),
        Err(e) => Gate::Refuse(super::tools::error_result(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, {"p": 3, "q": 2}]}, "b": 1});
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(canonical(&a), canonical(&json!({"b": 2})));
    }

    #[test]
    fn cents_round_up() {
        assert_eq!(cents(0), 0);
        assert_eq!(cents(1), 1);
        assert_eq!(cents(10_000), 1);
        assert_eq!(cents(10_001), 2);
    }

    #[test]
    fn form_support() {
        assert!(!supports_url(&json!({"elicitation": {}})));
        assert!(supports_url(
            &json!({"elicitation": {"form": {}, "url": {}}})
        ));
        assert!(!supports_url(&json!({"elicitation": {"form": {}}})));
        assert!(supports_form(&json!({"elicitation": {}})));
        assert!(supports_form(&json!({"elicitation": {"form": {}}})));
        assert!(!supports_form(&json!({"elicitation": {"url": {}}})));
        assert!(!supports_form(&json!({})));
    }
}
