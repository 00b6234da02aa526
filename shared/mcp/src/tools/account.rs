//! The dispatch of the caller's own identity and of the team tools onto [`crate::whoami`] and
//! [`crate::manage`] (their specs sit in the registry in `tools.rs`): who am I, the organisation's
//! teams, renaming and deleting a team.

use imagemcp_core::Error;
use rmcp::model::CallToolResult;
use serde_json::Value;

use crate::App;
use crate::auth::Caller;
use crate::billing::usage::NoArgs;
use crate::images::params::parse_args;
use crate::manage::{Manage, RenameTeamArgs, TeamIdArgs, TeamView};
use crate::whoami::whoami;

pub(super) const WHOAMI: &str = "openai_whoami";
pub(super) const LIST_TEAMS: &str = "openai_list_teams";
pub(super) const RENAME_TEAM: &str = "openai_rename_team";
pub(super) const DELETE_TEAM: &str = "openai_delete_team";

/// Whether `name` is one of these tools.
pub(super) fn handles(name: &str) -> bool {
    [WHOAMI, LIST_TEAMS, RENAME_TEAM, DELETE_TEAM].contains(&name)
}

fn team_line(t: &TeamView) -> String {
    format!(
        "{} ({}, {} member(s){})",
        t.name,
        t.team_id,
        t.member_count,
        if t.default { ", default" } else { "" }
    )
}

pub(super) async fn run(
    app: &App,
    caller: &Caller,
    name: &str,
    args: Value,
) -> Result<CallToolResult, Error> {
    let manage = Manage::new(app);
    match name {
        WHOAMI => {
            parse_args::<NoArgs>(args)?;
            let me = whoami(app, caller).await?;
            let orgs: Vec<String> = me
                .organisations
                .iter()
                .map(|o| {
                    format!(
                        "{} ({}, {}{})",
                        o.name,
                        o.org_id,
                        o.role,
                        if o.personal { ", personal" } else { "" }
                    )
                })
                .collect();
            let who = if me.name.is_empty() {
                me.email.clone()
            } else {
                format!("{} <{}>", me.name, me.email)
            };
            let summary = format!(
                "You are {who}, user id {}: {} in {} ({}), with the scopes {}. Your organisations: {}.",
                me.user_id,
                me.role,
                me.org_name,
                me.org_id,
                me.scopes.join(" "),
                orgs.join("; ")
            );
            super::structured(&me, Vec::new(), summary)
        }
        LIST_TEAMS => {
            parse_args::<NoArgs>(args)?;
            let v = manage.list_teams(caller).await?;
            let lines: Vec<String> = v.teams.iter().map(team_line).collect();
            let summary = format!("{} team(s): {}.", v.teams.len(), lines.join("; "));
            super::structured(&v, Vec::new(), summary)
        }
        RENAME_TEAM => {
            let v = manage
                .rename_team(caller, parse_args::<RenameTeamArgs>(args)?)
                .await?;
            let summary = format!("Team {} is now named {}.", v.team_id, v.name);
            super::structured(&v, Vec::new(), summary)
        }
        DELETE_TEAM => {
            let team = parse_args::<TeamIdArgs>(args)?.team_id;
            let v = manage.delete_team(caller, &team).await?;
            let summary = format!("Deleted the empty team {} ({}).", v.name, v.team_id);
            super::structured(&v, Vec::new(), summary)
        }
        other => Err(Error::not_found(format!("tool {other}"))),
    }
}
