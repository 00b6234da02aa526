//! The data subject's rights: export everything of a user as one archive, and erase the user.
//!
//! **Export** (`openai_export_user_data`): a zip with `profile.json`, `memberships.json`,
//! `api_keys.json` (metadata, never secrets), `images.json` (with prompts), the image files under
//! `images/`, `conversations.json` and `audit.jsonl` (the entries where the user acted), stored at
//! `users/<user>/exports/` and handed out as a signed URL.
//!
//! **Erasure** (`openai_delete_user_data`): removes the user's profile and email claim, API keys,
//! memberships, exports, the images they created (records and files) and the conversations only
//! they took part in; an organisation the user is the only member of goes entirely (its items and
//! files). Audit entries stay — the chain must still verify — but they never named the user in
//! clear: the actor is a keyed-hash pseudonym and the user id is sealed with the user's own data
//! key, which erasure destroys (crypto-shredding). An erased org's data key is destroyed too, so
//! its pseudonyms can no longer be recomputed from a user id. A user who is the last admin of an
//! organisation with other members must hand over first (`Conflict`): erasing them would leave
//! the others without an admin.

use std::collections::BTreeSet;
use std::io::Write;

use imagemcp_core::blob::BlobKey;
use imagemcp_core::ids::OrgId;
use imagemcp_core::rbac::{Action, Role, Scope};
use imagemcp_core::table::{Condition, Item, Key, Query, TransactOp};
use imagemcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;
use crate::accounts::{Email, member_key, user_key};
use crate::audit::{self, Chain, Event};
use crate::auth::Caller;
use crate::crypto::{Crypto, org_owner, user_owner};
use crate::images::record::{self, ConversationRecord, ImageRecord};

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportUserArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteUserArgs {
    /// Your own user id (`usr_…`), to confirm: erasure cannot be undone.
    pub confirm_user_id: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct UserExport {
    pub export_id: String,
    pub size_bytes: u64,
    pub images: u64,
    /// A time-limited download URL of the zip archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Erasure {
    pub user_id: String,
    pub organisations_deleted: u64,
    pub memberships_removed: u64,
    pub images_deleted: u64,
    pub conversations_deleted: u64,
    pub keys_revoked: u64,
    pub exports_deleted: u64,
}

/// Every item of a partition (with a sort-key prefix), all pages.
async fn all_items(app: &App, pk: &str, prefix: &str) -> Result<Vec<Item>> {
    let mut query = Query::new(pk, prefix, imagemcp_core::table::MAX_PAGE);
    let mut out = Vec::new();
    loop {
        let page = app.ports.table.query(&query).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(out),
        }
    }
}

async fn images_in(app: &App, org: &OrgId) -> Result<Vec<ImageRecord>> {
    let crypto = Crypto::new(&app.ports);
    let mut out = Vec::new();
    for mut item in all_items(app, &record::org_pk(org), "IMG#").await? {
        crypto.open_item(&mut item, record::IMAGE_SEALED).await?;
        out.push(record::from_item(item)?);
    }
    Ok(out)
}

async fn conversation(
    app: &App,
    org: &OrgId,
    id: &imagemcp_core::ids::ConversationId,
) -> Result<Option<ConversationRecord>> {
    let Some(mut item) = app
        .ports
        .table
        .get(&record::conversation_key(org, id))
        .await?
    else {
        return Ok(None);
    };
    Crypto::new(&app.ports)
        .open_item(&mut item, record::CONVERSATION_SEALED)
        .await?;
    record::from_item(item).map(Some)
}

fn zip_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("building the archive: {e}"))
}

fn json_bytes(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(Error::internal)
}

async fn delete_blob(app: &App, key: &str) {
    if let Ok(key) = BlobKey::parse(key)
        && let Err(e) = app.ports.blobs.delete(&key).await
    {
        tracing::warn!(key = key.as_str(), error = %e, "blob not removed during erasure");
    }
}

/// Deletes items one by one (each delete is atomic; erasure is idempotent, so a retry after a
/// failure finishes the job).
async fn delete_items(app: &App, keys: impl IntoIterator<Item = Key>) -> Result<()> {
    for key in keys {
        app.ports.table.delete(&key, Condition::None).await?;
    }
    Ok(())
}

pub struct Gdpr<'a> {
    app: &'a App,
}

impl<'a> Gdpr<'a> {
    pub fn new(app: &'a App) -> Self {
        Self { app }
    }

