//! Jobs: long work sent through the `Queue` and done, item by item, by the runtime-agnostic
//! consumer [`consume`] (called by the Lambda `batch` function, and by any other queue consumer).
//!
//! The store and the consumer know no feature: a job kind (campaign batches, generations run as
//! tasks, lessons and exports to come) is an [`ItemKind`] its feature registers in a [`Kinds`]
//! list, which the consumer asks to do each item; only the `ping` kind, the pipeline's health
//! check, is built in. What every kind gets from here:
//! - a job record `ORG#<org>` / `JOB#<id>` (kind, status, attempts, items done, error) that its
//!   owner can read with [`get`], and nobody else;
//! - idempotent items: item `i` is done by one transaction that writes `JOB#<id>#ITEM#<i>` with
//!   `NotExists` and counts it, so a redelivery (after a crash or a Lambda timeout mid-batch)
//!   skips finished items and never counts one twice. An item that makes images is recorded in
//!   the very transaction that stores them ([`ItemCommit`]), so a process that dies at any instant
//!   leaves the item either done with its images or not done with none: it is generated and
//!   charged once. Its quota and budget holds are recorded per item (`JOB#<id>#HOLD#<i>`), so a
//!   redelivery adopts what the dead process held instead of holding it again;
//! - sealed specs: a job's `spec` (prompts, the submitter) is sealed with the organisation's data
//!   key, bound to the job's key; a job recorded before specs were sealed is still read;
//! - failure handling: a failing message is reported failed (redelivered by the queue); on its last
//!   attempt the job is marked `failed` with the error before the queue dead-letters the message.
//!   A message of an unknown kind, or one that is not a job message at all, fails loudly (logged
//!   at error level) and so reaches the dead-letter queue rather than vanishing.
//!
//! The message body is `{"kind": "...", "job_id": "job_…", "org_id": "org_…"}`; the work itself
//! is described by the job record, so a message stays small and a redelivered one is never stale.
//!
//! Item jobs ([`enqueue_items`], e.g. campaign batches) send one message per item, with `"item": i`:
//! items run in parallel across consumers, a failing item is retried on its own, and on its last
//! attempt it is recorded as failed (never dropped); the job is done when every item is done or
//! failed. One idempotency key makes one job however often it is submitted.

use imagemcp_core::ids::{JobId, OrgId};
use imagemcp_core::queue::Delivery;
use imagemcp_core::table::{Add, Condition, Item, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use imagemcp_billing::Billing;
use imagemcp_engine::Engine;
use imagemcp_tenancy::Ports;

/// A job that only counts its items: the health check of the queue pipeline.
pub const KIND_PING: &str = "ping";

/// What jobs work on: the ports, billing (an item's quota and budget holds, the organisation's
/// tier) and the engine (how many of an organisation's items run at once).
#[derive(Clone, Copy)]
pub struct Jobs<'a> {
    pub ports: &'a Ports,
    pub billing: &'a Billing,
    pub engine: &'a Engine,
}

/// A kind of item job: its feature does each item. `C` is what the feature runs on (the
/// application), handed to [`consume`] by the runtime.
#[async_trait::async_trait]
pub trait ItemKind<C: ?Sized>: Send + Sync {
    /// The kind's name, as job records and messages carry it.
    fn name(&self) -> &'static str;

    /// Does item `index` of `job` and returns its result. An item that stores images records
    /// itself in the transaction that stores them ([`ItemCommit`]); any other result is recorded
    /// by the consumer.
    async fn run_item(&self, cx: &C, job: &Job, index: u32) -> Result<Value>;
}

/// The item kinds a consumer handles.
pub struct Kinds<C: ?Sized> {
    kinds: Vec<Box<dyn ItemKind<C>>>,
}

impl<C: ?Sized> Default for Kinds<C> {
    fn default() -> Self {
        Self { kinds: Vec::new() }
    }
}

impl<C: ?Sized> Kinds<C> {
    /// The list with `kind` added.
    pub fn with(mut self, kind: impl ItemKind<C> + 'static) -> Self {
        self.kinds.push(Box::new(kind));
        self
    }

    fn get(&self, name: &str) -> Option<&dyn ItemKind<C>> {
        self.kinds
            .iter()
            .find(|k| k.name() == name)
            .map(|k| k.as_ref())
    }

    fn handles(&self, name: &str) -> bool {
        name == KIND_PING || self.get(name).is_some()
    }
}

