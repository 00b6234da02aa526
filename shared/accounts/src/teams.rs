//! Teams of an organisation: create, list, rename, and delete an empty one.
//!
//! Layout in the `Table` (all in `ORG#<org>`):
//! - `TEAM#<team>`: the team (id, name, created);
//! - `TEAMNAME#<sha256(folded name)>`: the claim of a name (`team`: its holder), written with
//!   `NotExists` in the same transaction as the team or its rename, so two teams of one
//!   organisation never share a name, whatever the case (`Design` and `design` are one name);
//! - `TEAMJOINS#<team>`: a counter that every role change in the team adds to, in the same
//!   transaction as the change. Deleting a team reads it before counting the members and requires
//!   it unchanged, so a member who joins while the team is being deleted makes the deletion fail
//!   instead of being left in a team that no longer exists.
//!
//! A team is **empty** when no member of the organisation holds a role in it; only an empty team
//! other than the organisation's default team can be deleted.

use imagemcp_core::ids::{OrgId, TeamId};
use imagemcp_core::table::{Add, Condition, Item, Key, Query, TransactOp};
use imagemcp_core::{Error, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Accounts, TeamRecord};
use imagemcp_tenancy::audit::{self, Event};
use imagemcp_tenancy::items::{from_item, to_item};

/// The longest team name, in characters.
pub const MAX_TEAM_NAME: usize = 100;

pub(super) fn team_key(org: &OrgId, team: &TeamId) -> Key {
    Key::new(format!("ORG#{org}"), format!("TEAM#{team}"))
}

/// The claim of a team name in an organisation: names compare without case and with runs of
/// white space as one space.
pub(super) fn name_key(org: &OrgId, name: &str) -> Key {
    let folded = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let hash = hex::encode(Sha256::digest(format!("imagemcp-team-name:{folded}")));
    Key::new(format!("ORG#{org}"), format!("TEAMNAME#{hash}"))
}

fn joins_key(org: &OrgId, team: &TeamId) -> Key {
    Key::new(format!("ORG#{org}"), format!("TEAMJOINS#{team}"))
}

/// The attribute of the joins counter.
const JOINS: &str = "joins";

