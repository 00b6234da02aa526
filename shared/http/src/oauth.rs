//! The OAuth 2.1 authorization server's HTTP surface: metadata (RFC 9728, RFC 8414), the JWK set,
//! dynamic client registration (RFC 7591), `/oauth/authorize` with its login and consent pages,
//! `/oauth/token` (authorization code + PKCE, refresh) and `/oauth/revoke` (RFC 7009).
//!
//! OAuth's wire errors (`{"error", "error_description"}`) are written here, once, from the domain
//! errors of `imagemcp_service::oauth` and `imagemcp_service::sessions`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use imagemcp_core::Error;
use imagemcp_core::ids::OrgId;
use imagemcp_core::rbac::Scope;
use serde_json::json;

use super::pages;
use crate::App;
use imagemcp_service::oauth::{self, AuthorizeError, AuthorizeParams, Clients, ValidRequest};
use imagemcp_service::sessions::browser::{self, BrowserSession, BrowserSessions};
use imagemcp_service::sessions::{self, GRANT_FIELD, TokenPair};

/// The largest body an OAuth endpoint or form accepts: these requests are a few hundred bytes.
pub(super) const MAX_FORM_BYTES: usize = 16 * 1024;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .route("/oauth/register", post(register))
        .route("/oauth/authorize", get(authorize_get).post(authorize_post))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// The scopes a client is told it may ask for.
fn scopes_supported() -> Vec<&'static str> {
    Scope::ALL.iter().map(|s| s.as_str()).collect()
}

fn json_no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn protected_resource(State(app): State<App>) -> Response {
    axum::Json(json!({
        "resource": sessions::resource(&app.identity),
        "authorization_servers": [sessions::issuer(&app.identity)],
        "scopes_supported": scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_name": "imagemcp",
    }))
    .into_response()
}

async fn authorization_server(State(app): State<App>) -> Response {
    let base = &app.config.public_url;
    axum::Json(json!({
        "issuer": sessions::issuer(&app.identity),
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": app.config.client_metadata.is_some(),
    }))
    .into_response()
}

async fn jwks(State(app): State<App>) -> Response {
    match &app.config.token_keys {
        Some(keys) => axum::Json(keys.jwks()).into_response(),
        None => axum::Json(json!({ "keys": [] })).into_response(),
    }
}

/// An OAuth error response (RFC 6749 §5.2, RFC 7591 §3.2.2).
pub(super) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        let bad = StatusCode::BAD_REQUEST;
        match &e {
            Error::Invalid { field, reason } => {
                let error = match field.as_str() {
                    GRANT_FIELD => "invalid_grant",
                    "resource" => "invalid_target",
                    "scope" => "invalid_scope",
                    "redirect_uris" => "invalid_redirect_uri",
                    "client_metadata" => "invalid_client_metadata",
                    _ => "invalid_request",
                };
                let description = if error == "invalid_request" {
                    format!("{field}: {reason}")
                } else {
                    reason.clone()
                };
                Self::new(bad, error, description)
            }
            Error::RateLimited { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "too many requests; try again later",
            ),
            Error::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                imagemcp_service::error::public_message(&e),
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                imagemcp_service::error::public_message(&e),
            ),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut r = json_no_store(
            self.status,
            json!({ "error": self.error, "error_description": self.description }),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

async fn register(State(app): State<App>, body: Bytes) -> Result<Response, OAuthError> {
    let req: oauth::clients::RegistrationRequest = serde_json::from_slice(&body).map_err(|_| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must be a JSON object of client metadata",
        )
    })?;
    let client = Clients::new(&app.identity).register(req).await?;
    Ok(json_no_store(StatusCode::CREATED, client.to_response()))
}

/// Parses a form body into single-valued parameters. OAuth forbids repeating a parameter, and a
/// repeated one is the classic way to smuggle a second value past a check.
fn form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        )
    })?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("parameter `{k}` appears more than once"),
            ));
        }
    }
    Ok(out)
}

fn token_response(pair: TokenPair) -> Response {
    json_no_store(
        StatusCode::OK,
        json!({
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "refresh_token": pair.refresh_token,
            "scope": Scope::join(&pair.scopes),
            "org_id": pair.org,
        }),
    )
}