/// The most items one job may have.
pub const MAX_ITEMS: u32 = 1000;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    /// Cancelled by its owner (an MCP `tasks/cancel`): items not started are never generated.
    Cancelled,
}

impl JobStatus {
    /// Whether the job will change no more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// A job as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub org_id: OrgId,
    pub kind: String,
    pub status: JobStatus,
    /// Deliveries so far (the queue's receive count of the last one).
    pub attempts: u32,
    pub items_total: u32,
    pub items_done: u32,
    /// Items that failed on their last attempt (item jobs).
    #[serde(default)]
    pub items_failed: u32,
    /// Why the job failed, in words fit for its owner.
    pub error: Option<String>,
    /// What an item job's items are (the kind reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    /// When the job was recorded and last changed (ms since the epoch; 0 on jobs from before).
    #[serde(default)]
    pub created_at_ms: i64,
    #[serde(default)]
    pub updated_at_ms: i64,
}

impl Job {
    /// A new job of `items` items, queued now.
    fn queued(jobs: Jobs<'_>, org: &OrgId, kind: &str, items: u32, spec: Option<Value>) -> Self {
        let now = jobs.ports.clock.now_ms();
        Job {
            id: JobId::generate(jobs.ports.ids.as_ref()),
            org_id: org.clone(),
            kind: kind.to_owned(),
            status: JobStatus::Queued,
            attempts: 0,
            items_total: items,
            items_done: 0,
            items_failed: 0,
            error: None,
            spec,
            created_at_ms: now,
            updated_at_ms: now,
        }
    }
}

/// The body of a job message.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    kind: String,
    job_id: JobId,
    org_id: OrgId,
    /// The item this message is for, in item jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item: Option<u32>,
}

fn job_key(org: &OrgId, id: &JobId) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}"))
}

/// The count of an item job's failed items, in an item of its own: `update` rewrites the job record
/// under a condition on `items_done` only (a table condition names one attribute), so a counter
/// kept in the record beside it could be overwritten by a stale copy. Out here, it never is.
fn failed_key(org: &OrgId, id: &JobId) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}#FAILED"))
}

fn item_key(org: &OrgId, id: &JobId, index: u32) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}#ITEM#{index:05}"))
}

/// Where a job item's quota and budget holds are recorded while it generates
/// (`billing::quota::Admission::reserve`): apart from `JOB#<id>#ITEM#`, whose items are the results.
fn hold_key(org: &OrgId, id: &JobId, index: u32) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}#HOLD#{index:05}"))
}

/// The attribute of a job record sealed at rest: its `spec`, as JSON text.
const SPEC: &str = "spec";

/// The job as a table item, its spec sealed with the organisation's data key.
async fn to_item(jobs: Jobs<'_>, job: &Job) -> Result<Item> {
    let Value::Object(mut attrs) = serde_json::to_value(job).map_err(Error::internal)? else {
        return Err(Error::internal("a job did not serialize to an object"));
    };
    if let Some(spec) = attrs.get_mut(SPEC) {
        *spec = Value::String(spec.to_string());
    }
    let mut item = Item::new(job_key(&job.org_id, &job.id), attrs);
    imagemcp_tenancy::crypto::Crypto::new(jobs.ports)
        .seal_item(&mut item, &[SPEC])
        .await?;
    Ok(item)
}

/// The job of a table item. A spec stored before specs were sealed (a JSON object) is read as
/// it is.
async fn from_item(jobs: Jobs<'_>, mut item: Item) -> Result<Job> {
    if item
        .str(SPEC)
        .is_some_and(imagemcp_tenancy::crypto::is_sealed)
    {
        imagemcp_tenancy::crypto::Crypto::new(jobs.ports)
            .open_item(&mut item, &[SPEC])
            .await?;
    }
    if let Some(Value::String(text)) = item.attrs.get(SPEC) {
        let spec: Value = serde_json::from_str(text)
            .map_err(|e| Error::internal(format!("a stored job's spec is malformed: {e}")))?;
        item.attrs.insert(SPEC.into(), spec);
    }
    serde_json::from_value(Value::Object(item.attrs))
        .map_err(|e| Error::internal(format!("a stored job is malformed: {e}")))
}

