//! Credentials over MCP: the tools that make one (`openai_create_api_key`, `openai_rotate_api_key`,
//! `openai_invite_member`) never put it in their result, which the client and its model read.
//! The result offers a one-time reveal link instead ([`imagemcp_service::reveal`]: signed, single-use, ten
//! minutes, only for the same person signed in with their browser), and the link reaches the
//! person by URL-mode elicitation where the client declared it, as the specification requires for
//! credentials:
//!
//! - handshake revisions: an `elicitation/create` request (`mode: "url"`, `elicitationId`, `url`,
//!   `message`) on the call's stream, then the result once the client answers;
//! - 2026-07-28: an `input_required` result carrying the URL-mode elicitation and a `requestState`
//!   (the same authenticated, single-use form as the cost confirmation's, under its own key); the
//!   retry with the answer gets the result, and never makes a second credential;
//! - otherwise: the link in the result's text and `structuredContent` (`reveal_url`, `expires_at`).
//!
//! The tool has already made the credential when the client is asked: the answer only decides
//! what the result says (a declined link still works until it expires, and is in the result).

use imagemcp_core::{Error, Result};
use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::confirm;
use super::protocol::{INVALID_PARAMS, RpcError};
use crate::App;
use crate::auth::Caller;
use crate::manage::{InvitationView, KeyView, NewKeyView};
use imagemcp_service::reveal::{self, Link, SecretKind};

/// The key of our one input request on 2026-07-28.
pub const INPUT_KEY: &str = "reveal";
/// What the `requestState` MAC key is derived for.
const STATE_PURPOSE: &[u8] = b"imagemcp/mcp-reveal-state/v1";
/// How the link reached the person, in `shown_via`.
const VIA_ELICITATION: &str = "url_elicitation";
const VIA_LINK: &str = "link";

/// A new or rotated key as an MCP tool returns it: everything but the secret, and the link that
/// shows the secret once.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KeyLinkView {
    #[serde(flatten)]
    pub record: KeyView,
    /// Open this link, signed in as yourself, to see the key: it works once, for ten minutes.
    pub reveal_url: String,
    /// When the link stops working (Unix seconds).
    pub expires_at: i64,
    /// `url_elicitation` when your client opened the link with your consent, `link` otherwise.
    pub shown_via: String,
}

/// An invitation as an MCP tool returns it: the link that shows its token once.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct InvitationLinkView {
    /// Open this link, signed in as yourself, to see the invitation token to send: it works once,
    /// for ten minutes.
    pub reveal_url: String,
    /// When the link stops working (Unix seconds).
    pub expires_at: i64,
    /// When the invitation itself expires (Unix seconds).
    pub invitation_expires_at: i64,
    /// `url_elicitation` when your client opened the link with your consent, `link` otherwise.
    pub shown_via: String,
}

/// Whether a tool returns a reveal link.
pub fn is_reveal_tool(name: &str) -> bool {
    super::tools::reveals(name).is_some()
}

/// The text after the summary, while the link has only been put in the result.
fn link_text(link_url: &str, expires_at: i64, what: &str) -> String {
    format!(
        "Open {link_url} in your browser, signed in as yourself, to see the {what} once. It is not in \
         this result; the link works once and stops working at {} UTC.",
        clock_time(expires_at)
    )
}

/// The text after the summary once the person accepted to open the link.
fn shown_text(expires_at: i64, what: &str) -> String {
    format!(
        "The {what} is shown to you once on the page your client opened (sign in there if asked); \
         it is not in this result. The link stops working when used or at {} UTC.",
        clock_time(expires_at)
    )
}

fn clock_time(secs: i64) -> String {
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn noun(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::ApiKey => "key",
        SecretKind::Invitation => "invitation token",
    }
}