async fn token(State(app): State<App>, body: Bytes) -> Result<Response, OAuthError> {
    let p = form(&body)?;
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let need = |k: &str| {
        get(k).ok_or_else(|| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("missing `{k}`"),
            )
        })
    };
    let client_id = need("client_id")?;
    if Clients::new(&app.identity).get(client_id).await?.is_none() {
        return Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client",
        ));
    }
    let pair = match need("grant_type")? {
        "authorization_code" => {
            oauth::exchange_code(
                &app.identity,
                need("code")?,
                client_id,
                need("redirect_uri")?,
                need("code_verifier")?,
                get("resource"),
            )
            .await?
        }
        "refresh_token" => {
            if let Some(resource) = get("resource")
                && resource != sessions::resource(&app.identity)
            {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    "resource must be this server's MCP endpoint",
                ));
            }
            let scopes = get("scope")
                .map(|s| Scope::parse_list("scope", s))
                .transpose()?;
            app.sessions()
                .refresh(need("refresh_token")?, client_id, scopes)
                .await?
        }
        _ => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ));
        }
    };
    Ok(token_response(pair))
}

async fn revoke(State(app): State<App>, body: Bytes) -> Result<Response, OAuthError> {
    let p = form(&body)?;
    if let Some(token) = p.get("token").filter(|t| t.starts_with("imr_")) {
        app.sessions().revoke_refresh(token).await?;
    }
    Ok(StatusCode::OK.into_response())
}

/// The browser session a request's cookie names, if live.
pub(super) async fn current_session(app: &App, headers: &HeaderMap) -> Option<BrowserSession> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(browser::cookie_value)?;
    match BrowserSessions::new(&app.identity).load(cookie).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "browser session lookup failed");
            None
        }
    }
}

/// Adds the session cookie to a response.
pub(super) fn with_cookie(app: &App, mut r: Response, session: &BrowserSession) -> Response {
    let secure = app.config.public_url.starts_with("https://");
    if let Ok(v) = HeaderValue::from_str(&session.set_cookie(secure)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The live session, or a new anonymous one (whose cookie the response must set).
pub(super) async fn session_or_new(
    app: &App,
    headers: &HeaderMap,
) -> Result<(BrowserSession, bool), Response> {
    if let Some(s) = current_session(app, headers).await {
        return Ok((s, false));
    }
    match BrowserSessions::new(&app.identity).create(None).await {
        Ok(s) => Ok((s, true)),
        Err(e) => {
            tracing::warn!(error = %e, "creating a browser session failed");
            Err(pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again later.",
            ))
        }
    }
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The answer to a request that failed validation: an error page, or a redirect carrying the error.
fn authorize_error(app: &App, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(message) => pages::error_page(StatusCode::BAD_REQUEST, &message),
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(state) = state.as_deref() {
                pairs.push(("state", state));
            }
            see_other(&oauth::redirect_url(&app.identity, &redirect_uri, &pairs))
        }
    }
}

/// The organisations `user` may act in, each with their role there, and the one to preselect
/// (the one a sign-in would pick by default).
async fn org_choices(
    app: &App,
    user: &imagemcp_service::accounts::UserRecord,
) -> Result<(Vec<pages::OrgChoice>, OrgId), Error> {
    let accounts = app.accounts();
    let (default, _) = accounts.choose_org(user, None).await?;
    let mut choices = Vec::new();
    for org in accounts.orgs_of(&user.id).await? {
        let Ok((record, member)) = accounts.member_of(&org, &user.id).await else {
            continue;
        };
        if let Some((_, role)) = member.acting(&record.default_team, None) {
            choices.push(pages::OrgChoice {
                id: record.id,
                name: record.name,
                role,
            });
        }
    }
    Ok((choices, default.id))
}

/// The consent page for a signed-in user, with the organisation picker.
async fn consent_page(
    app: &App,
    req: &ValidRequest,
    csrf: &str,
    user: &imagemcp_service::accounts::UserRecord,
) -> Response {
    match org_choices(app, user).await {
        Ok((choices, selected)) => pages::consent(req, csrf, &user.email, &choices, &selected),
        Err(Error::Forbidden(message)) => pages::error_page(StatusCode::FORBIDDEN, &message),
        Err(e) => {
            tracing::warn!(error = %e, "listing the organisations for consent failed");
            pages::error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.")
        }
    }
}

/// What the logged-in user sees: the consent page (or the login page if their account is gone).
async fn consent_or_login(app: &App, req: &ValidRequest, session: &BrowserSession) -> Response {
    let user = match &session.user {
        Some(id) => app.accounts().user(id).await.ok().flatten(),
        None => None,
    };
    match user {
        Some(user) => consent_page(app, req, &session.csrf, &user).await,
        None => pages::login(req, &session.csrf, None, StatusCode::OK),
    }
}

async fn authorize_get(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if app.config.token_keys.is_none() {
        return pages::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is not configured on this server.",
        );
    }
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(query.as_deref().unwrap_or(""))
    else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "The authorization request is malformed.",
        );
    };
    let req = match oauth::validate(&app.identity, params).await {
        Ok(r) => r,
        Err(e) => return authorize_error(&app, e),
    };
    let (session, new) = match session_or_new(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = consent_or_login(&app, &req, &session).await;
    if new {
        with_cookie(&app, page, &session)
    } else {
        page
    }
}

