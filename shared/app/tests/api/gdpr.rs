//! GDPR: a user exports everything of theirs as a zip, then erases themself; afterwards nothing in
//! the table or the blob store names them, and the audit chains still verify.

use std::io::Read;

use imagemcp_app::audit::read::verify_chain;
use imagemcp_app::gdpr::{DeleteUserArgs, Gdpr};
use imagemcp_app::images::params::parse_args;
use imagemcp_core::Error;
use imagemcp_core::blob::{BlobKey, BlobStore};
use imagemcp_core::rbac::{Role, Scope};
use imagemcp_core::table::Table;
use serde_json::json;

use crate::helpers::TestApp;

const EMAIL: &str = "quillon.vasquez@example.net";
const NAME: &str = "Quillon Vasquez";
const PROMPT_SHARED: &str = "a saffron lighthouse drawn by Quillon";
const PROMPT_OWN: &str = "an ultramarine teapot in the fog";

fn caller_for(
    org: &imagemcp_core::ids::OrgId,
    user: &imagemcp_core::ids::UserId,
    role: Role,
) -> imagemcp_app::auth::Caller {
    let mut caller = TestApp::caller_as(org.as_str(), user.as_str(), role, &[Scope::Admin]);
    // As with real keys, the credential id says nothing about its owner.
    caller.credential = "key_0123".into();
    caller
}

/// Every table item ever written that is still there, as text, and every blob file's bytes.
async fn storage_dump(t: &TestApp) -> Vec<(String, Vec<u8>)> {
    let keys: Vec<_> = t.written.keys.lock().unwrap().iter().cloned().collect();
    let mut out = Vec::new();
    for key in keys {
        if let Some(item) = t.table.get(&key).await.unwrap() {
            let text = format!(
                "{}|{}|{}",
                key.pk,
                key.sk,
                serde_json::Value::Object(item.attrs)
            );
            out.push((format!("item {}/{}", key.pk, key.sk), text.into_bytes()));
        }
    }
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                let mut bytes = path.to_string_lossy().as_bytes().to_vec();
                bytes.extend(std::fs::read(&path).unwrap_or_default());
                out.push((format!("file {}", path.display()), bytes));
            }
        }
    }
    walk(&t.dir.path().join("blobs"), &mut out);
    out
}

