//! Which organisation a sign-in acts in. A person may belong to several (their personal one and
//! those they were invited to): a login or an OAuth consent names one, or gets the one last used
//! — the last one signed in to or joined, `USER#<user>` / `LASTORG` — falling back to the personal
//! organisation and then to any other they still belong to.

use imagemcp_core::ids::{OrgId, UserId};
use imagemcp_core::table::{Condition, Item, Key};
use imagemcp_core::{Error, Result};
use serde_json::json;

use super::{Accounts, Membership, OrgRecord, UserRecord};

fn last_org_key(user: &UserId) -> Key {
    Key::new(format!("USER#{user}"), "LASTORG")
}

/// The answer for an organisation the user is not in, whether or not it exists.
fn not_a_member(org: &OrgId) -> Error {
    Error::not_found(format!("organisation {org}"))
}

impl Accounts<'_> {
    /// The organisation the user last signed in to or joined, if recorded.
    pub async fn last_org(&self, user: &UserId) -> Result<Option<OrgId>> {
        Ok(self
            .ports
            .table
            .get(&last_org_key(user))
            .await?
            .and_then(|i| i.str("org").and_then(|s| OrgId::parse(s).ok())))
    }

    /// Records `org` as the one the user last used. Best effort: a failure is logged, never
    /// fails the sign-in or the join it follows.
    pub async fn remember_org(&self, user: &UserId, org: &OrgId) {
        let mut item = Item::new(last_org_key(user), Default::default());
        item.attrs.insert("org".into(), json!(org));
        if let Err(e) = self.ports.table.put(item, Condition::None).await {
            tracing::warn!(error = %e, "last organisation not recorded");
        }
    }

    /// The user's membership in `org`, with the organisation; "not found" alike for an
    /// organisation that does not exist and one the user is not in.
    pub async fn member_of(&self, org: &OrgId, user: &UserId) -> Result<(OrgRecord, Membership)> {
        let member = self
            .membership(org, user)
            .await?
            .ok_or_else(|| not_a_member(org))?;
        let record = self.org(org).await?.ok_or_else(|| not_a_member(org))?;
        Ok((record, member))
    }

    async fn if_member(
        &self,
        org: &OrgId,
        user: &UserId,
    ) -> Result<Option<(OrgRecord, Membership)>> {
        match self.member_of(org, user).await {
            Ok(found) => Ok(Some(found)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The organisation a sign-in of `user` acts in: `requested` if given (the user must be a
    /// member), else the last one used, the personal one, or any other, in that order.
    pub async fn choose_org(
        &self,
        user: &UserRecord,
        requested: Option<&OrgId>,
    ) -> Result<(OrgRecord, Membership)> {
        if let Some(org) = requested {
            return self.member_of(org, &user.id).await;
        }
        let last = self.last_org(&user.id).await?;
        let first = last.into_iter().chain([user.personal_org.clone()]);
        let mut tried = Vec::new();
        for org in first {
            if let Some(found) = self.if_member(&org, &user.id).await? {
                return Ok(found);
            }
            tried.push(org);
        }
        for org in self.orgs_of(&user.id).await? {
            if !tried.contains(&org)
                && let Some(found) = self.if_member(&org, &user.id).await?
            {
                return Ok(found);
            }
        }
        Err(Error::Forbidden(
            "this account belongs to no organisation; ask an admin for an invitation".into(),
        ))
    }
}
