//! `SqsQueue`: the `Queue` and `PullQueue` ports on an SQS standard queue with a redrive policy.
//!
//! Bodies are JSON text. A delivery's `attempt` is SQS's `ApproximateReceiveCount`; a `retry`
//! makes the message visible again after its delay (`ChangeMessageVisibility`), and after
//! `max_attempts` receives SQS itself moves the message to the dead-letter queue (the queue's
//! `maxReceiveCount` must equal `max_attempts`: `provision::create_queues` and Terraform set both).
//! Under Lambda, SQS pushes batches to the `batch` function instead and this type only sends.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use imagemcp_core::queue::{Delivery, PullQueue, Queue};
use imagemcp_core::{Error, Result};
use serde_json::Value;

use crate::error::map_sdk;

/// SQS's limits: the longest delay and visibility timeout, and the largest receive batch.
const MAX_DELAY: Duration = Duration::from_secs(900);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
const MAX_BATCH: usize = 10;

/// The `Queue` (and `PullQueue`) port on SQS. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: Option<String>,
    max_attempts: u32,
}

/// Whole seconds for SQS, rounded up so a delay or timeout is never shorter than asked.
fn secs(d: Duration, max: Duration, field: &str) -> Result<i32> {
    if d > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {} s on SQS", max.as_secs()),
        ));
    }
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s).map_err(|_| Error::invalid(field, "too long"))
}

/// A received message as a delivery; `attempt` is read from its receive count.
pub fn delivery(
    message_id: String,
    receipt: String,
    body: &str,
    receive_count: Option<&str>,
) -> Delivery {
    // A body that is not JSON came from somewhere else: deliver it as a string, and let the
    // consumer reject it loudly rather than lose it here.
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    let attempt = receive_count.and_then(|c| c.parse().ok()).unwrap_or(1);
    Delivery {
        message_id,
        receipt,
        body,
        attempt,
    }
}

fn from_message(m: Message) -> Result<Delivery> {
    let count = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .map(String::as_str);
    let (Some(id), Some(receipt)) = (m.message_id.clone(), m.receipt_handle.clone()) else {
        return Err(Error::internal(
            "SQS returned a message without an id or receipt",
        ));
    };
    Ok(delivery(id, receipt, m.body().unwrap_or(""), count))
}

fn sent_at(m: &Message) -> i64 {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

impl SqsQueue {
    /// The queue at `queue_url`, whose redrive policy dead-letters after `max_attempts` receives
    /// into `dead_letter_url`.
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: Option<String>,
        max_attempts: u32,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_url,
            max_attempts,
        }
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Message>> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1))
            .visibility_timeout(secs(visibility, MAX_VISIBILITY, "visibility")?)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| map_sdk("SQS ReceiveMessage", e))?;
        Ok(out.messages.unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: Value, delay: Duration) -> Result<String> {
        let text = serde_json::to_string(&body).map_err(Error::internal)?;
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(text)
            .delay_seconds(secs(delay, MAX_DELAY, "delay")?)
            .send()
            .await
            .map_err(|e| map_sdk("SQS SendMessage", e))?;
        out.message_id
            .ok_or_else(|| Error::internal("SendMessage returned no message id"))
    }
}

#[async_trait::async_trait]
impl PullQueue for SqsQueue {
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        self.receive_from(&self.queue_url, max, visibility)
            .await?
            .into_iter()
            .map(from_message)
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| map_sdk("SQS DeleteMessage", e))?;
        Ok(())
    }

    async fn retry(&self, receipt: &str, delay: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(delay, MAX_VISIBILITY, "delay")?)
            .send()
            .await
            .map_err(|e| map_sdk("SQS ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// Peeks at the dead-letter queue (receiving with a zero visibility timeout, so the messages
    /// stay for operators and redrives). Every dead letter had exactly `max_attempts` deliveries:
    /// that is when SQS moves it. SQS samples its servers, so one call may see only some.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>> {
        let Some(url) = &self.dead_letter_url else {
            return Ok(Vec::new());
        };
        let mut messages = self.receive_from(url, max, Duration::ZERO).await?;
        messages.sort_by_key(sent_at);
        messages.truncate(max);
        messages
            .into_iter()
            .map(|m| {
                let mut d = from_message(m)?;
                d.attempt = self.max_attempts;
                Ok(d)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_within_limits() {
        assert_eq!(secs(Duration::ZERO, MAX_DELAY, "d").unwrap(), 0);
        assert_eq!(
            secs(Duration::from_millis(1500), MAX_DELAY, "d").unwrap(),
            2
        );
        assert_eq!(secs(MAX_DELAY, MAX_DELAY, "d").unwrap(), 900);
        assert!(matches!(
            secs(Duration::from_secs(901), MAX_DELAY, "d"),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn deliveries_parse_json_bodies_and_receive_counts() {
        let d = delivery("m1".into(), "r1".into(), r#"{"kind":"ping"}"#, Some("3"));
        assert_eq!((d.body["kind"].as_str(), d.attempt), (Some("ping"), 3));
        let d = delivery("m2".into(), "r2".into(), "not json", None);
        assert_eq!((d.body, d.attempt), (Value::String("not json".into()), 1));
    }
}
