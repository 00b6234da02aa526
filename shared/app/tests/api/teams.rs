//! Teams: listed by every member with their member counts, renamed and deleted by admins, names
//! unique in an organisation whatever their case (also under concurrent writes), and member
//! listings with names, emails and team names.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use imagemcp_app::App;
use imagemcp_app::accounts::UserRecord;
use imagemcp_core::Error;
use imagemcp_core::rbac::Role;
use imagemcp_core::table::{Add, Condition, Item, Key, Page, Query, Table, TransactOp};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::helpers::{TestApp, people};
use crate::oauth::Oauth;

/// A `Table` that lets other tasks run after every query, so concurrent operations interleave
/// between what they read and what they write, as they can on a real server; once armed, it holds
/// the first query of the sort-key prefix `hold` until released, so a test can run another
/// operation in exactly that window.
struct Interleaving {
    inner: Arc<dyn Table>,
    hold: &'static str,
    armed: AtomicBool,
    /// Told when the query is held.
    held: Notify,
    released: Notify,
}

#[async_trait::async_trait]
impl Table for Interleaving {
    async fn get(&self, key: &Key) -> imagemcp_core::Result<Option<Item>> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, cond: Condition) -> imagemcp_core::Result<()> {
        self.inner.put(item, cond).await
    }
    async fn delete(&self, key: &Key, cond: Condition) -> imagemcp_core::Result<()> {
        self.inner.delete(key, cond).await
    }
    async fn query(&self, query: &Query) -> imagemcp_core::Result<Page> {
        let page = self.inner.query(query).await?;
        if query.sk_prefix == self.hold && self.armed.swap(false, Ordering::SeqCst) {
            self.held.notify_one();
            self.released.notified().await;
        } else {
            tokio::task::yield_now().await;
        }
        Ok(page)
    }
    async fn add(&self, add: Add) -> imagemcp_core::Result<i64> {
        self.inner.add(add).await
    }
    async fn transact(&self, ops: Vec<TransactOp>) -> imagemcp_core::Result<()> {
        self.inner.transact(ops).await
    }
}

/// The app on an [`Interleaving`] table holding queries of `hold`, with Ada and Bob signed up.
async fn interleaving(
    t: &TestApp,
    hold: &'static str,
) -> (App, Arc<Interleaving>, [UserRecord; 2]) {
    let table = Arc::new(Interleaving {
        inner: t.app.ports.table.clone(),
        hold,
        armed: false.into(),
        held: Notify::new(),
        released: Notify::new(),
    });
    let mut ports = t.app.ports.clone();
    ports.table = table.clone();
    let app = App::new(ports, (*t.app.config).clone());
    let people = people(&app, ["Ada", "Bob"]).await;
    (app, table, people)
}

#[tokio::test]
async fn concurrent_creations_of_one_name_make_one_team() {
    let t = TestApp::new();
    let (app, _, [ada, _]) = interleaving(&t, "").await;
    let names = ["Ops", "ops", "OPS", " Ops ", "oPs", "Ops", "ops ", "OPs"];
    let accounts = app.accounts();
    let results = futures::future::join_all(
        names
            .iter()
            .map(|n| accounts.create_team(&ada.personal_org, n, None)),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(e, Error::Conflict(m) if m.contains("already exists")),
            "{e}"
        );
    }
    let teams = accounts.teams(&ada.personal_org).await.unwrap();
    assert_eq!(teams.len(), 2, "General and one Ops: {teams:?}");
}

