//! Reading the audit log: a filtered page of entries, the verification of the chain, and the
//! JSON Lines export.

use std::time::Duration;

use imagemcp_core::blob::BlobKey;
use imagemcp_core::ids::UserId;
use imagemcp_core::rbac::Action;
use imagemcp_core::table::{Condition, Item, Query};
use imagemcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use imagemcp_tenancy::Caller;
use imagemcp_tenancy::Ports;
use imagemcp_tenancy::audit::chain::{Break, Entry, Walker};
use imagemcp_tenancy::audit::{Chain, Event, entry_key, head, head_key, record, subject};
use imagemcp_tenancy::crypto::{Crypto, field_aad, user_owner};
use imagemcp_tenancy::items::{from_item, rfc3339};

/// The arguments of `openai_view_audit_log` (and the query of `GET /v1/audit`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewArgs {
    /// Only entries of this action (`image.generate`), or of every action starting with it
    /// (`image.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Only entries where this user (`usr_…`) acted.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only entries at or after this Unix time in milliseconds.
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Only entries before this Unix time in milliseconds.
    #[serde(default)]
    pub until_ms: Option<i64>,
    /// How many entries at most (1-200, default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Oldest first instead of newest first.
    #[serde(default)]
    pub oldest_first: Option<bool>,
    /// Also verify the whole chain and report the first broken link.
    #[serde(default)]
    pub verify: Option<bool>,
}

/// The arguments of `openai_verify_audit_log`: none.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyArgs {}

/// An entry as shown to an auditor: the stored entry plus the user ids it still can reveal.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct EntryView {
    pub seq: u64,
    /// RFC 3339 time.
    pub at: String,
    pub at_ms: i64,
    pub action: String,
    pub outcome: String,
    /// The actor's pseudonym in this log.
    pub actor: String,
    /// The actor's user id, unless the user was erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_user_id: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    pub prev: String,
    pub hash: String,
}

/// The result of a chain verification.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Verification {
    /// Whether every link holds.
    pub ok: bool,
    /// How many entries were checked before the end or the first break.
    pub entries_checked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Break")]
    pub first_broken: Option<Break>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AuditPage {
    pub entries: Vec<EntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Verification")]
    pub verification: Option<Verification>,
}

/// The arguments of `openai_export_audit_log`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportArgs {
    /// Also return the JSON Lines in the answer (up to 1 MB), not only as a download.
    #[serde(default)]
    pub inline: Option<bool>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AuditExport {
    pub export_id: String,
    pub entries: u64,
    pub size_bytes: u64,
    /// A time-limited download URL of the `.jsonl` file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// One stored entry per line, exactly as hashed: `sha256` of each line's canonical JSON without
    /// `hash` is its `hash`, and the next line's `prev`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<String>,
}

/// The largest export returned inline.
const MAX_INLINE_BYTES: usize = 1024 * 1024;

fn seq_of_slot(sk: &str) -> Option<u64> {
    sk.strip_prefix("AUDIT#")?.parse().ok()
}

/// The user id sealed in an entry, or `None` once the user was erased (or is no longer a member).
/// A sealed id opens only with its owner's key, so the pseudonym says whose key to try.
async fn reveal(
    ports: &Ports,
    item_key: &imagemcp_core::table::Key,
    field: &str,
    sealed: Option<&str>,
    pseudonym: &str,
    members: &[(String, UserId)],
) -> Option<String> {
    let sealed = sealed?;
    let (_, user) = members.iter().find(|(p, _)| p == pseudonym)?;
    Crypto::new(ports)
        .try_open(&user_owner(user), &field_aad(item_key, field), sealed)
        .await
        .ok()
        .flatten()
}

pub struct AuditLog<'a> {
    ports: &'a Ports,
    /// How long an export's download link works.
    download_ttl: Duration,
}

impl<'a> AuditLog<'a> {
    pub fn new(ports: &'a Ports, download_ttl: Duration) -> Self {
        Self {
            ports,
            download_ttl,
        }
    }

