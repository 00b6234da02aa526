//! The generation cache: a request that asks for what was already made gets the stored images back,
//! with no model call and no quota. Three tiers, looked up in this order:
//! - **L1**, this instance's memory: exact key, 5 minutes, bounded (oldest entries evicted first);
//! - **L3**, the `Cache` port (KV on Workers, DynamoDB TTL items on AWS, memory locally): exact key;
//! - **L2**, semantic: the prompt's embedding (`ImageModel::embed`) against an index of recent
//!   prompts of the same organisation *and the same settings*, a hit when the cosine similarity is
//!   at least the configured threshold **and** the prompts' intent guards (colours, numbers,
//!   negations, media… see `core::embed`) are equal. Exact tiers go first because an exact match is
//!   always at least as good as a similar one and costs no embedding call.
//!
//! The prompt's moderation runs alongside the exact (L3) read and the embedding, so a miss costs
//! no more sequential round trips than a `fresh` request. A semantic hit is served only when that
//! moderation passes (the prompt is not the one whose images it returns); a refused prompt's
//! embedding is dropped, never stored or compared. Exact hits need no moderation (their prompt
//! passed it when the images were made).
//!
//! The key holds everything that decides the output: the normalised prompt, model, size, quality,
//! background, format, compression, style preset, number of images, and the organisation. There
//! is no cross-organisation sharing: every key and index is the organisation's own. Refinements
//! (`conversation_id`) and edits are never cached (their output depends on earlier images), and a
//! caller can bypass with `fresh: true`. An organisation can turn the cache off
//! (`PUT /v1/settings/cache`). A hit whose images were deleted since is a miss (and forgotten).
//!
//! Nothing here fails a request but its moderation: a cache that is down is a miss, logged.

use std::time::Duration;

use base64::Engine as _;
use futures::future::Either;
use imagemcp_core::bounded::Bounded;
use imagemcp_core::catalog::RenderParams;
use imagemcp_core::embed::{Embedding, cosine, intent_guard};
use imagemcp_core::ids::{ConversationId, ImageId, OrgId};
use imagemcp_core::table::Key;
use imagemcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use imagemcp_tenancy::{Caller, Ports};

use crate::Engine;

/// What the cache works on: the engine's state (L1, the settings) and the ports (L3 and the index
/// in the `Cache` port, the organisation's setting in the `Table`, embeddings from the model, the
/// guards' key). `Engine::cache` makes one.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    pub engine: &'a Engine,
    pub ports: &'a Ports,
}

impl Engine {
    /// The generation cache, on `ports`.
    pub fn cache<'a>(&'a self, ports: &'a Ports) -> Cx<'a> {
        Cx {
            engine: self,
            ports,
        }
    }
}

/// Turns a cached entry (the ids of the images made for the first request) back into the caller's
/// result, or `None` when any of them is gone (deleted since): then the entry is a miss, and
/// forgotten.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    type Output: Send;
    async fn resolve(&self, cached: Cached) -> Option<Self::Output>;
}

/// A cached entry as [`Resolve`] gets it: what to read back, and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    pub image_ids: Vec<ImageId>,
    pub conversation_id: ConversationId,
    pub hit: CacheHit,
}

/// The cache's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Whether organisations that have not chosen get the cache.
    pub enabled_by_default: bool,
    pub l1_ttl: Duration,
    /// The most entries L1 holds.
    pub l1_capacity: usize,
    /// The most bytes L1's entries weigh.
    pub l1_max_bytes: usize,
    /// How long L3 entries and L2 index entries live.
    pub l3_ttl: Duration,
    /// The least cosine similarity of an L2 hit with the local embedding, in thousandths
    /// (calibrated on the bench's prompt trace: see docs/engine.md).
    pub similarity_milli: u32,
    /// The same for a provider's embeddings (OpenAI's), whose similarities run higher.
    pub remote_similarity_milli: u32,
    /// The most prompts one L2 index (organisation × settings) keeps, newest first.
    pub index_size: usize,
}

impl CacheConfig {
    pub const DEFAULT: CacheConfig = CacheConfig {
        enabled_by_default: true,
        l1_ttl: Duration::from_secs(300),
        l1_capacity: 2000,
        l1_max_bytes: 2 << 20,
        l3_ttl: Duration::from_secs(24 * 3600),
        similarity_milli: 800,
        remote_similarity_milli: 920,
        index_size: 64,
    };
}

