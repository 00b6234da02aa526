//! The `Queue` port on a Cloudflare Queue binding (the producer), and the consumer's glue: a
//! message batch handed to the shared consumer, each message acked or retried on its own.

use std::time::Duration;

use imagemcp_core::queue::{Delivery, Queue};
use imagemcp_core::{Error, Result};
use serde_json::Value;
use worker::MessageBuilder;
use worker::js_sys::{JSON, Reflect};
use worker::send::{SendFuture, SendWrapper};
use worker::wasm_bindgen::{JsCast, JsValue};

/// Queues accept delays of at most 12 hours.
const MAX_DELAY: Duration = Duration::from_secs(12 * 3600);

/// The producer side of a Cloudflare Queue.
pub struct CfQueue {
    // See `KvCache`: a JavaScript binding, wrapped because a Worker isolate is single-threaded.
    queue: SendWrapper<worker::Queue>,
    ids: std::sync::Arc<dyn imagemcp_core::ids::Ids>,
}

impl CfQueue {
    pub fn new(queue: worker::Queue, ids: std::sync::Arc<dyn imagemcp_core::ids::Ids>) -> Self {
        Self {
            queue: SendWrapper::new(queue),
            ids,
        }
    }
}

/// The envelope of a message: Queues assign ids only on delivery, so the producer's own id travels
/// with the body and the consumer sees the same id on every redelivery. The body travels as JSON
/// text: the `worker` crate hands messages to JavaScript through serde-wasm-bindgen, which turns a
/// JSON object into a JavaScript `Map` that the queue's structured clone keeps but `JSON.stringify`
/// reads as `{}`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub id: String,
    pub body: String,
}

#[async_trait::async_trait]
impl Queue for CfQueue {
    async fn send(&self, body: Value, delay: Duration) -> Result<String> {
        if delay > MAX_DELAY {
            return Err(Error::invalid(
                "delay",
                "a queued message may wait at most 12 hours",
            ));
        }
        let id = self.ids.new_id();
        let message = MessageBuilder::new(Envelope {
            id: id.clone(),
            body: body.to_string(),
        })
        .delay_seconds(u32::try_from(delay.as_secs()).unwrap_or(u32::MAX))
        .build();
        SendFuture::new(async { self.queue.send(message).await })
            .await
            .map_err(|e| Error::Unavailable(format!("the queue refused the message: {e}")))?;
        Ok(id)
    }
}

/// One message of a batch as workerd hands it over.
struct Received {
    message: worker::worker_sys::Message,
    delivery: Option<Delivery>,
}

fn js_error(e: JsValue) -> worker::Error {
    worker::Error::from(e)
}

/// Reads a message: its envelope (or `None` when the body is not one) and its attempt count,
/// which workerd keeps (`attempts`, 1 on the first delivery) and `worker::Message` does not expose.
fn receive(value: JsValue) -> worker::Result<Received> {
    let message: worker::worker_sys::Message = value.unchecked_into();
    let attempt = Reflect::get(&message, &JsValue::from_str("attempts"))
        .map_err(js_error)?
        .as_f64()
        .map_or(1, |n| n as u32);
    let body = message.body().map_err(js_error)?;
    let text: String = JSON::stringify(&body).map_err(js_error)?.into();
    let delivery = serde_json::from_str::<Envelope>(&text)
        .ok()
        .and_then(|envelope| {
            Some(Delivery {
                body: serde_json::from_str(&envelope.body).ok()?,
                message_id: envelope.id.clone(),
                receipt: envelope.id,
                attempt,
            })
        });
    Ok(Received { message, delivery })
}

/// Consumes one batch: every message through `imagemcp_app::jobs::consume`, then each acked or
/// retried on its own according to what the consumer reported (the queue dead-letters a message
/// after `max_retries`). A body that is not an envelope is acked and logged: retrying cannot fix it.
pub async fn consume(
    app: &imagemcp_app::App,
    batch: worker::worker_sys::MessageBatch,
    max_attempts: u32,
) -> worker::Result<()> {
    let mut received = Vec::new();
    for value in batch.messages().map_err(js_error)?.iter() {
        received.push(receive(value)?);
    }
    let deliveries: Vec<Delivery> = received.iter().filter_map(|r| r.delivery.clone()).collect();
    let failed = imagemcp_app::jobs::consume(app, &deliveries, max_attempts).await;
    for r in &received {
        match &r.delivery {
            Some(d) if failed.contains(&d.message_id) => r.message.retry(JsValue::NULL),
            Some(_) => r.message.ack(),
            None => {
                tracing::error!("a queued message is not a job envelope; dropped");
                r.message.ack()
            }
        }
        .map_err(js_error)?;
    }
    Ok(())
}
