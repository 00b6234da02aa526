//! Browser sessions for the server-rendered pages (login, consent, sign-up): an opaque cookie whose
//! hash keys a `Table` item holding the logged-in user (if any) and the session's CSRF token.
//!
//! Every form carries the CSRF token and every POST compares it with the one stored for the cookie,
//! so a page on another site cannot submit our forms with the user's cookie (and `SameSite=Lax`
//! stops the cookie being sent on such cross-site POSTs in the first place). A login replaces the
//! session with a new one, so a session id planted before login is worthless after it.

use std::time::Duration;

use imagemcp_core::ids::UserId;
use imagemcp_core::table::{Condition, Item, Key};
use imagemcp_core::{Error, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Identity;
use crate::auth::constant_time_eq;

/// The cookie's name.
pub const COOKIE: &str = "imagemcp_session";
/// How long a browser session lives.
pub const BROWSER_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

fn key(cookie: &str) -> Key {
    Key::new(
        format!(
            "WEBSESSION#{}",
            hex::encode(Sha256::digest(cookie.as_bytes()))
        ),
        "SESSION",
    )
}

/// A browser session as read from storage.
#[derive(Clone, PartialEq)]
pub struct BrowserSession {
    /// The cookie value. Secret.
    pub cookie: String,
    /// The CSRF token forms must carry. Secret (to other sites).
    pub csrf: String,
    pub user: Option<UserId>,
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("cookie", &"[redacted]")
            .field("csrf", &"[redacted]")
            .field("user", &self.user)
            .finish()
    }
}

impl BrowserSession {
    /// Whether a submitted form's CSRF token is this session's.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && constant_time_eq(&self.csrf, presented)
    }

    /// The `Set-Cookie` header value for this session.
    pub fn set_cookie(&self, secure: bool) -> String {
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            self.cookie,
            BROWSER_SESSION_TTL.as_secs(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The session cookie's value in a `Cookie` header, if present and well-formed.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub struct BrowserSessions<'a> {
    cx: &'a Identity,
}

impl<'a> BrowserSessions<'a> {
    pub fn new(cx: &'a Identity) -> Self {
        Self { cx }
    }

    fn random_hex(&self) -> String {
        let mut raw = [0u8; 32];
        self.cx.ports.random.fill(&mut raw);
        hex::encode(raw)
    }

    /// A new session, anonymous or for `user`.
    pub async fn create(&self, user: Option<&UserId>) -> Result<BrowserSession> {
        let session = BrowserSession {
            cookie: self.random_hex(),
            csrf: self.random_hex(),
            user: user.cloned(),
        };
        let now = self.cx.ports.clock.now_secs();
        let mut item = Item::new(key(&session.cookie), Default::default())
            .with_ttl(now + BROWSER_SESSION_TTL.as_secs() as i64);
        item.attrs.insert("csrf".into(), json!(session.csrf));
        if let Some(user) = user {
            item.attrs.insert("user".into(), json!(user));
        }
        self.cx.ports.table.put(item, Condition::NotExists).await?;
        Ok(session)
    }

    /// The live session a cookie names.
    pub async fn load(&self, cookie: &str) -> Result<Option<BrowserSession>> {
        let Some(item) = self.cx.ports.table.get(&key(cookie)).await? else {
            return Ok(None);
        };
        let csrf = item
            .str("csrf")
            .ok_or_else(|| Error::internal("browser session without csrf"))?
            .to_owned();
        let user = item.str("user").and_then(|u| UserId::parse(u).ok());
        Ok(Some(BrowserSession {
            cookie: cookie.to_owned(),
            csrf,
            user,
        }))
    }

    /// Replaces `old` with a new session for `user` (the old id stops working).
    pub async fn log_in(&self, old: &BrowserSession, user: &UserId) -> Result<BrowserSession> {
        let new = self.create(Some(user)).await?;
        self.cx
            .ports
            .table
            .delete(&key(&old.cookie), Condition::None)
            .await?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let v = "a".repeat(64);
        assert_eq!(
            cookie_value(&format!("x=1; {COOKIE}={v}; y=2")),
            Some(v.as_str())
        );
        assert_eq!(cookie_value(&format!("{COOKIE}=short")), None);
        assert_eq!(cookie_value("other=1"), None);
    }
}
