//! The MCP endpoint as one runtime-agnostic function: an authenticated caller and one HTTP request
//! (method, headers, body) in; a response out whose body is empty, one JSON-RPC message, or a
//! stream of messages (progress notifications, then the result) to be sent as SSE.
//!
//! It serves both protocol eras from one place. The handshake revisions (`initialize`,
//! `Mcp-Session-Id`) keep their session in the `Table`; the stateless 2026-07-28 revision carries
//! its version and capabilities in every request (`server/discover`, routing headers checked
//! against the body). No MCP state lives in process memory, so any instance can answer any request.
//!
//! rmcp's service loop needs tokio and `Send` handlers, which a Worker cannot give; so we use rmcp's
//! model types and schemas but dispatch ourselves. The only application crate that knows rmcp.

pub mod confirm;
pub mod protocol;
pub mod resources;
pub mod reveal;
pub mod session;
pub mod tasks;
pub mod tools;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use rmcp::model::{
    CacheScope, DiscoverResult, Implementation, InitializeResult, ListToolsResult, ProtocolVersion,
    ServerCapabilities,
};
use serde_json::{Value, json};

// The services this surface puts its face on, under the names the modules use.
use crate::auth::Caller;
use crate::images::Progress;
use imagemcp_service::images::views;
use imagemcp_service::{
    App, audit, auth, billing, crypto, error, gdpr, images, imaging, jobs, manage, whoami,
};
use protocol::{
    HANDSHAKE_VERSIONS, INVALID_PARAMS, INVALID_REQUEST, LATEST_HANDSHAKE, METHOD_NOT_FOUND,
    MODERN_VERSIONS, PARSE_ERROR, PROTOCOL_VERSION_HEADER, RpcError, SESSION_HEADER,
    result_message,
};

/// How long clients may cache the tool list and server description (they change only on deploy).
const LIST_TTL_MS: u64 = 5 * 60 * 1000;
/// How long a client may keep an image it read (stored images never change).
const READ_TTL_MS: u64 = 60 * 60 * 1000;

/// A stream of JSON-RPC messages; `Send`, as axum needs (on the Worker too).
pub type MessageStream = futures::stream::BoxStream<'static, Value>;

pub enum McpBody {
    Empty,
    Json(Value),
    /// Progress notifications, then the final response: send as `text/event-stream`.
    Stream(MessageStream),
}

pub struct McpResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: McpBody,
}

impl McpResponse {
    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: McpBody::Empty,
        }
    }

    fn rpc_error(id: &Value, err: RpcError) -> Self {
        let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::OK);
        Self {
            status,
            headers: Vec::new(),
            body: McpBody::Json(err.to_message(id)),
        }
    }

    fn json(message: Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: McpBody::Json(message),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
}

/// The request's era, decided per request.
#[derive(Clone, Debug, PartialEq)]
enum Era {
    Handshake {
        version: String,
        /// What the client declared at `initialize`.
        capabilities: Value,
        /// The session's id (server-to-client requests are answered under it).
        session: String,
    },
    Modern {
        version: String,
        /// What the client declared on this request.
        capabilities: Value,
    },
}

impl Era {
    fn capabilities(&self) -> &Value {
        match self {
            Era::Handshake { capabilities, .. } | Era::Modern { capabilities, .. } => capabilities,
        }
    }

    fn is_modern(&self) -> bool {
        matches!(self, Era::Modern { .. })
    }
}

fn protocol_version(v: &str) -> ProtocolVersion {
    serde_json::from_value(json!(v)).unwrap_or_default()
}

fn server_info() -> Implementation {
    let mut info = Implementation::new("imagemcp", env!("CARGO_PKG_VERSION"));
    info.title = Some("imagemcp — on-brand images with OpenAI".into());
    info
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities::builder()
        .enable_tools()
        .enable_resources()
        .build()
}

/// The 2026-07-28 capabilities: the handshake ones plus the Tasks extension.
fn modern_capabilities() -> ServerCapabilities {
    let mut caps = capabilities();
    caps.extensions
        .get_or_insert_with(Default::default)
        .insert(tasks::EXTENSION.to_owned(), Default::default());
    caps
}

const INSTRUCTIONS: &str = "Generate, refine and manage images with OpenAI's GPT Image models. Start with \
    openai_generate_image; refine a result by passing its conversation_id with a new prompt; edit stored \
    images with openai_edit_image. Full-size files are image://{id} resources.";

