//! Accounts: users, organisations, teams and memberships (here), invitations, API keys, passwords,
//! the login guard and the audit log's reading side (the modules below).
//!
//! Layout in the `Table`:
//! - `USER#<user>` / `PROFILE`: the user (email, name, password hash, personal org);
//! - `EMAIL#<sha256(normalised email)>` / `USER`: the uniqueness claim of an email, written with
//!   `NotExists` in the same transaction as the user, so two concurrent sign-ups with one email
//!   give exactly one account;
//! - `ORG#<org>` / `META`, `ORG#<org>` / `MEMBER#<user>` (the member's role in each team), and
//!   `USER#<user>` / `ORG#<org>` (the user's organisations, for listing);
//! - the teams and their name claims (`teams.rs`), and `USER#<user>` / `LASTORG`, the
//!   organisation the user last signed in to or joined (`choice.rs`).

pub mod audit_log;
pub mod choice;
pub mod invitations;
pub mod keys;
pub mod login_guard;
pub mod passwords;
pub mod teams;

use std::collections::BTreeMap;

use imagemcp_core::ids::{OrgId, TeamId, UserId};
use imagemcp_core::rbac::{Role, Scope};
use imagemcp_core::table::{Condition, Item, Key, Query, TransactOp};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use imagemcp_tenancy::Ports;
use imagemcp_tenancy::items::{from_item, to_item};

/// The local install's administrator, made on first use by `imagemcp keys create`.
pub const LOCAL_ADMIN_USER: &str = "usr_localadmin";
pub const LOCAL_ADMIN_EMAIL: &str = "admin@localhost";
/// The attributes of a user's profile sealed at rest with the user's own data key.
pub const USER_SEALED: &[&str] = &["email", "name"];
/// The attributes of an organisation sealed at rest (its name often holds its owner's name).
pub const ORG_SEALED: &[&str] = &["name"];

/// Every organisation's first team.
pub const GENERAL_TEAM_NAME: &str = "General";

/// An email, trimmed and lower-cased, checked for a plausible shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && email.matches('@').count() == 1
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err(Error::invalid("email", "is not a valid email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lookup key of the email: stored instead of the address wherever one is looked up.
    pub fn lookup_hash(&self) -> String {
        hex::encode(Sha256::digest(format!("imagemcp-email:{}", self.0)))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub email_hash: String,
    pub name: String,
    /// The PHC argon2id string; absent for accounts that cannot log in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    pub personal_org: OrgId,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: String,
    pub default_team: TeamId,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub id: TeamId,
    pub name: String,
    pub created_at_ms: i64,
}

/// A member of an organisation and their role in each of its teams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub user: UserId,
    pub org: OrgId,
    pub roles: BTreeMap<String, Role>,
    pub joined_at_ms: i64,
}

impl Membership {
    /// The member's role in `team`, if they are in it.
    pub fn role_in(&self, team: &TeamId) -> Option<Role> {
        self.roles.get(team.as_str()).copied()
    }

    /// The member's most powerful role in any team (org-wide actions use it).
    pub fn highest(&self) -> Option<Role> {
        self.roles.values().min().copied()
    }

    /// The team and role a credential of this member acts with: its bound team's, or else the
    /// default team's (the most powerful one for a member outside the default team).
    pub fn acting(&self, default_team: &TeamId, bound: Option<&TeamId>) -> Option<(TeamId, Role)> {
        match bound {
            Some(team) => self.role_in(team).map(|r| (team.clone(), r)),
            None => self
                .role_in(default_team)
                .or(self.highest())
                .map(|r| (default_team.clone(), r)),
        }
    }

    /// The scopes a credential of this member may carry: those of its acting role, capped by
    /// `held` (the credential's own). Empty when the member has no role there.
    pub fn effective_scopes(
        &self,
        default_team: &TeamId,
        bound: Option<&TeamId>,
        held: &[Scope],
    ) -> Vec<Scope> {
        self.acting(default_team, bound)
            .map(|(_, role)| Scope::intersect(held, &role.scopes()))
            .unwrap_or_default()
    }
}

pub fn user_key(user: &UserId) -> Key {
    Key::new(format!("USER#{user}"), "PROFILE")
}

fn email_key(hash: &str) -> Key {
    Key::new(format!("EMAIL#{hash}"), "USER")
}

pub fn org_meta_key(org: &OrgId) -> Key {
    Key::new(format!("ORG#{org}"), "META")
}

pub fn member_key(org: &OrgId, user: &UserId) -> Key {
    Key::new(format!("ORG#{org}"), format!("MEMBER#{user}"))
}

fn user_org_key(user: &UserId, org: &OrgId) -> Key {
    Key::new(format!("USER#{user}"), format!("ORG#{org}"))
}

pub struct Accounts<'a> {
    ports: &'a Ports,
}

