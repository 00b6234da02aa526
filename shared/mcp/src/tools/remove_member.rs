//! `openai_remove_member`: removes a member from the organisation (every team).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, DESTROY, TaskRule, Tool};
use crate::images::params::parse_args;
use crate::manage::{DoneView, Manage, UserIdArgs};

pub(super) const TOOL: Tool = Tool {
    name: "openai_remove_member",
    actions: &[Action::ManageMembers],
    title: "Remove member",
    description: "Remove a member from the organisation (every team); their keys stop working here.",
    input: input::<UserIdArgs>,
    output: output::<DoneView>,
    hints: DESTROY,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let user = parse_args::<UserIdArgs>(args)?.user_id;
        let v = Manage::new(call.app)
            .remove_member(call.caller, &user)
            .await?;
        done(&v, format!("Removed {user}."))
    })
}