/// A team name as given, trimmed and checked.
pub fn parse_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_TEAM_NAME {
        return Err(Error::invalid(
            "name",
            format!("must be 1 to {MAX_TEAM_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// The write claiming `name` for `team`.
pub(super) fn claim(org: &OrgId, name: &str, team: &TeamId) -> TransactOp {
    let mut item = Item::new(name_key(org, name), Default::default());
    item.attrs.insert("team".into(), json!(team));
    TransactOp::Put(item, Condition::NotExists)
}

/// The writes every role change in `team` carries: the team must still exist, and its joins
/// counter moves (see the module docs).
pub(super) fn role_change_ops(org: &OrgId, team: &TeamId) -> [TransactOp; 2] {
    [
        TransactOp::Check(team_key(org, team), Condition::Exists),
        TransactOp::Add(Add {
            key: joins_key(org, team),
            attr: JOINS.into(),
            delta: 1,
            max: None,
            expires_at: None,
        }),
    ]
}

fn taken(name: &str) -> Error {
    Error::Conflict(format!(
        "a team named `{name}` already exists in this organisation"
    ))
}

impl Accounts<'_> {
    pub async fn team(&self, org: &OrgId, team: &TeamId) -> Result<Option<TeamRecord>> {
        self.ports
            .table
            .get(&team_key(org, team))
            .await?
            .map(from_item)
            .transpose()
    }

    /// The teams of an organisation, in id (creation) order.
    pub async fn teams(&self, org: &OrgId) -> Result<Vec<TeamRecord>> {
        let page = self
            .ports
            .table
            .query(&Query::new(format!("ORG#{org}"), "TEAM#", 1000))
            .await?;
        page.items.into_iter().map(from_item).collect()
    }

    /// Refuses a name another team of the organisation has. The claim items make this exact for
    /// teams made since names were claimed; this look at the teams themselves covers the rest.
    async fn ensure_name_free(&self, org: &OrgId, name: &str, except: &TeamId) -> Result<()> {
        let key = name_key(org, name);
        let clash = self
            .teams(org)
            .await?
            .into_iter()
            .any(|t| &t.id != except && name_key(org, &t.name) == key);
        if clash { Err(taken(name)) } else { Ok(()) }
    }

    /// Whether `team` holds the claim of `name`.
    async fn holds_claim(&self, org: &OrgId, name: &str, team: &TeamId) -> Result<bool> {
        Ok(self
            .ports
            .table
            .get(&name_key(org, name))
            .await?
            .is_some_and(|i| i.str("team") == Some(team.as_str())))
    }

    /// After a transaction on a team name failed its conditions: the name was taken meanwhile, or
    /// the team itself changed.
    async fn name_conflict(&self, org: &OrgId, name: &str, team: &TeamId, e: Error) -> Error {
        let Error::Conflict(_) = e else { return e };
        match self.ports.table.get(&name_key(org, name)).await {
            Ok(Some(claim)) if claim.str("team") != Some(team.as_str()) => taken(name),
            _ => Error::Conflict("the team was changed at the same time; try again".into()),
        }
    }

    /// Creates a team, recording `audit` (targeted at the new team) in the same transaction.
    /// `Conflict` when the organisation has a team of that name.
    pub async fn create_team(
        &self,
        org: &OrgId,
        name: &str,
        audit: Option<Event>,
    ) -> Result<TeamRecord> {
        let name = parse_name(name)?;
        let team = TeamRecord {
            id: TeamId::generate(&*self.ports.ids),
            name,
            created_at_ms: self.now(),
        };
        self.ensure_name_free(org, &team.name, &team.id).await?;
        let ops = vec![
            TransactOp::Put(
                to_item(team_key(org, &team.id), &team)?,
                Condition::NotExists,
            ),
            claim(org, &team.name, &team.id),
        ];
        let audit = audit.map(|e| e.target(&team.id));
        if let Err(e) = audit::commit_opt(self.ports, audit.as_ref(), ops).await {
            return Err(self.name_conflict(org, &team.name, &team.id, e).await);
        }
        Ok(team)
    }

    /// Renames a team, recording `audit` in the same transaction; the old name is released.
    /// Renaming to the current name changes nothing.
    pub async fn rename_team(
        &self,
        org: &OrgId,
        team: &TeamId,
        name: &str,
        audit: Option<&Event>,
    ) -> Result<TeamRecord> {
        let name = parse_name(name)?;
        let current = self
            .team(org, team)
            .await?
            .ok_or_else(|| Error::not_found(format!("team {team}")))?;
        if current.name == name {
            return Ok(current);
        }
        self.ensure_name_free(org, &name, team).await?;
        let renamed = TeamRecord {
            name: name.clone(),
            ..current.clone()
        };
        let mut ops = vec![TransactOp::Put(
            to_item(team_key(org, team), &renamed)?,
            Condition::AttrEquals("name".into(), json!(current.name)),
        )];
        let held = self.holds_claim(org, &current.name, team).await?;
        let (old, new) = (name_key(org, &current.name), name_key(org, &name));
        if old != new {
            if held {
                ops.push(TransactOp::Delete(
                    old,
                    Condition::AttrEquals("team".into(), json!(team)),
                ));
            }
            ops.push(claim(org, &name, team));
        } else if !held {
            // Only the case changed, on a team from before names were claimed.
            ops.push(claim(org, &name, team));
        }
        if let Err(e) = audit::commit_opt(self.ports, audit, ops).await {
            return Err(self.name_conflict(org, &name, team, e).await);
        }
        Ok(renamed)
    }

    /// Deletes an empty team (see the module docs), recording `audit` in the same transaction.
    /// `Conflict` for the default team, a team with members, or a member joining meanwhile.
    pub async fn delete_team(
        &self,
        org: &OrgId,
        team: &TeamId,
        audit: Option<&Event>,
    ) -> Result<TeamRecord> {
        let current = self
            .team(org, team)
            .await?
            .ok_or_else(|| Error::not_found(format!("team {team}")))?;
        let org_rec = self
            .org(org)
            .await?
            .ok_or_else(|| Error::not_found(format!("organisation {org}")))?;
        if &org_rec.default_team == team {
            return Err(Error::Conflict(format!(
                "`{}` is the organisation's default team and cannot be deleted",
                current.name
            )));
        }
        // Read before the members are counted: a join after this read changes it.
        let joins = self.ports.table.get(&joins_key(org, team)).await?;
        let members = self
            .members(org)
            .await?
            .iter()
            .filter(|m| m.role_in(team).is_some())
            .count();
        if members > 0 {
            return Err(Error::Conflict(format!(
                "team `{}` still has {members} member(s); only an empty team can be deleted",
                current.name
            )));
        }
        let mut ops = vec![
            TransactOp::Delete(
                team_key(org, team),
                Condition::AttrEquals("name".into(), json!(current.name)),
            ),
            match joins {
                Some(item) => TransactOp::Delete(
                    item.key.clone(),
                    Condition::AttrEquals(
                        JOINS.into(),
                        item.attrs.get(JOINS).cloned().unwrap_or(json!(0)),
                    ),
                ),
                None => TransactOp::Check(joins_key(org, team), Condition::NotExists),
            },
        ];
        if self.holds_claim(org, &current.name, team).await? {
            ops.push(TransactOp::Delete(
                name_key(org, &current.name),
                Condition::AttrEquals("team".into(), json!(team)),
            ));
        }
        audit::commit_opt(self.ports, audit, ops)
            .await
            .map_err(|e| match e {
                Error::Conflict(_) => Error::Conflict(
                    "the team changed while it was being deleted (a member may have joined); try again"
                        .into(),
                ),
                other => other,
            })?;
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_or_extra_spaces() {
        let org = OrgId::parse("org_a").unwrap();
        assert_eq!(name_key(&org, "Design Ops"), name_key(&org, "design  OPS"));
        assert_ne!(name_key(&org, "Design"), name_key(&org, "Designs"));
        assert_ne!(
            name_key(&org, "Design"),
            name_key(&OrgId::parse("org_b").unwrap(), "Design")
        );
        assert_eq!(parse_name("  Brand  ").unwrap(), "Brand");
        for bad in ["", "   ", "a\u{0}b", &"x".repeat(101)] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }
}
