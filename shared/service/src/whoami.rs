//! Who the caller is (`openai_whoami`, `GET /v1/me`): their user id (what erasure asks to confirm),
//! name and email, the organisation, team, role and scopes the credential acts with, and every
//! organisation they belong to with their teams and roles there (the ids a login's or a key's
//! `org_id` takes). Every member may ask; it reads only the caller's own records.

use imagemcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::Serialize;

use crate::App;
use crate::auth::Caller;

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Whoami {
    pub user_id: String,
    pub name: String,
    pub email: String,
    /// The organisation this credential acts in.
    pub org_id: String,
    pub org_name: String,
    /// The team it acts in (a team-bound key's, or the organisation's default team).
    pub team_id: String,
    /// The caller's role there.
    pub role: String,
    /// What this credential may do there: its scopes, capped by that role.
    pub scopes: Vec<String>,
    /// Every organisation the caller belongs to.
    pub organisations: Vec<OrgMembership>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct OrgMembership {
    pub org_id: String,
    pub name: String,
    /// The caller's most powerful role there.
    pub role: String,
    /// Whether it is the caller's personal organisation (made at sign-up).
    pub personal: bool,
    /// Whether this credential acts in it.
    pub current: bool,
    /// The teams the caller is in there, with their role in each.
    pub teams: Vec<crate::manage::TeamRoleView>,
}

/// The caller's identity and memberships.
pub async fn whoami(app: &App, caller: &Caller) -> Result<Whoami> {
    caller.authorize(imagemcp_core::rbac::Action::ViewImages)?;
    let accounts = app.accounts();
    let user = accounts
        .user(&caller.user)
        .await?
        .ok_or_else(|| Error::not_found(format!("user {}", caller.user)))?;
    let mut organisations = Vec::new();
    let mut org_name = String::new();
    for org in accounts.orgs_of(&caller.user).await? {
        let (Some(record), Some(member)) = (
            accounts.org(&org).await?,
            accounts.membership(&org, &caller.user).await?,
        ) else {
            continue;
        };
        let names = accounts
            .teams(&org)
            .await?
            .into_iter()
            .map(|t| (t.id.to_string(), t.name))
            .collect();
        if org == caller.org {
            org_name = record.name.clone();
        }
        organisations.push(OrgMembership {
            org_id: org.to_string(),
            role: member
                .highest()
                .map(|r| r.as_str())
                .unwrap_or("")
                .to_owned(),
            personal: org == user.personal_org,
            current: org == caller.org,
            teams: crate::manage::team_roles(&member, &names),
            name: record.name,
        });
    }
    Ok(Whoami {
        user_id: user.id.to_string(),
        name: user.name,
        email: user.email,
        org_id: caller.org.to_string(),
        org_name,
        team_id: caller.team.to_string(),
        role: caller.role.as_str().to_owned(),
        scopes: caller
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        organisations,
    })
}