#[tokio::test]
async fn a_member_joining_while_the_team_is_deleted_is_never_left_in_a_deleted_team() {
    let t = TestApp::new();
    let (app, table, [ada, bob]) = interleaving(&t, "MEMBER#").await;
    let accounts = app.accounts();
    let org = ada.personal_org.clone();
    let team = accounts
        .create_team(&org, "Short-lived", None)
        .await
        .unwrap();
    // The deletion counts the members (none), then Bob joins before it writes.
    table.armed.store(true, Ordering::SeqCst);
    let (deleted, joined) = futures::join!(accounts.delete_team(&org, &team.id, None), async {
        table.held.notified().await;
        let joined = accounts
            .set_role(&org, &team.id, &bob.id, Role::Creator)
            .await;
        table.released.notify_one();
        joined
    });
    assert!(joined.is_ok(), "{joined:?}");
    assert!(
        matches!(&deleted, Err(Error::Conflict(m)) if m.contains("try again")),
        "{deleted:?}"
    );
    let member = accounts.membership(&org, &bob.id).await.unwrap().unwrap();
    assert!(member.role_in(&team.id).is_some());
    assert!(
        accounts.team(&org, &team.id).await.unwrap().is_some(),
        "a member holds a role only in a team that exists"
    );
}

/// The text of a tool result.
fn text_of(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content[0]).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn team_named<'a>(teams: &'a Value, name: &str) -> &'a Value {
    teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {teams}"))
}

