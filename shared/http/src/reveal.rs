//! `/reveal/{token}`: the page that shows a one-time secret ([`imagemcp_service::reveal`]) to the person it
//! was made for, signed in with their browser session.
//!
//! GET never reveals: it shows a sign-in form, or a button, so a link preview or a browser's
//! prefetch cannot use the link up. The button's POST (CSRF-checked) reveals the secret and
//! deletes it. Every page is `Cache-Control: no-store`, `Referrer-Policy: no-referrer`, unframable,
//! and loads nothing from anywhere ([`pages::page`]).

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use imagemcp_core::Error;
use serde::Deserialize;

use super::oauth::{MAX_FORM_BYTES, client_ip, current_session, session_or_new, with_cookie};
use super::pages::{self, esc, hidden};
use crate::App;
use imagemcp_service::reveal::{self, Pending, Revealed, SecretKind};
use imagemcp_service::sessions::browser::{BrowserSession, BrowserSessions};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/reveal/{token}", get(show).post(act))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
}

fn what(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::ApiKey => "API key",
        SecretKind::Invitation => "invitation token",
    }
}

fn gone() -> Response {
    pages::page(
        StatusCode::GONE,
        "Link used or expired",
        "<h1>This link no longer works</h1><p>It was used already or its ten minutes are over: a \
         secret is shown once and never again. Create (or rotate) the key, or send the invitation, \
         again from your application.</p>",
    )
}

fn invalid() -> Response {
    pages::error_page(StatusCode::NOT_FOUND, "This link is not valid.")
}

fn unavailable() -> Response {
    pages::error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.")
}

/// The waiting secret a token names, or the page to answer with.
async fn waiting(app: &App, token: &str) -> Result<Pending, Response> {
    match reveal::pending(app, token).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(gone()),
        Err(Error::NotFound { .. }) => Err(invalid()),
        Err(e) => {
            tracing::warn!(error = %e, "reading a reveal link failed");
            Err(unavailable())
        }
    }
}

/// The sign-in form (for the person without a session, or signed in as someone else).
fn sign_in(token: &str, csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    pages::page(
        status,
        "Sign in",
        &format!(
            "<h1>Sign in to see your secret</h1>{error}\
             <p>This link shows a secret once, only to the account it was made for.</p>\
             <form method=\"post\" action=\"/reveal/{token}\">{csrf}{fields}</form>\
             <p class=\"muted\">An account without a password (the local administrator) makes keys with \
             <code>imagemcp keys create</code> or <code>POST /v1/keys</code> instead.</p>",
            token = esc(token),
            csrf = hidden("csrf", csrf),
            fields = pages::SIGN_IN_FIELDS,
        ),
    )
}

/// The page with the button that reveals.
fn ready(token: &str, csrf: &str, pending: &Pending) -> Response {
    pages::page(
        StatusCode::OK,
        "Show your secret",
        &format!(
            "<h1>Your new {what}</h1><p>{subject}</p>\
             <p>It is shown once: copy it when it appears. The link then stops working.</p>\
             <form method=\"post\" action=\"/reveal/{token}\">{csrf}\
             <button type=\"submit\" name=\"action\" value=\"reveal\">Show it now</button></form>",
            what = what(pending.kind),
            subject = esc(&pending.subject),
            token = esc(token),
            csrf = hidden("csrf", csrf),
        ),
    )
}

/// The secret, once.
fn shown(revealed: &Revealed) -> Response {
    let how = match revealed.kind {
        SecretKind::ApiKey => {
            "Use it as <code>Authorization: Bearer &lt;key&gt;</code>. Store it now in your secret \
             manager: it cannot be shown again (rotate it if it is lost)."
        }
        SecretKind::Invitation => {
            "Send it to the person you invited: they join with <code>openai_accept_invitation</code> \
             or <code>POST /v1/invitations/accept</code>, once, within 7 days."
        }
    };
    pages::page(
        StatusCode::OK,
        "Your secret",
        &format!(
            "<h1>Your new {what}</h1><p>{subject}</p>\
             <p><code id=\"secret\">{secret}</code></p><p>{how}</p>\
             <p class=\"muted\">This page is not cached; the link no longer works.</p>",
            what = what(revealed.kind),
            subject = esc(&revealed.subject),
            secret = esc(&revealed.secret),
        ),
    )
}

/// What a session sees of a waiting secret.
fn for_session(token: &str, session: &BrowserSession, pending: &Pending) -> Response {
    match &session.user {
        Some(user) if *user == pending.user => ready(token, &session.csrf, pending),
        Some(_) => sign_in(
            token,
            &session.csrf,
            Some("This link was made for another account. Sign in as that account to see it."),
            StatusCode::FORBIDDEN,
        ),
        None => sign_in(token, &session.csrf, None, StatusCode::OK),
    }
}

async fn show(State(app): State<App>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let pending = match waiting(&app, &token).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (session, new) = match session_or_new(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = for_session(&token, &session, &pending);
    if new {
        with_cookie(&app, page, &session)
    } else {
        page
    }
}

#[derive(Deserialize)]
struct Form {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn act(State(app): State<App>, Path(token): Path<String>, request: Request) -> Response {
    let ip = client_ip(&request);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return pages::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<Form>(&body) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    // The CSRF check comes before anything is done on the person's behalf.
    let session = match current_session(&app, &parts.headers).await {
        Some(s) if s.csrf_matches(&form.csrf) => s,
        _ => {
            return pages::error_page(
                StatusCode::FORBIDDEN,
                "Your session expired or this form was not sent from this site. Open the link again.",
            );
        }
    };
    let pending = match waiting(&app, &token).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match form.action.as_str() {
        "login" => {
            let user = match app
                .sessions()
                .password_login(&form.email, &form.password, &ip)
                .await
            {
                Ok(user) => user,
                Err(Error::RateLimited { .. }) => {
                    return sign_in(
                        &token,
                        &session.csrf,
                        Some("Too many attempts. Try again later."),
                        StatusCode::TOO_MANY_REQUESTS,
                    );
                }
                Err(Error::Unauthenticated(_)) => {
                    return sign_in(
                        &token,
                        &session.csrf,
                        Some("Email or password is incorrect."),
                        StatusCode::UNAUTHORIZED,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "login failed");
                    return unavailable();
                }
            };
            match BrowserSessions::new(&app.identity)
                .log_in(&session, &user.id)
                .await
            {
                Ok(new) => with_cookie(&app, for_session(&token, &new, &pending), &new),
                Err(e) => {
                    tracing::warn!(error = %e, "browser login failed");
                    unavailable()
                }
            }
        }
        "reveal" => {
            let Some(user) = session.user.clone() else {
                return sign_in(&token, &session.csrf, None, StatusCode::OK);
            };
            match reveal::take(&app, &token, &user).await {
                Ok(Some(revealed)) => shown(&revealed),
                Ok(None) => gone(),
                Err(Error::Forbidden(_)) => for_session(&token, &session, &pending),
                Err(e) => {
                    tracing::warn!(error = %e, "revealing a secret failed");
                    unavailable()
                }
            }
        }
        _ => pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed."),
    }
}
