//! The protocol revisions we speak, their headers and error codes, and the checks the 2026-07-28
//! revision makes on every request before dispatch.

use serde_json::{Value, json};

/// Revisions reached through the `initialize` handshake, oldest first.
pub const HANDSHAKE_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Revisions that use the stateless per-request envelope.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// The handshake revision offered when a client asks for one we do not know.
pub const LATEST_HANDSHAKE: &str = "2025-11-25";

pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";
pub const SESSION_HEADER: &str = "mcp-session-id";

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;
pub const METHOD_NOT_FOUND: i32 = -32601;
pub const INVALID_PARAMS: i32 = -32602;
pub const INTERNAL_ERROR: i32 = -32603;
pub const RESOURCE_NOT_FOUND: i32 = -32002;
pub const HEADER_MISMATCH: i32 = -32020;
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = -32021;

/// A JSON-RPC error to send back.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The HTTP status this error travels with (the 2026-07-28 transport's table; other codes → 200).
    pub fn http_status(&self) -> u16 {
        match self.code {
            PARSE_ERROR
            | INVALID_REQUEST
            | INVALID_PARAMS
            | HEADER_MISMATCH
            | MISSING_REQUIRED_CLIENT_CAPABILITY
            | UNSUPPORTED_PROTOCOL_VERSION => 400,
            METHOD_NOT_FOUND => 404,
            _ => 200,
        }
    }

    pub fn to_message(&self, id: &Value) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error })
    }
}

/// A JSON-RPC success message.
pub fn result_message(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// The body parameter each name-bearing method mirrors in the `Mcp-Name` header.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        // The Tasks extension routes its methods by task id.
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// Decodes a header value that may carry the `=?base64?…?=` sentinel used for values that do not
/// survive as plain HTTP header text. A malformed sentinel yields `None`, so it never matches.
pub fn decode_header_value(value: &str) -> Option<String> {
    use base64::Engine;
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(payload).ok()?;
    // Only the canonical encoding is accepted, as the encoder only ever emits that.
    if engine.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// What the envelope of a 2026-07-28 request carries, once checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub version: String,
    pub client_capabilities: Value,
}

/// Header access for the checks, so they work on any runtime's header type.
pub trait Headers {
    /// Every value of a header (lower-case name).
    fn all(&self, name: &str) -> Vec<String>;

    fn one(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }
}

impl Headers for http::HeaderMap {
    fn all(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

/// The 2026-07-28 checks, in the spec's order: the `_meta` envelope, then the routing headers
/// against the body (a client that disagrees with itself is told so first), then the version.
pub fn check_modern(body: &Value, headers: &dyn Headers) -> Result<Envelope, RpcError> {
    for name in [PROTOCOL_VERSION_HEADER, METHOD_HEADER, NAME_HEADER] {
        if headers.all(name).len() > 1 {
            return Err(RpcError::new(
                HEADER_MISMATCH,
                format!("{name} header appears more than once"),
            ));
        }
    }
    let meta = body.get("params").and_then(|p| p.get("_meta")).and_then(Value::as_object).ok_or_else(|| {
        RpcError::new(
            INVALID_PARAMS,
            format!("params._meta must be an object carrying {META_PROTOCOL_VERSION:?} and {META_CLIENT_CAPABILITIES:?}"),
        )
    })?;
    let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!(
                "params._meta is missing the required envelope key(s): {}",
                missing.join(", ")
            ),
        ));
    }
    let version = &meta[META_PROTOCOL_VERSION];
    if headers.one(PROTOCOL_VERSION_HEADER).as_deref() != version.as_str().or(Some("\u{0}")) {
        return Err(RpcError::new(
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match the request envelope's protocol version",
        ));
    }
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if headers.one(METHOD_HEADER).as_deref() != Some(method) {
        return Err(RpcError::new(
            HEADER_MISMATCH,
            "Mcp-Method header does not match the request body's method",
        ));
    }
    if let Some(param) = name_param(method)
        && let Some(body_value) = body["params"].get(param).and_then(Value::as_str)
        && headers
            .one(NAME_HEADER)
            .and_then(|h| decode_header_value(&h))
            .as_deref()
            != Some(body_value)
    {
        return Err(RpcError::new(
            HEADER_MISMATCH,
            format!("Mcp-Name header does not match the request body's {param:?} parameter"),
        ));
    }
    let version = version.as_str().ok_or_else(|| {
        RpcError::new(
            INVALID_PARAMS,
            "the protocol-version envelope value must be a string",
        )
    })?;
    if !MODERN_VERSIONS.contains(&version) {
        return Err(unsupported_version(version));
    }
    let problems: Vec<(String, String)> = [
        misfit::<rmcp::model::ClientCapabilities>(
            META_CLIENT_CAPABILITIES,
            &meta[META_CLIENT_CAPABILITIES],
        ),
        meta.get(META_CLIENT_INFO)
            .and_then(|info| misfit::<rmcp::model::Implementation>(META_CLIENT_INFO, info)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        return Err(invalid_fields("params._meta", &problems));
    }
    Ok(Envelope {
        version: version.to_owned(),
        client_capabilities: meta[META_CLIENT_CAPABILITIES].clone(),
    })
}

/// The -32602 error of a `tools/call` whose `arguments` is not a JSON object.
pub fn arguments_not_an_object(arguments: &Value) -> RpcError {
    RpcError::new(
        INVALID_PARAMS,
        format!(
            "Invalid params: `arguments` must be a JSON object of named arguments, not {}",
            crate::images::params::json_kind(arguments)
        ),
    )
    .with_data(json!({ "field": "arguments" }))
}

/// Where `value` does not fit the rmcp model type `T`: the first field at fault, named under
/// `prefix` (`capabilities.elicitation`, `clientInfo.name`…), and why.
fn misfit<T: serde::de::DeserializeOwned>(prefix: &str, value: &Value) -> Option<(String, String)> {
    let e = serde_path_to_error::deserialize::<_, T>(value).err()?;
    let path = e.path().to_string();
    let reason = e.into_inner().to_string();
    // serde names a missing field in its message, not in the path.
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.split_once('`'))
        .map(|(name, _)| name);
    let mut field = prefix.to_owned();
    for part in [(path != ".").then_some(path.as_str()), missing]
        .into_iter()
        .flatten()
    {
        field.push('.');
        field.push_str(part);
    }
    Some((field, reason))
}