/// Records a job of `kind` with `items` items for `org` and sends its message.
pub async fn enqueue(jobs: Jobs<'_>, org: &OrgId, kind: &str, items: u32) -> Result<Job> {
    if kind.is_empty()
        || kind.len() > 40
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::invalid("kind", "1 to 40 of a-z, 0-9 and -"));
    }
    if items > MAX_ITEMS {
        return Err(Error::invalid(
            "items",
            format!("at most {MAX_ITEMS} per job"),
        ));
    }
    let job = Job::queued(jobs, org, kind, items, None);
    // The record first: a consumer that sees the message always finds its job.
    jobs.ports
        .table
        .put(to_item(jobs, &job).await?, Condition::NotExists)
        .await?;
    let message = Message {
        kind: job.kind.clone(),
        job_id: job.id.clone(),
        org_id: org.clone(),
        item: None,
    };
    let body = serde_json::to_value(&message).map_err(Error::internal)?;
    jobs.ports
        .queue
        .send(body, std::time::Duration::ZERO)
        .await?;
    Ok(job)
}

/// Records an item job of `kind` with `items` items described by `spec`, and sends one message
/// per item. With an `idempotency_key`, the first job made with that key is returned instead of a
/// new one (the key's record and the job are written in one transaction).
pub async fn enqueue_items(
    jobs: Jobs<'_>,
    org: &OrgId,
    kind: &str,
    items: u32,
    spec: Value,
    idempotency_key: Option<&str>,
) -> Result<Job> {
    if items == 0 || items > MAX_ITEMS {
        return Err(Error::invalid("items", format!("1 to {MAX_ITEMS} per job")));
    }
    let job = Job::queued(jobs, org, kind, items, Some(spec));
    let mut ops = vec![TransactOp::Put(
        to_item(jobs, &job).await?,
        Condition::NotExists,
    )];
    let idem = match idempotency_key {
        Some(k) if k.is_empty() || k.len() > 200 => {
            return Err(Error::invalid("idempotency_key", "1 to 200 characters"));
        }
        Some(k) => {
            let key = idempotency_record(org, k);
            let Value::Object(attrs) = json!({ "job_id": job.id }) else {
                return Err(Error::internal("an idempotency record is not an object"));
            };
            ops.push(TransactOp::Put(
                Item::new(key.clone(), attrs),
                Condition::NotExists,
            ));
            Some(key)
        }
        None => None,
    };
    if let Err(e) = jobs.ports.table.transact(ops).await {
        if let (Error::Conflict(_), Some(key)) = (&e, &idem)
            && let Some(first) = jobs.ports.table.get(key).await?
            && let Some(id) = first.str("job_id")
        {
            // Submitted before: that job, whatever its state.
            return get(jobs, org, &JobId::parse(id)?).await;
        }
        return Err(e);
    }
    for index in 0..items {
        let message = Message {
            kind: job.kind.clone(),
            job_id: job.id.clone(),
            org_id: org.clone(),
            item: Some(index),
        };
        let body = serde_json::to_value(&message).map_err(Error::internal)?;
        jobs.ports
            .queue
            .send(body, std::time::Duration::ZERO)
            .await?;
    }
    Ok(job)
}

/// Where the job made with idempotency key `k` is recorded (the key is stored hashed).
fn idempotency_record(org: &OrgId, k: &str) -> Key {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(k.as_bytes()));
    Key::new(format!("ORG#{org}"), format!("JOBKEY#{digest}"))
}

/// The job already made in `org` with idempotency key `k`, if any.
pub async fn job_for_key(jobs: Jobs<'_>, org: &OrgId, k: &str) -> Result<Option<JobId>> {
    match jobs.ports.table.get(&idempotency_record(org, k)).await? {
        Some(item) => item.str("job_id").map(JobId::parse).transpose(),
        None => Ok(None),
    }
}

/// The recorded results of a job's finished items, by index: the result, or `{"error": …}` for
/// an item that failed on its last attempt.
pub async fn results(jobs: Jobs<'_>, org: &OrgId, id: &JobId) -> Result<Vec<(u32, Value)>> {
    Ok(items(jobs, org, id)
        .await?
        .into_iter()
        .map(|(index, mut attrs)| {
            let result = attrs
                .remove("result")
                .or_else(|| attrs.remove("error").map(|e| json!({ "error": e })))
                .unwrap_or(Value::Null);
            (index, result)
        })
        .collect())
}

