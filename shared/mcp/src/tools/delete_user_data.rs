//! `openai_delete_user_data`: erases the caller's account and everything of theirs (audit entries
//! are kept, pseudonymised).

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::done;
use super::schema::{input, output};
use super::{Call, DESTROY_IDEMPOTENT, TaskRule, Tool};
use crate::gdpr::{DeleteUserArgs, Erasure, Gdpr};
use crate::images::params::parse_args;

pub(super) const TOOL: Tool = Tool {
    name: "openai_delete_user_data",
    actions: &[Action::ViewImages],
    title: "Delete my data",
    description: "Erase your account and everything of yours: profile, keys, memberships, the images \
        you created and their files. Audit entries are kept, pseudonymised. Needs a credential with \
        every scope your role can use (not a narrowed key) and your user id as confirmation \
        (openai_whoami shows it). Cannot be undone.",
    input: input::<DeleteUserArgs>,
    output: output::<Erasure>,
    hints: DESTROY_IDEMPOTENT,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<DeleteUserArgs>(args)?;
        let e = Gdpr::new(call.app).erase(call.caller, args).await?;
        let summary = format!(
            "Erased: {} images, {} organisations, {} keys.",
            e.images_deleted, e.organisations_deleted, e.keys_revoked
        );
        done(&e, summary)
    })
}