/// Handles one request to `/mcp` from an authenticated caller.
pub async fn handle(
    app: &App,
    caller: &Caller,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
) -> McpResponse {
    let session_id = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match *method {
        Method::POST => {}
        // Ending a handshake-era session; the stateless revision has none to end.
        Method::DELETE if session_id.is_some() => {
            let id = session_id.unwrap_or_default();
            return match session::delete(app, caller, &id).await {
                Ok(()) => McpResponse::empty(StatusCode::NO_CONTENT),
                Err(_) => McpResponse::empty(StatusCode::NOT_FOUND),
            };
        }
        // No server-initiated stream is offered: every answer rides on its POST.
        _ => {
            return McpResponse::empty(StatusCode::METHOD_NOT_ALLOWED)
                .header("allow", "POST, DELETE");
        }
    }
    if let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        && ![
            "application/json",
            "text/event-stream",
            "*/*",
            "application/*",
        ]
        .iter()
        .any(|t| accept.contains(t))
    {
        return McpResponse::empty(StatusCode::NOT_ACCEPTABLE);
    }
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return McpResponse::rpc_error(
                &Value::Null,
                RpcError::new(PARSE_ERROR, format!("Parse error: {e}")),
            );
        }
    };
    let Some(obj) = message.as_object() else {
        let why = if message.is_array() {
            "batches are not supported"
        } else {
            "a message must be a JSON object"
        };
        return McpResponse::rpc_error(
            &Value::Null,
            RpcError::new(INVALID_REQUEST, format!("Invalid Request: {why}")),
        );
    };
    let id = obj.get("id").cloned();
    let rpc_method = obj.get("method").and_then(Value::as_str);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return McpResponse::rpc_error(
            &id.unwrap_or(Value::Null),
            RpcError::new(INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\""),
        );
    }
    let Some(rpc_method) = rpc_method else {
        // A response to a request of ours (an `elicitation/create`) or junk:
        // accept responses, refuse junk. An answer is stored for the call waiting on it, which
        // may be on another instance.
        if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
            if let (Some(sid), Some(rid)) = (
                session_id.as_deref(),
                id.as_ref()
                    .and_then(Value::as_str)
                    .filter(|r| confirm::is_elicitation_id(r)),
            ) {
                match session::find(app, caller, sid).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return McpResponse::empty(StatusCode::NOT_FOUND),
                    Err(_) => return McpResponse::empty(StatusCode::SERVICE_UNAVAILABLE),
                }
                if let Err(e) = confirm::store_reply(app, sid, rid, &message).await {
                    tracing::warn!(error = %e, "storing an elicitation answer failed");
                    return McpResponse::empty(StatusCode::SERVICE_UNAVAILABLE);
                }
            }
            return McpResponse::empty(StatusCode::ACCEPTED);
        }
        return McpResponse::rpc_error(
            &id.unwrap_or(Value::Null),
            RpcError::new(INVALID_REQUEST, "Invalid Request: missing method"),
        );
    };
    let Some(id) = id.filter(|v| v.is_string() || v.is_i64() || v.is_u64()) else {
        if obj.contains_key("id") {
            return McpResponse::rpc_error(
                &Value::Null,
                RpcError::new(
                    INVALID_REQUEST,
                    "Invalid Request: id must be a string or an integer",
                ),
            );
        }
        // Notifications (initialized, cancelled, progress…) need no answer.
        return McpResponse::empty(StatusCode::ACCEPTED);
    };
    let params = obj.get("params").cloned().unwrap_or(json!({}));
    if !params.is_object() {
        return McpResponse::rpc_error(
            &id,
            RpcError::new(INVALID_PARAMS, "params must be an object"),
        );
    }

    let header_version = headers
        .get(PROTOCOL_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let has_envelope = params
        .get("_meta")
        .and_then(|m| m.get(protocol::META_PROTOCOL_VERSION))
        .is_some();
    let modern = rpc_method != "initialize"
        && (rpc_method == "server/discover"
            || has_envelope
            || header_version
                .as_deref()
                .is_some_and(|v| !HANDSHAKE_VERSIONS.contains(&v)));

    let era = if modern {
        match protocol::check_modern(&message, headers) {
            Ok(env) => Era::Modern {
                version: env.version,
                capabilities: env.client_capabilities,
            },
            Err(err) => return McpResponse::rpc_error(&id, err),
        }
    } else if rpc_method == "initialize" {
        return initialize(app, caller, &id, &params).await;
    } else {
        let Some(session_id) = session_id else {
            return McpResponse::rpc_error(
                &id,
                RpcError::new(
                    INVALID_REQUEST,
                    "Bad Request: missing Mcp-Session-Id header; send initialize first",
                ),
            );
        };
        let session = match session::find(app, caller, &session_id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                // 404 tells a handshake client to start a new session.
                let err = RpcError::new(-32001, "Session not found; initialize a new session");
                return McpResponse {
                    status: StatusCode::NOT_FOUND,
                    headers: Vec::new(),
                    body: McpBody::Json(err.to_message(&id)),
                };
            }
            Err(e) => return McpResponse::rpc_error(&id, internal(&e)),
        };
        if let Some(v) = header_version.as_deref()
            && !HANDSHAKE_VERSIONS.contains(&v)
        {
            return McpResponse::rpc_error(&id, protocol::unsupported_version(v));
        }
        Era::Handshake {
            version: session.protocol_version,
            capabilities: session.client_capabilities,
            session: session.id,
        }
    };

    dispatch(app, caller, &era, &id, rpc_method, params).await
}