/// The -32602 error listing every field at fault (`data.field` is the first).
fn invalid_fields(what: &str, problems: &[(String, String)]) -> RpcError {
    let listed: Vec<String> = problems
        .iter()
        .map(|(field, reason)| format!("`{field}`: {reason}"))
        .collect();
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    RpcError::new(
        INVALID_PARAMS,
        format!("Invalid params: {what}: {}", listed.join("; ")),
    )
    .with_data(json!({ "field": fields.first(), "fields": fields }))
}

/// The `initialize` request's params, checked by type against the schema: `protocolVersion` a
/// string, `capabilities` an object of capability objects, `clientInfo` an object with `name`
/// and `version` strings, all three required. A request that fails is answered with -32602
/// naming every field at fault, and opens no session.
pub fn check_initialize(params: &Value) -> Result<(), RpcError> {
    fn required<T: serde::de::DeserializeOwned>(
        params: &Value,
        name: &str,
    ) -> Option<(String, String)> {
        match params.get(name) {
            None => Some((name.to_owned(), "is required".to_owned())),
            Some(value) => misfit::<T>(name, value),
        }
    }
    let problems: Vec<(String, String)> = [
        required::<String>(params, "protocolVersion"),
        required::<rmcp::model::ClientCapabilities>(params, "capabilities"),
        required::<rmcp::model::Implementation>(params, "clientInfo"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid_fields("initialize", &problems))
    }
}