#[tokio::test]
async fn teams_are_listed_renamed_and_deleted_with_unique_names() {
    let o = Oauth::new();
    let ada = o.user("ada@example.com").await;
    let eve = o.user("eve@example.com").await;
    let admin = o.token("ada@example.com", None).await;
    let ada_caller = o.app.sessions().authenticate(&admin).await.unwrap();
    o.join(&admin, &[("bob@example.com", "creator")]).await;
    let bob = o.account("bob@example.com").await;
    let member = o.token("bob@example.com", None).await;
    let rest = |method: &'static str, path: String, token: String, body: Option<Value>| {
        let o = &o;
        async move { o.rest(method, &path, Some(&token), body).await }
    };

    let create = |token: &String, name: &str| {
        rest(
            "POST",
            "/v1/teams".into(),
            token.clone(),
            Some(json!({"name": name})),
        )
    };
    let (status, teams) = rest("GET", "/v1/teams".into(), admin.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{teams}");
    let general = team_named(&teams, "General").clone();
    assert_eq!(
        (
            &general["member_count"],
            &general["default"],
            &general["your_role"]
        ),
        (&json!(2), &json!(true), &json!("admin"))
    );

    // Names are unique in the organisation whatever the case or spacing.
    let (status, design) = create(&admin, "Design").await;
    assert_eq!(status, StatusCode::CREATED, "{design}");
    let design_id = design["team_id"].as_str().unwrap().to_owned();
    for clash in [" design ", "DESIGN", "general"] {
        let (status, body) = create(&admin, clash).await;
        assert_eq!(status, StatusCode::CONFLICT, "{clash}: {body}");
        assert_eq!(body["error"]["code"], "conflict");
    }
    let (status, _) = create(&admin, "  ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another organisation may use the name.
    let eve_token = o.token("eve@example.com", None).await;
    let (status, _) = create(&eve_token, "Design").await;
    assert_eq!(status, StatusCode::CREATED);

    // Renaming releases the old name and claims the new one.
    let path = format!("/v1/teams/{design_id}");
    let rename = |name: &str| {
        rest(
            "PATCH",
            path.clone(),
            admin.clone(),
            Some(json!({"name": name})),
        )
    };
    let (status, renamed) = rename("Brand").await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (&renamed["name"], &renamed["team_id"]),
        (&json!("Brand"), &json!(design_id))
    );
    let (status, _) = create(&admin, "design").await;
    assert_eq!(status, StatusCode::CREATED, "the old name is free again");
    let (status, _) = rename("GENERAL").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, recased) = rename("BRAND").await;
    assert_eq!(
        (status, &recased["name"]),
        (StatusCode::OK, &json!("BRAND"))
    );

    // Another organisation's team and a team that does not exist: not found alike.
    let eve_general = o
        .app
        .accounts()
        .org(&eve.personal_org)
        .await
        .unwrap()
        .unwrap()
        .default_team;
    for id in [
        eve_general.to_string(),
        "team_00000000000000000000000000000000".into(),
    ] {
        for (method, body) in [("PATCH", Some(json!({"name": "Mine"}))), ("DELETE", None)] {
            let (status, b) = rest(method, format!("/v1/teams/{id}"), admin.clone(), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {id}: {b}");
        }
    }

    // Members see the teams; only admins change them or see who is in them.
    let (status, seen) = rest("GET", "/v1/teams".into(), member.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["teams"].as_array().unwrap().len(), 3);
    assert_eq!(team_named(&seen, "General")["your_role"], "creator");
    for (method, body) in [("PATCH", Some(json!({"name": "Mine"}))), ("DELETE", None)] {
        let (status, _) = rest(method, path.clone(), member.clone(), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
    }
    let (status, _) = rest("GET", "/v1/members".into(), member.clone(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A team with a member cannot go; the default team never.
    let (status, _) = rest(
        "PUT",
        format!("/v1/members/{}/role", bob.id),
        admin.clone(),
        Some(json!({"role": "viewer", "team_id": design_id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = rest("DELETE", path.clone(), admin.clone(), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 member")
    );
    let (status, _) = rest(
        "DELETE",
        format!("/v1/teams/{}", general["team_id"].as_str().unwrap()),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Admins see members with their names, emails and the names of their teams.
    let (status, members) = rest("GET", "/v1/members".into(), admin.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{members}");
    let entry = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == json!(bob.id.to_string()))
        .unwrap();
    assert_eq!(
        (&entry["name"], &entry["email"]),
        (&json!("bob"), &json!("bob@example.com"))
    );
    let mut teams: Vec<(String, String)> = entry["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    teams.sort();
    assert_eq!(
        teams,
        [
            ("BRAND".into(), "viewer".into()),
            ("General".into(), "creator".into())
        ]
    );
    assert_eq!(entry["roles"][&design_id], "viewer");
    let listed =
        imagemcp_app::mcp::tools::call(&o.app, &ada_caller, "openai_list_members", json!({}), None)
            .await;
    let text = text_of(&listed);
    assert!(
        text.contains("bob <bob@example.com>")
            && text.contains("creator in General")
            && text.contains("viewer in BRAND"),
        "{text}"
    );

    // Emptied, it goes (once), and its name is free.
    let (status, _) = rest(
        "DELETE",
        format!("/v1/members/{}", bob.id),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, gone) = rest("DELETE", path.clone(), admin.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(
        (&gone["deleted"], &gone["name"]),
        (&json!(true), &json!("BRAND"))
    );
    let (status, _) = rest("DELETE", path.clone(), admin.clone(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = create(&admin, "Brand").await;
    assert_eq!(status, StatusCode::CREATED);

    // Each change is in the audit chain, which holds.
    let (_, log) = rest(
        "GET",
        "/v1/audit?action=team.&limit=50&verify=true".into(),
        admin.clone(),
        None,
    )
    .await;
    let mut actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "team.create",
            "team.create",
            "team.create",
            "team.delete",
            "team.rename",
            "team.rename"
        ]
    );
    assert_eq!(log["verification"]["ok"], json!(true), "{log}");

    // The tools answer the same, with a text a person can read.
    let listed =
        imagemcp_app::mcp::tools::call(&o.app, &ada_caller, "openai_list_teams", json!({}), None)
            .await;
    let text = text_of(&listed);
    assert!(
        text.starts_with("3 team(s): ") && text.contains("General (") && text.contains("default"),
        "{text}"
    );
    let renamed = imagemcp_app::mcp::tools::call(
        &o.app,
        &ada_caller,
        "openai_rename_team",
        json!({"team_id": design_id, "name": "x"}),
        None,
    )
    .await;
    assert_eq!(renamed.is_error, Some(true), "the deleted team is gone");
    let _ = ada;
}