/// The tier that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheTier {
    L1,
    L2,
    L3,
}

impl CacheTier {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheTier::L1 => "l1",
            CacheTier::L2 => "l2",
            CacheTier::L3 => "l3",
        }
    }
}

/// A cache hit as the response reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CacheHit {
    pub tier: CacheTier,
    /// For a semantic (L2) hit, the cosine similarity in thousandths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity_milli: Option<u32>,
}

/// What a cached result points at: the images made for the first request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    image_ids: Vec<ImageId>,
    conversation_id: ConversationId,
}

/// Everything that decides a generation's output, as the image service resolved it.
pub struct Request {
    /// The normalised prompt (`Prompt::normalized`).
    pub prompt: String,
    pub model: &'static str,
    pub params: RenderParams,
    pub style: &'static str,
    pub n: u8,
}

/// A miss, with what is needed to remember the result.
pub struct Probe {
    exact: String,
    bucket: String,
    embedding: Option<Embedding>,
    guard: Vec<String>,
}

/// The outcome of a lookup.
pub enum Lookup<T> {
    Hit(Box<T>),
    Miss(Probe),
    /// Not looked up: `fresh`, a refinement, or the organisation turned the cache off.
    Bypass,
}

/// L1: exact keys in this instance's memory, with their expiry, bounded in entries and bytes
/// (the least recently used go first).
pub struct Memory {
    entries: Bounded<String, (i64, Entry)>,
}