impl<'a> Accounts<'a> {
    pub fn new(ports: &'a Ports) -> Self {
        Self { ports }
    }

    fn now(&self) -> i64 {
        self.ports.clock.now_ms()
    }

    /// The operations that create an organisation with its first team and its first member (admin).
    async fn org_ops(
        &self,
        org: &OrgId,
        name: &str,
        owner: &UserId,
    ) -> Result<(Vec<TransactOp>, TeamId)> {
        let now = self.now();
        let team = TeamId::generate(&*self.ports.ids);
        let meta = OrgRecord {
            id: org.clone(),
            name: name.to_owned(),
            default_team: team.clone(),
            created_at_ms: now,
        };
        let team_rec = TeamRecord {
            id: team.clone(),
            name: GENERAL_TEAM_NAME.to_owned(),
            created_at_ms: now,
        };
        let member = Membership {
            user: owner.clone(),
            org: org.clone(),
            roles: BTreeMap::from([(team.to_string(), Role::Admin)]),
            joined_at_ms: now,
        };
        Ok((
            vec![
                TransactOp::Put(
                    self.sealed(org_meta_key(org), &meta, ORG_SEALED).await?,
                    Condition::NotExists,
                ),
                TransactOp::Put(
                    to_item(teams::team_key(org, &team), &team_rec)?,
                    Condition::NotExists,
                ),
                teams::claim(org, &team_rec.name, &team),
                TransactOp::Put(
                    to_item(member_key(org, owner), &member)?,
                    Condition::NotExists,
                ),
                TransactOp::Put(
                    Item::new(user_org_key(owner, org), Default::default()),
                    Condition::None,
                ),
            ],
            team,
        ))
    }

    /// Signs a user up with a personal organisation they administer. The email is unique: of two
    /// concurrent sign-ups with one email, exactly one succeeds and the other gets `Conflict`.
    pub async fn sign_up(
        &self,
        email: &str,
        password: Option<&str>,
        name: &str,
    ) -> Result<UserRecord> {
        let email = Email::parse(email)?;
        let name = name.trim();
        if name.chars().count() > 200 {
            return Err(Error::invalid("name", "must be at most 200 characters"));
        }
        let password_hash = match password {
            Some(p) => {
                passwords::check_policy(p)?;
                let mut salt = [0u8; 16];
                self.ports.random.fill(&mut salt);
                Some(passwords::hash(p, &salt)?)
            }
            None => None,
        };
        let user = UserId::generate(&*self.ports.ids);
        let org = OrgId::generate(&*self.ports.ids);
        self.create_user(user, org, email, name, password_hash)
            .await
    }

    async fn create_user(
        &self,
        user: UserId,
        org: OrgId,
        email: Email,
        name: &str,
        password_hash: Option<String>,
    ) -> Result<UserRecord> {
        let record = UserRecord {
            id: user.clone(),
            email: email.as_str().to_owned(),
            email_hash: email.lookup_hash(),
            name: name.to_owned(),
            password_hash,
            personal_org: org.clone(),
            created_at_ms: self.now(),
        };
        let mut claim = Item::new(email_key(&record.email_hash), Default::default());
        claim.attrs.insert("user".into(), serde_json::json!(user));
        let org_name = if name.is_empty() {
            "Personal".to_owned()
        } else {
            format!("{name}'s workspace")
        };
        let (org_ops, _) = self.org_ops(&org, &org_name, &user).await?;
        let mut ops = vec![
            TransactOp::Put(claim, Condition::NotExists),
            TransactOp::Put(
                self.sealed(user_key(&user), &record, USER_SEALED).await?,
                Condition::NotExists,
            ),
        ];
        ops.extend(org_ops);
        self.ports.table.transact(ops).await.map_err(|e| match e {
            Error::Conflict(_) => {
                Error::Conflict("an account with this email already exists".into())
            }
            other => other,
        })?;
        Ok(record)
    }

