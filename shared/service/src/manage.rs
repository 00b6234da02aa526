//! Managing an organisation: its members (provision, invite, accept, change role, remove), its
//! teams, and API keys (create, list, rotate, revoke). Used by the REST routes and the MCP tools
//! alike; every operation is authorized through [`Caller::authorize`] and every change audited.
//!
//! Ids of another organisation read as "not found" everywhere: members, teams and keys are looked
//! up in the caller's organisation (or the caller's own key list) only.

use std::collections::BTreeMap;
use std::time::Duration;

use imagemcp_core::ids::{KeyId, OrgId, TeamId, UserId};
use imagemcp_core::rbac::{Action, MATRIX, Role, Scope};
use imagemcp_core::tier::Feature;
use imagemcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::accounts::Membership;
use crate::accounts::invitations::Invitations;
use crate::audit::{self, Event};
use crate::auth::{Caller, KeyRecord, KeySpec, NewKey};

/// The arguments of creating an API key.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyArgs {
    /// A label to recognise the key by (at most 100 characters).
    #[serde(default)]
    pub label: Option<String>,
    /// Space-separated scopes: `images:read`, `images:write`, `admin` (default: the scopes of
    /// the credential making the key). A key never gets a scope its maker lacks, nor more than
    /// its owner's role in its organisation can use.
    #[serde(default)]
    pub scopes: Option<String>,
    /// Bind the key to one team (`team_…`) of the organisation.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Make the key for another organisation the caller belongs to (`org_…`).
    #[serde(default)]
    pub org_id: Option<String>,
    /// Seconds until the key stops working (default: never), at most ten years.
    #[serde(default)]
    #[schemars(range(max = 315_360_000))]
    pub expires_in_secs: Option<u64>,
}