/// The records of a job's finished items, by index: `result` or `error`, and `at_ms`.
pub async fn items(
    jobs: Jobs<'_>,
    org: &OrgId,
    id: &JobId,
) -> Result<Vec<(u32, serde_json::Map<String, Value>)>> {
    let prefix = format!("JOB#{id}#ITEM#");
    let mut query = imagemcp_core::table::Query::new(format!("ORG#{org}"), prefix.clone(), 1000);
    let mut out = Vec::new();
    loop {
        let page = jobs.ports.table.query(&query).await?;
        for item in page.items {
            let index = item.key.sk[prefix.len()..].parse().unwrap_or(u32::MAX);
            out.push((index, item.attrs));
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(out),
        }
    }
}

/// The job `id` of `org`; another organisation's job is `NotFound`. A job whose cancel marker
/// exists reads as cancelled.
pub async fn get(jobs: Jobs<'_>, org: &OrgId, id: &JobId) -> Result<Job> {
    let mut job = match jobs.ports.table.get(&job_key(org, id)).await? {
        Some(item) => from_item(jobs, item).await?,
        None => return Err(Error::not_found("job")),
    };
    if !job.status.is_terminal() && jobs.ports.table.get(&cancel_key(org, id)).await?.is_some() {
        job.status = JobStatus::Cancelled;
    }
    if let Some(counter) = jobs.ports.table.get(&failed_key(org, id)).await? {
        let failed = counter.attrs.get("items_failed").and_then(Value::as_u64);
        job.items_failed = u32::try_from(failed.unwrap_or(0)).unwrap_or(u32::MAX);
    }
    Ok(job)
}

/// The cancel marker: its own item, written once, so no concurrent write of the job record can
/// lose a cancellation.
fn cancel_key(org: &OrgId, id: &JobId) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}#CANCEL"))
}