    /// Sets (or replaces) the password of an existing account, so that it can sign in to the web
    /// pages (consent, one-time reveal links). The profile is rewritten only if it is still the
    /// same account (its email claim unchanged), in one transaction with the audit entry
    /// `user.password_set` in the user's personal organisation.
    pub async fn set_password(&self, email: &Email, password: &str) -> Result<UserRecord> {
        passwords::check_policy(password)?;
        let mut user = self
            .user_by_email(email)
            .await?
            .ok_or_else(|| Error::not_found("an account with this email"))?;
        let mut salt = [0u8; 16];
        self.ports.random.fill(&mut salt);
        user.password_hash = Some(passwords::hash(password, &salt)?);
        let item = self.sealed(user_key(&user.id), &user, USER_SEALED).await?;
        let same_account =
            Condition::AttrEquals("email_hash".into(), serde_json::json!(user.email_hash));
        let event = imagemcp_tenancy::audit::Event::new(
            imagemcp_tenancy::audit::Chain::Org(user.personal_org.clone()),
            "user.password_set",
            imagemcp_tenancy::audit::Actor::User(user.id.clone()),
        )
        .target(&user.id);
        imagemcp_tenancy::audit::commit(
            self.ports,
            &event,
            vec![TransactOp::Put(item, same_account)],
        )
        .await
        .map_err(|e| match e {
            Error::Conflict(_) => {
                Error::Conflict("the account changed meanwhile; try again".into())
            }
            other => other,
        })?;
        Ok(user)
    }

