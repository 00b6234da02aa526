//! The server-rendered pages of the authorization flow (login, consent, error) and of sign-up: plain
//! HTML with a little inline CSS, every dynamic value escaped, every form carrying the CSRF token.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use imagemcp_core::ids::OrgId;
use imagemcp_core::rbac::{Role, Scope};

use imagemcp_service::oauth::{AuthorizeParams, ValidRequest};

/// Escapes text for HTML element content and double-quoted attributes.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}\
h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}\
input[type=email],input[type=password],input[type=text],select{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;margin-right:.5rem}\
.error{color:#a00;background:#fee;padding:.5rem;border-radius:4px}.muted{color:#555}ul{padding-left:1.2rem}";

/// A complete page with the headers every page of ours carries: no caching (they hold CSRF
/// tokens), no framing (clickjacking of the consent button), no referrer (the URL holds `state`).
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · imagemcp</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// An error page: for requests that cannot be answered by redirecting (unknown client,
/// unregistered redirect URI, failed CSRF check).
pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Cannot continue",
        &format!(
            "<h1>Cannot continue</h1><p role=\"alert\" class=\"error\">{}</p>\
             <p class=\"muted\">Return to the application you came from and start again.</p>",
            esc(message)
        ),
    )
}

pub(super) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// The authorization request, carried through the forms so each POST can re-validate it.
fn request_fields(p: &AuthorizeParams, csrf: &str) -> String {
    let mut out = hidden("csrf", csrf);
    for (k, v) in [
        ("response_type", p.response_type.as_str()),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("resource", &p.resource),
    ] {
        out.push_str(&hidden(k, v));
    }
    if let Some(state) = &p.state {
        out.push_str(&hidden("state", state));
    }
    if let Some(scope) = &p.scope {
        out.push_str(&hidden("scope", scope));
    }
    out
}

fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                format!(
                    "{h}{}",
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
        })
        .unwrap_or_default()
}

/// The fields and button of a password sign-in form (`action=login`).
pub(super) const SIGN_IN_FIELDS: &str = "<input type=\"hidden\" name=\"action\" value=\"login\">\
     <label for=\"email\">Email</label>\
     <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
     <label for=\"password\">Password</label>\
     <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
     <button type=\"submit\">Sign in</button>";

/// The login page of an authorization request.
pub(super) fn login(
    req: &ValidRequest,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        status,
        "Sign in",
        &format!(
            "<h1>Sign in to imagemcp</h1>\
             <p><strong>{client}</strong> wants to use your imagemcp account.</p>{error}\
             <form method=\"post\" action=\"/oauth/authorize\">{fields}\
             {SIGN_IN_FIELDS}</form>\
             <p class=\"muted\">No account? <a href=\"/signup\">Create one</a>, then come back to the application.</p>",
            client = esc(&req.client.client_name),
            fields = request_fields(&req.params, csrf),
        ),
    )
}

fn scope_text(scope: Scope) -> &'static str {
    match scope {
        Scope::ImagesRead => "See your images and conversations",
        Scope::ImagesWrite => "Generate, edit and delete images, review work, manage your API keys",
        Scope::Admin => "Administer your organisation (members, billing, audit log)",
    }
}

/// An organisation the signed-in user may act in, for the consent page's picker.
pub(super) struct OrgChoice {
    pub(super) id: OrgId,
    pub(super) name: String,
    /// The user's role there.
    pub(super) role: Role,
}

/// The organisation picker: a `select` of the user's organisations, `selected` preselected.
fn org_picker(orgs: &[OrgChoice], selected: &OrgId) -> String {
    let options: String = orgs
        .iter()
        .map(|o| {
            format!(
                "<option value=\"{}\"{}>{} ({})</option>",
                esc(o.id.as_str()),
                if &o.id == selected { " selected" } else { "" },
                esc(&o.name),
                o.role
            )
        })
        .collect();
    format!(
        "<label for=\"org_id\">Organisation</label>\
         <select id=\"org_id\" name=\"org_id\">{options}</select>\
         <p class=\"muted\">The application will act in this organisation, with what your role \
         there allows.</p>"
    )
}

/// The consent page: who asks, where the answer goes, what they may do, and in which of the
/// user's organisations.
pub(super) fn consent(
    req: &ValidRequest,
    csrf: &str,
    email: &str,
    orgs: &[OrgChoice],
    selected: &OrgId,
) -> Response {
    // What is asked for, as far as any of the user's roles allows it: a viewer everywhere is not
    // shown "administer your organisation".
    let most: Vec<Scope> = orgs.iter().flat_map(|o| o.role.scopes()).collect();
    let scopes: String = Scope::intersect(&req.scopes, &most)
        .iter()
        .map(|s| format!("<li>{} (<code>{}</code>)</li>", scope_text(*s), s))
        .collect();
    let fields = request_fields(&req.params, csrf);
    let host = redirect_host(&req.params.redirect_uri);
    // A client described by a metadata document says who it is by its URL's host; a loopback
    // redirect can be claimed by any program on this computer, so the user is warned.
    let mut notes = String::new();
    if imagemcp_service::oauth::cimd::is_url_client_id(&req.client.client_id) {
        notes.push_str(&format!(
            "<p class=\"muted\">Client described by <strong>{}</strong>.</p>",
            esc(&redirect_host(&req.client.client_id))
        ));
    }
    let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    if matches!(bare, "localhost" | "127.0.0.1" | "[::1]") {
        notes.push_str(
            "<p class=\"warning\">The answer goes to a program on your own computer (localhost). \
             Approve only if you started this application yourself.</p>",
        );
    }
    page(
        StatusCode::OK,
        "Authorize",
        &format!(
            "<h1>Authorize {client}?</h1>\
             <p>Signed in as <strong>{email}</strong>.</p>\
             <p><strong>{client}</strong> will be able to:</p><ul>{scopes}</ul>\
             <p class=\"muted\">After you answer you will be sent to <strong>{host}</strong>.</p>{notes}\
             <form method=\"post\" action=\"/oauth/authorize\">{fields}{picker}\
             <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
             <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
            client = esc(&req.client.client_name),
            email = esc(email),
            host = esc(&host),
            picker = org_picker(orgs, selected),
        ),
    )
}

/// The sign-up page.
pub(super) fn signup(csrf: &str, error: Option<&str>, status: StatusCode) -> Response {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        status,
        "Create an account",
        &format!(
            "<h1>Create an imagemcp account</h1>{error}\
             <form method=\"post\" action=\"/signup\">{csrf}\
             <label for=\"name\">Name</label>\
             <input id=\"name\" name=\"name\" type=\"text\" autocomplete=\"name\">\
             <label for=\"email\">Email</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
             <label for=\"password\">Password (at least 10 characters)</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"10\" required>\
             <button type=\"submit\">Create account</button></form>",
            csrf = hidden("csrf", csrf),
        ),
    )
}

/// After sign-up.
pub(super) fn signed_up(email: &str) -> Response {
    page(
        StatusCode::CREATED,
        "Account created",
        &format!(
            "<h1>Account created</h1><p>You are signed in as <strong>{}</strong>. \
             Return to your application and connect again to authorize it.</p>",
            esc(email)
        ),
    )
}