fn internal(err: &imagemcp_core::Error) -> RpcError {
    RpcError::new(protocol::INTERNAL_ERROR, crate::error::public_message(err))
}

async fn initialize(app: &App, caller: &Caller, id: &Value, params: &Value) -> McpResponse {
    if let Err(err) = protocol::check_initialize(params) {
        return McpResponse::rpc_error(id, err);
    }
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(LATEST_HANDSHAKE);
    let version = if HANDSHAKE_VERSIONS.contains(&requested) {
        requested
    } else {
        LATEST_HANDSHAKE
    };
    let caps = params.get("capabilities").cloned().unwrap_or(json!({}));
    let session_id = match session::create(app, caller, version, &caps).await {
        Ok(s) => s,
        Err(e) => return McpResponse::rpc_error(id, internal(&e)),
    };
    let mut result = InitializeResult::new(capabilities());
    result.protocol_version = protocol_version(version);
    result.server_info = server_info();
    result.instructions = Some(INSTRUCTIONS.into());
    let value = serde_json::to_value(result).unwrap_or(Value::Null);
    McpResponse::json(result_message(id, value)).header("mcp-session-id", &session_id)
}

/// Adjusts a result to the era: 2026-07-28 results carry `resultType` (and server info in `_meta`);
/// older revisions get neither, nor the caching hints they do not define.
fn finish(era: &Era, mut result: Value) -> Value {
    if let Some(obj) = result.as_object_mut() {
        match era {
            Era::Modern { .. } => {
                obj.entry("resultType").or_insert(json!("complete"));
                let meta = obj.entry("_meta").or_insert(json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert(
                        protocol::META_SERVER_INFO.into(),
                        serde_json::to_value(server_info()).unwrap_or(Value::Null),
                    );
                }
            }
            Era::Handshake { .. } => {
                obj.remove("resultType");
                obj.remove("ttlMs");
                obj.remove("cacheScope");
            }
        }
    }
    result
}

fn with_cache(mut result: Value, ttl_ms: u64, scope: CacheScope) -> Value {
    if let Some(obj) = result.as_object_mut() {
        obj.insert("ttlMs".into(), json!(ttl_ms));
        obj.insert(
            "cacheScope".into(),
            serde_json::to_value(scope).unwrap_or(json!("private")),
        );
    }
    result
}

