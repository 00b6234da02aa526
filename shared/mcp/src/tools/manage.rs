//! The dispatch of the audit, data-subject, key and member tools onto [`crate::manage`],
//! [`crate::audit::read`] and [`crate::gdpr`] (their specs sit in the registry in `tools.rs`).
//! A new key or invitation token is never in a result: [`crate::reveal`] offers a one-time
//! link to it.

use imagemcp_core::Error;
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

use crate::App;
use crate::audit::read::{ExportArgs, VerifyArgs, ViewArgs};
use crate::auth::Caller;
use crate::billing::usage::NoArgs;
use crate::gdpr::{DeleteUserArgs, ExportUserArgs, Gdpr};
use crate::images::params::parse_args;
use crate::manage::{
    AcceptArgs, CreateKeyArgs, InviteArgs, KeyIdArgs, Manage, SetRoleArgs, TeamArgs, UserIdArgs,
};
use crate::reveal;

pub(super) const VIEW_AUDIT: &str = "openai_view_audit_log";
pub(super) const VERIFY_AUDIT: &str = "openai_verify_audit_log";
pub(super) const EXPORT_AUDIT: &str = "openai_export_audit_log";
pub(super) const EXPORT_USER: &str = "openai_export_user_data";
pub(super) const DELETE_USER: &str = "openai_delete_user_data";
pub(super) const LIST_KEYS: &str = "openai_list_api_keys";
pub(super) const CREATE_KEY: &str = "openai_create_api_key";
pub(super) const ROTATE_KEY: &str = "openai_rotate_api_key";
pub(super) const REVOKE_KEY: &str = "openai_revoke_api_key";
pub(super) const LIST_MEMBERS: &str = "openai_list_members";
pub(super) const SET_ROLE: &str = "openai_set_member_role";
pub(super) const REMOVE_MEMBER: &str = "openai_remove_member";
pub(super) const INVITE: &str = "openai_invite_member";
pub(super) const ACCEPT: &str = "openai_accept_invitation";
pub(super) const CREATE_TEAM: &str = "openai_create_team";

/// A result whose text is a one-line summary and whose structured content is the view.
fn done<T: Serialize>(view: &T, summary: String) -> Result<CallToolResult, Error> {
    let value = serde_json::to_value(view).map_err(Error::internal)?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(summary)]);
    result.structured_content = Some(value);
    Ok(result)
}

