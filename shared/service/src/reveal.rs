//! One-time reveal links: a secret made for a person (a new or rotated API key, an invitation token)
//! that must not pass through an MCP client or its model is kept sealed in the `Table` and shown
//! once, on a page of ours, to that same person signed in with their browser session.
//!
//! - The link is `{public_url}/reveal/{token}`. The token is `<id>.<mac>`: a random 128-bit id and
//!   an HMAC-SHA256 of it under a key derived from the current KEK, so a guessed or altered token
//!   is refused before any lookup. It names no user, organisation or secret.
//! - The secret waits at `REVEAL#<id>` / `REVEAL`, sealed (with what it is, for the page) under
//!   the organisation's data key and bound to the item and field, beside the user it is for and an
//!   expiry ten minutes on (the item's TTL; reads also check it against the injected clock).
//! - Revealing reads the item, then deletes it on the condition that it still exists: of two
//!   concurrent reveals exactly one shows the secret, and nothing is shown twice.
//! - Only the person it was made for may reveal it: the page wants that user's browser session.
//!   The MCP specification forbids a pre-authenticated URL, since whoever sees the link (the
//!   client, the model, a chat transcript) must not be able to use it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use imagemcp_core::ids::{OrgId, UserId};
use imagemcp_core::table::{Condition, Item, Key};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::crypto::{Crypto, org_owner};

/// How long a link works.
pub const REVEAL_TTL_SECS: i64 = 10 * 60;
/// What the MAC key of links is derived for.
const PURPOSE: &[u8] = b"imagemcp/reveal-link/v1";
/// The sealed fields of a waiting secret.
const SEALED: &[&str] = &["secret", "subject"];

/// What kind of secret a link reveals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    ApiKey,
    Invitation,
}

/// A link offered to a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// `{public_url}/reveal/{token}`.
    pub url: String,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
    /// The random id inside the token (not a credential without its MAC).
    pub id: String,
}

/// A waiting secret, without the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub user: UserId,
    pub kind: SecretKind,
    /// What the secret is, for the page ("API key key_… (label)").
    pub subject: String,
    pub expires_at: i64,
}

/// A revealed secret.
pub struct Revealed {
    pub secret: String,
    pub kind: SecretKind,
    pub subject: String,
}

impl fmt::Debug for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revealed")
            .field("secret", &"[redacted]")
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .finish()
    }
}

fn item_key(id: &str) -> Key {
    Key::new(format!("REVEAL#{id}"), "REVEAL")
}

fn mac_of(app: &App, id: &str) -> hmac::Hmac<sha2::Sha256> {
    let mut m = crate::crypto::purpose_mac(&app.ports, PURPOSE);
    m.update(id.as_bytes());
    m
}

/// The id of a token whose MAC verifies.
fn verified_id<'t>(app: &App, token: &'t str) -> Result<&'t str> {
    let refused = || Error::not_found("reveal link");
    let (id, tag) = token.split_once('.').ok_or_else(refused)?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused());
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| refused())?;
    mac_of(app, id).verify_slice(&tag).map_err(|_| refused())?;
    Ok(id)
}

/// Keeps `secret` for `user` (sealed with `org`'s data key) and returns the link that shows it once.
pub async fn offer(
    app: &App,
    user: &UserId,
    org: &OrgId,
    kind: SecretKind,
    subject: &str,
    secret: &str,
) -> Result<Link> {
    let mut raw = [0u8; 16];
    app.ports.random.fill(&mut raw);
    let id = hex::encode(raw);
    let expires_at = app.ports.clock.now_secs() + REVEAL_TTL_SECS;
    let mut item = Item::new(item_key(&id), Default::default()).with_ttl(expires_at);
    for (name, value) in [
        ("user", json!(user)),
        ("org", json!(org)),
        ("kind", json!(kind)),
        ("expires_at", json!(expires_at)),
        ("subject", json!(subject)),
        ("secret", json!(secret)),
    ] {
        item.attrs.insert(name.into(), value);
    }
    Crypto::new(&app.ports)
        .seal_item_as(&org_owner(org), &mut item, SEALED)
        .await?;
    app.ports.table.put(item, Condition::NotExists).await?;
    let tag = URL_SAFE_NO_PAD.encode(mac_of(app, &id).finalize().into_bytes());
    tracing::info!(user = %user, ?kind, "one-time reveal link made");
    Ok(Link {
        url: format!("{}/reveal/{id}.{tag}", app.config.public_url),
        expires_at,
        id,
    })
}

/// The live item of a verified token, `None` once used or expired.
async fn live(app: &App, id: &str) -> Result<Option<Item>> {
    let Some(item) = app.ports.table.get(&item_key(id)).await? else {
        return Ok(None);
    };
    let expires_at = item.int("expires_at").unwrap_or(0);
    Ok((app.ports.clock.now_secs() < expires_at).then_some(item))
}

fn describe(item: &Item) -> Result<(UserId, OrgId, SecretKind, i64)> {
    let bad = || Error::internal("a reveal item is malformed");
    let user = UserId::parse(item.str("user").ok_or_else(bad)?)?;
    let org = OrgId::parse(item.str("org").ok_or_else(bad)?)?;
    let kind = serde_json::from_value(item.attrs.get("kind").cloned().ok_or_else(bad)?)
        .map_err(|_| bad())?;
    Ok((user, org, kind, item.int("expires_at").unwrap_or(0)))
}

/// What a link would reveal, if it is ours and still waiting (`Ok(None)`: used or expired;
/// `NotFound`: not a link of ours).
pub async fn pending(app: &App, token: &str) -> Result<Option<Pending>> {
    let id = verified_id(app, token)?;
    let Some(mut item) = live(app, id).await? else {
        return Ok(None);
    };
    let (user, org, kind, expires_at) = describe(&item)?;
    Crypto::new(&app.ports)
        .open_item_as(&org_owner(&org), &mut item, &["subject"])
        .await?;
    Ok(Some(Pending {
        user,
        kind,
        subject: item.str("subject").unwrap_or_default().to_owned(),
        expires_at,
    }))
}

/// Reveals the secret to `user`, once: `Ok(None)` when it was used or has expired, `Forbidden`
/// when it is another person's (and then it stays waiting for them).
pub async fn take(app: &App, token: &str, user: &UserId) -> Result<Option<Revealed>> {
    let id = verified_id(app, token)?;
    let Some(mut item) = live(app, id).await? else {
        return Ok(None);
    };
    let (owner, org, kind, _) = describe(&item)?;
    if &owner != user {
        return Err(Error::Forbidden(
            "this link was made for another account".into(),
        ));
    }
    match app
        .ports
        .table
        .delete(&item_key(id), Condition::Exists)
        .await
    {
        Ok(()) => {}
        // Someone revealed it between our read and our delete.
        Err(Error::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    Crypto::new(&app.ports)
        .open_item_as(&org_owner(&org), &mut item, SEALED)
        .await?;
    tracing::info!(user = %user, ?kind, "one-time reveal link used");
    Ok(Some(Revealed {
        secret: item.str("secret").unwrap_or_default().to_owned(),
        kind,
        subject: item.str("subject").unwrap_or_default().to_owned(),
    }))
}
