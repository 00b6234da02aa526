//! Jobs: long work sent through the `Queue` and done, item by item, by the runtime-agnostic
//! consumer [`consume`] (called by the Lambda `batch` function, and by any other queue consumer).
//!
//! Minimal on purpose: the real job kinds (campaign batches, lessons, exports) come with their
//! features; they add a variant to [`run`]. What every kind gets from here:
//! - a job record `ORG#<org>` / `JOB#<id>` (kind, status, attempts, items done, error) that its
//!   owner can read with [`get`], and nobody else;
//! - idempotent items: item `i` is done by one transaction that writes `JOB#<id>#ITEM#<i>` with
//!   `NotExists` and counts it, so a redelivery (after a crash or a Lambda timeout mid-batch)
//!   skips finished items and never counts one twice;
//! - failure handling: a failing message is reported failed (redelivered by the queue); on its last
//!   attempt the job is marked `failed` with the error before the queue dead-letters the message.
//!   A message of an unknown kind, or one that is not a job message at all, fails loudly (logged
//!   at error level) and so reaches the dead-letter queue rather than vanishing.
//!
//! The message body is `{"kind": "...", "job_id": "job_…", "org_id": "org_…"}`; the work itself
//! is described by the job record, so a message stays small and a redelivered one is never stale.

use imagemcp_core::ids::{JobId, OrgId};
use imagemcp_core::queue::Delivery;
use imagemcp_core::table::{Add, Condition, Item, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;

/// A job that only counts its items: the health check of the queue pipeline, and the template
/// for real kinds.
pub const KIND_PING: &str = "ping";

/// The kinds this consumer handles ([`run`] has a branch for each).
const KINDS: &[&str] = &[KIND_PING];

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
    /// Why the job failed, in words fit for its owner.
    pub error: Option<String>,
}

/// The body of a job message.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    kind: String,
    job_id: JobId,
    org_id: OrgId,
}

fn job_key(org: &OrgId, id: &JobId) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}"))
}

fn item_key(org: &OrgId, id: &JobId, index: u32) -> Key {
    Key::new(format!("ORG#{org}"), format!("JOB#{id}#ITEM#{index:05}"))
}

fn to_item(job: &Job) -> Result<Item> {
    match serde_json::to_value(job).map_err(Error::internal)? {
        Value::Object(attrs) => Ok(Item::new(job_key(&job.org_id, &job.id), attrs)),
        _ => Err(Error::internal("a job did not serialize to an object")),
    }
}

fn from_item(item: Item) -> Result<Job> {
    serde_json::from_value(Value::Object(item.attrs))
        .map_err(|e| Error::internal(format!("a stored job is malformed: {e}")))
}

/// Records a job of `kind` with `items` items for `org` and sends its message.
pub async fn enqueue(app: &App, org: &OrgId, kind: &str, items: u32) -> Result<Job> {
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
    let job = Job {
        id: JobId::generate(app.ports.ids.as_ref()),
        org_id: org.clone(),
        kind: kind.to_owned(),
        status: JobStatus::Queued,
        attempts: 0,
        items_total: items,
        items_done: 0,
        error: None,
    };
    // The record first: a consumer that sees the message always finds its job.
    app.ports
        .table
        .put(to_item(&job)?, Condition::NotExists)
        .await?;
    let message = Message {
        kind: job.kind.clone(),
        job_id: job.id.clone(),
        org_id: org.clone(),
    };
    let body = serde_json::to_value(&message).map_err(Error::internal)?;
    app.ports
        .queue
        .send(body, std::time::Duration::ZERO)
        .await?;
    Ok(job)
}

/// The job `id` of `org`; another organisation's job is `NotFound`.
pub async fn get(app: &App, org: &OrgId, id: &JobId) -> Result<Job> {
    match app.ports.table.get(&job_key(org, id)).await? {
        Some(item) => from_item(item),
        None => Err(Error::not_found("job")),
    }
}

/// Changes the job with `change`, unless its counter moved since it was read (then reads again),
/// so a status write never overwrites items counted meanwhile.
async fn update(app: &App, org: &OrgId, id: &JobId, change: impl Fn(&mut Job)) -> Result<Job> {
    for _ in 0..5 {
        let mut job = get(app, org, id).await?;
        let seen = job.items_done;
        change(&mut job);
        let cond = Condition::AttrEquals("items_done".into(), json!(seen));
        match app.ports.table.put(to_item(&job)?, cond).await {
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
pub async fn consume(app: &App, deliveries: &[Delivery], max_attempts: u32) -> Vec<String> {
    let mut failed = Vec::new();
    for delivery in deliveries {
        if let Err(e) = process(app, delivery).await {
            tracing::error!(
                message_id = %delivery.message_id,
                attempt = delivery.attempt,
                error = %e,
                "job message failed"
            );
            if delivery.attempt >= max_attempts {
                mark_failed(app, delivery, &e).await;
            }
            failed.push(delivery.message_id.clone());
        }
    }
    failed
}

/// Marks the job of a message out of attempts as failed, if the message names one.
async fn mark_failed(app: &App, delivery: &Delivery, error: &Error) {
    let Ok(message) = serde_json::from_value::<Message>(delivery.body.clone()) else {
        tracing::error!(message_id = %delivery.message_id, "a message that is not a job goes to the dead-letter queue");
        return;
    };
    let reason = crate::error::public_message(error);
    let attempts = delivery.attempt;
    let marked = update(app, &message.org_id, &message.job_id, |job| {
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

async fn process(app: &App, delivery: &Delivery) -> Result<()> {
    let message: Message = serde_json::from_value(delivery.body.clone())
        .map_err(|e| Error::invalid("message", format!("not a job message: {e}")))?;
    let job = get(app, &message.org_id, &message.job_id).await?;
    if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
        // A duplicate, or a redelivery of a message whose job finished: nothing left to do.
        return Ok(());
    }
    if !KINDS.contains(&job.kind.as_str()) {
        return Err(unknown_kind(&job.kind));
    }
    let attempts = delivery.attempt;
    let job = update(app, &job.org_id, &job.id, |j| {
        j.status = JobStatus::Running;
        j.attempts = attempts;
    })
    .await?;
    run(app, &job).await?;
    update(app, &job.org_id, &job.id, |j| {
        j.status = JobStatus::Done;
        j.error = None;
    })
    .await?;
    tracing::info!(job_id = %job.id, kind = %job.kind, "job done");
    Ok(())
}

/// Does the job's work. Each kind does its items through [`do_item`].
async fn run(app: &App, job: &Job) -> Result<()> {
    match job.kind.as_str() {
        KIND_PING => {
            for index in 0..job.items_total {
                do_item(app, job, index, json!({})).await?;
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
async fn do_item(app: &App, job: &Job, index: u32, result: Value) -> Result<()> {
    let Value::Object(attrs) = json!({ "result": result }) else {
        return Err(Error::internal("an item record is not an object"));
    };
    let ops = vec![
        TransactOp::Put(
            Item::new(item_key(&job.org_id, &job.id, index), attrs),
            Condition::NotExists,
        ),
        TransactOp::Add(Add {
            key: job_key(&job.org_id, &job.id),
            attr: "items_done".into(),
            delta: 1,
            max: Some(i64::from(job.items_total)),
            expires_at: None,
        }),
    ];
    match app.ports.table.transact(ops).await {
        Ok(()) => Ok(()),
        // Done by an earlier delivery.
        Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