impl Memory {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: Bounded::new(max_entries, max_bytes),
        }
    }

    fn get(&mut self, key: &str, now_ms: i64) -> Option<Entry> {
        match self.entries.get(key) {
            Some((expires, entry)) if *expires > now_ms => Some(entry.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: String, entry: Entry, expires_ms: i64) {
        let weight = key.len() + entry.weight();
        self.entries.insert(key, (expires_ms, entry), weight);
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The weight of what is held, in bytes.
    pub fn bytes(&self) -> usize {
        self.entries.bytes()
    }
}

impl Entry {
    /// The bytes an entry holds: its ids' text.
    fn weight(&self) -> usize {
        self.conversation_id.as_str().len()
            + self
                .image_ids
                .iter()
                .map(|id| id.as_str().len() + std::mem::size_of::<ImageId>())
                .sum::<usize>()
    }
}

/// One prompt in an L2 index.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Indexed {
    exact: String,
    /// The embedding's model; vectors of different models are not compared.
    model: String,
    /// The unit vector, little-endian f32s in base64 (a quarter of the size of JSON numbers).
    vector: String,
    /// The intent guard's keyed digest ([`guard_digest`]): equal guards have equal digests, and
    /// the index holds no word of the prompt.
    guard: String,
    entry: Entry,
    expires_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    entries: Vec<Indexed>,
}

fn sha(parts: &serde_json::Value) -> String {
    hex::encode(sha2::Sha256::digest(parts.to_string().as_bytes()))
}

/// An intent guard as the index stores it: an HMAC under the organisation's data key of the guard
/// and the settings bucket. Guards are prompt words (colours, numbers, negations…), few enough to
/// guess from a plain hash, so they are keyed. `None` when the key is unavailable (then nothing is
/// indexed or matched semantically: a miss, never a wrong hit).
async fn guard_digest(cx: Cx<'_>, org: &OrgId, bucket: &str, guard: &[String]) -> Option<String> {
    let owner = imagemcp_tenancy::crypto::org_owner(org);
    let text = json!(["cache-guard", bucket, guard]).to_string();
    match imagemcp_tenancy::crypto::Crypto::new(cx.ports)
        .pseudonym(&owner, &text)
        .await
    {
        Ok(digest) => Some(digest),
        Err(e) => {
            tracing::warn!(error = %e, "the intent guard could not be keyed: no semantic cache");
            None
        }
    }
}

fn l3_key(org: &OrgId, exact: &str) -> String {
    format!("gen:{org}:{exact}")
}

fn index_key(org: &OrgId, bucket: &str) -> String {
    format!("sem:{org}:{bucket}")
}

fn encode_vector(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode_vector(s: &str) -> Option<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// The organisation's cache setting: `ORG#<org>` / `SETTINGS#cache`.
fn setting_key(org: &OrgId) -> Key {
    Key::new(format!("ORG#{org}"), "SETTINGS#cache")
}

/// Whether the organisation gets the cache (its own choice, else the server's default).
pub async fn enabled(cx: Cx<'_>, org: &OrgId) -> Result<bool> {
    let default = cx.engine.config.cache.enabled_by_default;
    Ok(match cx.ports.table.get(&setting_key(org)).await? {
        Some(item) => item
            .attrs
            .get("enabled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(default),
        None => default,
    })
}

/// Turns the organisation's cache on or off (org admins: the billing permission, since it decides
/// what requests cost).
pub async fn set_enabled(cx: Cx<'_>, caller: &Caller, on: bool) -> Result<bool> {
    caller.authorize(imagemcp_core::rbac::Action::ManageBilling)?;
    let serde_json::Value::Object(attrs) = json!({ "enabled": on }) else {
        return Err(Error::internal("a setting is not an object"));
    };
    cx.ports
        .table
        .put(
            imagemcp_core::table::Item::new(setting_key(&caller.org), attrs),
            imagemcp_core::table::Condition::None,
        )
        .await?;
    tracing::info!(org = %caller.org, enabled = on, "cache setting changed");
    Ok(on)
}

/// Looks a request up in L1, then L3 and L2, with the prompt's `moderation` run alongside. L1 is
/// memory; the L3 read, the moderation, the prompt's embedding and the L2 index read then run
/// concurrently, so a miss waits one round trip (the slowest of them) before the model call, as a
/// `fresh` request waits for its moderation. An exact hit answers as soon as it is found and drops the
/// rest (its prompt passed moderation when its images were made). Otherwise a refused prompt is
/// the error and its embedding is dropped unused; a semantic hit is served only to a prompt that
/// passed. A broken tier is a miss; `Bypass` means nothing was looked up or moderated.
pub async fn lookup<R: Resolve>(
    cx: Cx<'_>,
    caller: &Caller,
    req: Request,
    moderation: impl Future<Output = Result<()>>,
    resolver: &R,
) -> Result<Lookup<R::Output>> {
    match enabled(cx, &caller.org).await {
        Ok(true) => {}
        Ok(false) => return Ok(Lookup::Bypass),
        Err(e) => {
            tracing::warn!(error = %e, "cache setting unreadable: cache bypassed");
            return Ok(Lookup::Bypass);
        }
    }
    let config = cx.engine.config.cache;
    let org = &caller.org;
    let p = &req.params;
    let settings = json!([
        org.to_string(),
        req.model,
        p.size.to_string(),
        p.quality.as_str(),
        p.background.as_str(),
        p.format.as_str(),
        p.compression,
        req.style,
        req.n,
    ]);
    let bucket = sha(&settings);
    let exact = sha(&json!([bucket, req.prompt]));
    let now = cx.ports.clock.now_ms();

    // L1.
    let l1 = cx
        .engine
        .cache_memory
        .lock()
        .ok()
        .and_then(|mut m| m.get(&exact, now));
    if let Some(entry) = l1 {
        match resolve(resolver, &entry, CacheTier::L1, None).await {
            Some(g) => return Ok(Lookup::Hit(Box::new(g))),
            None => forget(cx, org, &exact).await,
        }
    }
    // L3, alongside the moderation and the embedding.
    let (moderated, embedding, index) = {
        let l3 = std::pin::pin!(exact_l3(cx, caller, &exact, now, resolver));
        let checks = std::pin::pin!(futures::future::join3(
            moderation,
            embed(cx, &req.prompt),
            load_index(cx, org, &bucket),
        ));
        match futures::future::select(l3, checks).await {
            Either::Left((Some(g), _)) => return Ok(Lookup::Hit(Box::new(g))),
            Either::Left((None, checks)) => checks.await,
            Either::Right((checked, l3)) => match l3.await {
                Some(g) => return Ok(Lookup::Hit(Box::new(g))),
                None => checked,
            },
        }
    };
    moderated?;
    // L2.
    let guard = intent_guard(&req.prompt);
    let threshold = if embedding
        .as_ref()
        .is_some_and(|e| e.model == imagemcp_core::embed::LOCAL_MODEL)
    {
        config.similarity_milli
    } else {
        config.remote_similarity_milli
    };
    if let Some(embedding) = &embedding
        && !index.entries.is_empty()
        && let Some(digest) = guard_digest(cx, org, &bucket, &guard).await
        && let Some((entry, similarity)) = nearest(index, embedding, &digest, now, threshold)
        && let Some(g) = resolve(resolver, &entry, CacheTier::L2, Some(similarity)).await
    {
        // The next identical request is an exact hit.
        remember_l1(cx, &exact, entry, now);
        return Ok(Lookup::Hit(Box::new(g)));
    }
    Ok(Lookup::Miss(Probe {
        exact,
        bucket,
        embedding,
        guard,
    }))
}

/// The L3 answer to an exact key, copied into L1; an entry whose images are gone is forgotten.
async fn exact_l3<R: Resolve>(
    cx: Cx<'_>,
    caller: &Caller,
    exact: &str,
    now: i64,
    resolver: &R,
) -> Option<R::Output> {
    let org = &caller.org;
    match cx.ports.cache.get(&l3_key(org, exact)).await {
        Ok(Some(bytes)) => match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) => match resolve(resolver, &entry, CacheTier::L3, None).await {
                Some(g) => {
                    remember_l1(cx, exact, entry, now);
                    return Some(g);
                }
                None => forget(cx, org, exact).await,
            },
            Err(e) => tracing::warn!(error = %e, "an L3 cache entry is malformed: ignored"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "L3 cache unreadable: treated as a miss"),
    }
    None
}

/// The prompt's embedding for L2, or `None` (no semantic lookup) when the model cannot give one.
async fn embed(cx: Cx<'_>, prompt: &str) -> Option<Embedding> {
    match cx.ports.model.embed(prompt).await {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %imagemcp_tenancy::error::public_message(&e), "prompt embedding failed: no semantic lookup");
            None
        }
    }
}