/// The client's address for the per-address login limit, when the runtime provides it.
pub(super) fn client_ip(req: &Request) -> String {
    #[cfg(not(target_arch = "wasm32"))]
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    // On the Worker there is no socket: Cloudflare's edge sets this header itself, overwriting
    // any value a client sent.
    #[cfg(target_arch = "wasm32")]
    let ip = req
        .headers()
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ip.unwrap_or_else(|| "unknown".to_owned())
}

async fn authorize_post(State(app): State<App>, request: Request) -> Response {
    let ip = client_ip(&request);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return pages::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Ok(mut fields) = form(&body) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    let csrf = fields.remove("csrf").unwrap_or_default();
    let action = fields.remove("action").unwrap_or_default();
    let email = fields.remove("email").unwrap_or_default();
    let password = fields.remove("password").unwrap_or_default();
    let org_field = fields.remove("org_id").filter(|o| !o.is_empty());
    let Ok(params) =
        serde_json::to_value(&fields).and_then(serde_json::from_value::<AuthorizeParams>)
    else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    let req = match oauth::validate(&app.identity, params).await {
        Ok(r) => r,
        Err(e) => return authorize_error(&app, e),
    };
    // The CSRF check comes before anything is done or written on the user's behalf.
    let session = match current_session(&app, &parts.headers).await {
        Some(s) if s.csrf_matches(&csrf) => s,
        _ => {
            return pages::error_page(
                StatusCode::FORBIDDEN,
                "Your session expired or this form was not sent from this site. Start again from your application.",
            );
        }
    };
    match action.as_str() {
        "login" => match app.sessions().password_login(&email, &password, &ip).await {
            Ok(user) => match BrowserSessions::new(&app.identity)
                .log_in(&session, &user.id)
                .await
            {
                Ok(new) => {
                    let page = consent_page(&app, &req, &new.csrf, &user).await;
                    with_cookie(&app, page, &new)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "browser login failed");
                    pages::error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.")
                }
            },
            Err(Error::RateLimited { .. }) => pages::login(
                &req,
                &session.csrf,
                Some("Too many attempts. Try again later."),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            Err(Error::Unauthenticated(_)) => pages::login(
                &req,
                &session.csrf,
                Some("Email or password is incorrect."),
                StatusCode::UNAUTHORIZED,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "login failed");
                pages::error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.")
            }
        },
        "approve" => {
            let Some(user_id) = &session.user else {
                return pages::login(&req, &session.csrf, None, StatusCode::OK);
            };
            let user = match app.accounts().user(user_id).await {
                Ok(Some(u)) => u,
                _ => return pages::login(&req, &session.csrf, None, StatusCode::OK),
            };
            let org = match org_field.as_deref().map(|o| OrgId::parse_as("org_id", o)) {
                None => None,
                Some(Ok(org)) => Some(org),
                Some(Err(_)) => {
                    return pages::error_page(
                        StatusCode::BAD_REQUEST,
                        "Choose one of your organisations.",
                    );
                }
            };
            let grant = match app
                .sessions()
                .sign_in_grant(
                    &user,
                    org.as_ref(),
                    Some(&req.scopes),
                    &req.client.client_id,
                )
                .await
            {
                Ok(grant) => grant,
                // Not a member, or no such organisation: the same answer.
                Err(Error::NotFound { .. }) => {
                    return pages::error_page(
                        StatusCode::FORBIDDEN,
                        "You are not a member of that organisation. Choose one of yours.",
                    );
                }
                Err(Error::Forbidden(message)) => {
                    return pages::error_page(StatusCode::FORBIDDEN, &message);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "granting failed");
                    return pages::error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Please try again later.",
                    );
                }
            };
            match oauth::issue_code(&app.identity, &req, &grant).await {
                Ok(code) => {
                    let mut pairs = vec![("code", code.as_str())];
                    if let Some(state) = req.params.state.as_deref() {
                        pairs.push(("state", state));
                    }
                    tracing::info!(client_id = %req.client.client_id, user = %user.id, org = %grant.org, "authorization approved");
                    see_other(&oauth::redirect_url(
                        &app.identity,
                        &req.params.redirect_uri,
                        &pairs,
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "issuing a code failed");
                    pages::error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.")
                }
            }
        }
        "deny" => {
            let mut pairs = vec![
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ];
            if let Some(state) = req.params.state.as_deref() {
                pairs.push(("state", state));
            }
            see_other(&oauth::redirect_url(
                &app.identity,
                &req.params.redirect_uri,
                &pairs,
            ))
        }
        _ => pages::error_page(StatusCode::BAD_REQUEST, "Unknown action."),
    }
}
