//! Handshake-era MCP sessions (2024-11-05 … 2025-11-25), kept in the `Table` rather than in a
//! process, so any instance of any runtime can serve any request of a session (no sticky routing).

use imagemcp_core::table::{Condition, Item, Key};
use imagemcp_core::{Error, Result};
use serde_json::{Map, Value, json};

use crate::App;
use crate::auth::Caller;

/// A live session as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: String,
    pub protocol_version: String,
    pub client_capabilities: Value,
}

fn key(id: &str) -> Key {
    Key::new(format!("MCPSESSION#{id}"), "SESSION")
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Creates a session bound to the caller's credential; returns its id.
pub async fn create(
    app: &App,
    caller: &Caller,
    protocol_version: &str,
    client_capabilities: &Value,
) -> Result<String> {
    let mut raw = [0u8; 16];
    app.ports.random.fill(&mut raw);
    let id = hex::encode(raw);
    let mut attrs = Map::new();
    attrs.insert("protocol_version".into(), json!(protocol_version));
    attrs.insert("client_capabilities".into(), client_capabilities.clone());
    attrs.insert("credential".into(), json!(caller.credential));
    attrs.insert("org".into(), json!(caller.org));
    let expires = app.ports.clock.now_secs() + app.config.mcp_session_ttl.as_secs() as i64;
    app.ports
        .table
        .put(
            Item::new(key(&id), attrs).with_ttl(expires),
            Condition::NotExists,
        )
        .await?;
    Ok(id)
}

/// The caller's live session of that id. Another caller's session reads as unknown.
pub async fn find(app: &App, caller: &Caller, id: &str) -> Result<Option<Session>> {
    if !valid_id(id) {
        return Ok(None);
    }
    let Some(item) = app.ports.table.get(&key(id)).await? else {
        return Ok(None);
    };
    if item.str("credential") != Some(caller.credential.as_str())
        || item.str("org") != Some(caller.org.as_str())
    {
        return Ok(None);
    }
    Ok(Some(Session {
        id: id.to_owned(),
        protocol_version: item.str("protocol_version").unwrap_or_default().to_owned(),
        client_capabilities: item
            .attrs
            .get("client_capabilities")
            .cloned()
            .unwrap_or(Value::Null),
    }))
}

/// Ends the caller's session. Unknown sessions are `NotFound`.
pub async fn delete(app: &App, caller: &Caller, id: &str) -> Result<()> {
    if find(app, caller, id).await?.is_none() {
        return Err(Error::not_found("session"));
    }
    app.ports.table.delete(&key(id), Condition::Exists).await
}
