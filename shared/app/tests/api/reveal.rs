//! One-time reveal links: a key or invitation token made over MCP is in no result, in either era,
//! with or without URL-mode elicitation; its link (`/reveal/{token}`) shows it once, only to the
//! person it was made for signed in with their browser, for ten minutes.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use imagemcp_app::auth::Caller;
use imagemcp_app::mcp::McpBody;
use imagemcp_app::sessions::browser::{BrowserSession, BrowserSessions};
use imagemcp_core::ids::UserId;
use imagemcp_core::rbac::{Role, Scope};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::TestApp;
use crate::mcp_tasks::{call, post_in_session, session};

/// A person with an account (no password: their browser session is made directly) as an admin
/// of their own organisation.
async fn person(t: &TestApp, email: &str, password: Option<&str>) -> Caller {
    let user = t
        .app
        .accounts()
        .sign_up(email, password, "Ann")
        .await
        .unwrap();
    TestApp::caller_as(
        user.personal_org.as_str(),
        user.id.as_str(),
        Role::Admin,
        &[Scope::Admin],
    )
}

async fn browser(t: &TestApp, user: &UserId) -> BrowserSession {
    BrowserSessions::new(&t.app.identity)
        .create(Some(user))
        .await
        .unwrap()
}

struct Page {
    status: StatusCode,
    headers: http::HeaderMap,
    html: String,
}

impl Page {
    fn csrf(&self) -> String {
        let start = self.html.find("name=\"csrf\" value=\"").expect("a form") + 19;
        self.html[start..start + 64].to_owned()
    }

    fn secret(&self) -> Option<String> {
        let start = self.html.find("<code id=\"secret\">")? + 18;
        let len = self.html[start..].find("</code>")?;
        Some(self.html[start..start + len].to_owned())
    }

    fn cookie(&self) -> Option<String> {
        let set = self.headers.get(header::SET_COOKIE)?.to_str().ok()?;
        Some(set.split(';').next()?.to_owned())
    }
}

async fn page(t: &TestApp, path: &str, cookie: Option<&str>, form: Option<String>) -> Page {
    let mut req = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let req = match form {
        Some(form) => req
            .method("POST")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form)),
        None => req.method("GET").body(Body::empty()),
    }
    .unwrap();
    let resp = imagemcp_app::routes::router(t.app.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    Page {
        status,
        headers,
        html: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn cookie_of(s: &BrowserSession) -> String {
    format!("{}={}", imagemcp_app::sessions::browser::COOKIE, s.cookie)
}

async fn get_as(t: &TestApp, path: &str, s: &BrowserSession) -> Page {
    page(t, path, Some(&cookie_of(s)), None).await
}

async fn reveal_as(t: &TestApp, path: &str, s: &BrowserSession) -> Page {
    let form = format!("csrf={}&action=reveal", s.csrf);
    page(t, path, Some(&cookie_of(s)), Some(form)).await
}

/// The path of a reveal URL on the test server.
fn path_of(url: &str) -> String {
    url.strip_prefix("http://test")
        .expect("a link to this server")
        .to_owned()
}

/// A tool call on 2026-07-28 declaring `caps`; the JSON-RPC message back.
async fn tool(t: &TestApp, caller: &Caller, name: &str, args: Value, caps: Value) -> Value {
    let (status, msg) = call(
        &t.app,
        caller,
        "tools/call",
        json!({"name": name, "arguments": args}),
        caps,
    )
    .await;
    assert_eq!(status, 200, "{msg}");
    msg
}

async fn key_count(t: &TestApp, caller: &Caller) -> usize {
    t.app.keys().list(&caller.user).await.unwrap().len()
}

#[tokio::test]
async fn a_key_made_over_mcp_is_in_no_result_and_its_link_shows_it_once_to_its_maker() {
    let t = TestApp::on_disk();
    let ann = person(&t, "ann@example.com", None).await;
    let msg = tool(
        &t,
        &ann,
        "openai_create_api_key",
        json!({"label": "ci"}),
        json!({}),
    )
    .await;
    let result = &msg["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["isError"], false, "{result}");
    let view = &result["structuredContent"];
    assert!(view.get("key").is_none(), "{view}");
    assert_eq!(view["shown_via"], "link");
    assert_eq!(view["label"], "ci");
    let url = view["reveal_url"].as_str().unwrap();
    assert!(url.starts_with("http://test/reveal/"), "{url}");
    assert_eq!(
        view["expires_at"].as_i64(),
        Some(1_795_478_400 + 600),
        "ten minutes"
    );
    let text = result["content"].to_string();
    assert!(text.contains(url), "the link is in the text: {text}");
    let path = path_of(url);

    // No session: a sign-in form (and a new session cookie), nothing revealed.
    let anonymous = page(&t, &path, None, None).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.html.contains("Sign in"), "{}", anonymous.html);
    assert!(anonymous.cookie().is_some());
    assert_eq!(anonymous.secret(), None);
    // Its maker's session: a button; the GET itself reveals nothing.
    let mine = browser(&t, &ann.user).await;
    let ready = get_as(&t, &path, &mine).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.html.contains("Show it now"), "{}", ready.html);
    assert_eq!(ready.secret(), None);
    // Another person's session: refused, and the link still waits for its maker.
    let bob = browser(&t, &UserId::parse("usr_bob").unwrap()).await;
    assert_eq!(get_as(&t, &path, &bob).await.status, StatusCode::FORBIDDEN);
    let refused = reveal_as(&t, &path, &bob).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.secret(), None);
    // A form from elsewhere (no CSRF token of the session) does nothing.
    let forged = page(
        &t,
        &path,
        Some(&cookie_of(&mine)),
        Some("action=reveal".into()),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let shown = reveal_as(&t, &path, &mine).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(shown.headers[name], value, "{name}");
    }
    let secret = shown.secret().expect("the key, once");
    let owner = t
        .app
        .keys()
        .authenticate(&secret)
        .await
        .expect("a live key");
    assert_eq!(owner.user, ann.user);
    assert!(!msg.to_string().contains(&secret), "never in the result");

    // Once: a second reveal, or another look, finds nothing.
    assert_eq!(reveal_as(&t, &path, &mine).await.status, StatusCode::GONE);
    let again = get_as(&t, &path, &mine).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.secret(), None);
    // A forged token is not ours.
    let (id, _) = path.rsplit_once('.').unwrap();
    let tampered = format!("{id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        get_as(&t, &tampered, &mine).await.status,
        StatusCode::NOT_FOUND
    );
    // Sealed while it waited, overwritten once deleted: nowhere in the database file in clear.
    for file in ["table.db", "table.db-wal"] {
        if let Ok(raw) = std::fs::read(t.dir.path().join(file)) {
            let found = raw.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "the key is in {file} in clear");
        }
    }
}