pub(super) async fn run(
    app: &App,
    caller: &Caller,
    name: &str,
    args: Value,
) -> Result<CallToolResult, Error> {
    let manage = Manage::new(app);
    match name {
        VIEW_AUDIT => {
            let page = app
                .audit_log()
                .view(caller, &parse_args::<ViewArgs>(args)?)
                .await?;
            let mut summary = format!("{} audit entries.", page.entries.len());
            if let Some(v) = &page.verification {
                summary.push_str(&match &v.first_broken {
                    None => format!(" Chain intact ({} entries).", v.entries_checked),
                    Some(b) => format!(" Chain BROKEN at entry {}: {}", b.seq, b.reason),
                });
            }
            done(&page, summary)
        }
        VERIFY_AUDIT => {
            parse_args::<VerifyArgs>(args)?;
            let v = app.audit_log().verify(caller).await?;
            let summary = match &v.first_broken {
                None => format!("The audit chain is intact ({} entries).", v.entries_checked),
                Some(b) => format!("The audit chain is broken at entry {}: {}", b.seq, b.reason),
            };
            done(&v, summary)
        }
        EXPORT_AUDIT => {
            let e = app
                .audit_log()
                .export(caller, &parse_args::<ExportArgs>(args)?)
                .await?;
            let summary = format!(
                "Exported {} audit entries ({} bytes){}",
                e.entries,
                e.size_bytes,
                e.url
                    .as_deref()
                    .map(|u| format!(": {u}"))
                    .unwrap_or_default()
            );
            done(&e, summary)
        }
        EXPORT_USER => {
            parse_args::<ExportUserArgs>(args)?;
            let e = Gdpr::new(app).export(caller).await?;
            let summary = format!(
                "Your data ({} images, {} bytes) is ready{}",
                e.images,
                e.size_bytes,
                e.url
                    .as_deref()
                    .map(|u| format!(": {u}"))
                    .unwrap_or_default()
            );
            done(&e, summary)
        }
        DELETE_USER => {
            let e = Gdpr::new(app)
                .erase(caller, parse_args::<DeleteUserArgs>(args)?)
                .await?;
            let summary = format!(
                "Erased: {} images, {} organisations, {} keys.",
                e.images_deleted, e.organisations_deleted, e.keys_revoked
            );
            done(&e, summary)
        }
        LIST_KEYS => {
            parse_args::<NoArgs>(args)?;
            let keys = manage.list_keys(caller).await?;
            done(&keys, format!("{} key(s).", keys.keys.len()))
        }
        CREATE_KEY => {
            let key = manage
                .create_key(caller, parse_args::<CreateKeyArgs>(args)?)
                .await?;
            let summary = format!("Created key {}.", key.record.key_id);
            reveal::key_result(app, caller, key, summary).await
        }
        ROTATE_KEY => {
            let id = parse_args::<KeyIdArgs>(args)?.key_id;
            let key = manage.rotate_key(caller, &id).await?;
            let summary = format!(
                "Rotated {id} to {}; the old key works for 24 more hours.",
                key.record.key_id
            );
            reveal::key_result(app, caller, key, summary).await
        }
        REVOKE_KEY => {
            let id = parse_args::<KeyIdArgs>(args)?.key_id;
            let v = manage.revoke_key(caller, &id).await?;
            done(&v, format!("Revoked {id}."))
        }
        LIST_MEMBERS => {
            parse_args::<NoArgs>(args)?;
            let v = manage.list_members(caller).await?;
            let lines: Vec<String> = v
                .members
                .iter()
                .map(|m| {
                    let who = match (&m.name, &m.email) {
                        (Some(name), Some(email)) => format!("{name} <{email}>"),
                        (None, Some(email)) => email.clone(),
                        _ => "(erased)".to_owned(),
                    };
                    let teams: Vec<String> = m
                        .teams
                        .iter()
                        .map(|t| {
                            format!("{} in {}", t.role, t.name.as_deref().unwrap_or(&t.team_id))
                        })
                        .collect();
                    format!("{who} {} ({})", m.user_id, teams.join(", "))
                })
                .collect();
            done(
                &v,
                format!("{} member(s): {}.", v.members.len(), lines.join("; ")),
            )
        }
        SET_ROLE => {
            let v = manage
                .set_role(caller, parse_args::<SetRoleArgs>(args)?)
                .await?;
            done(&v, format!("Updated the roles of {}.", v.user_id))
        }
        REMOVE_MEMBER => {
            let user = parse_args::<UserIdArgs>(args)?.user_id;
            let v = manage.remove_member(caller, &user).await?;
            done(&v, format!("Removed {user}."))
        }
        INVITE => {
            let args = parse_args::<InviteArgs>(args)?;
            let email = args.email.clone();
            let v = manage.invite(caller, args).await?;
            let summary = format!("Invited {email}; send them the invitation token.");
            reveal::invitation_result(app, caller, v, &email, summary).await
        }
        ACCEPT => {
            let v = manage
                .accept(caller, parse_args::<AcceptArgs>(args)?)
                .await?;
            done(&v, "Invitation accepted.".into())
        }
        CREATE_TEAM => {
            let v = manage
                .create_team(caller, parse_args::<TeamArgs>(args)?)
                .await?;
            done(&v, format!("Created team {}.", v.team_id))
        }
        other => Err(Error::not_found(format!("tool {other}"))),
    }
}