fn traces<'a>(dump: &'a [(String, Vec<u8>)], needle: &str) -> Vec<&'a str> {
    dump.iter()
        .filter(|(_, bytes)| {
            bytes
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

#[tokio::test]
async fn export_then_erase_leaves_no_trace_and_the_audit_log_still_verifies() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let ada = accounts
        .sign_up("ada@example.com", Some("a long password"), "Ada")
        .await
        .unwrap();
    let team_org = accounts.org(&ada.personal_org).await.unwrap().unwrap();
    let quill = accounts
        .sign_up(EMAIL, Some("a long password"), NAME)
        .await
        .unwrap();
    accounts
        .set_role(
            &team_org.id,
            &team_org.default_team,
            &quill.id,
            Role::Creator,
        )
        .await
        .unwrap();
    let in_team = caller_for(&team_org.id, &quill.id, Role::Creator);
    let at_home = caller_for(&quill.personal_org, &quill.id, Role::Admin);
    let ada_caller = caller_for(&team_org.id, &ada.id, Role::Admin);
    let images = t.app.images();
    images
        .generate(
            &in_team,
            parse_args(json!({"prompt": PROMPT_SHARED})).unwrap(),
            None,
        )
        .await
        .unwrap();
    images
        .generate(
            &at_home,
            parse_args(json!({"prompt": PROMPT_OWN, "n": 2})).unwrap(),
            None,
        )
        .await
        .unwrap();
    let adas = images
        .generate(
            &ada_caller,
            parse_args(json!({"prompt": "Ada's own sketch"})).unwrap(),
            None,
        )
        .await
        .unwrap();
    let key = t
        .app
        .keys()
        .create(
            &quill.id,
            &team_org.id,
            imagemcp_app::auth::KeySpec::full("laptop"),
        )
        .await
        .unwrap();

    // Export: a zip with the profile, the images with their files, and the audit entries.
    let export = Gdpr::new(&t.app).export(&in_team).await.unwrap();
    assert_eq!(export.images, 3);
    assert!(export.url.is_some());
    let blob = t
        .blobs
        .get(
            &BlobKey::parse(&format!(
                "users/{}/exports/{}.zip",
                quill.id, export.export_id
            ))
            .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(blob.bytes)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let profile: serde_json::Value = serde_json::from_str(&read("profile.json")).unwrap();
    assert_eq!(profile["email"], EMAIL);
    assert_eq!(profile["name"], NAME);
    let listed = read("images.json");
    assert!(listed.contains(PROMPT_SHARED) && listed.contains(PROMPT_OWN));
    assert!(
        !listed.contains("Ada's own sketch"),
        "only the user's own images"
    );
    assert!(read("api_keys.json").contains(key.id.as_str()));
    assert!(
        !read("api_keys.json").contains(&key.secret),
        "never a secret"
    );
    assert!(read("audit.jsonl").lines().count() >= 3);
    let files = zip
        .file_names()
        .filter(|n| n.as_ref().is_ok_and(|n| n.starts_with("images/")))
        .count();
    assert_eq!(files, 3);

    // Erasure needs the confirmation and a credential with every scope the role can use (for
    // this creator: images:write; a read-only key is refused).
    let gdpr = Gdpr::new(&t.app);
    let bad = DeleteUserArgs {
        confirm_user_id: ada.id.to_string(),
    };
    assert!(matches!(
        gdpr.erase(&in_team, bad).await,
        Err(Error::Invalid { .. })
    ));
    let mut weak = in_team.clone();
    weak.scopes = vec![Scope::ImagesRead];
    let ok_args = || DeleteUserArgs {
        confirm_user_id: quill.id.to_string(),
    };
    assert!(matches!(
        gdpr.erase(&weak, ok_args()).await,
        Err(Error::Forbidden(_))
    ));

    let done = gdpr.erase(&in_team, ok_args()).await.unwrap();
    assert_eq!(done.images_deleted, 3);
    assert_eq!(
        done.organisations_deleted, 1,
        "the personal org had no one else"
    );
    assert_eq!(done.memberships_removed, 1);
    assert!(done.keys_revoked >= 1);
    assert!(t.app.keys().authenticate(&key.secret).await.is_err());
    assert!(accounts.user(&quill.id).await.unwrap().is_none());

    // No trace of the user anywhere in storage.
    let dump = storage_dump(&t).await;
    assert!(dump.len() > 20, "storage was read");
    let email_hash = imagemcp_app::accounts::Email::parse(EMAIL)
        .unwrap()
        .lookup_hash();
    for needle in [
        EMAIL,
        NAME,
        "Quillon",
        PROMPT_SHARED,
        PROMPT_OWN,
        quill.id.as_str(),
        email_hash.as_str(),
    ] {
        assert_eq!(
            traces(&dump, needle),
            Vec::<&str>::new(),
            "trace of {needle:?}"
        );
    }

    // Everyone else's data is intact, and the audit logs (kept, pseudonymised) still verify.
    assert!(images.get(&ada_caller, &adas.images[0].id).await.is_ok());
    for org in [&team_org.id, &quill.personal_org] {
        let v = verify_chain(&t.app.ports, &format!("ORG#{org}"))
            .await
            .unwrap();
        assert!(v.ok, "{org}: {:?}", v.first_broken);
        assert!(v.entries_checked >= 2);
    }
    let log = t
        .app
        .audit_log()
        .view(&ada_caller, &Default::default())
        .await
        .unwrap();
    let erased: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.action == "gdpr.delete")
        .collect();
    assert_eq!(erased.len(), 1);
    assert!(
        erased[0].user_id.is_none(),
        "the erased user can no longer be named"
    );
    assert!(erased[0].actor.starts_with("sub_"));
}

#[tokio::test]
async fn the_last_admin_of_a_shared_org_must_hand_over_first() {
    let t = TestApp::new();
    let accounts = t.app.accounts();
    let ada = accounts
        .sign_up("ada@example.com", None, "Ada")
        .await
        .unwrap();
    let bob = accounts
        .sign_up("bob@example.com", None, "Bob")
        .await
        .unwrap();
    let org = accounts.org(&ada.personal_org).await.unwrap().unwrap();
    accounts
        .set_role(&org.id, &org.default_team, &bob.id, Role::Viewer)
        .await
        .unwrap();
    let caller = caller_for(&org.id, &ada.id, Role::Admin);
    let err = Gdpr::new(&t.app)
        .erase(
            &caller,
            DeleteUserArgs {
                confirm_user_id: ada.id.to_string(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(
        accounts.user(&ada.id).await.unwrap().is_some(),
        "nothing was erased"
    );
}