#[tokio::test]
async fn a_link_stops_working_after_ten_minutes() {
    let t = TestApp::new();
    let ann = person(&t, "ann@example.com", None).await;
    let msg = tool(&t, &ann, "openai_create_api_key", json!({}), json!({})).await;
    let path = path_of(
        msg["result"]["structuredContent"]["reveal_url"]
            .as_str()
            .unwrap(),
    );
    let mine = browser(&t, &ann.user).await;
    t.clock.advance_ms(599_000);
    assert_eq!(get_as(&t, &path, &mine).await.status, StatusCode::OK);
    t.clock.advance_ms(1_000);
    assert_eq!(get_as(&t, &path, &mine).await.status, StatusCode::GONE);
    let late = reveal_as(&t, &path, &mine).await;
    assert_eq!(late.status, StatusCode::GONE);
    assert_eq!(late.secret(), None);
}

#[tokio::test]
async fn the_page_signs_the_person_in_then_reveals() {
    let t = TestApp::new();
    let password = "reveal-page-password-1";
    let ann = person(&t, "ann@example.com", Some(password)).await;
    let made = t
        .app
        .keys()
        .create(
            &ann.user,
            &ann.org,
            imagemcp_app::auth::KeySpec::full("old"),
        )
        .await
        .unwrap();
    let msg = tool(
        &t,
        &ann,
        "openai_rotate_api_key",
        json!({"key_id": made.record.id.to_string()}),
        json!({}),
    )
    .await;
    let view = &msg["result"]["structuredContent"];
    assert!(view.get("key").is_none(), "{view}");
    assert_ne!(view["key_id"], json!(made.record.id.to_string()));
    let path = path_of(view["reveal_url"].as_str().unwrap());

    let first = page(&t, &path, None, None).await;
    let cookie = first.cookie().unwrap();
    let wrong = format!(
        "csrf={}&action=login&email=ann%40example.com&password=wrong-password-1",
        first.csrf()
    );
    let refused = page(&t, &path, Some(&cookie), Some(wrong)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let login = format!(
        "csrf={}&action=login&email=ann%40example.com&password={password}",
        first.csrf()
    );
    let signed_in = page(&t, &path, Some(&cookie), Some(login)).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.html);
    assert!(signed_in.html.contains("Show it now"));
    let cookie = signed_in.cookie().expect("a new session after login");
    let form = format!("csrf={}&action=reveal", signed_in.csrf());
    let shown = page(&t, &path, Some(&cookie), Some(form)).await;
    let secret = shown.secret().expect("the rotated key");
    assert_eq!(
        t.app.keys().authenticate(&secret).await.unwrap().user,
        ann.user
    );
    assert_ne!(secret, made.secret);
}

