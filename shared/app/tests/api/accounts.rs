//! Accounts, roles and API keys on the local adapters.

use std::time::Duration;

use imagemcp_app::auth::KeySpec;
use imagemcp_app::images::params::ListArgs;
use imagemcp_core::Error;
use imagemcp_core::rbac::{Role, Scope};
use serde_json::json;

use crate::helpers::TestApp;

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
    let ada = accounts
        .sign_up("ada@example.com", Some("a long password"), "Ada")
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", Some("a long password"), "Bob")
        .await
        .unwrap();
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
    let ada = accounts
        .sign_up("ada@example.com", Some("a long password"), "Ada")
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", Some("a long password"), "Bob")
        .await
        .unwrap();
    let eve = accounts
        .sign_up("eve@example.com", Some("a long password"), "Eve")
        .await
        .unwrap();
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
    let ada = accounts
        .sign_up("ada@example.com", Some("a long password"), "Ada")
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", Some("a long password"), "Bob")
        .await
        .unwrap();
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
        ]
    );
    assert_eq!(names(&admin).len(), 27);
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
    let sessions = imagemcp_app::sessions::Sessions::new(&t.app);
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