/// The most similar live prompt of an index, when it clears the threshold and its guard agrees.
fn nearest(
    index: Index,
    embedding: &Embedding,
    guard: &str,
    now: i64,
    threshold_milli: u32,
) -> Option<(Entry, u32)> {
    let mut best: Option<(Entry, u32)> = None;
    for e in index.entries {
        if e.expires_ms <= now || e.model != embedding.model || e.guard != guard {
            continue;
        }
        let Some(v) = decode_vector(&e.vector) else {
            continue;
        };
        let sim = cosine(&embedding.vector, &v);
        let milli = (sim.clamp(0.0, 1.0) * 1000.0).round() as u32;
        if milli >= threshold_milli && best.as_ref().is_none_or(|(_, b)| milli > *b) {
            best = Some((e.entry, milli));
        }
    }
    best
}

async fn load_index(cx: Cx<'_>, org: &OrgId, bucket: &str) -> Index {
    match cx.ports.cache.get(&index_key(org, bucket)).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Ok(None) => Index::default(),
        Err(e) => {
            tracing::warn!(error = %e, "L2 index unreadable: treated as empty");
            Index::default()
        }
    }
}

/// The entry's images through the caller's resolver, or `None` when any is gone.
async fn resolve<R: Resolve>(
    resolver: &R,
    entry: &Entry,
    tier: CacheTier,
    similarity_milli: Option<u32>,
) -> Option<R::Output> {
    resolver
        .resolve(Cached {
            image_ids: entry.image_ids.clone(),
            conversation_id: entry.conversation_id.clone(),
            hit: CacheHit {
                tier,
                similarity_milli,
            },
        })
        .await
}

fn remember_l1(cx: Cx<'_>, exact: &str, entry: Entry, now: i64) {
    let config = cx.engine.config.cache;
    let expires = now.saturating_add(config.l1_ttl.as_millis() as i64);
    if let Ok(mut m) = cx.engine.cache_memory.lock() {
        m.put(exact.to_owned(), entry, expires);
    }
}

