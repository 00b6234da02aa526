//! `GET`/`PUT /v1/settings/cost-confirmation`: the estimated cost above which a generating MCP
//! tool asks before spending (see `imagemcp_billing::confirmation`). A user sets their own; a member who
//! manages the organisation sets the organisation's; the lower of the two applies.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::Error;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::Authed;
use super::extract::{Bytes, json_body};
use crate::App;
use imagemcp_service::auth::Caller;
use imagemcp_service::billing::confirmation::{self as confirm, SettingScope};

pub(super) fn routes() -> Router<App> {
    Router::new().route("/v1/settings/cost-confirmation", get(show).put(change))
}

async fn view(app: &App, caller: &Caller) -> Result<Value, Error> {
    let (user, org) = confirm::settings(&app.billing, caller).await?;
    Ok(json!({
        "user_threshold_cents": user,
        "org_threshold_cents": org,
        "default_threshold_cents": app.config.cost_confirmation_cents,
        "effective_threshold_cents": confirm::threshold_cents(&app.billing, caller).await?,
    }))
}

async fn show(State(app): State<App>, Authed(caller): Authed) -> Result<Response, ApiError> {
    caller.authorize(imagemcp_core::rbac::Action::ViewImages)?;
    Ok(axum::Json(view(&app, &caller).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    /// `user` (your own) or `org` (the organisation's; needs member management).
    scope: SettingScope,
    /// Cents; `null` clears the setting.
    threshold_cents: Option<u64>,
}

async fn change(
    State(app): State<App>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let change: Change = json_body(&bytes)?;
    confirm::change_threshold(&app.billing, &caller, change.scope, change.threshold_cents).await?;
    Ok(axum::Json(view(&app, &caller).await?).into_response())
}