async fn dispatch(
    app: &App,
    caller: &Caller,
    era: &Era,
    id: &Value,
    method: &str,
    params: Value,
) -> McpResponse {
    let result: Result<Value, RpcError> = match method {
        "ping" => Ok(json!({})),
        "server/discover" => {
            let versions = MODERN_VERSIONS
                .iter()
                .map(|v| protocol_version(v))
                .collect();
            let mut discover = DiscoverResult::new(versions, modern_capabilities())
                .with_ttl_ms(LIST_TTL_MS)
                .with_cache_scope(CacheScope::Public)
                .with_server_info(server_info());
            discover.instructions = Some(INSTRUCTIONS.into());
            Ok(serde_json::to_value(discover).unwrap_or(Value::Null))
        }
        "tools/list" => {
            let result = ListToolsResult::with_all_items(tools::list(caller));
            // The list depends on the caller's role and scopes: never share it.
            Ok(with_cache(
                serde_json::to_value(result).unwrap_or(Value::Null),
                LIST_TTL_MS,
                CacheScope::Private,
            ))
        }
        // Every generation adds to the list: stale at once, and the caller's own.
        "resources/list" => resources::list(app, caller, &params)
            .await
            .map(|r| with_cache(r, 0, CacheScope::Private)),
        "resources/templates/list" => Ok(with_cache(
            resources::templates(),
            LIST_TTL_MS,
            CacheScope::Public,
        )),
        // A stored image never changes (it can only be deleted), so a read stays fresh a while;
        // it is the caller's organisation's, so private.
        "resources/read" => resources::read(app, caller, &params)
            .await
            .map(|r| with_cache(r, READ_TTL_MS, CacheScope::Private))
            .map_err(|e| match (e.code, era) {
                // 2026-07-28 retired -32002: an unknown resource is invalid params there.
                (protocol::RESOURCE_NOT_FOUND, Era::Modern { .. }) => RpcError {
                    code: INVALID_PARAMS,
                    ..e
                },
                _ => e,
            }),
        "tools/call" => return call_tool(app, caller, era, id, params).await,
        // The Tasks extension exists on 2026-07-28 only, for clients that declare it.
        "tasks/get" | "tasks/update" | "tasks/cancel" if era.is_modern() => {
            if !tasks::declared(era.capabilities()) {
                Err(tasks::missing_capability())
            } else {
                match method {
                    "tasks/get" => tasks::get(app, caller, &params).await,
                    "tasks/update" => tasks::update(app, caller, &params).await,
                    _ => tasks::cancel(app, caller, &params).await,
                }
            }
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method not found: {other}"),
        )),
    };
    match result {
        Ok(value) => McpResponse::json(result_message(id, finish(era, value))),
        Err(err) => McpResponse::rpc_error(id, err),
    }
}

/// A handshake-era call that asks the person first: the stream carries our `elicitation/create`
/// request, waits for the client's answer (POSTed under the session, stored in the `Table`), then
/// ends with the result `then` makes of the answer (`None`: no answer in time).
fn elicit_then<F>(app: &App, era: &Era, id: &Value, request: Value, then: F) -> McpResponse
where
    F: FnOnce(
            App,
            Option<Value>,
        ) -> futures::future::BoxFuture<'static, rmcp::model::CallToolResult>
        + Send
        + 'static,
{
    let Era::Handshake { session, .. } = era else {
        return McpResponse::rpc_error(id, RpcError::new(protocol::INTERNAL_ERROR, "no session"));
    };
    let request_id = request["id"].as_str().unwrap_or_default().to_owned();
    let (app, era, id, session) = (app.clone(), era.clone(), id.clone(), session.clone());
    let answer = async move {
        let reply = confirm::await_answer(&app, &session, &request_id)
            .await
            .unwrap_or(None);
        let result = then(app, reply).await;
        let value = serde_json::to_value(result).unwrap_or(Value::Null);
        result_message(&id, finish(&era, value))
    };
    let stream =
        futures::stream::once(futures::future::ready(request)).chain(futures::stream::once(answer));
    McpResponse {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: McpBody::Stream(Box::pin(stream)),
    }
}

/// A reveal tool's result offered through URL-mode elicitation, where the client declared it.
fn offer_link(
    app: &App,
    caller: &Caller,
    era: &Era,
    id: &Value,
    name: &str,
    args: &Value,
    result: rmcp::model::CallToolResult,
) -> McpResponse {
    let plain = |result: &rmcp::model::CallToolResult| {
        let value = serde_json::to_value(result).unwrap_or(Value::Null);
        McpResponse::json(result_message(id, finish(era, value)))
    };
    let Some(offered) =
        reveal::offered(name, &result).filter(|_| confirm::supports_url(era.capabilities()))
    else {
        return plain(&result);
    };
    if era.is_modern() {
        return match reveal::input_required(app, caller, name, args, result.clone(), &offered) {
            Ok(asked) => McpResponse::json(result_message(id, finish(era, asked))),
            Err(_) => plain(&result),
        };
    }
    let request = reveal::elicitation_request(app, &offered);
    elicit_then(app, era, id, request, move |_, reply| {
        Box::pin(futures::future::ready(reveal::answered_result(
            result,
            &offered,
            &reply.unwrap_or(Value::Null),
        )))
    })
}

