//! `openai_invite_member`: invites an email address to a team with a role; the invitation token is
//! offered once behind a one-time link (`reveal`), never in the result.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use imagemcp_service::reveal::SecretKind;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::schema::{input, output};
use super::{Call, TaskRule, Tool, WRITE};
use crate::images::params::parse_args;
use crate::manage::{InviteArgs, Manage};
use crate::reveal::{self, InvitationLinkView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_invite_member",
    actions: &[Action::ManageMembers],
    title: "Invite member",
    description: "Invite an email address to a team with a role. The invitation token to send (valid \
        7 days, usable once) is shown to you once behind a one-time link, never in this result.",
    input: input::<InviteArgs>,
    output: output::<InvitationLinkView>,
    hints: WRITE,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: Some(SecretKind::Invitation),
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<InviteArgs>(args)?;
        let email = args.email.clone();
        let v = Manage::new(call.app).invite(call.caller, args).await?;
        let summary = format!("Invited {email}; send them the invitation token.");
        reveal::invitation_result(call.app, call.caller, v, &email, summary).await
    })
}
