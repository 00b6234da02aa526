//! Accounts, roles and API keys on the local adapters.

use std::time::Duration;

use imagemcp_app::auth::KeySpec;
use imagemcp_app::images::params::ListArgs;
use imagemcp_core::Error;
use imagemcp_core::rbac::{Role, Scope};
use serde_json::json;

use axum::http::StatusCode;

use crate::helpers::{TestApp, people};
use crate::oauth::Oauth;

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_make_one_account() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let attempts = (0..8).map(|i| {
        accounts.sign_up(
            if i % 2 == 0 {
                "Ada@Example.com"
            } else {
                " ada@example.COM"
            },
            Some("a long password"),
            "Ada",
        )
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::Conflict(_)))
    );
    let user = results.into_iter().find_map(Result::ok).unwrap();
    let org = t
        .app
        .accounts()
        .org(&user.personal_org)
        .await
        .unwrap()
        .expect("personal org");
    let member = t
        .app
        .accounts()
        .membership(&org.id, &user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member.role_in(&org.default_team), Some(Role::Admin));
    assert!(user.password_hash.unwrap().starts_with("$argon2id$"));
}

#[tokio::test]
async fn roles_change_and_the_last_admin_stays() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let [ada, bob] = people(&t.app, ["Ada", "Bob"]).await;
    let org = accounts.org(&ada.personal_org).await.unwrap().unwrap();
    let err = accounts
        .set_role(&org.id, &org.default_team, &ada.id, Role::Viewer)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(_)),
        "the only admin cannot demote themself: {err}"
    );
    accounts
        .set_role(&org.id, &org.default_team, &bob.id, Role::Creator)
        .await
        .unwrap();
    assert_eq!(accounts.members(&org.id).await.unwrap().len(), 2);
    assert!(accounts.orgs_of(&bob.id).await.unwrap().contains(&org.id));
    accounts.remove_member(&org.id, &bob.id).await.unwrap();
    assert!(
        accounts
            .membership(&org.id, &bob.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!accounts.orgs_of(&bob.id).await.unwrap().contains(&org.id));
    assert!(matches!(
        accounts.remove_member(&org.id, &ada.id).await,
        Err(Error::Conflict(_))
    ));
}

#[tokio::test]
async fn invitations_work_once_and_only_for_the_invited_email() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let [ada, bob, eve] = people(&t.app, ["Ada", "Bob", "Eve"]).await;
    let org = accounts.org(&ada.personal_org).await.unwrap().unwrap();
    let invitations = imagemcp_app::accounts::invitations::Invitations::new(&t.app.ports);
    let invite = invitations
        .invite(
            &org.id,
            &org.default_team,
            "BOB@example.com",
            Role::Reviewer,
        )
        .await
        .unwrap();
    assert!(
        !format!("{invite:?}").contains(&invite.token),
        "Debug hides the token"
    );
    assert!(matches!(
        invitations.accept(&invite.token, &eve.id).await,
        Err(Error::Forbidden(_))
    ));
    let member = invitations.accept(&invite.token, &bob.id).await.unwrap();
    assert_eq!(member.role_in(&org.default_team), Some(Role::Reviewer));
    assert!(
        matches!(
            invitations.accept(&invite.token, &bob.id).await,
            Err(Error::NotFound { .. })
        ),
        "used once"
    );
}

