//! Sessions and the OAuth authorization server under attack: forged JWTs, reused refresh tokens,
//! PKCE mismatches, unregistered and open redirects, CSRF on the forms, oversized bodies. Each is
//! refused with the right status and writes nothing (a counting `Table` wrapper proves it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imagemcp_app::App;
use imagemcp_app::sessions::{AccessClaims, Grant, KeySet, SigningKey};
use imagemcp_core::rbac::Scope;
use imagemcp_core::table::{Add, Condition, Item, Key, Page, Query, Table, TransactOp};
use imagemcp_core::{Error, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::helpers::TestApp;

const BASE: &str = "http://test";
const REDIRECT: &str = "https://client.example/cb";
const VERIFIER: &str = "a-long-enough-pkce-verifier-of-at-least-43-characters-xyz";
/// The password of every account these tests make.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A `Table` that counts the writes that succeeded.
struct Counting {
    inner: Arc<dyn Table>,
    writes: AtomicUsize,
}

#[async_trait::async_trait]
impl Table for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Condition) -> Result<()> {
        self.inner.put(item, cond).await?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn delete(&self, key: &Key, cond: Condition) -> Result<()> {
        self.inner.delete(key, cond).await?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn query(&self, query: &Query) -> Result<Page> {
        self.inner.query(query).await
    }
    async fn add(&self, add: Add) -> Result<i64> {
        let v = self.inner.add(add).await?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(v)
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<()> {
        self.inner.transact(ops).await?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The app with token signing keys (so logins and OAuth work), driven through its router.
pub(crate) struct Oauth {
    pub(crate) t: TestApp,
    pub(crate) app: App,
    table: Arc<Counting>,
    keys: Arc<KeySet>,
}

fn key_set() -> Arc<KeySet> {
    Arc::new(
        KeySet::new(vec![
            SigningKey::from_seed("current", [9; 32]).unwrap(),
            SigningKey::from_seed("previous", [8; 32]).unwrap(),
        ])
        .unwrap(),
    )
}

impl Oauth {
    pub(crate) fn new() -> Self {
        let t = TestApp::new();
        let table = Arc::new(Counting {
            inner: t.app.ports.table.clone(),
            writes: AtomicUsize::new(0),
        });
        let keys = key_set();
        let mut config = (*t.app.config).clone();
        config.token_keys = Some(keys.clone());
        let mut ports = t.app.ports.clone();
        ports.table = table.clone();
        let app = App::new(ports, config);
        Self {
            t,
            app,
            table,
            keys,
        }
    }

    fn writes(&self) -> usize {
        self.table.writes.load(Ordering::SeqCst)
    }

    pub(crate) async fn send(
        &self,
        req: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let res = imagemcp_app::routes::router(self.app.clone())
            .oneshot(req)
            .await
            .expect("router");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A JSON request to the REST API, with a bearer token when given; the answer as JSON.
    pub(crate) async fn rest(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
        let (status, _, text) = self.send(b.body(body).unwrap()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Logs in through `POST /v1/auth/login` with the test password; `extra` adds fields.
    pub(crate) async fn login(&self, email: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let (Some(b), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        self.rest("POST", "/v1/auth/login", None, Some(body)).await
    }

    /// An access token of `email`'s login in `org` (the default one when `None`).
    pub(crate) async fn token(&self, email: &str, org: Option<&str>) -> String {
        let extra = org.map_or(json!({}), |o| json!({"org_id": o}));
        let (status, body) = self.login(email, extra).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Signs each `(email, role)` up, invites them to the organisation of `admin_token` with that
    /// role, and has them accept (logged in to their personal organisation, as after sign-up).
    pub(crate) async fn join(&self, admin_token: &str, people: &[(&str, &str)]) {
        for (email, role) in people {
            self.user(email).await;
            let (status, inv) = self
                .rest(
                    "POST",
                    "/v1/invitations",
                    Some(admin_token),
                    Some(json!({"email": email, "role": role})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{inv}");
            let own = self.token(email, None).await;
            let (status, joined) = self
                .rest(
                    "POST",
                    "/v1/invitations/accept",
                    Some(&own),
                    Some(json!({"token": inv["token"]})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{joined}");
        }
    }

    /// The account of an email.
    pub(crate) async fn account(&self, email: &str) -> imagemcp_app::accounts::UserRecord {
        let email = imagemcp_app::accounts::Email::parse(email).unwrap();
        self.app
            .accounts()
            .user_by_email(&email)
            .await
            .unwrap()
            .expect("an account")
    }

    pub(crate) async fn user(&self, email: &str) -> imagemcp_app::accounts::UserRecord {
        self.app
            .accounts()
            .sign_up(email, Some(PASSWORD), email.split('@').next().unwrap_or(""))
            .await
            .unwrap()
    }

    async fn grant(&self) -> Grant {
        let user = self.user("ada@example.com").await;
        Grant {
            user: user.id,
            org: user.personal_org,
            scopes: vec![Scope::ImagesRead],
            client_id: "imagemcp-rest".into(),
        }
    }

    async fn register(&self) -> String {
        let (status, _, body) = self
            .send(
                Request::post("/oauth/register")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({"redirect_uris": [REDIRECT], "client_name": "Test <Client>", "token_endpoint_auth_method": "none"})
                            .to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["client_id"].as_str().unwrap().to_owned()
    }
}

fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

fn authorize_query(client_id: &str, redirect: &str) -> String {
    serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("state", "st-123"),
        ("code_challenge", &challenge()),
        ("code_challenge_method", "S256"),
        ("scope", "images:read"),
        ("resource", &format!("{BASE}/mcp")),
    ])
    .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn cookie(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::SET_COOKIE)
        .expect("set-cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn form_post(path: &str, cookie: Option<&str>, body: String) -> Request<Body> {
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body)).unwrap()
}

/// The form fields of a page's form, with overrides.
fn fields(html: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = [
        "csrf",
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "resource",
    ]
    .iter()
    .map(|n| (n.to_string(), hidden(html, n).replace("&amp;", "&")))
    .collect();
    for (k, v) in extra {
        pairs.retain(|(n, _)| n != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    serde_urlencoded::to_string(pairs).unwrap()
}

/// Logs in through the pages; returns the consent page's HTML and the logged-in cookie.
async fn to_consent(o: &Oauth, client_id: &str) -> (String, String) {
    o.user("grace@example.com").await;
    consent_for(o, client_id, "grace@example.com").await
}

/// Logs an existing account in through the pages: the consent page's HTML and the cookie.
async fn consent_for(o: &Oauth, client_id: &str, email: &str) -> (String, String) {
    let (status, headers, html) = o
        .send(
            Request::get(format!(
                "/oauth/authorize?{}",
                authorize_query(client_id, REDIRECT)
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Test &lt;Client&gt;") && html.contains("<label for=\"password\">"));
    let anon = cookie(&headers);
    let body = fields(
        &html,
        &[
            ("action", "login"),
            ("email", email),
            ("password", PASSWORD),
        ],
    );
    let (status, headers, consent) = o
        .send(form_post("/oauth/authorize", Some(&anon), body))
        .await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    assert!(consent.contains("client.example") && consent.contains("images:read"));
    let logged_in = cookie(&headers);
    assert_ne!(logged_in, anon, "login must replace the session");
    (consent, logged_in)
}

async fn approve(o: &Oauth, consent: &str, cookie: &str) -> url::Url {
    let (status, headers, body) = o
        .send(form_post(
            "/oauth/authorize",
            Some(cookie),
            fields(consent, &[("action", "approve")]),
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn exchange(o: &Oauth, client_id: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("resource", &format!("{BASE}/mcp")),
    ])
    .unwrap();
    let (status, _, body) = o.send(form_post("/oauth/token", None, body)).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn forged_access_tokens_are_refused() {
    let o = Oauth::new();
    let grant = o.grant().await;
    let pair = o.app.sessions().issue(&grant).await.unwrap();
    let caller = o
        .app
        .sessions()
        .authenticate(&pair.access_token)
        .await
        .unwrap();
    assert_eq!(caller.scopes, vec![Scope::ImagesRead]);

    let claims: AccessClaims = {
        let payload = pair.access_token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = pair.access_token.split('.').collect();

    let mut forged = Vec::new();
    // alg none, no signature.
    forged.push(format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "current", "typ": "JWT"})),
        parts[1]
    ));
    // HS256 keyed with our public key (the classic algorithm confusion).
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("current".into());
    forged.push(
        jsonwebtoken::encode(
            &hs,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&o.keys.current().public_bytes()),
        )
        .unwrap(),
    );
    // A key we do not know, and a stranger's key under our kid.
    let stranger = KeySet::new(vec![SigningKey::from_seed("zzz", [1; 32]).unwrap()]).unwrap();
    forged.push(stranger.sign(&claims).unwrap());
    let impostor = KeySet::new(vec![SigningKey::from_seed("current", [1; 32]).unwrap()]).unwrap();
    forged.push(impostor.sign(&claims).unwrap());
    // Our key, wrong audience / issuer.
    forged.push(
        o.keys
            .sign(&AccessClaims {
                aud: "https://other.example/mcp".into(),
                ..claims.clone()
            })
            .unwrap(),
    );
    forged.push(
        o.keys
            .sign(&AccessClaims {
                iss: "https://evil.example/".into(),
                ..claims.clone()
            })
            .unwrap(),
    );
    // A tampered payload (admin scope) with the original signature.
    let mut raised = serde_json::to_value(&claims).unwrap();
    raised["scope"] = json!("admin");
    forged.push(format!("{}.{}.{}", parts[0], b64(&raised), parts[2]));
    // No kid at all.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = None;
    let no_kid: Vec<String> = o
        .keys
        .sign(&claims)
        .unwrap()
        .split('.')
        .map(str::to_owned)
        .collect();
    forged.push(format!(
        "{}.{}.{}",
        b64(&json!({"alg": "EdDSA"})),
        no_kid[1],
        no_kid[2]
    ));

    for (i, token) in forged.iter().enumerate() {
        let err = o.app.sessions().authenticate(token).await.unwrap_err();
        assert!(
            matches!(err, Error::Unauthenticated(_)),
            "forgery {i}: {err}"
        );
        let before = o.writes();
        let (status, headers, _) = o
            .send(
                Request::get("/v1/images")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "forgery {i}");
        let www = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            www.contains("error=\"invalid_token\"") && www.contains("resource_metadata="),
            "{www}"
        );
        assert_eq!(o.writes(), before, "forgery {i} wrote something");
    }

    // A token signed by the previous key still verifies (rotation), and an expired one does not.
    let rotated = KeySet::new(vec![SigningKey::from_seed("previous", [8; 32]).unwrap()]).unwrap();
    assert!(
        o.app
            .sessions()
            .authenticate(&rotated.sign(&claims).unwrap())
            .await
            .is_ok()
    );
    o.t.clock
        .advance_ms(imagemcp_app::sessions::ACCESS_TOKEN_TTL.as_millis() as i64);
    assert!(
        o.app
            .sessions()
            .authenticate(&pair.access_token)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let o = Oauth::new();
    let grant = o.grant().await;
    let first = o.app.sessions().issue(&grant).await.unwrap();
    let second = o
        .app
        .sessions()
        .refresh(&first.refresh_token, "imagemcp-rest", None)
        .await
        .unwrap();
    assert_ne!(first.refresh_token, second.refresh_token);
    assert!(
        o.app
            .sessions()
            .authenticate(&second.access_token)
            .await
            .is_ok()
    );
    // Another client cannot use it (and nothing is written).
    let before = o.writes();
    assert!(
        o.app
            .sessions()
            .refresh(&second.refresh_token, "mcp_other", None)
            .await
            .is_err()
    );
    assert_eq!(o.writes(), before);
    // The reuse of the rotated token: refused, and the family is revoked.
    let err = o
        .app
        .sessions()
        .refresh(&first.refresh_token, "imagemcp-rest", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reuse"), "{err}");
    assert!(
        o.app
            .sessions()
            .refresh(&second.refresh_token, "imagemcp-rest", None)
            .await
            .is_err()
    );
    assert!(
        o.app
            .sessions()
            .authenticate(&second.access_token)
            .await
            .is_err()
    );
    assert!(
        o.app
            .sessions()
            .authenticate(&first.access_token)
            .await
            .is_err()
    );
    // The REST surface says 401.
    let (status, _, _) = o
        .send(
            Request::post("/v1/auth/refresh")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"refresh_token": second.refresh_token}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_authorization_code_flow_end_to_end_with_its_attacks() {
    let o = Oauth::new();
    let client = o.register().await;
    let (consent, logged_in) = to_consent(&o, &client).await;

    // CSRF: a wrong token, or no session cookie at all, is refused and writes nothing.
    for (cookie, csrf) in [(Some(logged_in.as_str()), "forged"), (None, "")] {
        let before = o.writes();
        let body = fields(&consent, &[("action", "approve"), ("csrf", csrf)]);
        let (status, headers, html) = o.send(form_post("/oauth/authorize", cookie, body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(headers.get(header::LOCATION).is_none());
        assert_eq!(o.writes(), before);
    }

    let redirect = approve(&o, &consent, &logged_in).await;
    assert!(redirect.as_str().starts_with(REDIRECT));
    assert_eq!(param(&redirect, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&redirect, "iss").as_deref(), Some("http://test/"));
    let code = param(&redirect, "code").unwrap();

    // PKCE mismatch: refused, and the code is not consumed by the attempt.
    let before = o.writes();
    let (status, body) = exchange(&o, &client, &code, &format!("{VERIFIER}-wrong")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(o.writes(), before);

    let (status, tokens) = exchange(&o, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "images:read");
    // Single use.
    let (status, body) = exchange(&o, &client, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // The token works on /mcp; a tool needing a scope it lacks gets the step-up challenge.
    let access = tokens["access_token"].as_str().unwrap();
    let mcp = |body: Value| {
        Request::post("/mcp")
            .header(header::AUTHORIZATION, format!("Bearer {access}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", body["method"].as_str().unwrap())
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let (status, _, body) = o
        .send(mcp(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("openai_list_images") && !body.contains("openai_generate_image"));
    let (status, headers, _) = o
        .send(mcp(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "openai_generate_image", "arguments": {"prompt": "x"}, "_meta": meta}})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let www = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"images:write\""),
        "{www}"
    );

    // The refresh grant rotates.
    let body = serde_urlencoded::to_string([
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", &client),
    ])
    .unwrap();
    let (status, _, refreshed) = o.send(form_post("/oauth/token", None, body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, _, reused) = o.send(form_post("/oauth/token", None, body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reused.contains("invalid_grant"));
}

#[tokio::test]
async fn unregistered_and_open_redirects_get_an_error_page_never_a_redirect() {
    let o = Oauth::new();
    let client = o.register().await;
    let before = o.writes();
    for redirect in [
        "https://evil.example/cb",
        "https://client.example/cb/../evil",
        "https://client.example/cbx",
        "https://client.example/cb?next=https://evil.example",
        "https://client.example.evil.example/cb",
        "//evil.example/cb",
        "https://client.example/CB",
        "",
    ] {
        let (status, headers, html) = o
            .send(
                Request::get(format!(
                    "/oauth/authorize?{}",
                    authorize_query(&client, redirect)
                ))
                .body(Body::empty())
                .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{redirect}");
        assert!(headers.get(header::LOCATION).is_none(), "{redirect}");
        assert!(html.contains("not registered"), "{redirect}: {html}");
    }
    // An unknown client: error page too.
    let (status, headers, _) = o
        .send(
            Request::get(format!(
                "/oauth/authorize?{}",
                authorize_query("mcp_00000000000000000000000000000000", REDIRECT)
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.get(header::LOCATION).is_none());
    assert_eq!(o.writes(), before, "refused requests wrote something");

    // A registered redirect URI with a bad request (PKCE plain, wrong resource) gets the error there.
    for (name, value, error) in [
        ("code_challenge_method", "plain", "invalid_request"),
        ("resource", "https://other.example/mcp", "invalid_target"),
    ] {
        let mut q: Vec<(String, String)> =
            serde_urlencoded::from_str(&authorize_query(&client, REDIRECT)).unwrap();
        q.retain(|(k, _)| k != name);
        q.push((name.into(), value.into()));
        let (status, headers, _) = o
            .send(
                Request::get(format!(
                    "/oauth/authorize?{}",
                    serde_urlencoded::to_string(q).unwrap()
                ))
                .body(Body::empty())
                .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let to = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
        assert!(to.as_str().starts_with(REDIRECT));
        assert_eq!(param(&to, "error").as_deref(), Some(error));
        assert_eq!(param(&to, "state").as_deref(), Some("st-123"));
    }
    assert_eq!(o.writes(), before);

    // Registration refuses non-https, non-loopback redirect URIs and writes nothing.
    for uris in [
        json!(["http://evil.example/cb"]),
        json!(["javascript:alert(1)"]),
        json!([]),
    ] {
        let (status, _, body) = o
            .send(
                Request::post("/oauth/register")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json!({"redirect_uris": uris}).to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uris}");
        assert!(body.contains("invalid_redirect_uri"), "{body}");
    }
    assert_eq!(o.writes(), before);
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_write_nothing() {
    let o = Oauth::new();
    let before = o.writes();
    let big = "x".repeat(64 * 1024);
    for (path, ctype, body) in [
        (
            "/oauth/register",
            "application/json",
            format!("{{\"redirect_uris\":[\"{REDIRECT}\"],\"client_name\":\"{big}\"}}"),
        ),
        (
            "/oauth/token",
            "application/x-www-form-urlencoded",
            format!("grant_type=refresh_token&refresh_token={big}"),
        ),
        (
            "/oauth/authorize",
            "application/x-www-form-urlencoded",
            format!("csrf={big}"),
        ),
        (
            "/v1/auth/signup",
            "application/json",
            format!("{{\"email\":\"a@b.c\",\"password\":\"{big}\"}}"),
        ),
        (
            "/v1/auth/login",
            "application/json",
            format!("{{\"email\":\"a@b.c\",\"password\":\"{big}\"}}"),
        ),
    ] {
        let (status, _, _) = o
            .send(
                Request::post(path)
                    .header(header::CONTENT_TYPE, ctype)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert!(
            status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
            "{path}: {status}"
        );
    }
    assert_eq!(o.writes(), before);
}

#[tokio::test]
async fn metadata_and_the_401_challenge_point_at_each_other() {
    let o = Oauth::new();
    let (status, headers, _) = o
        .send(Request::post("/mcp").body(Body::from("{}")).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let www = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert_eq!(
        www,
        r#"Bearer resource_metadata="http://test/.well-known/oauth-protected-resource/mcp", scope="images:read images:write admin""#
    );
    let (_, _, prm) = o
        .send(
            Request::get("/.well-known/oauth-protected-resource/mcp")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let prm: Value = serde_json::from_str(&prm).unwrap();
    assert_eq!(prm["resource"], "http://test/mcp");
    assert_eq!(prm["authorization_servers"], json!(["http://test/"]));
    let (_, _, asm) = o
        .send(
            Request::get("/.well-known/oauth-authorization-server")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let asm: Value = serde_json::from_str(&asm).unwrap();
    assert_eq!(asm["issuer"], "http://test/");
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        asm["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert!(
        asm["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );

    // REST sign-up and login give a working token pair; a wrong password is generic.
    let signup = json!({"email": "Lin@Example.com", "password": "correct horse battery"});
    let (status, _, _) = o
        .send(
            Request::post("/v1/auth/signup")
                .body(Body::from(signup.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, wrong) = o
        .send(
            Request::post("/v1/auth/login")
                .body(Body::from(
                    json!({"email": "lin@example.com", "password": "nope nope nope"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    let (status2, _, unknown) = o
        .send(
            Request::post("/v1/auth/login")
                .body(Body::from(
                    json!({"email": "nobody@example.com", "password": "nope nope nope"})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, status2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        wrong, unknown,
        "a wrong password and an unknown email must read the same"
    );
    let (status, _, tokens) = o
        .send(
            Request::post("/v1/auth/login")
                .body(Body::from(signup.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let tokens: Value = serde_json::from_str(&tokens).unwrap();
    let (status, _, _) = o
        .send(
            Request::get("/v1/images")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Logout ends the access token too.
    let (status, _, _) = o
        .send(
            Request::post("/v1/auth/logout")
                .body(Body::from(
                    json!({"refresh_token": tokens["refresh_token"]}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = o
        .send(
            Request::get("/v1/images")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `tools/call` on `/mcp` (2026-07-28) with an access token; the JSON-RPC result.
async fn call_tool(o: &Oauth, token: &str, name: &str, arguments: Value) -> Value {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta}});
    let (status, _, text) = o
        .send(
            Request::post("/mcp")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", name)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["result"].clone()
}

/// Approves a consent page (asking for no scope) in `org`, and exchanges the code: the tokens.
async fn approve_in(o: &Oauth, client: &str, consent: &str, cookie: &str, org: &str) -> Value {
    let approve = fields(
        consent,
        &[("action", "approve"), ("org_id", org), ("scope", "")],
    );
    let (status, headers, html) = o
        .send(form_post("/oauth/authorize", Some(cookie), approve))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let location = url::Url::parse(headers[header::LOCATION].to_str().unwrap()).unwrap();
    let (status, tokens) = exchange(o, client, &param(&location, "code").unwrap(), VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

#[tokio::test]
async fn the_consent_page_picks_the_organisation_and_the_tokens_act_there() {
    let o = Oauth::new();
    let client = o.register().await;
    let ada = o.user("ada@example.com").await;
    let eve = o.user("eve@example.com").await;
    let ada_token = o.token("ada@example.com", None).await;
    let ada_caller = o.app.sessions().authenticate(&ada_token).await.unwrap();
    o.join(&ada_token, &[("grace@example.com", "creator")])
        .await;
    let grace = o.account("grace@example.com").await;
    let (team_org, personal) = (ada.personal_org.to_string(), grace.personal_org.to_string());

    // The picker is a real form control listing both of Grace's organisations with her role in
    // each; the one she joined last is preselected.
    let (consent, cookie) = consent_for(&o, &client, "grace@example.com").await;
    assert!(
        consent.contains("<select id=\"org_id\" name=\"org_id\">"),
        "{consent}"
    );
    assert!(consent.contains(&format!("<option value=\"{team_org}\" selected>")));
    assert!(consent.contains(&format!("<option value=\"{personal}\">")));
    assert!(consent.contains("(creator)</option>") && consent.contains("(admin)</option>"));
    assert!(
        !consent.contains(&eve.personal_org.to_string()),
        "only her own organisations"
    );

    // An organisation she is not in, and one that does not exist: the same refusal, no code.
    let mut refusals = Vec::new();
    for org in [
        eve.personal_org.to_string(),
        "org_00000000000000000000000000000000".into(),
    ] {
        let before = o.writes();
        let (status, headers, html) = o
            .send(form_post(
                "/oauth/authorize",
                Some(&cookie),
                fields(&consent, &[("action", "approve"), ("org_id", &org)]),
            ))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(headers.get(header::LOCATION).is_none());
        assert_eq!(o.writes(), before, "a refused approval wrote something");
        refusals.push(html);
    }
    assert_eq!(refusals[0], refusals[1], "no existence oracle");

    // She picks her personal organisation, where she is admin: asking for no scope gets all
    // that role allows there.
    let tokens = approve_in(&o, &client, &consent, &cookie, &personal).await;
    assert_eq!(tokens["org_id"], json!(personal));
    assert_eq!(tokens["scope"], "images:read images:write admin");

    // Then the team's organisation, where she is a creator: the same request is capped there.
    let (consent, cookie) = consent_for(&o, &client, "grace@example.com").await;
    assert!(
        consent.contains(&format!("<option value=\"{personal}\" selected>")),
        "the last one used is preselected"
    );
    let tokens = approve_in(&o, &client, &consent, &cookie, &team_org).await;
    assert_eq!(tokens["org_id"], json!(team_org));
    assert_eq!(tokens["scope"], "images:read images:write");

    // The token acts in the team's organisation: whoami says so, and her image lands there.
    let access = tokens["access_token"].as_str().unwrap();
    let me = call_tool(&o, access, "openai_whoami", json!({})).await;
    assert_eq!(me["isError"], json!(false), "{me}");
    let me = &me["structuredContent"];
    assert_eq!(
        (
            me["user_id"].as_str(),
            me["org_id"].as_str(),
            me["role"].as_str()
        ),
        (
            Some(grace.id.as_str()),
            Some(team_org.as_str()),
            Some("creator")
        )
    );
    let made = call_tool(
        &o,
        access,
        "openai_generate_image",
        json!({"prompt": "a kite"}),
    )
    .await;
    assert_eq!(made["isError"], json!(false), "{made}");
    let listed = o
        .app
        .images()
        .list(
            &ada_caller,
            &imagemcp_app::images::params::ListArgs::default(),
        )
        .await
        .unwrap()
        .0;
    assert_eq!(
        listed.len(),
        1,
        "the image is in the organisation she chose"
    );

    // The refresh grant keeps the organisation.
    let body = serde_urlencoded::to_string([
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", &client),
    ])
    .unwrap();
    let (status, _, refreshed) = o.send(form_post("/oauth/token", None, body)).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let refreshed: Value = serde_json::from_str(&refreshed).unwrap();
    assert_eq!(refreshed["org_id"], json!(team_org));
    let me = call_tool(
        &o,
        refreshed["access_token"].as_str().unwrap(),
        "openai_whoami",
        json!({}),
    )
    .await;
    assert_eq!(me["structuredContent"]["org_id"], json!(team_org));
}