/// Cancels a job that has not finished: items not yet started are never generated (so never
/// charged); finished items stay. A finished job is `Conflict` (there is nothing to cancel).
pub async fn cancel(jobs: Jobs<'_>, org: &OrgId, id: &JobId) -> Result<Job> {
    let job = get(jobs, org, id).await?;
    match job.status {
        JobStatus::Cancelled => return Ok(job),
        JobStatus::Done | JobStatus::Failed => {
            return Err(Error::Conflict("the job has already finished".into()));
        }
        JobStatus::Queued | JobStatus::Running => {}
    }
    let Value::Object(attrs) = json!({ "at_ms": jobs.ports.clock.now_ms() }) else {
        return Err(Error::internal("a cancel marker is not an object"));
    };
    match jobs
        .ports
        .table
        .put(Item::new(cancel_key(org, id), attrs), Condition::NotExists)
        .await
    {
        Ok(()) | Err(Error::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    update(jobs, org, id, |j| {
        if !j.status.is_terminal() {
            j.status = JobStatus::Cancelled;
        }
    })
    .await
}

/// Changes the job with `change`, unless its counter moved since it was read (then reads again),
/// so a status write never overwrites items counted meanwhile.
async fn update(jobs: Jobs<'_>, org: &OrgId, id: &JobId, change: impl Fn(&mut Job)) -> Result<Job> {
    for _ in 0..5 {
        let mut job = get(jobs, org, id).await?;
        let seen = job.items_done;
        let status = job.status;
        change(&mut job);
        // A cancelled job stays cancelled whatever a consumer meant to write (the cancel marker,
        // read by `get`, is the truth if a write raced it).
        if status == JobStatus::Cancelled {
            job.status = JobStatus::Cancelled;
        }
        job.updated_at_ms = jobs.ports.clock.now_ms();
        let cond = Condition::AttrEquals("items_done".into(), json!(seen));
        match jobs.ports.table.put(to_item(jobs, &job).await?, cond).await {
            Ok(()) => return Ok(job),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Unavailable("the job kept changing".into()))
}

/// Processes a batch of deliveries and returns the message ids that failed (to be delivered
/// again, or dead-lettered by the queue once out of attempts). `max_attempts` is the queue's
/// redrive `maxReceiveCount`: on that attempt a failing job is marked failed.
///
/// Deliveries of one organisation run concurrently up to its tier's concurrency
/// (the engine's, for its tier), organisations side by side: a 10-item campaign takes a couple of
/// model latencies, not ten, and one organisation's batch cannot take the whole instance.
pub async fn consume<C: Sync + ?Sized>(
    jobs: Jobs<'_>,
    kinds: &Kinds<C>,
    cx: &C,
    deliveries: &[Delivery],
    max_attempts: u32,
) -> Vec<String> {
    let mut by_org: std::collections::BTreeMap<Option<String>, Vec<&Delivery>> = Default::default();
    for d in deliveries {
        let org = serde_json::from_value::<Message>(d.body.clone())
            .ok()
            .map(|m| m.org_id.to_string());
        by_org.entry(org).or_default().push(d);
    }
    // Futures collected into vectors rather than mapped lazily: a lazily mapped closure makes the
    // handler's future fail rustc's `Send` check (a higher-ranked lifetime it cannot prove).
    let groups: Vec<_> = by_org
        .into_iter()
        .map(|(org, batch)| consume_org(jobs, kinds, cx, org, batch, max_attempts))
        .collect();
    futures::future::join_all(groups)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// How many of the organisation's items may run at once on this instance: its tier's share, the
/// lowest when its plan cannot be read.
async fn concurrency(jobs: Jobs<'_>, org: &OrgId) -> usize {
    match imagemcp_billing::plan::load(jobs.billing, org).await {
        Ok(plan) => jobs
            .engine
            .concurrency(plan.effective_tier(jobs.ports.clock.now_secs())),
        Err(e) => {
            tracing::warn!(error = %e, "plan unreadable: the lowest concurrency applies");
            jobs.engine.config.concurrency.free.max(1)
        }
    }
}

/// One organisation's deliveries, up to its concurrency at once.
async fn consume_org<C: Sync + ?Sized>(
    jobs: Jobs<'_>,
    kinds: &Kinds<C>,
    cx: &C,
    org: Option<String>,
    batch: Vec<&Delivery>,
    max_attempts: u32,
) -> Vec<String> {
    use futures::StreamExt;
    let limit = match org.as_deref().map(OrgId::parse) {
        Some(Ok(org)) => concurrency(jobs, &org).await,
        _ => 1,
    };
    let work: Vec<_> = batch
        .into_iter()
        .map(|d| consume_one(jobs, kinds, cx, d, max_attempts))
        .collect();
    futures::stream::iter(work)
        .buffer_unordered(limit)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

/// One delivery: `Some(message_id)` when it is to be delivered again.
async fn consume_one<C: Sync + ?Sized>(
    jobs: Jobs<'_>,
    kinds: &Kinds<C>,
    cx: &C,
    delivery: &Delivery,
    max_attempts: u32,
) -> Option<String> {
    let e = process(jobs, kinds, cx, delivery).await.err()?;
    tracing::error!(
        message_id = %delivery.message_id,
        attempt = delivery.attempt,
        error = %e,
        "job message failed"
    );
    if delivery.attempt >= max_attempts {
        mark_failed(jobs, delivery, &e).await;
        // An item out of attempts is recorded as failed, so the message is done.
        if is_item(delivery) {
            return None;
        }
    }
    Some(delivery.message_id.clone())
}

/// Marks the job of a message out of attempts as failed, if the message names one.
async fn mark_failed(jobs: Jobs<'_>, delivery: &Delivery, error: &Error) {
    let Ok(message) = serde_json::from_value::<Message>(delivery.body.clone()) else {
        tracing::error!(message_id = %delivery.message_id, "a message that is not a job goes to the dead-letter queue");
        return;
    };
    let reason = imagemcp_tenancy::error::public_message(error);
    let attempts = delivery.attempt;
    if let Some(index) = message.item {
        match fail_item(jobs, &message, index, &reason).await {
            Ok(()) => {
                tracing::error!(job_id = %message.job_id, item = index, "job item failed after its last attempt")
            }
            Err(e) => {
                tracing::error!(job_id = %message.job_id, error = %e, "recording a failed item failed")
            }
        }
        return;
    }
    let marked = update(jobs, &message.org_id, &message.job_id, |job| {
        job.status = JobStatus::Failed;
        job.attempts = attempts;
        job.error = Some(reason.clone());
    })
    .await;
    match marked {
        Ok(_) => {
            tracing::error!(job_id = %message.job_id, org_id = %message.org_id, "job failed after its last attempt")
        }
        Err(e) => {
            tracing::error!(job_id = %message.job_id, error = %e, "marking the job failed failed")
        }
    }
}

async fn process<C: Sync + ?Sized>(
    jobs: Jobs<'_>,
    kinds: &Kinds<C>,
    cx: &C,
    delivery: &Delivery,
) -> Result<()> {
    let message: Message = serde_json::from_value(delivery.body.clone())
        .map_err(|e| Error::invalid("message", format!("not a job message: {e}")))?;
    let job = get(jobs, &message.org_id, &message.job_id).await?;
    if job.status.is_terminal() {
        // A duplicate, a redelivery of a message whose job finished, or an item of a cancelled
        // job: nothing left to do (and nothing generated, so nothing charged). What a process
        // that died on this item still held is given back.
        if let Some(index) = message.item {
            imagemcp_billing::quota::release_item_hold(
                jobs.billing,
                &hold_key(&job.org_id, &job.id, index),
            )
            .await;
        }
        return Ok(());
    }
    if !kinds.handles(&job.kind) {
        return Err(unknown_kind(&job.kind));
    }
    let attempts = delivery.attempt;
    let job = update(jobs, &job.org_id, &job.id, |j| {
        j.status = JobStatus::Running;
        j.attempts = j.attempts.max(attempts);
    })
    .await?;
    if let Some(index) = message.item {
        return run_item(jobs, kinds, cx, &job, index).await;
    }
    run(jobs, &job).await?;
    update(jobs, &job.org_id, &job.id, |j| {
        j.status = JobStatus::Done;
        j.error = None;
    })
    .await?;
    tracing::info!(job_id = %job.id, kind = %job.kind, "job done");
    Ok(())
}

/// Does the job's work. Each kind does its items through [`do_item`].
async fn run(jobs: Jobs<'_>, job: &Job) -> Result<()> {
    match job.kind.as_str() {
        KIND_PING => {
            for index in 0..job.items_total {
                do_item(jobs, job, index, json!({})).await?;
            }
            Ok(())
        }
        other => Err(unknown_kind(other)),
    }
}

fn unknown_kind(kind: &str) -> Error {
    Error::invalid(
        "kind",
        format!("unknown job kind `{kind}`: no consumer handles it"),
    )
}

/// Records item `index` as done with `result`, once: a redelivered job skips it.
async fn do_item(jobs: Jobs<'_>, job: &Job, index: u32, result: Value) -> Result<()> {
    let max = Some(i64::from(job.items_total));
    record_item(
        jobs,
        &job.org_id,
        &job.id,
        index,
        json!({ "result": result }),
        "items_done",
        max,
    )
    .await
}

/// Writes an item's record and counts it on the job in one transaction, once: if the record
/// exists (an earlier delivery wrote it), nothing changes and the counter is not bumped again.
async fn record_item(
    jobs: Jobs<'_>,
    org: &OrgId,
    job: &JobId,
    index: u32,
    record: Value,
    counter: &str,
    max: Option<i64>,
) -> Result<()> {
    let Value::Object(mut attrs) = record else {
        return Err(Error::internal("an item record is not an object"));
    };
    attrs.insert("at_ms".into(), json!(jobs.ports.clock.now_ms()));
    let ops = vec![
        TransactOp::Put(
            Item::new(item_key(org, job, index), attrs),
            Condition::NotExists,
        ),
        TransactOp::Add(Add {
            // Failures are counted outside the job record (see `failed_key`).
            key: if counter == "items_failed" {
                failed_key(org, job)
            } else {
                job_key(org, job)
            },
            attr: counter.into(),
            delta: 1,
            max,
            expires_at: None,
        }),
    ];
    match jobs.ports.table.transact(ops).await {
        Ok(()) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn is_item(delivery: &Delivery) -> bool {
    serde_json::from_value::<Message>(delivery.body.clone()).is_ok_and(|m| m.item.is_some())
}

/// Does item `index` of an item job, unless a delivery before did it, then finishes the job when
/// it was the last.
async fn run_item<C: Sync + ?Sized>(
    jobs: Jobs<'_>,
    kinds: &Kinds<C>,
    cx: &C,
    job: &Job,
    index: u32,
) -> Result<()> {
    if index >= job.items_total {
        return Err(Error::invalid(
            "item",
            format!("the job has {} items", job.items_total),
        ));
    }
    // Checked again right before the model call: a cancel that landed since the message was
    // taken stops this item (an item already generating finishes and stays).
    if get(jobs, &job.org_id, &job.id).await?.status == JobStatus::Cancelled {
        return Ok(());
    }
    // A redelivered item that finished is not generated again.
    let recorded = async || {
        jobs.ports
            .table
            .get(&item_key(&job.org_id, &job.id, index))
            .await
            .map(|item| item.is_some())
    };
    if !recorded().await? {
        let kind = kinds
            .get(&job.kind)
            .ok_or_else(|| unknown_kind(&job.kind))?;
        let result = kind.run_item(cx, job, index).await;
        match result {
            // Already recorded with the images, when there were any; otherwise (an answer from
            // the cache, a refusal kept as the result) recorded here, and whatever an earlier
            // delivery of the item still held given back (a commit would have settled it).
            Ok(result) => {
                do_item(jobs, job, index, result).await?;
                imagemcp_billing::quota::release_item_hold(
                    jobs.billing,
                    &hold_key(&job.org_id, &job.id, index),
                )
                .await;
            }
            // A duplicate delivery of this item (one that overran its visibility timeout) won
            // the race to commit: the item is done.
            Err(_) if recorded().await? => {}
            Err(e) => return Err(e),
        }
    }
    finish_if_complete(jobs, &job.org_id, &job.id).await
}

/// Records item `index` as failed with `reason` (once) and finishes the job if it was the last.
async fn fail_item(jobs: Jobs<'_>, message: &Message, index: u32, reason: &str) -> Result<()> {
    let (org, job) = (&message.org_id, &message.job_id);
    record_item(
        jobs,
        org,
        job,
        index,
        json!({ "error": reason }),
        "items_failed",
        None,
    )
    .await?;
    finish_if_complete(jobs, org, job).await
}

/// Marks an item job done once every item is done or failed.
async fn finish_if_complete(jobs: Jobs<'_>, org: &OrgId, id: &JobId) -> Result<()> {
    let job = get(jobs, org, id).await?;
    if job.items_done + job.items_failed < job.items_total || job.status.is_terminal() {
        return Ok(());
    }
    let failed = job.items_failed;
    update(jobs, org, id, |j| {
        j.status = if failed == j.items_total {
            JobStatus::Failed
        } else {
            JobStatus::Done
        };
        j.error = (failed > 0).then(|| format!("{failed} of {} items failed", j.items_total));
    })
    .await?;
    tracing::info!(job_id = %id, failed, "item job finished");
    Ok(())
}

/// The job item a generation is for. The transaction that stores its images also writes the
/// item's record (`NotExists`), counts it on the job and settles the item's quota and budget holds
/// ([`ItemCommit::ops`]): the item is done exactly when its images exist, and a second commit of
/// the same item (a redelivery racing a slow first delivery) fails whole, storing and charging
/// nothing.
#[derive(Clone, Debug)]
pub struct ItemCommit {
    org: OrgId,
    job: JobId,
    index: u32,
    items_total: u32,
    /// The item's holds once admitted (`billing::quota::Admission::reserve`), settled by the commit.
    pub hold: Option<imagemcp_billing::quota::ItemHold>,
}

impl ItemCommit {
    pub fn new(job: &Job, index: u32) -> Self {
        Self {
            org: job.org_id.clone(),
            job: job.id.clone(),
            index,
            items_total: job.items_total,
            hold: None,
        }
    }

    /// Where this item's holds are recorded.
    pub fn hold_key(&self) -> Key {
        hold_key(&self.org, &self.job, self.index)
    }

    /// The operations the images' commit carries for this item: its record with `result`, its
    /// count on the job, and the settlement of its holds (`stored` images kept, the rest given
    /// back).
    pub fn ops(&self, result: Value, stored: u32, now_ms: i64) -> Result<Vec<TransactOp>> {
        let Value::Object(attrs) = json!({ "result": result, "at_ms": now_ms }) else {
            return Err(Error::internal("an item record is not an object"));
        };
        let mut ops = vec![
            TransactOp::Put(
                Item::new(item_key(&self.org, &self.job, self.index), attrs),
                Condition::NotExists,
            ),
            TransactOp::Add(Add {
                key: job_key(&self.org, &self.job),
                attr: "items_done".into(),
                delta: 1,
                max: Some(i64::from(self.items_total)),
                expires_at: None,
            }),
        ];
        if let Some(hold) = &self.hold {
            ops.extend(hold.settle_ops(stored));
        }
        Ok(ops)
    }
}