/// The -32022 error naming the revisions this server speaks.
pub fn unsupported_version(requested: &str) -> RpcError {
    let supported: Vec<&str> = HANDSHAKE_VERSIONS
        .iter()
        .chain(MODERN_VERSIONS)
        .copied()
        .collect();
    RpcError::new(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
        .with_data(json!({ "supported": supported, "requested": requested }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn call(name: &str, version: &str) -> Value {
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":{},
            "_meta":{META_PROTOCOL_VERSION: version, META_CLIENT_CAPABILITIES: {}}}})
    }

    #[test]
    fn modern_checks_in_order() {
        let ok = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "x"),
        ]);
        assert_eq!(
            check_modern(&call("x", "2026-07-28"), &ok).unwrap().version,
            "2026-07-28"
        );
        assert_eq!(
            check_modern(&call("y", "2026-07-28"), &ok)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
        let no_meta = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}});
        assert_eq!(
            check_modern(&no_meta, &ok).unwrap_err().code,
            INVALID_PARAMS
        );
        let wrong_method = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ]);
        assert_eq!(
            check_modern(&call("x", "2026-07-28"), &wrong_method)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
        let future = headers(&[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "x"),
        ]);
        let err = check_modern(&call("x", "2099-01-01"), &future).unwrap_err();
        assert_eq!(err.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(err.data.unwrap()["requested"], "2099-01-01");
        let dup = headers(&[("mcp-method", "a"), ("mcp-method", "b")]);
        assert_eq!(
            check_modern(&call("x", "2026-07-28"), &dup)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
    }

    #[test]
    fn initialize_params_are_checked_by_type() {
        let good = json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
            "clientInfo": {"name": "c", "version": "1"}});
        assert_eq!(check_initialize(&good), Ok(()));
        for (params, field) in [
            (
                json!({"protocolVersion": 17, "capabilities": "x", "clientInfo": {"name": "c", "version": "1"}}),
                "protocolVersion",
            ),
            (
                json!({"protocolVersion": "2025-11-25", "capabilities": "x", "clientInfo": {"name": "c", "version": "1"}}),
                "capabilities",
            ),
            (
                json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": true}, "clientInfo": {"name": "c", "version": "1"}}),
                "capabilities.elicitation",
            ),
            (
                json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": 5, "version": "1"}}),
                "clientInfo.name",
            ),
            (
                json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c"}}),
                "clientInfo.version",
            ),
            (
                json!({"protocolVersion": "2025-11-25", "capabilities": {}}),
                "clientInfo",
            ),
            (json!({}), "protocolVersion"),
        ] {
            let err = check_initialize(&params).unwrap_err();
            assert_eq!(err.code, INVALID_PARAMS, "{params}");
            assert_eq!(
                err.data.as_ref().unwrap()["field"],
                field,
                "{params}: {err:?}"
            );
            assert!(
                err.message.contains(&format!("`{field}`")),
                "{}",
                err.message
            );
        }
        // Every field at fault is named, in the schema's order.
        let err =
            check_initialize(&json!({"protocolVersion": 17, "capabilities": "x"})).unwrap_err();
        assert_eq!(
            err.data.unwrap()["fields"],
            json!(["protocolVersion", "capabilities", "clientInfo"])
        );
        assert!(err.message.contains("expected a string"), "{}", err.message);
    }

    #[test]
    fn the_modern_envelope_is_checked_by_type() {
        let ok = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "x"),
        ]);
        let mut body = call("x", "2026-07-28");
        body["params"]["_meta"][META_CLIENT_CAPABILITIES] = json!("x");
        let err = check_modern(&body, &ok).unwrap_err();
        assert_eq!(err.code, INVALID_PARAMS);
        assert_eq!(err.data.unwrap()["field"], META_CLIENT_CAPABILITIES);
        let mut body = call("x", "2026-07-28");
        body["params"]["_meta"][META_CLIENT_INFO] = json!({"name": "c", "version": 2});
        let err = check_modern(&body, &ok).unwrap_err();
        assert_eq!(
            err.data.unwrap()["field"],
            format!("{META_CLIENT_INFO}.version")
        );
    }

    #[test]
    fn header_sentinel() {
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        assert_eq!(decode_header_value("=?base64?w6k=?=").as_deref(), Some("é"));
        assert_eq!(decode_header_value("=?base64?!!?="), None);
    }
}
