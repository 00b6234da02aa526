//! Invitations: an admin invites an email to a team with a role; the invitee accepts with the
//! token from the email. Only a hash of the token is stored, and it can be used once.

use std::time::Duration;

use imagemcp_core::ids::{OrgId, TeamId, UserId};
use imagemcp_core::rbac::Role;
use imagemcp_core::table::{Condition, Item, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Accounts, Email, Membership};
use imagemcp_tenancy::Ports;

/// How long an invitation stays valid.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

fn key(token: &str) -> Key {
    Key::new(
        format!("INVITE#{}", hex::encode(Sha256::digest(token.as_bytes()))),
        "INVITE",
    )
}

/// A new invitation: the token is what the email carries; it exists nowhere else.
pub struct Invitation {
    pub token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

pub struct Invitations<'a> {
    ports: &'a Ports,
}

impl<'a> Invitations<'a> {
    pub fn new(ports: &'a Ports) -> Self {
        Self { ports }
    }

    pub async fn invite(
        &self,
        org: &OrgId,
        team: &TeamId,
        email: &str,
        role: Role,
    ) -> Result<Invitation> {
        let email = Email::parse(email)?;
        let accounts = Accounts::new(self.ports);
        if accounts.team(org, team).await?.is_none() {
            return Err(Error::not_found(format!("team {team}")));
        }
        let mut raw = [0u8; 32];
        self.ports.random.fill(&mut raw);
        let token = format!("inv_{}", hex::encode(raw));
        let expires_at = self.ports.clock.now_secs() + INVITATION_TTL.as_secs() as i64;
        let mut item = Item::new(key(&token), Default::default()).with_ttl(expires_at);
        item.attrs.insert("org".into(), json!(org));
        item.attrs.insert("team".into(), json!(team));
        item.attrs.insert("role".into(), json!(role));
        item.attrs
            .insert("email_hash".into(), json!(email.lookup_hash()));
        self.ports.table.put(item, Condition::NotExists).await?;
        Ok(Invitation { token, expires_at })
    }

    /// Accepts an invitation for `user`, whose email must be the invited one. The invitation is
    /// consumed (deleted with a condition) in the transaction that adds the member, so a token
    /// works once even under concurrent use, and a failed acceptance leaves it usable. The
    /// organisation joined becomes the user's last used one: their next sign-in acts there.
    pub async fn accept(&self, token: &str, user: &UserId) -> Result<Membership> {
        let not_valid = || Error::not_found("invitation (it may have expired or been used)");
        let item = self
            .ports
            .table
            .get(&key(token))
            .await?
            .ok_or_else(not_valid)?;
        let accounts = Accounts::new(self.ports);
        let profile = accounts
            .user(user)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {user}")))?;
        if item.str("email_hash") != Some(profile.email_hash.as_str()) {
            return Err(Error::Forbidden(
                "this invitation was sent to another email address".into(),
            ));
        }
        let org = item
            .str("org")
            .and_then(|s| OrgId::parse(s).ok())
            .ok_or_else(not_valid)?;
        let team = item
            .str("team")
            .and_then(|s| TeamId::parse(s).ok())
            .ok_or_else(not_valid)?;
        let role: Role = item
            .attrs
            .get("role")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or_else(not_valid)?;
        if accounts.team(&org, &team).await?.is_none() {
            return Err(Error::not_found(
                "the team of this invitation (it was deleted; ask for a new invitation)",
            ));
        }
        let event = imagemcp_tenancy::audit::Event::new(
            imagemcp_tenancy::audit::Chain::Org(org.clone()),
            "member.invitation_accept",
            imagemcp_tenancy::audit::Actor::User(user.clone()),
        )
        .target(&team)
        .detail("role", serde_json::json!(role));
        // The invitation is consumed in the transaction that adds the member: both or neither.
        let consume = TransactOp::Delete(key(token), Condition::Exists);
        let member = match accounts
            .set_role_with(&org, &team, user, role, Some(&event), vec![consume])
            .await
        {
            Ok(member) => member,
            // Used by a concurrent acceptance.
            Err(Error::Conflict(_)) if self.ports.table.get(&key(token)).await?.is_none() => {
                return Err(not_valid());
            }
            Err(e) => return Err(e),
        };
        accounts.remember_org(user, &org).await;
        Ok(member)
    }
}
