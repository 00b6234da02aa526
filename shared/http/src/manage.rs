//! REST routes for managing an organisation and for data-subject rights: API keys, members,
//! invitations, teams, the audit log, the user's own export and erasure, and the RBAC matrix.
//! Each route is a thin adapter over [`imagemcp_service::manage`], [`imagemcp_service::audit::read`] and [`imagemcp_service::gdpr`],
//! which authorize and audit.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use serde::Serialize;

use super::ApiError;
use super::Authed;
use super::extract::{Bytes, Path, Query, json_body as body};
use crate::App;
use imagemcp_service::audit::read::{ExportArgs, ViewArgs};
use imagemcp_service::gdpr::{DeleteUserArgs, Gdpr};
use imagemcp_service::manage::{
    AcceptArgs, CreateKeyArgs, InviteArgs, Manage, ProvisionArgs, RenameTeamArgs, SetRoleArgs,
    TeamArgs, matrix_json,
};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", delete(revoke_key))
        .route("/v1/keys/{id}/rotate", post(rotate_key))
        .route("/v1/members", get(list_members).post(provision))
        .route("/v1/members/{user}", delete(remove_member))
        .route("/v1/members/{user}/role", put(set_role))
        .route("/v1/members/{user}/keys", post(issue_key))
        .route("/v1/invitations", post(invite))
        .route("/v1/invitations/accept", post(accept))
        .route("/v1/teams", get(list_teams).post(create_team))
        .route("/v1/teams/{id}", patch(rename_team).delete(delete_team))
        .route("/v1/audit", get(view_audit))
        .route("/v1/audit/verify", get(verify_audit))
        .route("/v1/audit/export", post(export_audit))
        .route("/v1/me/export", post(export_me))
        .route("/v1/me", get(me).delete(erase_me))
        .route("/v1/rbac", get(rbac))
}

type ApiResult = Result<Response, ApiError>;

fn ok<T: Serialize>(value: T) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

fn created<T: Serialize>(value: T) -> ApiResult {
    Ok((StatusCode::CREATED, axum::Json(value)).into_response())
}

async fn list_keys(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    ok(Manage::new(&app).list_keys(&caller).await?)
}

async fn create_key(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: CreateKeyArgs = body(&bytes)?;
    created(Manage::new(&app).create_key(&caller, args).await?)
}

async fn rotate_key(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    created(Manage::new(&app).rotate_key(&caller, &id).await?)
}

async fn revoke_key(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    ok(Manage::new(&app).revoke_key(&caller, &id).await?)
}

async fn list_members(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    ok(Manage::new(&app).list_members(&caller).await?)
}

async fn provision(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: ProvisionArgs = body(&bytes)?;
    created(Manage::new(&app).provision(&caller, args).await?)
}

async fn remove_member(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(user): Path<String>,
) -> ApiResult {
    ok(Manage::new(&app).remove_member(&caller, &user).await?)
}

/// The body of `PUT /v1/members/{user}/role`: the user comes from the path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
    #[serde(default)]
    team_id: Option<String>,
}

async fn set_role(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(user): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let b: RoleBody = body(&bytes)?;
    let args = SetRoleArgs {
        user_id: user,
        role: b.role,
        team_id: b.team_id,
    };
    ok(Manage::new(&app).set_role(&caller, args).await?)
}

async fn issue_key(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(user): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let args: CreateKeyArgs = body(&bytes)?;
    created(Manage::new(&app).issue_key(&caller, &user, args).await?)
}

async fn invite(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: InviteArgs = body(&bytes)?;
    created(Manage::new(&app).invite(&caller, args).await?)
}

async fn accept(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: AcceptArgs = body(&bytes)?;
    ok(Manage::new(&app).accept(&caller, args).await?)
}

async fn create_team(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: TeamArgs = body(&bytes)?;
    created(Manage::new(&app).create_team(&caller, args).await?)
}

async fn list_teams(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    ok(Manage::new(&app).list_teams(&caller).await?)
}

/// The body of `PATCH /v1/teams/{id}`: the team comes from the path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

async fn rename_team(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let b: RenameBody = body(&bytes)?;
    let args = RenameTeamArgs {
        team_id: id,
        name: b.name,
    };
    ok(Manage::new(&app).rename_team(&caller, args).await?)
}

async fn delete_team(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    ok(Manage::new(&app).delete_team(&caller, &id).await?)
}

async fn me(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    ok(imagemcp_service::whoami::whoami(&app, &caller).await?)
}

/// The query of `GET /v1/audit` (a plain struct: query strings are decorated by proxies, so
/// unknown parameters are ignored here).
#[derive(serde::Deserialize)]
struct AuditQuery {
    action: Option<String>,
    user_id: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    limit: Option<u32>,
    cursor: Option<String>,
    oldest_first: Option<bool>,
    verify: Option<bool>,
}

async fn view_audit(
    State(app): State<App>,
    Authed(caller): Authed,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    let args = ViewArgs {
        action: q.action,
        user_id: q.user_id,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        limit: q.limit,
        cursor: q.cursor,
        oldest_first: q.oldest_first,
        verify: q.verify,
    };
    ok(app.audit_log().view(&caller, &args).await?)
}

async fn verify_audit(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    ok(app.audit_log().verify(&caller).await?)
}

async fn export_audit(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: ExportArgs = body(&bytes)?;
    created(app.audit_log().export(&caller, &args).await?)
}

async fn export_me(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    created(Gdpr::new(&app).export(&caller).await?)
}

async fn erase_me(State(app): State<App>, Authed(caller): Authed, bytes: Bytes) -> ApiResult {
    let args: DeleteUserArgs = body(&bytes)?;
    ok(Gdpr::new(&app).erase(&caller, args).await?)
}

async fn rbac(_: Authed) -> ApiResult {
    ok(matrix_json())
}