#[tokio::test]
async fn keys_carry_scopes_expire_rotate_and_revoke() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let ada = accounts
        .sign_up("ada@example.com", Some("a long password"), "Ada")
        .await
        .unwrap();
    let org = ada.personal_org.clone();
    let keys = t.app.keys();

    let read_only = keys
        .create(
            &ada.id,
            &org,
            KeySpec {
                label: "ro".into(),
                scopes: vec![Scope::ImagesRead],
                team: None,
                expires_in: None,
            },
        )
        .await
        .unwrap();
    let caller = keys.authenticate(&read_only.secret).await.unwrap();
    assert_eq!(
        (caller.role, caller.scopes.clone()),
        (Role::Admin, vec![Scope::ImagesRead])
    );
    let err = t
        .app
        .images()
        .generate(
            &caller,
            imagemcp_app::images::params::parse_args(json!({"prompt": "a fox"})).unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("images:write")),
        "{err}"
    );
    assert!(
        t.app
            .images()
            .list(&caller, &ListArgs::default())
            .await
            .is_ok()
    );

    let short = keys
        .create(
            &ada.id,
            &org,
            KeySpec {
                label: "short".into(),
                scopes: vec![Scope::Admin],
                team: None,
                expires_in: Some(Duration::from_secs(60)),
            },
        )
        .await
        .unwrap();
    assert!(keys.authenticate(&short.secret).await.is_ok());
    t.clock.advance_ms(61_000);
    assert!(
        matches!(
            keys.authenticate(&short.secret).await,
            Err(Error::Unauthenticated(_))
        ),
        "expired"
    );

    let full = keys
        .create(&ada.id, &org, KeySpec::full("ci"))
        .await
        .unwrap();
    let rotated = keys.rotate(&ada.id, &full.id).await.unwrap();
    assert!(
        keys.authenticate(&full.secret).await.is_ok(),
        "the old key works during the grace period"
    );
    assert!(keys.authenticate(&rotated.secret).await.is_ok());
    assert!(
        matches!(
            keys.rotate(&ada.id, &full.id).await,
            Err(Error::Conflict(_))
        ),
        "rotated once"
    );
    t.clock
        .advance_ms(imagemcp_app::auth::ROTATION_GRACE.as_millis() as i64 + 1);
    assert!(
        keys.authenticate(&full.secret).await.is_err(),
        "the grace period ended"
    );
    assert!(keys.authenticate(&rotated.secret).await.is_ok());

    let listed = keys.list(&ada.id).await.unwrap();
    let entry = listed.iter().find(|k| k.id == rotated.id).unwrap();
    assert!(entry.last_used_at_ms.is_some(), "last use recorded");
    keys.revoke(&ada.id, &rotated.id).await.unwrap();
    assert!(
        keys.authenticate(&rotated.secret).await.is_err(),
        "revoked at once"
    );
    assert!(keys.authenticate("imk_zzzzzzzzzzzz_nope").await.is_err());
    assert!(
        keys.authenticate(&format!("{}x", read_only.secret))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_demoted_or_removed_member_loses_the_power_of_their_keys() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let [ada, bob] = people(&t.app, ["Ada", "Bob"]).await;
    let org = accounts.org(&ada.personal_org).await.unwrap().unwrap();
    accounts
        .set_role(&org.id, &org.default_team, &bob.id, Role::Creator)
        .await
        .unwrap();
    let key = t
        .app
        .keys()
        .create(&bob.id, &org.id, KeySpec::full("bob"))
        .await
        .unwrap();
    assert_eq!(
        t.app.keys().authenticate(&key.secret).await.unwrap().role,
        Role::Creator
    );
    accounts
        .set_role(&org.id, &org.default_team, &bob.id, Role::Viewer)
        .await
        .unwrap();
    let caller = t.app.keys().authenticate(&key.secret).await.unwrap();
    assert_eq!(caller.role, Role::Viewer);
    assert!(!caller.may(imagemcp_core::rbac::Action::Generate));
    accounts.remove_member(&org.id, &bob.id).await.unwrap();
    assert!(t.app.keys().authenticate(&key.secret).await.is_err());
}

#[tokio::test]
async fn creators_delete_their_own_images_only_and_viewers_see_fewer_tools() {
    let t = TestApp::new();
    let admin = TestApp::caller_as("org_a", "usr_admin", Role::Admin, &[Scope::Admin]);
    let ann = TestApp::caller_as("org_a", "usr_ann", Role::Creator, &[Scope::Admin]);
    let viewer = TestApp::caller_as("org_a", "usr_vic", Role::Viewer, &[Scope::Admin]);
    let args = |p: &str| imagemcp_app::images::params::parse_args(json!({"prompt": p})).unwrap();
    let by_admin = t
        .app
        .images()
        .generate(&admin, args("an admin's chart"), None)
        .await
        .unwrap()
        .images[0]
        .id
        .clone();
    let by_ann = t
        .app
        .images()
        .generate(&ann, args("ann's sketch"), None)
        .await
        .unwrap()
        .images[0]
        .id
        .clone();
    assert!(matches!(
        t.app.images().delete(&ann, &by_admin).await,
        Err(Error::Forbidden(_))
    ));
    assert!(t.app.images().delete(&ann, &by_ann).await.is_ok());
    assert!(matches!(
        t.app.images().generate(&viewer, args("x"), None).await,
        Err(Error::Forbidden(_))
    ));
    assert!(t.app.images().get(&viewer, &by_admin).await.is_ok());
    let names = |c| {
        imagemcp_app::mcp::tools::list(c)
            .into_iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&viewer),
        [
            "openai_list_images",
            "openai_get_image",
            "openai_list_conversations",
            "openai_get_job",
            // Data-subject rights and joining by invitation are every member's.
            "openai_export_user_data",
            "openai_delete_user_data",
            "openai_accept_invitation",
            // Who they are and which teams there are: every member's too.
            "openai_whoami",
            "openai_list_teams",
        ]
    );
    assert_eq!(names(&admin).len(), 31);
}