    /// Exports everything of the caller as a zip archive.
    pub async fn export(&self, caller: &Caller) -> Result<UserExport> {
        // Every member may get their own data; a read-scoped credential is enough.
        caller.authorize(Action::ViewImages)?;
        let app = self.app;
        let user = &caller.user;
        let accounts = app.accounts();
        let profile = accounts
            .user(user)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {user}")))?;
        let orgs = accounts.orgs_of(user).await?;
        let mut memberships = Vec::new();
        let mut images = Vec::new();
        let mut conversations = Vec::new();
        let mut audit_lines = String::new();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for org in &orgs {
            if let Some(m) = accounts.membership(org, user).await? {
                memberships.push(m);
            }
            let mut convs = BTreeSet::new();
            for rec in images_in(app, org).await? {
                if rec.created_by.as_ref() != Some(user) {
                    continue;
                }
                if let Some(blob) = app.ports.blobs.get(&BlobKey::parse(&rec.blob_key)?).await? {
                    files.push((
                        format!("images/{org}/{}.{}", rec.id, rec.format),
                        blob.bytes,
                    ));
                }
                convs.insert(rec.conversation_id.clone());
                images.push(json!({"org_id": org, "image": rec}));
            }
            for id in &convs {
                if let Some(c) = conversation(app, org, id).await? {
                    conversations.push(json!({"org_id": org, "conversation": c}));
                }
            }
            let pk = Chain::Org(org.clone()).pk();
            let me = audit::subject(&app.ports, &pk, user).await?;
            for item in all_items(app, &pk, "AUDIT#").await? {
                if item.str("actor") == Some(me.as_str())
                    || item.str("target_user") == Some(me.as_str())
                {
                    let mut line = item.attrs.clone();
                    line.insert("org_id".into(), json!(org));
                    audit_lines.push_str(&Value::Object(line).to_string());
                    audit_lines.push('\n');
                }
            }
        }
        let keys: Vec<_> = app
            .keys()
            .list(user)
            .await?
            .iter()
            .map(crate::manage::KeyView::from)
            .collect();
        let profile_json = json!({
            "user_id": profile.id,
            "email": profile.email,
            "name": profile.name,
            "personal_org": profile.personal_org,
            "created_at_ms": profile.created_at_ms,
            "has_password": profile.password_hash.is_some(),
        });
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut entries: Vec<(String, Vec<u8>)> = vec![
            ("profile.json".into(), json_bytes(&profile_json)?),
            ("memberships.json".into(), json_bytes(&memberships)?),
            ("api_keys.json".into(), json_bytes(&keys)?),
            ("images.json".into(), json_bytes(&images)?),
            ("conversations.json".into(), json_bytes(&conversations)?),
            ("audit.jsonl".into(), audit_lines.into_bytes()),
        ];
        entries.extend(files);
        for (name, bytes) in &entries {
            zip.start_file(name.as_str(), options).map_err(zip_err)?;
            zip.write_all(bytes).map_err(zip_err)?;
        }
        let bytes = zip.finish().map_err(zip_err)?.into_inner();
        let id = format!("exp_{}", app.ports.ids.new_id());
        let blob_key = BlobKey::parse(&format!("users/{user}/exports/{id}.zip"))?;
        let size = bytes.len() as u64;
        let url = app
            .audit_log()
            .store_export(
                caller,
                &id,
                &blob_key,
                bytes,
                "application/zip",
                "user_data",
            )
            .await?;
        audit::record(&app.ports, Event::by(caller, "gdpr.export").target(&id)).await?;
        Ok(UserExport {
            export_id: id,
            size_bytes: size,
            images: images.len() as u64,
            url,
        })
    }