fn result_of<T: Serialize>(view: &T, summary: String, rest: String) -> Result<CallToolResult> {
    let value = serde_json::to_value(view).map_err(Error::internal)?;
    let mut result =
        CallToolResult::success(vec![ContentBlock::text(summary), ContentBlock::text(rest)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// Keeps `secret` for the caller behind a link; the link and the text that offers it.
async fn offer(
    app: &App,
    caller: &Caller,
    kind: SecretKind,
    subject: &str,
    secret: &str,
) -> Result<(Link, String)> {
    let link = reveal::offer(app, &caller.user, &caller.org, kind, subject, secret).await?;
    let text = link_text(&link.url, link.expires_at, noun(kind));
    Ok((link, text))
}

/// The result of making a key: the secret kept for the caller behind a link.
pub async fn key_result(
    app: &App,
    caller: &Caller,
    key: NewKeyView,
    summary: String,
) -> Result<CallToolResult> {
    let record = key.record;
    let subject = format!(
        "API key {} (\"{}\", {}, scopes {})",
        record.key_id,
        record.label,
        record.org_id,
        record.scopes.join(" ")
    );
    let (link, rest) = offer(app, caller, SecretKind::ApiKey, &subject, &key.key).await?;
    let view = KeyLinkView {
        record,
        reveal_url: link.url,
        expires_at: link.expires_at,
        shown_via: VIA_LINK.into(),
    };
    result_of(&view, summary, rest)
}

/// The result of inviting someone: the token kept for the caller behind a link.
pub async fn invitation_result(
    app: &App,
    caller: &Caller,
    invitation: InvitationView,
    email: &str,
    summary: String,
) -> Result<CallToolResult> {
    let subject = format!("Invitation for {email} to {}", caller.org);
    let (link, rest) = offer(
        app,
        caller,
        SecretKind::Invitation,
        &subject,
        &invitation.token,
    )
    .await?;
    let view = InvitationLinkView {
        reveal_url: link.url,
        expires_at: link.expires_at,
        invitation_expires_at: invitation.expires_at,
        shown_via: VIA_LINK.into(),
    };
    result_of(&view, summary, rest)
}

/// The link a reveal tool's successful result offers.
pub struct Offered {
    pub url: String,
    pub expires_at: i64,
    kind: SecretKind,
}

impl Offered {
    /// What the client shows the person before opening the link.
    pub fn message(&self) -> String {
        format!(
            "Open this imagemcp page to see your new {} once (sign in there if asked). It never \
             passes through this chat.",
            noun(self.kind)
        )
    }
}

/// The link in `result`, when `tool` is a reveal tool and the call succeeded.
pub fn offered(tool: &str, result: &CallToolResult) -> Option<Offered> {
    let kind = super::tools::reveals(tool)?;
    if result.is_error == Some(true) {
        return None;
    }
    let content = result.structured_content.as_ref()?;
    Some(Offered {
        url: content.get("reveal_url")?.as_str()?.to_owned(),
        expires_at: content.get("expires_at")?.as_i64()?,
        kind,
    })
}

/// `result` after the client answered our URL-mode elicitation: an accepted link was shown to the
/// person; otherwise the link stays in the result.
pub fn answered_result(
    mut result: CallToolResult,
    offered: &Offered,
    answer: &Value,
) -> CallToolResult {
    if answer.get("action").and_then(Value::as_str) != Some("accept") {
        return result;
    }
    if let Some(content) = result.structured_content.as_mut() {
        content["shown_via"] = json!(VIA_ELICITATION);
    }
    if let Some(rest) = result.content.get_mut(1) {
        *rest = ContentBlock::text(shown_text(offered.expires_at, noun(offered.kind)));
    }
    result
}

/// The handshake-era `elicitation/create` request showing the link.
pub fn elicitation_request(app: &App, offered: &Offered) -> Value {
    let mut nonce = [0u8; 16];
    app.ports.random.fill(&mut nonce);
    let nonce = hex::encode(nonce);
    json!({
        "jsonrpc": "2.0",
        "id": format!("{}{nonce}", confirm::REVEAL_ID_PREFIX),
        "method": "elicitation/create",
        "params": {
            "mode": "url",
            "elicitationId": nonce,
            "url": offered.url,
            "message": offered.message(),
        },
    })
}

/// The integrity-protected content of a reveal `requestState`: the call it answers and the result
/// to give once the client has shown the link.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    #[serde(flatten)]
    binding: confirm::Binding,
    result: CallToolResult,
}

/// The 2026-07-28 `input_required` result showing the link, with the state its retry carries.
pub fn input_required(
    app: &App,
    caller: &Caller,
    tool: &str,
    args: &Value,
    result: CallToolResult,
    offered: &Offered,
) -> Result<Value> {
    let state = State {
        binding: confirm::Binding::new(app, caller, tool, args, offered.expires_at * 1000),
        result,
    };
    Ok(json!({
        "resultType": "input_required",
        "inputRequests": { INPUT_KEY: {
            "method": "elicitation/create",
            "params": { "mode": "url", "message": offered.message(), "url": offered.url },
        }},
        "requestState": confirm::seal_state(app, STATE_PURPOSE, &state)?,
    }))
}

fn bad_state(why: &str) -> RpcError {
    RpcError::new(
        INVALID_PARAMS,
        format!("requestState refused: {why}; call the tool again without requestState"),
    )
}

/// A 2026-07-28 retry of a reveal tool carrying our `requestState`: the result it stands for,
/// never a second credential. Asked but not answered: asked again.
pub async fn retried(
    app: &App,
    caller: &Caller,
    tool: &str,
    args: &Value,
    token: &Value,
    params: &Value,
) -> std::result::Result<Value, RpcError> {
    // As the cost gate reads them: no arguments are empty ones.
    let empty = json!({});
    let args = if args.is_null() { &empty } else { args };
    let Some(state) = token
        .as_str()
        .and_then(|t| confirm::open_state::<State>(app, STATE_PURPOSE, t))
    else {
        return Err(bad_state("it is malformed or was altered"));
    };
    if let Some(why) = state.binding.refusal(app, caller, tool, args) {
        return Err(bad_state(why));
    }
    let Some(offered) = offered(tool, &state.result) else {
        return Err(bad_state("it carries no link"));
    };
    let Some(answer) = params.get("inputResponses").and_then(|r| r.get(INPUT_KEY)) else {
        return input_required(app, caller, tool, args, state.result, &offered)
            .map_err(|e| RpcError::new(super::protocol::INTERNAL_ERROR, e.to_string()));
    };
    let binding = &state.binding;
    match confirm::use_nonce(app, caller, &binding.nonce, binding.expires_at_ms, tool).await {
        Ok(true) => {}
        Ok(false) => return Err(bad_state("it has already been used")),
        Err(e) => {
            return Err(RpcError::new(
                super::protocol::INTERNAL_ERROR,
                crate::error::public_message(&e),
            ));
        }
    }
    let result = answered_result(state.result, &offered, answer);
    serde_json::to_value(result)
        .map_err(|e| RpcError::new(super::protocol::INTERNAL_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_are_utc_hours_minutes_seconds() {
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(1_795_478_400 + 3_723), "01:02:03");
    }
}