    /// The org's members with their pseudonyms in its log.
    async fn members(&self, caller: &Caller) -> Result<Vec<(String, UserId)>> {
        let pk = Chain::Org(caller.org.clone()).pk();
        let mut out = Vec::new();
        for m in crate::Accounts::new(self.ports)
            .members(&caller.org)
            .await?
        {
            out.push((subject(self.ports, &pk, &m.user).await?, m.user));
        }
        Ok(out)
    }

    async fn view_of(&self, item: Item, members: &[(String, UserId)]) -> Result<EntryView> {
        let key = item.key.clone();
        let entry: Entry = from_item(item)?;
        let user_id = reveal(
            self.ports,
            &key,
            "actor_sealed",
            entry.actor_sealed.as_deref(),
            &entry.actor,
            members,
        )
        .await;
        let target_user_id = match &entry.target_user {
            Some(p) => {
                reveal(
                    self.ports,
                    &key,
                    "target_user_sealed",
                    entry.target_user_sealed.as_deref(),
                    p,
                    members,
                )
                .await
            }
            None => None,
        };
        Ok(EntryView {
            seq: entry.seq,
            at: rfc3339(entry.at_ms),
            at_ms: entry.at_ms,
            action: entry.action,
            outcome: entry.outcome,
            actor: entry.actor,
            user_id,
            target: entry.target,
            target_user: entry.target_user,
            target_user_id,
            details: entry.details,
            prev: entry.prev,
            hash: entry.hash,
        })
    }