    /// Erases the caller (see the module docs). Needs a credential holding every scope the
    /// caller's role can use (`admin` for an admin), so a key narrowed for one job cannot destroy
    /// its owner's account.
    pub async fn erase(&self, caller: &Caller, args: DeleteUserArgs) -> Result<Erasure> {
        let full = caller.role.scopes();
        if !full.iter().all(|s| Scope::granted(&caller.scopes, *s)) {
            return Err(Error::Forbidden(format!(
                "erasing your account needs a credential with every scope your role ({}) can use: {}",
                caller.role,
                Scope::join(&full)
            )));
        }
        if args.confirm_user_id != caller.user.as_str() {
            return Err(Error::invalid(
                "confirm_user_id",
                "must be your own user id, to confirm the erasure",
            ));
        }
        let app = self.app;
        let user = caller.user.clone();
        let accounts = app.accounts();
        let profile = accounts
            .user(&user)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {user}")))?;
        let orgs = accounts.orgs_of(&user).await?;

        // Decide everything before changing anything: a refusal must leave no partial erasure.
        let mut solo = Vec::new();
        let mut shared = Vec::new();
        for org in &orgs {
            let members = accounts.members(org).await?;
            if members.iter().all(|m| m.user == user) {
                solo.push(org.clone());
                continue;
            }
            let me_admin = members
                .iter()
                .any(|m| m.user == user && m.highest() == Some(Role::Admin));
            let other_admin = members
                .iter()
                .any(|m| m.user != user && m.highest() == Some(Role::Admin));
            if me_admin && !other_admin {
                return Err(Error::Conflict(format!(
                    "you are the last admin of organisation {org}: make another member admin first"
                )));
            }
            shared.push(org.clone());
        }

        // The request is recorded first, in every organisation concerned (erasure is too many
        // writes for one transaction; it is idempotent, so a retry completes it).
        for org in &orgs {
            audit::record(
                &app.ports,
                Event::new(
                    Chain::Org(org.clone()),
                    "gdpr.delete",
                    audit::Actor::User(user.clone()),
                )
                .detail("credential", json!(caller.credential)),
            )
            .await?;
        }

        let mut out = Erasure {
            user_id: user.to_string(),
            ..Erasure::default()
        };
        for org in &shared {
            let images = images_in(app, org).await?;
            let mut mine = BTreeSet::new();
            let mut others = BTreeSet::new();
            for rec in &images {
                if rec.created_by.as_ref() == Some(&user) {
                    mine.insert(rec.conversation_id.clone());
                    delete_blob(app, &rec.blob_key).await;
                    delete_blob(app, &rec.preview_key).await;
                    delete_items(
                        app,
                        [
                            record::image_key(org, &rec.id),
                            record::tombstone_key(org, &rec.id),
                        ],
                    )
                    .await?;
                    out.images_deleted += 1;
                } else {
                    others.insert(rec.conversation_id.clone());
                }
            }
            for conv in mine.difference(&others) {
                delete_items(app, [record::conversation_key(org, conv)]).await?;
                out.conversations_deleted += 1;
            }
            app.ports
                .table
                .transact(vec![
                    TransactOp::Delete(member_key(org, &user), Condition::None),
                    TransactOp::Delete(
                        Key::new(user_owner(&user), format!("ORG#{org}")),
                        Condition::None,
                    ),
                ])
                .await?;
            out.memberships_removed += 1;
            // The user's share of the org's model cost (billing's per-user counters); the org's
            // and the teams' totals stay, naming nobody.
            let suffix = format!("#user#{user}");
            delete_items(
                app,
                all_items(app, &record::org_pk(org), "USAGE#")
                    .await?
                    .into_iter()
                    .map(|i| i.key)
                    .filter(|k| k.sk.ends_with(&suffix)),
            )
            .await?;
        }
        for org in &solo {
            let pk = record::org_pk(org);
            for rec in images_in(app, org).await? {
                delete_blob(app, &rec.blob_key).await;
                delete_blob(app, &rec.preview_key).await;
                out.images_deleted += 1;
            }
            let items = all_items(app, &pk, "").await?;
            out.conversations_deleted += items
                .iter()
                .filter(|i| i.key.sk.starts_with("CONV#"))
                .count() as u64;
            // The audit chain stays (pseudonymised); everything else of the org goes.
            delete_items(
                app,
                items
                    .into_iter()
                    .map(|i| i.key)
                    .filter(|k| !k.sk.starts_with("AUDIT") && k.sk != "DEK"),
            )
            .await?;
            Crypto::new(&app.ports).destroy(&org_owner(org)).await?;
            out.organisations_deleted += 1;
        }

        for key in app.keys().list(&user).await? {
            app.keys().revoke(&user, &key.id).await?;
            out.keys_revoked += 1;
        }
        let user_items = all_items(app, &user_owner(&user), "").await?;
        for item in &user_items {
            if item.key.sk.starts_with("EXPORT#")
                && let Some(blob) = item.str("blob_key")
            {
                delete_blob(app, blob).await;
                out.exports_deleted += 1;
            }
        }
        let email_hash = Email::parse(&profile.email)
            .map(|e| e.lookup_hash())
            .unwrap_or(profile.email_hash.clone());
        delete_items(
            app,
            user_items
                .into_iter()
                .map(|i| i.key)
                .filter(|k| k.sk != "DEK" && *k != user_key(&user))
                .chain([
                    Key::new(format!("EMAIL#{email_hash}"), "USER"),
                    Key::new(format!("LOGINFAIL#ACCT#{email_hash}"), "STATE"),
                    user_key(&user),
                ]),
        )
        .await?;
        // Last: without the key, every sealed trace of the user (audit entries) is unreadable.
        Crypto::new(&app.ports).destroy(&user_owner(&user)).await?;
        tracing::info!(orgs = orgs.len(), "user erased");
        Ok(out)
    }
}
