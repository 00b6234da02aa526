//! Accounts and sessions for REST clients and people: `POST /v1/auth/{signup,login,refresh,logout}`
//! (JSON) and the `/signup` page.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use imagemcp_core::Error;
use imagemcp_core::ids::OrgId;
use imagemcp_core::rbac::Scope;
use serde::Deserialize;
use serde_json::json;

use super::extract::Bytes;
use super::oauth::{MAX_FORM_BYTES, client_ip, current_session, session_or_new, with_cookie};
use super::{ApiError, pages};
use crate::App;
use imagemcp_service::sessions::browser::BrowserSessions;
use imagemcp_service::sessions::{GRANT_FIELD, REST_CLIENT, TokenPair};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/auth/signup", post(signup))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/signup", get(signup_page).post(signup_form))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// A JSON body, refusing unknown fields so typos are reported.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|_| Error::invalid("body", "must be a JSON object with the documented fields"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
}

async fn signup(State(app): State<App>, bytes: Bytes) -> Result<Response, ApiError> {
    let b: SignupBody = body(&bytes)?;
    let user = app
        .accounts()
        .sign_up(&b.email, Some(&b.password), &b.name)
        .await?;
    tracing::info!(user = %user.id, "signed up");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "user_id": user.id, "org_id": user.personal_org, "email": user.email })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    /// Narrows the scopes (default: all the user's role in the organisation can use).
    scope: Option<String>,
    /// The organisation to act in (default: the one last used).
    org_id: Option<String>,
}

fn tokens(pair: TokenPair) -> Response {
    let mut r = axum::Json(json!({
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "scope": Scope::join(&pair.scopes),
        "org_id": pair.org,
    }))
    .into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

async fn login(State(app): State<App>, request: Request) -> Result<Response, ApiError> {
    let ip = client_ip(&request);
    let bytes = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| Error::invalid("body", "too large"))?;
    let b: LoginBody = body(&bytes)?;
    let scopes = b
        .scope
        .as_deref()
        .map(|s| Scope::parse_list("scope", s))
        .transpose()?;
    let org = b
        .org_id
        .as_deref()
        .map(|o| OrgId::parse_as("org_id", o))
        .transpose()?;
    // The password is checked first: only its owner learns which organisations they are in.
    let user = app
        .sessions()
        .password_login(&b.email, &b.password, &ip)
        .await?;
    let grant = app
        .sessions()
        .sign_in_grant(&user, org.as_ref(), scopes.as_deref(), REST_CLIENT)
        .await?;
    Ok(tokens(app.sessions().issue(&grant).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// A refresh token that cannot be used is an authentication failure to a REST client.
fn grant_to_401(e: Error) -> Error {
    match e {
        Error::Invalid { field, reason } if field == GRANT_FIELD => Error::Unauthenticated(reason),
        other => other,
    }
}

async fn refresh(State(app): State<App>, bytes: Bytes) -> Result<Response, ApiError> {
    let b: RefreshBody = body(&bytes)?;
    let pair = app
        .sessions()
        .refresh(&b.refresh_token, REST_CLIENT, None)
        .await
        .map_err(grant_to_401)?;
    Ok(tokens(pair))
}

async fn logout(State(app): State<App>, bytes: Bytes) -> Result<Response, ApiError> {
    let b: RefreshBody = body(&bytes)?;
    app.sessions().revoke_refresh(&b.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn signup_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let (session, new) = match session_or_new(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = pages::signup(&session.csrf, None, StatusCode::OK);
    if new {
        with_cookie(&app, page, &session)
    } else {
        page
    }
}

#[derive(Deserialize)]
struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn signup_form(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<SignupForm>(&bytes) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    let session = match current_session(&app, &headers).await {
        Some(s) if s.csrf_matches(&form.csrf) => s,
        _ => {
            return pages::error_page(
                StatusCode::FORBIDDEN,
                "Your session expired or this form was not sent from this site. Reload the page and try again.",
            );
        }
    };
    match app
        .accounts()
        .sign_up(&form.email, Some(&form.password), &form.name)
        .await
    {
        Ok(user) => match BrowserSessions::new(&app.identity)
            .log_in(&session, &user.id)
            .await
        {
            Ok(new) => with_cookie(&app, pages::signed_up(&user.email), &new),
            Err(_) => pages::signed_up(&user.email),
        },
        Err(Error::Invalid { reason, field }) => pages::signup(
            &session.csrf,
            Some(&format!("{field}: {reason}")),
            StatusCode::BAD_REQUEST,
        ),
        Err(Error::Conflict(_)) => pages::signup(
            &session.csrf,
            Some("An account with this email already exists. Sign in instead."),
            StatusCode::CONFLICT,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "sign-up failed");
            pages::error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.")
        }
    }
}