#[tokio::test]
async fn a_2026_client_with_url_elicitation_is_shown_the_link_and_its_retry_makes_no_second_key() {
    let t = TestApp::new();
    let ann = person(&t, "ann@example.com", None).await;
    let caps = json!({"elicitation": {"form": {}, "url": {}}});
    let args = json!({"label": "deploy"});
    let asked = tool(
        &t,
        &ann,
        "openai_create_api_key",
        args.clone(),
        caps.clone(),
    )
    .await;
    let asked = &asked["result"];
    assert_eq!(asked["resultType"], "input_required", "{asked}");
    assert!(asked.get("structuredContent").is_none());
    let request = &asked["inputRequests"]["reveal"];
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "url");
    let url = request["params"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://test/reveal/"));
    assert!(
        request["params"]["message"]
            .as_str()
            .unwrap()
            .contains("key")
    );
    let state = asked["requestState"].clone();
    assert_eq!(key_count(&t, &ann).await, 1);

    let retry = |responses: Value| {
        json!({"name": "openai_create_api_key", "arguments": args.clone(),
               "requestState": state.clone(), "inputResponses": responses})
    };
    // Another caller cannot use the state.
    let bob = TestApp::caller_as(ann.org.as_str(), "usr_bob", Role::Admin, &[Scope::Admin]);
    let (status, err) = call(
        &t.app,
        &bob,
        "tools/call",
        retry(json!({"reveal": {"action": "accept"}})),
        caps.clone(),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    let (status, done) = call(
        &t.app,
        &ann,
        "tools/call",
        retry(json!({"reveal": {"action": "accept"}})),
        caps.clone(),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let done = &done["result"];
    assert_eq!(done["resultType"], "complete");
    assert_eq!(done["structuredContent"]["shown_via"], "url_elicitation");
    assert_eq!(done["structuredContent"]["reveal_url"], json!(url));
    assert!(done["structuredContent"].get("key").is_none());
    assert!(
        done["content"][1]["text"]
            .as_str()
            .unwrap()
            .contains("shown to you once on the page your client opened")
    );
    assert_eq!(key_count(&t, &ann).await, 1, "the retry made no second key");
    // Replayed: refused.
    let (status, err) = call(
        &t.app,
        &ann,
        "tools/call",
        retry(json!({"reveal": {"action": "accept"}})),
        caps,
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_i64()), (400, Some(-32602)));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );

    let shown = reveal_as(&t, &path_of(&url), &browser(&t, &ann.user).await).await;
    let secret = shown.secret().expect("the key");
    assert!(!asked.to_string().contains(&secret));
    assert!(!done.to_string().contains(&secret));
}

#[tokio::test]
async fn a_handshake_client_with_url_elicitation_gets_elicitation_create_in_url_mode() {
    let t = TestApp::new();
    let ann = person(&t, "ann@example.com", None).await;
    let sid = session(&t.app, &ann, json!({"elicitation": {"url": {}}})).await;
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "openai_create_api_key", "arguments": {}}});
    let McpBody::Stream(mut stream) = post_in_session(&t.app, &ann, &sid, call.clone()).await
    else {
        panic!("the link is shown on the call's stream")
    };
    let request = stream.next().await.expect("the elicitation request");
    assert_eq!(request["method"], "elicitation/create");
    let params = &request["params"];
    assert_eq!(params["mode"], "url");
    assert!(
        params["elicitationId"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    let url = params["url"].as_str().unwrap().to_owned();
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept"}});
    assert!(matches!(
        post_in_session(&t.app, &ann, &sid, answer).await,
        McpBody::Empty
    ));
    let last = stream.next().await.expect("the result");
    assert_eq!(last["id"], 4);
    let view = &last["result"]["structuredContent"];
    assert_eq!(view["shown_via"], "url_elicitation");
    assert_eq!(view["reveal_url"], json!(url));
    assert!(view.get("key").is_none());
    assert!(stream.next().await.is_none());

    // A client that declared form mode only gets the link in the result.
    let sid = session(&t.app, &ann, json!({"elicitation": {}})).await;
    let McpBody::Json(plain) = post_in_session(&t.app, &ann, &sid, call).await else {
        panic!("no elicitation without the url capability")
    };
    assert_eq!(plain["result"]["structuredContent"]["shown_via"], "link");
    assert!(plain["result"]["structuredContent"].get("key").is_none());
    let secret = reveal_as(&t, &path_of(&url), &browser(&t, &ann.user).await)
        .await
        .secret()
        .unwrap();
    assert!(!last.to_string().contains(&secret));
}

#[tokio::test]
async fn an_invitation_token_over_mcp_is_behind_a_link_and_joins_the_invitee() {
    let t = TestApp::new();
    let ann = person(&t, "ann@example.com", None).await;
    let msg = tool(
        &t,
        &ann,
        "openai_invite_member",
        json!({"email": "cat@example.com", "role": "creator"}),
        json!({}),
    )
    .await;
    let view = &msg["result"]["structuredContent"];
    assert!(view.get("token").is_none(), "{view}");
    assert!(view["invitation_expires_at"].as_i64().unwrap() > view["expires_at"].as_i64().unwrap());
    let path = path_of(view["reveal_url"].as_str().unwrap());
    let shown = reveal_as(&t, &path, &browser(&t, &ann.user).await).await;
    assert!(shown.html.contains("cat@example.com"), "{}", shown.html);
    let token = shown.secret().expect("the invitation token");
    assert!(!msg.to_string().contains(&token));

    let cat = person(&t, "cat@example.com", None).await;
    let joined = imagemcp_app::manage::Manage::new(&t.app)
        .accept(
            &cat,
            serde_json::from_value(json!({"token": token})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(joined.user_id, cat.user.to_string());
}