/// The longest a key may be made to live: ten years (longer is "never", which is the default).
const MAX_KEY_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIdArgs {
    /// The key's id (`key_…`).
    pub key_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleArgs {
    /// The member (`usr_…`).
    pub user_id: String,
    /// `admin`, `creator`, `reviewer` or `viewer`.
    pub role: String,
    /// The team (default: the organisation's first team).
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIdArgs {
    /// The member (`usr_…`).
    pub user_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteArgs {
    /// Who to invite.
    pub email: String,
    /// `admin`, `creator`, `reviewer` or `viewer`.
    pub role: String,
    /// The team (default: the organisation's first team).
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptArgs {
    /// The token from the invitation.
    pub token: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionArgs {
    /// The new member's email; it must not have an account yet (invite existing accounts).
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `admin`, `creator`, `reviewer` or `viewer`.
    pub role: String,
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamArgs {
    /// The team's name (1 to 100 characters), unique in the organisation whatever the case.
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTeamArgs {
    /// The team (`team_…`).
    pub team_id: String,
    /// Its new name (1 to 100 characters), unique in the organisation whatever the case.
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamIdArgs {
    /// The team (`team_…`).
    pub team_id: String,
}

/// A key as listed: everything but the secret, which is never stored.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KeyView {
    pub key_id: String,
    pub prefix: String,
    pub label: String,
    pub scopes: Vec<String>,
    pub org_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub created_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
}

impl From<&KeyRecord> for KeyView {
    fn from(r: &KeyRecord) -> Self {
        Self {
            key_id: r.id.to_string(),
            prefix: r.prefix.clone(),
            label: r.label.clone(),
            scopes: r.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            org_id: r.org.to_string(),
            team_id: r.team.as_ref().map(ToString::to_string),
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            last_used_at_ms: r.last_used_at_ms,
            replaced_by: r.replaced_by.as_ref().map(ToString::to_string),
        }
    }
}

/// A new key: the only answer that ever holds its secret.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NewKeyView {
    /// The key itself. Shown once: store it now.
    pub key: String,
    #[serde(flatten)]
    pub record: KeyView,
}

impl From<NewKey> for NewKeyView {
    fn from(k: NewKey) -> Self {
        Self {
            record: KeyView::from(&k.record),
            key: k.secret,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KeyListView {
    pub keys: Vec<KeyView>,
}

/// A member as admins see them (member views are answered to admins, and to the member
/// themself on joining).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MemberView {
    pub user_id: String,
    /// The member's name (sealed at rest with their own key; absent once they are erased).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The member's role in each team, by team id.
    pub roles: BTreeMap<String, String>,
    /// The same roles with the teams' names.
    pub teams: Vec<TeamRoleView>,
    pub joined_at_ms: i64,
}

/// A role in a named team.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TeamRoleView {
    pub team_id: String,
    /// The team's name (absent for a team that no longer exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: String,
}

/// Team names by id.
pub(crate) type TeamNames = BTreeMap<String, String>;

pub(crate) fn team_roles(m: &Membership, names: &TeamNames) -> Vec<TeamRoleView> {
    m.roles
        .iter()
        .map(|(team, role)| TeamRoleView {
            team_id: team.clone(),
            name: names.get(team).cloned(),
            role: role.as_str().to_owned(),
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MemberListView {
    pub members: Vec<MemberView>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct InvitationView {
    /// The token to send to the invitee (shown once; only its hash is stored).
    pub token: String,
    pub expires_at: i64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TeamView {
    pub team_id: String,
    pub name: String,
    /// How many members hold a role in the team.
    pub member_count: u64,
    /// Whether this is the organisation's default team (credentials without a team act in it;
    /// it cannot be deleted).
    pub default: bool,
    /// The caller's role in the team, if they are in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub your_role: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TeamListView {
    pub teams: Vec<TeamView>,
}

/// A deleted team.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DeletedTeamView {
    pub team_id: String,
    pub name: String,
    pub deleted: bool,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DoneView {
    pub ok: bool,
}

/// The role × action matrix as data, for clients and for the end-to-end test that walks it.
pub fn matrix_json() -> serde_json::Value {
    let roles: serde_json::Map<String, serde_json::Value> = MATRIX
        .iter()
        .map(|(role, actions)| {
            (
                role.as_str().to_owned(),
                json!(actions.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
            )
        })
        .collect();
    json!({
        "roles": roles,
        "actions": Action::ALL.iter().map(|a| json!({"action": a.as_str(), "scope": a.scope().as_str()})).collect::<Vec<_>>(),
    })
}

fn parse_role(raw: &str) -> Result<Role> {
    raw.parse()
}

pub struct Manage<'a> {
    app: &'a App,
}

impl<'a> Manage<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app }
    }

    /// The team an argument names, in the caller's organisation ("not found" for any other).
    async fn team(&self, caller: &Caller, raw: Option<&str>) -> Result<TeamId> {
        let accounts = self.app.accounts();
        match raw {
            Some(raw) => {
                let team = TeamId::parse(raw)?;
                accounts
                    .team(&caller.org, &team)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("team {team}")))?;
                Ok(team)
            }
            None => Ok(accounts
                .org(&caller.org)
                .await?
                .ok_or_else(|| Error::not_found(format!("organisation {}", caller.org)))?
                .default_team),
        }
    }

    async fn member(&self, caller: &Caller, raw: &str) -> Result<Membership> {
        let user = UserId::parse(raw)?;
        self.app
            .accounts()
            .membership(&caller.org, &user)
            .await?
            .ok_or_else(|| Error::not_found(format!("member {user}")))
    }

    fn spec(&self, caller: &Caller, args: CreateKeyArgs) -> Result<KeySpec> {
        let scopes = match args.scopes.as_deref() {
            Some(s) => Scope::parse_list("scopes", s)?,
            None => caller.scopes.clone(),
        };
        if let Some(extra) = scopes
            .iter()
            .find(|s| !caller.scopes.iter().any(|c| c.covers(**s)))
        {
            return Err(Error::Forbidden(format!(
                "this credential cannot grant the `{extra}` scope it does not hold"
            )));
        }
        Ok(KeySpec {
            label: args.label.unwrap_or_else(|| "api".to_owned()),
            scopes,
            team: args.team_id.as_deref().map(TeamId::parse).transpose()?,
            expires_in: args
                .expires_in_secs
                .map(|secs| {
                    if secs > MAX_KEY_LIFETIME_SECS {
                        return Err(Error::invalid(
                            "expires_in_secs",
                            format!("must be at most {MAX_KEY_LIFETIME_SECS} (ten years)"),
                        ));
                    }
                    Ok(Duration::from_secs(secs))
                })
                .transpose()?,
        })
    }

    /// The caller's keys, each with the scopes it has now: what it was given, capped by its
    /// owner's current role in its organisation (none once they left it).
    pub async fn list_keys(&self, caller: &Caller) -> Result<KeyListView> {
        caller.authorize(Action::ManageOwnKeys)?;
        let keys = self.app.keys();
        let mut out = Vec::new();
        for record in keys.list(&caller.user).await? {
            let mut view = KeyView::from(&record);
            view.scopes = keys
                .effective_scopes(&record)
                .await?
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            out.push(view);
        }
        Ok(KeyListView { keys: out })
    }

    /// A key for the caller, in the caller's organisation or another one they belong to (where
    /// their role there must allow managing keys).
    pub async fn create_key(&self, caller: &Caller, mut args: CreateKeyArgs) -> Result<NewKeyView> {
        caller.authorize(Action::ManageOwnKeys)?;
        let org = match args.org_id.take() {
            Some(raw) => OrgId::parse(&raw)?,
            None => caller.org.clone(),
        };
        if org != caller.org {
            let member = self
                .app
                .accounts()
                .membership(&org, &caller.user)
                .await?
                .ok_or_else(|| Error::not_found(format!("organisation {org}")))?;
            let role = member
                .highest()
                .ok_or_else(|| Error::not_found(format!("organisation {org}")))?;
            imagemcp_core::rbac::authorize(role, &caller.scopes, Action::ManageOwnKeys)?;
        }
        // Billing: API keys are part of API access, a Team feature.
        crate::billing::gate(&self.app.billing, &org, Feature::ApiAccess).await?;
        let spec = self.spec(caller, args)?;
        Ok(self
            .app
            .keys()
            .create(&caller.user, &org, spec)
            .await?
            .into())
    }

    /// An admin issues a key to a member of the organisation.
    pub async fn issue_key(
        &self,
        caller: &Caller,
        user: &str,
        args: CreateKeyArgs,
    ) -> Result<NewKeyView> {
        caller.authorize(Action::ManageMembers)?;
        if args.org_id.is_some() {
            return Err(Error::invalid(
                "org_id",
                "a member's key is made in your organisation",
            ));
        }
        crate::billing::gate(&self.app.billing, &caller.org, Feature::ApiAccess).await?;
        let member = self.member(caller, user).await?;
        let spec = self.spec(caller, args)?;
        Ok(self
            .app
            .keys()
            .create_by(&member.user, &caller.org, spec, &caller.user)
            .await?
            .into())
    }

    pub async fn rotate_key(&self, caller: &Caller, id: &str) -> Result<NewKeyView> {
        caller.authorize(Action::ManageOwnKeys)?;
        let id = KeyId::parse(id)?;
        Ok(self.app.keys().rotate(&caller.user, &id).await?.into())
    }

    pub async fn revoke_key(&self, caller: &Caller, id: &str) -> Result<DoneView> {
        caller.authorize(Action::ManageOwnKeys)?;
        let id = KeyId::parse(id)?;
        self.app.keys().revoke(&caller.user, &id).await?;
        Ok(DoneView { ok: true })
    }

    async fn team_names(&self, org: &OrgId) -> Result<TeamNames> {
        Ok(self
            .app
            .accounts()
            .teams(org)
            .await?
            .into_iter()
            .map(|t| (t.id.to_string(), t.name))
            .collect())
    }

    /// A member with their name and email (opened with their own key) and team names.
    async fn member_view(&self, m: &Membership, names: &TeamNames) -> Result<MemberView> {
        let profile = self.app.accounts().user(&m.user).await?;
        Ok(MemberView {
            user_id: m.user.to_string(),
            name: profile
                .as_ref()
                .map(|p| p.name.clone())
                .filter(|n| !n.is_empty()),
            email: profile.map(|p| p.email),
            roles: m
                .roles
                .iter()
                .map(|(team, role)| (team.clone(), role.as_str().to_owned()))
                .collect(),
            teams: team_roles(m, names),
            joined_at_ms: m.joined_at_ms,
        })
    }

    async fn one_member_view(&self, m: &Membership) -> Result<MemberView> {
        let names = self.team_names(&m.org).await?;
        self.member_view(m, &names).await
    }

    /// The organisation's members with their names, emails and roles by team (admins only).
    pub async fn list_members(&self, caller: &Caller) -> Result<MemberListView> {
        caller.authorize(Action::ManageMembers)?;
        let members = self.app.accounts().members(&caller.org).await?;
        let names = self.team_names(&caller.org).await?;
        // Each profile is opened with its owner's key: a few at a time rather than one by one.
        let mut views = Vec::with_capacity(members.len());
        for chunk in members.chunks(8) {
            let opened = chunk.iter().map(|m| self.member_view(m, &names));
            views.extend(futures::future::try_join_all(opened).await?);
        }
        Ok(MemberListView { members: views })
    }

    /// Changes an existing member's role in a team (members join by invitation or provisioning,
    /// never by a role change).
    pub async fn set_role(&self, caller: &Caller, args: SetRoleArgs) -> Result<MemberView> {
        caller.authorize(Action::ManageMembers)?;
        let role = parse_role(&args.role)?;
        let member = self.member(caller, &args.user_id).await?;
        let team = self.team(caller, args.team_id.as_deref()).await?;
        let event = Event::by(caller, "member.role_change")
            .target(&team)
            .target_user(&member.user)
            .detail("from", json!(member.role_in(&team)))
            .detail("to", json!(role));
        let updated = self
            .app
            .accounts()
            .set_role_audited(&caller.org, &team, &member.user, role, Some(&event))
            .await?;
        self.one_member_view(&updated).await
    }

    pub async fn remove_member(&self, caller: &Caller, user: &str) -> Result<DoneView> {
        caller.authorize(Action::ManageMembers)?;
        let member = self.member(caller, user).await?;
        let event = Event::by(caller, "member.remove").target_user(&member.user);
        self.app
            .accounts()
            .remove_member_audited(&caller.org, &member.user, Some(&event))
            .await?;
        Ok(DoneView { ok: true })
    }

    /// Invites an email to a team. The invitation and its audit entry are separate writes (the
    /// invitation service writes alone); the entry is appended right after.
    pub async fn invite(&self, caller: &Caller, args: InviteArgs) -> Result<InvitationView> {
        caller.authorize(Action::ManageMembers)?;
        crate::billing::gate(&self.app.billing, &caller.org, Feature::TeamCollaboration).await?;
        let role = parse_role(&args.role)?;
        let team = self.team(caller, args.team_id.as_deref()).await?;
        let inv = Invitations::new(&self.app.ports)
            .invite(&caller.org, &team, &args.email, role)
            .await?;
        audit::record(
            &self.app.ports,
            Event::by(caller, "member.invite")
                .target(&team)
                .detail("role", json!(role)),
        )
        .await?;
        Ok(InvitationView {
            token: inv.token,
            expires_at: inv.expires_at,
        })
    }

    /// Accepts an invitation for the caller (any authenticated caller: the invitation is the
    /// permission).
    pub async fn accept(&self, caller: &Caller, args: AcceptArgs) -> Result<MemberView> {
        let member = Invitations::new(&self.app.ports)
            .accept(&args.token, &caller.user)
            .await?;
        self.one_member_view(&member).await
    }

    /// Creates an account for a new member and adds them with a role (for teams without email
    /// sign-up, and for tests). The account has no password until its owner sets one.
    pub async fn provision(&self, caller: &Caller, args: ProvisionArgs) -> Result<MemberView> {
        caller.authorize(Action::ManageMembers)?;
        crate::billing::gate(&self.app.billing, &caller.org, Feature::TeamCollaboration).await?;
        let role = parse_role(&args.role)?;
        let team = self.team(caller, args.team_id.as_deref()).await?;
        let accounts = self.app.accounts();
        let user = accounts
            .sign_up(&args.email, None, args.name.as_deref().unwrap_or(""))
            .await?;
        let event = Event::by(caller, "member.provision")
            .target(&team)
            .target_user(&user.id)
            .detail("role", json!(role));
        let member = accounts
            .set_role_audited(&caller.org, &team, &user.id, role, Some(&event))
            .await?;
        self.one_member_view(&member).await
    }

    /// Creates a team; its name must be new to the organisation (`Conflict` otherwise).
    pub async fn create_team(&self, caller: &Caller, args: TeamArgs) -> Result<TeamView> {
        caller.authorize(Action::ManageMembers)?;
        crate::billing::gate(&self.app.billing, &caller.org, Feature::TeamCollaboration).await?;
        let team = self
            .app
            .accounts()
            .create_team(
                &caller.org,
                &args.name,
                Some(Event::by(caller, "team.create")),
            )
            .await?;
        Ok(TeamView {
            team_id: team.id.to_string(),
            name: team.name,
            member_count: 0,
            default: false,
            your_role: None,
            created_at_ms: team.created_at_ms,
        })
    }

    /// The organisation's teams with their member counts: every member may see them.
    pub async fn list_teams(&self, caller: &Caller) -> Result<TeamListView> {
        caller.authorize(Action::ViewImages)?;
        let accounts = self.app.accounts();
        let org = accounts
            .org(&caller.org)
            .await?
            .ok_or_else(|| Error::not_found(format!("organisation {}", caller.org)))?;
        let members = accounts.members(&caller.org).await?;
        let teams = accounts.teams(&caller.org).await?;
        Ok(TeamListView {
            teams: teams
                .into_iter()
                .map(|t| TeamView {
                    member_count: members
                        .iter()
                        .filter(|m| m.role_in(&t.id).is_some())
                        .count() as u64,
                    default: t.id == org.default_team,
                    your_role: members
                        .iter()
                        .find(|m| m.user == caller.user)
                        .and_then(|m| m.role_in(&t.id))
                        .map(|r| r.as_str().to_owned()),
                    team_id: t.id.to_string(),
                    name: t.name,
                    created_at_ms: t.created_at_ms,
                })
                .collect(),
        })
    }

    /// The listing entry of one team.
    async fn team_view(&self, caller: &Caller, team: &TeamId) -> Result<TeamView> {
        self.list_teams(caller)
            .await?
            .teams
            .into_iter()
            .find(|t| t.team_id == team.as_str())
            .ok_or_else(|| Error::not_found(format!("team {team}")))
    }

    /// Renames a team of the caller's organisation (admins); the name must be free there.
    pub async fn rename_team(&self, caller: &Caller, args: RenameTeamArgs) -> Result<TeamView> {
        caller.authorize(Action::ManageMembers)?;
        let team = self.team(caller, Some(&args.team_id)).await?;
        let event = Event::by(caller, "team.rename").target(&team);
        self.app
            .accounts()
            .rename_team(&caller.org, &team, &args.name, Some(&event))
            .await?;
        self.team_view(caller, &team).await
    }

    /// Deletes an empty team of the caller's organisation (admins): one no member holds a role
    /// in, other than the default team. `Conflict` otherwise.
    pub async fn delete_team(&self, caller: &Caller, team: &str) -> Result<DeletedTeamView> {
        caller.authorize(Action::ManageMembers)?;
        let team = self.team(caller, Some(team)).await?;
        let event = Event::by(caller, "team.delete").target(&team);
        let deleted = self
            .app
            .accounts()
            .delete_team(&caller.org, &team, Some(&event))
            .await?;
        Ok(DeletedTeamView {
            team_id: deleted.id.to_string(),
            name: deleted.name,
            deleted: true,
        })
    }
}