async fn call_tool(
    app: &App,
    caller: &Caller,
    era: &Era,
    id: &Value,
    params: Value,
) -> McpResponse {
    let Some(name) = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return McpResponse::rpc_error(
            id,
            RpcError::new(INVALID_PARAMS, "tools/call needs `name`"),
        );
    };
    if !tools::exists(&name) {
        return McpResponse::rpc_error(
            id,
            RpcError::new(INVALID_PARAMS, format!("Unknown tool: {name}")),
        );
    }
    // Arguments are an object (absent or `null`: none). Anything else is refused before the cost
    // gate and the Tasks path, which read arguments by name.
    let args = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(args @ Value::Object(_)) => args.clone(),
        Some(other) => {
            return McpResponse::rpc_error(id, protocol::arguments_not_an_object(other));
        }
    };
    // The retry of a call that showed a one-time link: its result, never a second credential.
    if era.is_modern()
        && reveal::is_reveal_tool(&name)
        && let Some(state) = params.get("requestState")
    {
        return match reveal::retried(app, caller, &name, &args, state, &params).await {
            Ok(value) => McpResponse::json(result_message(id, finish(era, value))),
            Err(err) => McpResponse::rpc_error(id, err),
        };
    }
    // Cost confirmation comes first: nothing is queued, generated or charged until it passes.
    let asker = confirm::Asker {
        modern: era.is_modern(),
        client_capabilities: era.capabilities(),
        params: &params,
    };
    let args = match confirm::gate(app, caller, &name, args, asker).await {
        confirm::Gate::Proceed(args) => args,
        confirm::Gate::Ask(result) => {
            return McpResponse::json(result_message(id, finish(era, result)));
        }
        confirm::Gate::Refuse(result) => {
            let value = serde_json::to_value(result).unwrap_or(Value::Null);
            return McpResponse::json(result_message(id, finish(era, value)));
        }
        confirm::Gate::Reject(err) => return McpResponse::rpc_error(id, err),
        confirm::Gate::Elicit { request, args } => {
            let caller = caller.clone();
            return elicit_then(app, era, id, request, move |app, reply| {
                Box::pin(async move {
                    if reply.as_ref().is_some_and(confirm::accepts_cost) {
                        tools::call(&app, &caller, &name, args, None).await
                    } else {
                        confirm::declined_result()
                    }
                })
            });
        }
    };
    // A client that declared the Tasks extension gets long work as a task handle.
    if era.is_modern() && tasks::declared(era.capabilities()) && tools::runs_as_task(&name, &args) {
        let created = match tools::submit_task(app, caller, &name, args).await {
            Ok(job) => tasks::created(app, caller, &job).await,
            Err(e) => Err(e),
        };
        let value = match created {
            Ok(task) => task,
            Err(e) => serde_json::to_value(tools::error_result(&e)).unwrap_or(Value::Null),
        };
        return McpResponse::json(result_message(id, finish(era, value)));
    }
    let token = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .cloned()
        .filter(|t| t.is_string() || t.is_number());

    let Some(token) = token.filter(|_| tools::is_long_running(&name)) else {
        // A reveal tool's arguments are small; they are kept to bind its `requestState`.
        let kept = if reveal::is_reveal_tool(&name) {
            args.clone()
        } else {
            Value::Null
        };
        let result = tools::call(app, caller, &name, args, None).await;
        return offer_link(app, caller, era, id, &name, &kept, result);
    };

    // Progress requested: stream notifications, then the result, as SSE. The work runs inside the
    // stream (no spawn, so it runs on any runtime) and sends its result through the same channel as
    // its progress, so the result is always the last message.
    let (tx, rx) = futures::channel::mpsc::unbounded::<Progress>();
    let (app, caller, era, id) = (app.clone(), caller.clone(), era.clone(), id.clone());
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<Value>();
    let work = async move {
        let result = tools::call(&app, &caller, &name, args, Some(&tx)).await;
        let value = serde_json::to_value(result).unwrap_or(Value::Null);
        let _ = done_tx.send(result_message(&id, finish(&era, value)));
        drop(tx);
    };
    let notifications = rx.map(move |p| {
        let mut params =
            json!({ "progressToken": token, "progress": p.progress, "total": p.total });
        if !p.message.is_empty() {
            params["message"] = json!(p.message);
        }
        json!({ "jsonrpc": "2.0", "method": "notifications/progress", "params": params })
    });
    let driven = futures::stream::select(
        notifications.map(Some),
        futures::stream::once(work).map(|()| None),
    )
    .filter_map(futures::future::ready);
    let last = futures::stream::once(done_rx).filter_map(|r| futures::future::ready(r.ok()));
    McpResponse {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: McpBody::Stream(Box::pin(driven.chain(last))),
    }
}
