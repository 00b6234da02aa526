//! Billing over HTTP: the REST equivalents of the billing tools under `/v1/billing`, and the usage
//! page of the web app (`/usage`, signed in by the browser session cookie) with its upgrade and
//! portal buttons (`POST /billing/upgrade`, `POST /billing/portal`, CSRF-checked, answered with a
//! redirect to Stripe). `GET /billing/upgrade` — the link plan-limit errors carry — shows the page.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use imagemcp_core::Error;
use imagemcp_core::money::{format_cents, micros_to_cents};
use imagemcp_core::rbac::Scope;

use super::ApiError;
use super::Authed;
use super::extract::{Bytes, json_body};
use super::oauth::current_session;
use super::pages::{esc, page};
use crate::App;
use imagemcp_service::accounts::Accounts;
use imagemcp_service::auth::Caller;
use imagemcp_service::billing::budget::{self, BudgetArgs, BudgetView};
use imagemcp_service::billing::checkout::{self, UpgradeArgs};
use imagemcp_service::billing::usage;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/billing/usage", get(usage_json))
        .route("/v1/billing/checkout", post(checkout_json))
        .route("/v1/billing/portal", post(portal_json))
        .route("/v1/billing/budget", put(budget_json))
        .route("/usage", get(usage_page))
        .route("/billing/upgrade", get(usage_page).post(upgrade_form))
        .route("/billing/portal", post(portal_form))
}

type ApiResult = Result<Response, ApiError>;

/// The REST image API is API access, a Team feature (billing off: everyone has it). The billing
/// routes themselves are open to every plan, or nobody could upgrade.
pub(super) async fn api_access(app: &App, caller: &Caller) -> Result<(), ApiError> {
    imagemcp_service::billing::gate(
        &app.billing,
        &caller.org,
        imagemcp_core::tier::Feature::ApiAccess,
    )
    .await
    .map_err(ApiError)
}

async fn usage_json(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    Ok(axum::Json(usage::summary(&app.billing, &caller).await?).into_response())
}