    /// A page of the caller's organisation's log, filtered.
    pub async fn view(&self, caller: &Caller, args: &ViewArgs) -> Result<AuditPage> {
        caller.authorize(Action::ViewAuditLog)?;
        let limit = args.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Error::invalid("limit", "must be 1 to 200"));
        }
        let pk = Chain::Org(caller.org.clone()).pk();
        let actor = match &args.user_id {
            Some(u) => Some(subject(self.ports, &pk, &UserId::parse(u)?).await?),
            None => None,
        };
        let members = self.members(caller).await?;
        let mut query = Query::new(pk.clone(), "AUDIT#", 200);
        query.descending = !args.oldest_first.unwrap_or(false);
        query.cursor = args.cursor.clone();
        let mut entries = Vec::new();
        let mut next = None;
        // Filters run over the stored order; a page stops at `limit` matches or after ten table
        // pages, and hands back a cursor either way, so one call stays bounded.
        for _ in 0..10 {
            let page = self.ports.table.query(&query).await?;
            next = page.next.clone();
            for item in page.items {
                let at = item.int("at_ms").unwrap_or(0);
                let keep = args.action.as_deref().is_none_or(|a| {
                    item.str("action")
                        .is_some_and(|x| x == a || (a.ends_with('.') && x.starts_with(a)))
                }) && actor
                    .as_deref()
                    .is_none_or(|s| item.str("actor") == Some(s))
                    && args.since_ms.is_none_or(|s| at >= s)
                    && args.until_ms.is_none_or(|u| at < u);
                if keep {
                    entries.push(self.view_of(item, &members).await?);
                }
            }
            if entries.len() >= limit as usize || next.is_none() {
                break;
            }
            query.cursor = next.clone();
        }
        // A cursor must resume right after the last entry shown, so a page cut short of the table
        // page restarts from that entry's key.
        if entries.len() > limit as usize {
            entries.truncate(limit as usize);
        }
        if let Some(last) = entries.last()
            && entries.len() == limit as usize
        {
            next = Some(imagemcp_core::table::encode_cursor(
                &entry_key(&pk, last.seq).sk,
            ));
        }
        let verification = if args.verify.unwrap_or(false) {
            Some(self.verify(caller).await?)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_cursor: next,
            verification,
        })
    }

    /// Walks the whole chain of the caller's organisation.
    pub async fn verify(&self, caller: &Caller) -> Result<Verification> {
        caller.authorize(Action::ViewAuditLog)?;
        verify_chain(self.ports, &Chain::Org(caller.org.clone()).pk()).await
    }

    /// Writes the whole log as JSON Lines to a blob and returns a download link (and the lines
    /// themselves when asked and small enough).
    pub async fn export(&self, caller: &Caller, args: &ExportArgs) -> Result<AuditExport> {
        caller.authorize(Action::ExportData)?;
        let pk = Chain::Org(caller.org.clone()).pk();
        let mut lines = String::new();
        let mut count = 0u64;
        let mut query = Query::new(pk.clone(), "AUDIT#", imagemcp_core::table::MAX_PAGE);
        loop {
            let page = self.ports.table.query(&query).await?;
            for item in page.items {
                lines.push_str(&Value::Object(item.attrs).to_string());
                lines.push('\n');
                count += 1;
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        let id = format!("exp_{}", self.ports.ids.new_id());
        let blob_key = BlobKey::parse(&format!("orgs/{}/exports/audit-{id}.jsonl", caller.org))?;
        let size = lines.len() as u64;
        let url = self
            .store_export(
                caller,
                &id,
                &blob_key,
                lines.clone().into_bytes(),
                "application/jsonl",
                "audit",
            )
            .await?;
        let inline = args.inline.unwrap_or(false) && lines.len() <= MAX_INLINE_BYTES;
        record(
            self.ports,
            Event::by(caller, "audit.export")
                .target(&id)
                .detail("entries", json!(count)),
        )
        .await?;
        Ok(AuditExport {
            export_id: id,
            entries: count,
            size_bytes: size,
            url,
            jsonl: inline.then_some(lines),
        })
    }

    /// Stores an export's bytes and remembers who made it (so erasing that user removes it too).
    pub async fn store_export(
        &self,
        caller: &Caller,
        id: &str,
        blob_key: &BlobKey,
        bytes: Vec<u8>,
        content_type: &str,
        kind: &str,
    ) -> Result<Option<String>> {
        self.ports.blobs.put(blob_key, bytes, content_type).await?;
        let mut item = Item::new(
            imagemcp_core::table::Key::new(
                imagemcp_tenancy::crypto::user_owner(&caller.user),
                format!("EXPORT#{id}"),
            ),
            Map::new(),
        );
        item.attrs
            .insert("blob_key".into(), json!(blob_key.as_str()));
        item.attrs.insert("kind".into(), json!(kind));
        item.attrs.insert("org".into(), json!(caller.org));
        if let Err(e) = self.ports.table.put(item, Condition::NotExists).await {
            // Nothing would refer to the file: remove it rather than leave an untracked copy.
            let _ = self.ports.blobs.delete(blob_key).await;
            return Err(e);
        }
        self.ports
            .blobs
            .signed_url(blob_key, self.download_ttl, None)
            .await
    }
}

/// Verifies one chain.
pub async fn verify_chain(ports: &Ports, pk: &str) -> Result<Verification> {
    let mut walker = Walker::default();
    let mut checked = 0u64;
    let mut query = Query::new(pk, "AUDIT#", imagemcp_core::table::MAX_PAGE);
    let broken = 'walk: loop {
        let page = ports.table.query(&query).await?;
        for item in &page.items {
            let slot = seq_of_slot(&item.key.sk).unwrap_or(0);
            if let Err(b) = walker.step(slot, &item.attrs) {
                break 'walk Some(b);
            }
            checked += 1;
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break None,
        }
    };
    let broken = match broken {
        Some(b) => Some(b),
        None => {
            let (seq, hash) = head(ports, pk).await?;
            let has_head = ports.table.get(&head_key(pk)).await?.is_some();
            walker
                .finish(has_head.then_some((seq, hash.as_str())))
                .err()
        }
    };
    Ok(Verification {
        ok: broken.is_none(),
        entries_checked: checked,
        first_broken: broken,
    })
}