/// Drops an entry whose images are gone from L1 and L3 (the L2 index entry ages out, and
/// resolving it fails the same way meanwhile).
async fn forget(cx: Cx<'_>, org: &OrgId, exact: &str) {
    if let Ok(mut m) = cx.engine.cache_memory.lock() {
        m.remove(exact);
    }
    if let Err(e) = cx.ports.cache.delete(&l3_key(org, exact)).await {
        tracing::warn!(error = %e, "a stale cache entry was not deleted");
    }
}

/// Remembers a fresh result, the ids of its images and conversation, in every tier. The caller
/// remembers only whole results (a request some of whose variations failed is not cached: the next
/// one should get all it asked for).
pub async fn remember(
    cx: Cx<'_>,
    caller: &Caller,
    probe: Probe,
    image_ids: Vec<ImageId>,
    conversation_id: ConversationId,
) {
    if image_ids.is_empty() {
        return;
    }
    let config = cx.engine.config.cache;
    let org = &caller.org;
    let entry = Entry {
        image_ids,
        conversation_id,
    };
    let now = cx.ports.clock.now_ms();
    remember_l1(cx, &probe.exact, entry.clone(), now);
    match serde_json::to_vec(&entry) {
        Ok(bytes) => {
            if let Err(e) = cx
                .ports
                .cache
                .put(&l3_key(org, &probe.exact), bytes, config.l3_ttl)
                .await
            {
                tracing::warn!(error = %e, "L3 cache write failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "a cache entry did not serialize"),
    }
    let Some(embedding) = probe.embedding else {
        return;
    };
    let Some(guard) = guard_digest(cx, org, &probe.bucket, &probe.guard).await else {
        return;
    };
    // Read-modify-write without a condition: two writers racing may lose one index entry, which
    // is only a later miss, never a wrong hit.
    let mut index = load_index(cx, org, &probe.bucket).await;
    index
        .entries
        .retain(|e| e.expires_ms > now && e.exact != probe.exact);
    index.entries.insert(
        0,
        Indexed {
            exact: probe.exact,
            model: embedding.model,
            vector: encode_vector(&embedding.vector),
            guard,
            entry,
            expires_ms: now.saturating_add(config.l3_ttl.as_millis() as i64),
        },
    );
    index.entries.truncate(config.index_size.max(1));
    match serde_json::to_vec(&index) {
        Ok(bytes) => {
            if let Err(e) = cx
                .ports
                .cache
                .put(&index_key(org, &probe.bucket), bytes, config.l3_ttl)
                .await
            {
                tracing::warn!(error = %e, "L2 index write failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "an L2 index did not serialize"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Entry {
        Entry {
            image_ids: vec![],
            conversation_id: ConversationId::parse(&format!(
                "conv_0190000000007000800000000000000{n}"
            ))
            .unwrap_or_else(|_| panic!("id")),
        }
    }

    #[test]
    fn memory_expires_and_stays_bounded() {
        let mut m = Memory::new(2, 1 << 20);
        m.put("a".into(), entry(1), 100);
        assert!(m.get("a", 99).is_some());
        assert!(m.get("a", 100).is_none(), "expired at its deadline");
        for (i, k) in ["b", "c", "d"].iter().enumerate() {
            m.put((*k).into(), entry(i as u8), 1000);
        }
        assert_eq!(m.len(), 2);
        assert!(m.get("b", 0).is_none(), "the oldest was evicted");
        assert!(m.get("d", 0).is_some());
    }

    #[test]
    fn memory_over_its_byte_bound_evicts() {
        let key = |i: usize| format!("{i:064}");
        let one = key(0).len() + entry(0).weight() + imagemcp_core::bounded::ENTRY_OVERHEAD;
        // Far more entries allowed than bytes for them: the bytes bind.
        let mut m = Memory::new(1000, 10 * one);
        for i in 0..25 {
            m.put(key(i), entry(1), 1000);
        }
        assert_eq!(m.len(), 10);
        assert!(m.bytes() <= 10 * one);
        assert!(m.get(&key(14), 0).is_none() && m.get(&key(24), 0).is_some());
    }

    #[test]
    fn vectors_round_trip() {
        let v = vec![0.5f32, -0.25, 1.0];
        assert_eq!(decode_vector(&encode_vector(&v)).unwrap(), v);
        assert!(decode_vector("AAA").is_none());
    }
}