#[tokio::test]
async fn every_login_attempt_is_audited_without_naming_the_person() {
    use imagemcp_core::table::{Query, Table};
    let t = TestApp::new();
    let ada = t
        .app
        .accounts()
        .sign_up("ada@example.com", Some("a long password"), "Ada")
        .await
        .unwrap();
    let sessions = imagemcp_app::sessions::Sessions::new(&t.app.identity);
    assert!(
        sessions
            .password_login("ada@example.com", "wrong password!", "198.51.100.7")
            .await
            .is_err()
    );
    assert!(
        sessions
            .password_login("ada@example.com", "a long password", "198.51.100.7")
            .await
            .is_ok()
    );
    assert!(
        sessions
            .password_login("nobody@example.com", "whatever pass", "198.51.100.7")
            .await
            .is_err()
    );
    let entries = |pk: String| {
        let table = t.table.clone();
        async move {
            let page = table.query(&Query::new(pk, "AUDIT#", 100)).await.unwrap();
            page.items
                .iter()
                .map(|i| {
                    (
                        i.str("action").unwrap().to_owned(),
                        i.str("outcome").unwrap().to_owned(),
                        i.str("actor").unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let org = entries(format!("ORG#{}", ada.personal_org)).await;
    let logins: Vec<_> = org
        .iter()
        .filter(|(a, _, _)| a == "auth.login")
        .map(|(_, o, _)| o.as_str())
        .collect();
    assert_eq!(logins, ["failure", "success"]);
    let unknown = entries("SYSTEM#logins".into()).await;
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].1, "failure");
    assert!(
        unknown[0].2.starts_with("email_") && !unknown[0].2.contains("nobody"),
        "{:?}",
        unknown[0]
    );
}

#[tokio::test]
async fn an_invited_member_logs_in_to_the_organisation_they_joined_and_acts_there() {
    let o = Oauth::new();
    let ada = o.user("ada@example.com").await;
    let eve = o.user("eve@example.com").await;
    let team_org = ada.personal_org.to_string();
    let ada_token = o.token("ada@example.com", None).await;
    o.join(&ada_token, &[("bob@example.com", "creator")]).await;
    let bob = o.account("bob@example.com").await;

    // Joining made the team's organisation Bob's last used one: a plain login acts there.
    let (status, tokens) = o.login("bob@example.com", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["org_id"], json!(team_org));
    assert_eq!(tokens["scope"], "images:read images:write");
    let bob_there = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, made) = o
        .rest(
            "POST",
            "/v1/images",
            Some(&bob_there),
            Some(json!({"prompt": "a team poster"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (_, listed) = o.rest("GET", "/v1/images", Some(&ada_token), None).await;
    assert_eq!(
        listed["images"][0]["id"], made["images"][0]["id"],
        "Bob's image is in the organisation he joined"
    );

    // He picks his personal organisation; that becomes the default until he picks again.
    let (_, home) = o
        .login(
            "bob@example.com",
            json!({"org_id": bob.personal_org.to_string()}),
        )
        .await;
    assert_eq!(home["org_id"], json!(bob.personal_org.to_string()));
    assert_eq!(home["scope"], "images:read images:write admin");
    let (_, again) = o.login("bob@example.com", json!({})).await;
    assert_eq!(again["org_id"], json!(bob.personal_org.to_string()));

    // Whoami (REST and tool alike) names him, the organisation the token acts in, and both of
    // his organisations with his teams and roles.
    let (status, me) = o.rest("GET", "/v1/me", Some(&bob_there), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user_id"], json!(bob.id.to_string()));
    assert_eq!(me["email"], "bob@example.com");
    assert_eq!(me["name"], "bob");
    assert_eq!(
        (&me["org_id"], &me["role"]),
        (&json!(team_org), &json!("creator"))
    );
    assert_eq!(me["scopes"], json!(["images:read", "images:write"]));
    let orgs = me["organisations"].as_array().unwrap();
    assert_eq!(orgs.len(), 2, "{me}");
    let there = orgs
        .iter()
        .find(|x| x["org_id"] == json!(team_org))
        .unwrap();
    assert_eq!(
        (&there["role"], &there["current"], &there["personal"]),
        (&json!("creator"), &json!(true), &json!(false))
    );
    assert_eq!(there["teams"][0]["name"], "General");
    assert_eq!(there["teams"][0]["role"], "creator");
    let caller = o.app.sessions().authenticate(&bob_there).await.unwrap();
    let tool =
        imagemcp_app::mcp::tools::call(&o.app, &caller, "openai_whoami", json!({}), None).await;
    assert_eq!(tool.structured_content.as_ref(), Some(&me));

    // An organisation he is not in and one that does not exist read alike; the password is
    // checked first, so a stranger learns nothing about either.
    let (s1, not_his) = o
        .login(
            "bob@example.com",
            json!({"org_id": eve.personal_org.to_string()}),
        )
        .await;
    let (s2, nowhere) = o
        .login(
            "bob@example.com",
            json!({"org_id": "org_00000000000000000000000000000000"}),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(not_his["error"]["code"], nowhere["error"]["code"]);
    let (s3, wrong) = o
        .rest(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "bob@example.com", "password": "wrong password!", "org_id": eve.personal_org.to_string()})),
        )
        .await;
    assert_eq!(s3, StatusCode::UNAUTHORIZED, "{wrong}");
    let (s4, bad) = o.login("bob@example.com", json!({"org_id": "acme"})).await;
    assert_eq!(
        (s4, &bad["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("org_id"))
    );

    // The refresh token keeps the organisation, and stops working once he is removed from it.
    let (status, refreshed) = o
        .rest(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": tokens["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["org_id"], json!(team_org));
    let (_, me) = o
        .rest(
            "GET",
            "/v1/me",
            Some(refreshed["access_token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(me["org_id"], json!(team_org));
    let (_, last) = o
        .login("bob@example.com", json!({"org_id": team_org}))
        .await;
    assert_eq!(last["org_id"], json!(team_org));
    let (status, _) = o
        .rest(
            "DELETE",
            &format!("/v1/members/{}", bob.id),
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = o
        .rest(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refreshed["refresh_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Removed, his last used organisation is no longer his: a login falls back to his own.
    let (status, _) = o
        .login("bob@example.com", json!({"org_id": team_org}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, fallback) = o.login("bob@example.com", json!({})).await;
    assert_eq!(fallback["org_id"], json!(bob.personal_org.to_string()));
}

#[tokio::test]
async fn default_scopes_follow_the_role_in_each_organisation() {
    let o = Oauth::new();
    let ada = o.user("ada@example.com").await;
    let org = ada.personal_org.to_string();
    // A sign-up's first token is its admin's: every scope, and the admin tools.
    let (_, first) = o.login("ada@example.com", json!({})).await;
    assert_eq!(first["scope"], "images:read images:write admin");
    let ada_token = first["access_token"].as_str().unwrap().to_owned();
    let admin = o.app.sessions().authenticate(&ada_token).await.unwrap();
    let tools: Vec<String> = imagemcp_app::mcp::tools::list(&admin)
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for admin_tool in [
        "openai_list_members",
        "openai_view_audit_log",
        "openai_rename_team",
    ] {
        assert!(
            tools.iter().any(|t| t == admin_tool),
            "{admin_tool}: {tools:?}"
        );
    }
    o.join(
        &ada_token,
        &[
            ("cat@example.com", "creator"),
            ("rey@example.com", "reviewer"),
            ("vic@example.com", "viewer"),
        ],
    )
    .await;

    for (email, role, want) in [
        (
            "ada@example.com",
            "admin",
            vec!["images:read", "images:write", "admin"],
        ),
        (
            "cat@example.com",
            "creator",
            vec!["images:read", "images:write"],
        ),
        (
            "rey@example.com",
            "reviewer",
            vec!["images:read", "images:write"],
        ),
        ("vic@example.com", "viewer", vec!["images:read"]),
    ] {
        // A login naming no scope gets the role's; one asking for more is capped; an explicit
        // scope narrows.
        let (_, t) = o.login(email, json!({"org_id": org})).await;
        assert_eq!(t["scope"], want.join(" "), "{role}");
        let (_, asked) = o
            .login(email, json!({"org_id": org, "scope": "admin"}))
            .await;
        assert_eq!(asked["scope"], want.join(" "), "{role}: capped");
        let (_, narrow) = o
            .login(email, json!({"org_id": org, "scope": "images:read"}))
            .await;
        assert_eq!(narrow["scope"], "images:read", "{role}: narrowed");
        let caller = o
            .app
            .sessions()
            .authenticate(t["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(caller.role.as_str(), role);
        assert_eq!(Scope::join(&caller.scopes), want.join(" "));

        // A key an admin issues with `admin` carries, and lists, what the role can use.
        let user = o.account(email).await;
        let (status, issued) = o
            .rest(
                "POST",
                &format!("/v1/members/{}/keys", user.id),
                Some(&ada_token),
                Some(json!({"scopes": "admin"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        assert_eq!(issued["scopes"], json!(want), "{role}");
        let key_caller = o
            .app
            .keys()
            .authenticate(issued["key"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(Scope::join(&key_caller.scopes), want.join(" "), "{role}");
        if role != "viewer" {
            // Their own key without scopes: theirs; their listing shows what each key can do.
            let (status, own) = o
                .rest(
                    "POST",
                    "/v1/keys",
                    t["access_token"].as_str(),
                    Some(json!({"label": "mine"})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{own}");
            assert_eq!(own["scopes"], json!(want), "{role}");
            let (_, listed) = o
                .rest("GET", "/v1/keys", t["access_token"].as_str(), None)
                .await;
            for key in listed["keys"].as_array().unwrap() {
                assert_eq!(key["scopes"], json!(want), "{role}: {key}");
            }
            // Never more than the maker's: asking for more than the credential holds is refused.
            let (status, beyond) = o
                .rest(
                    "POST",
                    "/v1/keys",
                    t["access_token"].as_str(),
                    Some(json!({"scopes": "admin"})),
                )
                .await;
            let expect = if role == "admin" {
                StatusCode::CREATED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expect, "{role}: {beyond}");
        }
    }

    // A token narrowed to images:write makes keys of at most images:write.
    let (_, narrow) = o
        .login("ada@example.com", json!({"scope": "images:write"}))
        .await;
    let narrow = narrow["access_token"].as_str().unwrap();
    let (status, _) = o
        .rest(
            "POST",
            "/v1/keys",
            Some(narrow),
            Some(json!({"scopes": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, weak) = o.rest("POST", "/v1/keys", Some(narrow), None).await;
    assert_eq!(weak["scopes"], json!(["images:read", "images:write"]));

    // A demotion narrows a key at once, in its listing too.
    let cat = o.account("cat@example.com").await;
    let (status, _) = o
        .rest(
            "PUT",
            &format!("/v1/members/{}/role", cat.id),
            Some(&ada_token),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for key in o.app.keys().list(&cat.id).await.unwrap() {
        if key.org == ada.personal_org {
            assert_eq!(
                o.app.keys().effective_scopes(&key).await.unwrap(),
                [Scope::ImagesRead]
            );
        }
    }
}

#[tokio::test]
async fn a_failed_acceptance_leaves_the_invitation_usable() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let [ada, bob] = people(&t.app, ["Ada", "Bob"]).await;
    let org = accounts.org(&ada.personal_org).await.unwrap().unwrap();
    let invitations = imagemcp_app::accounts::invitations::Invitations::new(&t.app.ports);
    // Ada, the only admin, is invited to be a viewer: accepting would leave no admin.
    let invite = invitations
        .invite(&org.id, &org.default_team, "ada@example.com", Role::Viewer)
        .await
        .unwrap();
    assert!(matches!(
        invitations.accept(&invite.token, &ada.id).await,
        Err(Error::Conflict(_))
    ));
    accounts
        .set_role(&org.id, &org.default_team, &bob.id, Role::Admin)
        .await
        .unwrap();
    let member = invitations.accept(&invite.token, &ada.id).await.unwrap();
    assert_eq!(member.role_in(&org.default_team), Some(Role::Viewer));
    assert!(matches!(
        invitations.accept(&invite.token, &ada.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_absurd_key_lifetime_is_refused_not_overflowed() {
    let o = Oauth::new();
    o.user("ada@example.com").await;
    let (_, login) = o.login("ada@example.com", json!({})).await;
    let token = login["access_token"].as_str().unwrap();
    for secs in [u64::MAX, 10 * 365 * 24 * 3600 + 1] {
        let (status, body) = o
            .rest(
                "POST",
                "/v1/keys",
                Some(token),
                Some(json!({"expires_in_secs": secs})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{secs}: {body}");
        assert_eq!(body["error"]["field"], "expires_in_secs", "{body}");
    }
    let (_, keys) = o.rest("GET", "/v1/keys", Some(token), None).await;
    assert_eq!(keys["keys"], json!([]), "a refused key is not stored");
    // Ten years is the longest lifetime, and it is kept exactly.
    let (status, key) = o
        .rest(
            "POST",
            "/v1/keys",
            Some(token),
            Some(json!({"expires_in_secs": 10 * 365 * 24 * 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let ten_years_ms = 10 * 365 * 24 * 3600 * 1000_i64;
    assert_eq!(
        key["expires_at_ms"].as_i64().unwrap() - key["created_at_ms"].as_i64().unwrap(),
        ten_years_ms
    );
}

#[tokio::test]
async fn the_local_administrator_gets_a_password_and_then_signs_in() {
    use imagemcp_app::accounts::{Email, LOCAL_ADMIN_EMAIL};
    use imagemcp_app::audit::read::ViewArgs;
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let (admin, org) = accounts.ensure_local_admin().await.unwrap();
    let email = Email::parse(LOCAL_ADMIN_EMAIL).unwrap();
    let password = "the local admin's passphrase";
    let sign_in = |password: &'static str| {
        let sessions = t.app.sessions();
        async move {
            sessions
                .password_login(LOCAL_ADMIN_EMAIL, password, "127.0.0.1")
                .await
        }
    };
    // No password yet: the password sign-in of the web pages refuses it.
    assert!(sign_in(password).await.is_err());
    // The sign-up's policy holds, and nothing is written when it refuses.
    match accounts.set_password(&email, "short").await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "password"),
        other => panic!("a short password must be refused, got {other:?}"),
    }
    assert!(
        accounts
            .user(&admin.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .is_none()
    );
    // An email with no account is not found.
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(matches!(
        accounts.set_password(&nobody, password).await,
        Err(Error::NotFound { .. })
    ));

    accounts.set_password(&email, password).await.unwrap();
    let signed_in = sign_in(password).await.unwrap();
    assert_eq!(signed_in.id, admin.id);
    // The profile is otherwise untouched (its sealed email still opens) and the hash is no password.
    let stored = accounts.user(&admin.id).await.unwrap().unwrap();
    assert_eq!(stored.email, LOCAL_ADMIN_EMAIL);
    assert!(!stored.password_hash.unwrap().contains(password));
    // Replaced: the old password no longer works.
    accounts
        .set_password(&email, "a different passphrase")
        .await
        .unwrap();
    assert!(sign_in(password).await.is_err());

    let caller = TestApp::caller(org.id.as_str());
    let args = ViewArgs {
        action: Some("user.password_set".into()),
        ..ViewArgs::default()
    };
    let entries = t
        .app
        .audit_log()
        .view(&caller, &args)
        .await
        .unwrap()
        .entries;
    assert_eq!(entries.len(), 2, "one entry per change: {entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e.target.as_deref() == Some(admin.id.as_str()))
    );
}