    /// The local install's administrator and its organisation (the default org), made once.
    pub async fn ensure_local_admin(&self) -> Result<(UserRecord, OrgRecord)> {
        let user = UserId::parse(LOCAL_ADMIN_USER)?;
        let org = OrgId::parse(imagemcp_tenancy::caller::DEFAULT_ORG)?;
        if self.user(&user).await?.is_none() {
            let email = Email::parse(LOCAL_ADMIN_EMAIL)?;
            match self
                .create_user(user.clone(), org.clone(), email, "Local admin", None)
                .await
            {
                // Another process made it first: fine.
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let record = self
            .user(&user)
            .await?
            .ok_or_else(|| Error::internal("local admin missing after creation"))?;
        let org = self
            .org(&org)
            .await?
            .ok_or_else(|| Error::internal("default org missing after creation"))?;
        Ok((record, org))
    }

    /// A record as an item with `fields` sealed (see [`crate::crypto`]).
    async fn sealed<T: Serialize>(&self, key: Key, record: &T, fields: &[&str]) -> Result<Item> {
        let mut item = to_item(key, record)?;
        imagemcp_tenancy::crypto::Crypto::new(self.ports)
            .seal_item(&mut item, fields)
            .await?;
        Ok(item)
    }

    async fn opened<T: serde::de::DeserializeOwned>(
        &self,
        item: Option<Item>,
        fields: &[&str],
    ) -> Result<Option<T>> {
        let Some(mut item) = item else {
            return Ok(None);
        };
        imagemcp_tenancy::crypto::Crypto::new(self.ports)
            .open_item(&mut item, fields)
            .await?;
        from_item(item).map(Some)
    }

    pub async fn user(&self, id: &UserId) -> Result<Option<UserRecord>> {
        let item = self.ports.table.get(&user_key(id)).await?;
        self.opened(item, USER_SEALED).await
    }

    /// The user an email belongs to.
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>> {
        let Some(claim) = self
            .ports
            .table
            .get(&email_key(&email.lookup_hash()))
            .await?
        else {
            return Ok(None);
        };
        let Some(id) = claim.str("user").and_then(|s| UserId::parse(s).ok()) else {
            return Ok(None);
        };
        self.user(&id).await
    }

    pub async fn org(&self, id: &OrgId) -> Result<Option<OrgRecord>> {
        let item = self.ports.table.get(&org_meta_key(id)).await?;
        self.opened(item, ORG_SEALED).await
    }

    pub async fn membership(&self, org: &OrgId, user: &UserId) -> Result<Option<Membership>> {
        self.ports
            .table
            .get(&member_key(org, user))
            .await?
            .map(from_item)
            .transpose()
    }

    /// The organisations a user belongs to.
    pub async fn orgs_of(&self, user: &UserId) -> Result<Vec<OrgId>> {
        let page = self
            .ports
            .table
            .query(&Query::new(format!("USER#{user}"), "ORG#", 100))
            .await?;
        Ok(page
            .items
            .iter()
            .filter_map(|i| i.key.sk.strip_prefix("ORG#"))
            .filter_map(|s| OrgId::parse(s).ok())
            .collect())
    }

    /// The members of an organisation.
    pub async fn members(&self, org: &OrgId) -> Result<Vec<Membership>> {
        let page = self
            .ports
            .table
            .query(&Query::new(format!("ORG#{org}"), "MEMBER#", 1000))
            .await?;
        page.items.into_iter().map(from_item).collect()
    }

    /// Gives `user` the role `role` in `team` (adding them to the organisation if needed). Written
    /// with a condition on the member item's previous state, so concurrent changes cannot be lost.
    pub async fn set_role(
        &self,
        org: &OrgId,
        team: &TeamId,
        user: &UserId,
        role: Role,
    ) -> Result<Membership> {
        self.set_role_audited(org, team, user, role, None).await
    }

    /// [`Accounts::set_role`], recording `audit` in the same transaction as the change.
    pub async fn set_role_audited(
        &self,
        org: &OrgId,
        team: &TeamId,
        user: &UserId,
        role: Role,
        audit: Option<&imagemcp_tenancy::audit::Event>,
    ) -> Result<Membership> {
        self.set_role_with(org, team, user, role, audit, Vec::new())
            .await
    }

    /// [`Accounts::set_role_audited`], with `also` (such as consuming an invitation) written in
    /// the same transaction.
    pub(crate) async fn set_role_with(
        &self,
        org: &OrgId,
        team: &TeamId,
        user: &UserId,
        role: Role,
        audit: Option<&imagemcp_tenancy::audit::Event>,
        also: Vec<TransactOp>,
    ) -> Result<Membership> {
        if self.team(org, team).await?.is_none() {
            return Err(Error::not_found(format!("team {team}")));
        }
        if self.user(user).await?.is_none() {
            return Err(Error::not_found(format!("user {user}")));
        }
        let current = self.membership(org, user).await?;
        let (mut member, cond) = match current {
            Some(m) => {
                let cond = Condition::AttrEquals(
                    "roles".into(),
                    serde_json::to_value(&m.roles).map_err(Error::internal)?,
                );
                (m, cond)
            }
            None => (
                Membership {
                    user: user.clone(),
                    org: org.clone(),
                    roles: BTreeMap::new(),
                    joined_at_ms: self.now(),
                },
                Condition::NotExists,
            ),
        };
        let demoting_admin = member.role_in(team) == Some(Role::Admin) && role != Role::Admin;
        if demoting_admin {
            self.ensure_other_admin(org, user).await?;
        }
        member.roles.insert(team.to_string(), role);
        let mut ops = vec![
            TransactOp::Put(to_item(member_key(org, user), &member)?, cond),
            TransactOp::Put(
                Item::new(user_org_key(user, org), Default::default()),
                Condition::None,
            ),
        ];
        ops.extend(teams::role_change_ops(org, team));
        ops.extend(also);
        imagemcp_tenancy::audit::commit_opt(self.ports, audit, ops).await?;
        Ok(member)
    }

    /// Removes a member from the organisation (every team). The last admin cannot be removed.
    pub async fn remove_member(&self, org: &OrgId, user: &UserId) -> Result<Membership> {
        self.remove_member_audited(org, user, None).await
    }

    /// [`Accounts::remove_member`], recording `audit` in the same transaction as the removal.
    pub async fn remove_member_audited(
        &self,
        org: &OrgId,
        user: &UserId,
        audit: Option<&imagemcp_tenancy::audit::Event>,
    ) -> Result<Membership> {
        let member = self
            .membership(org, user)
            .await?
            .ok_or_else(|| Error::not_found(format!("member {user}")))?;
        if member.highest() == Some(Role::Admin) {
            self.ensure_other_admin(org, user).await?;
        }
        let cond = Condition::AttrEquals(
            "roles".into(),
            serde_json::to_value(&member.roles).map_err(Error::internal)?,
        );
        imagemcp_tenancy::audit::commit_opt(
            self.ports,
            audit,
            vec![
                TransactOp::Delete(member_key(org, user), cond),
                TransactOp::Delete(user_org_key(user, org), Condition::None),
            ],
        )
        .await?;
        Ok(member)
    }

    async fn ensure_other_admin(&self, org: &OrgId, user: &UserId) -> Result<()> {
        let others = self.members(org).await?;
        if !others
            .iter()
            .any(|m| &m.user != user && m.highest() == Some(Role::Admin))
        {
            return Err(Error::Conflict(
                "an organisation must keep at least one admin".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_normalise() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in ["", "ada", "@x.com", "ada@", "a@b@c", "a b@c.d", "ada@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse("A@B.c").unwrap().lookup_hash(),
            Email::parse("a@b.C").unwrap().lookup_hash()
        );
    }
}