async fn checkout_json(State(app): State<App>, Authed(caller): Authed, body: Bytes) -> ApiResult {
    let args: UpgradeArgs = json_body(&body)?;
    let view = checkout::upgrade(&app.billing, &caller, args).await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn portal_json(State(app): State<App>, Authed(caller): Authed) -> ApiResult {
    Ok((
        StatusCode::CREATED,
        axum::Json(checkout::portal(&app.billing, &caller).await?),
    )
        .into_response())
}

async fn budget_json(State(app): State<App>, Authed(caller): Authed, body: Bytes) -> ApiResult {
    let args: BudgetArgs = json_body(&body)?;
    let view = BudgetView::from(budget::set(&app.billing, &caller, args).await?);
    Ok(axum::Json(view).into_response())
}

/// The caller a signed-in browser stands for: the user in their first organisation, with every
/// scope (the person is at the keyboard); their role still decides what they may do.
async fn browser_caller(
    app: &App,
    headers: &HeaderMap,
) -> Result<(Caller, imagemcp_service::sessions::browser::BrowserSession), Response> {
    let signed_out = || {
        page(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            "<h1>Sign in first</h1><p class=\"muted\">Sign in from your MCP client or at \
             <a href=\"/signup\">/signup</a>, then come back to this page.</p>",
        )
    };
    let Some(session) = current_session(app, headers).await else {
        return Err(signed_out());
    };
    let Some(user) = session.user.clone() else {
        return Err(signed_out());
    };
    let accounts = Accounts::new(&app.ports);
    let lookup = async {
        let org = accounts.orgs_of(&user).await?.into_iter().next();
        let Some(org) = org else { return Ok(None) };
        let member = accounts.membership(&org, &user).await?;
        let org_rec = accounts.org(&org).await?;
        Ok::<_, Error>(match (member, org_rec) {
            (Some(m), Some(o)) => m
                .role_in(&o.default_team)
                .or(m.highest())
                .map(|role| Caller {
                    user: user.clone(),
                    org: org.clone(),
                    team: o.default_team.clone(),
                    role,
                    scopes: Scope::ALL.to_vec(),
                    credential: "browser".into(),
                }),
            _ => None,
        })
    };
    match lookup.await {
        Ok(Some(caller)) => Ok((caller, session)),
        Ok(None) => Err(signed_out()),
        Err(e) => Err(ApiError(e).into_response()),
    }
}

async fn usage_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let (caller, session) = match browser_caller(&app, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let s = match usage::summary(&app.billing, &caller).await {
        Ok(s) => s,
        Err(e) => return ApiError(e).into_response(),
    };
    let limit = match (s.included_images, s.remaining_images) {
        (Some(inc), Some(rem)) => format!("{} of {inc} images used, {rem} left", s.used_images),
        _ => format!("{} images used (no limit)", s.used_images),
    };
    let mut body = format!(
        "<h1>Usage</h1><p><strong>{}</strong> plan, {} seat(s), period {} to {}</p><ul>\
         <li id=\"images\">{}</li><li id=\"overage\">Overage: {} image(s), {}</li>\
         <li id=\"invoice\">Invoice so far: {}</li><li id=\"cost\">Model cost this month: {} (yours: {})</li>",
        esc(&s.tier),
        s.seats,
        esc(&s.period_start),
        esc(&s.period_end),
        esc(&limit),
        s.overage_images,
        format_cents(s.overage_cents),
        format_cents(s.total_cents),
        format_cents(micros_to_cents(s.model_cost_micros)),
        format_cents(micros_to_cents(s.my_model_cost_micros)),
    );
    if let Some(b) = s.budget_micros {
        body.push_str(&format!(
            "<li id=\"budget\">Monthly budget: {}{}</li>",
            format_cents(b / 10_000),
            if s.budget_hard_stop {
                " (hard stop)"
            } else {
                ""
            }
        ));
    }
    body.push_str("</ul>");
    if app.config.billing.is_some() {
        let csrf = esc(&session.csrf);
        body.push_str(&format!(
            "<form method=\"post\" action=\"/billing/upgrade\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"tier\" value=\"pro\"><button>Upgrade to Pro ($29/month)</button></form>\
             <form method=\"post\" action=\"/billing/upgrade\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"tier\" value=\"team\"><label>Seats <input type=\"text\" name=\"seats\" value=\"5\"></label>\
             <button>Upgrade to Team ($99/month per 5 seats)</button></form>\
             <form method=\"post\" action=\"/billing/portal\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button>Manage billing</button></form>"
        ));
    } else {
        body.push_str(
            "<p class=\"muted\">Billing is off on this server: no limits, nothing to pay.</p>",
        );
    }
    page(StatusCode::OK, "Usage", &body)
}

/// A 303 to Stripe.
fn see_other(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError(Error::Unavailable("Stripe returned a bad URL".into())).into_response(),
    }
}

/// The form's fields after the CSRF check.
async fn form(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Caller, std::collections::HashMap<String, String>), Response> {
    let (caller, session) = browser_caller(app, headers).await?;
    let fields: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(body).unwrap_or_default();
    let presented = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !session.csrf_matches(presented) {
        return Err(super::pages::error_page(
            StatusCode::FORBIDDEN,
            "The form expired; reload the page.",
        ));
    }
    Ok((caller, fields))
}

async fn upgrade_form(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (caller, fields) = match form(&app, &headers, &body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let seats = match fields.get("seats").map(|s| s.trim().parse::<i64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return ApiError(Error::invalid("seats", "must be a whole number")).into_response();
        }
    };
    let args = UpgradeArgs {
        tier: fields.get("tier").cloned().unwrap_or_default(),
        seats: if fields.get("tier").map(String::as_str) == Some("team") {
            seats
        } else {
            None
        },
    };
    match checkout::upgrade(&app.billing, &caller, args).await {
        Ok(view) => see_other(&view.checkout_url),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn portal_form(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (caller, _) = match form(&app, &headers, &body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match checkout::portal(&app.billing, &caller).await {
        Ok(view) => see_other(&view.portal_url),
        Err(e) => ApiError(e).into_response(),
    }
}
