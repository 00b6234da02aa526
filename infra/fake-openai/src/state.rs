//! The server's memory: queued faults, the log of received requests, and the Responses API's
//! conversations (so `previous_response_id` works across turns).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::faults::Fault;

/// How many requests and responses are kept before the oldest are forgotten, so a long benchmark
/// cannot grow the fake without bound.
const MAX_REMEMBERED: usize = 10_000;

/// One request as the fake received it, minus image bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub request_id: String,
    pub method: String,
    /// The request path as sent (`/v1/images/generations`).
    pub path: String,
    /// The `model` field, when the request had one.
    pub model: Option<String>,
    /// The JSON body or the multipart text fields; strings holding images (data URLs, base64) are
    /// replaced by a short summary such as `"<data:image/png;base64, 1234 bytes>"`.
    pub fields: Value,
    /// The multipart file parts.
    pub files: Vec<RecordedFile>,
    /// The HTTP status of the answer, once it was sent.
    pub status: Option<u16>,
}

/// One multipart file part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// The part name: `image`, `image[]` or `mask`.
    pub field: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: usize,
}

/// What a later turn needs from an earlier Responses API call.
#[derive(Clone, Debug)]
pub(crate) struct StoredResponse {
    /// The prompt as the conversation has revised it so far.
    pub(crate) revised_prompt: Option<String>,
    /// The id of the image the turn produced.
    pub(crate) image_call_id: Option<String>,
}

#[derive(Debug)]
struct QueuedFault {
    fault: Fault,
    /// `None`: applies forever (until reset).
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
struct Inner {
    faults: Vec<QueuedFault>,
    requests: Vec<RecordedRequest>,
    responses: HashMap<String, StoredResponse>,
    response_order: Vec<String>,
    image_calls: HashMap<String, String>,
}

/// Shared by every handler.
#[derive(Debug)]
pub(crate) struct State {
    /// Latency added to every model call from the start (`--latency-ms`); survives resets.
    base_latency: Duration,
    /// The only key accepted, when set; otherwise any non-empty bearer token is.
    pub(crate) api_key: Option<String>,
    inner: Mutex<Inner>,
}

impl State {
    pub(crate) fn new(base_latency: Duration, api_key: Option<String>) -> Self {
        Self {
            base_latency,
            api_key,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked while holding the lock leaves the data consistent (every update is
        // a single push or insert), so a poisoned lock is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn push_faults(&self, faults: Vec<Fault>) {
        let mut inner = self.lock();
        for fault in faults {
            let remaining = match fault.times {
                Some(n) => Some(n),
                None if fault.is_latency() => None,
                None => Some(1),
            };
            inner.faults.push(QueuedFault { fault, remaining });
        }
    }

    /// The faults still queued, with `times` set to what is left.
    pub(crate) fn faults(&self) -> Vec<Fault> {
        self.lock()
            .faults
            .iter()
            .map(|q| Fault {
                times: q.remaining,
                ..q.fault.clone()
            })
            .collect()
    }

    pub(crate) fn reset(&self) {
        *self.lock() = Inner::default();
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Records a request, then applies the first queued status or hang fault that matches its path.
    /// Recording first means a request that fails by injection still counts as a call.
    pub(crate) async fn admit(&self, record: RecordedRequest) -> Result<(), ApiError> {
        let fault = {
            let mut inner = self.lock();
            let path = record.path.clone();
            inner.requests.push(record);
            if inner.requests.len() > MAX_REMEMBERED {
                inner.requests.remove(0);
            }
            take_fault(&mut inner.faults, &path)
        };
        let Some(fault) = fault else { return Ok(()) };
        if let Some(ms) = fault.hang_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match fault.error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Sleeps for the standing latency of a model call on `path`. The sleep is a timer, not a
    /// blocked thread, so parallel calls overlap their latency.
    pub(crate) async fn model_latency(&self, path: &str) {
        let extra: u64 = {
            let inner = self.lock();
            inner
                .faults
                .iter()
                .filter(|q| q.fault.is_latency() && q.fault.matches(path))
                .filter_map(|q| q.fault.latency_ms)
                .sum()
        };
        let base = if crate::faults::normalize_path(path) == "/moderations" {
            Duration::ZERO
        } else {
            self.base_latency
        };
        let total = base + Duration::from_millis(extra);
        if !total.is_zero() {
            tokio::time::sleep(total).await;
        }
    }

    pub(crate) fn set_status(&self, request_id: &str, status: u16) {
        let mut inner = self.lock();
        if let Some(r) = inner
            .requests
            .iter_mut()
            .rev()
            .find(|r| r.request_id == request_id)
        {
            r.status = Some(status);
        }
    }

    pub(crate) fn response(&self, id: &str) -> Option<StoredResponse> {
        self.lock().responses.get(id).cloned()
    }

    pub(crate) fn knows_image_call(&self, id: &str) -> bool {
        self.lock().image_calls.contains_key(id)
    }

    pub(crate) fn remember_response(&self, id: String, stored: StoredResponse) {
        let mut inner = self.lock();
        if let Some(call) = &stored.image_call_id {
            inner.image_calls.insert(call.clone(), id.clone());
        }
        inner.response_order.push(id.clone());
        inner.responses.insert(id, stored);
        if inner.response_order.len() > MAX_REMEMBERED {
            let old = inner.response_order.remove(0);
            if let Some(gone) = inner.responses.remove(&old)
                && let Some(call) = gone.image_call_id
            {
                inner.image_calls.remove(&call);
            }
        }
    }
}

fn take_fault(queue: &mut Vec<QueuedFault>, path: &str) -> Option<Fault> {
    let index = queue
        .iter()
        .position(|q| !q.fault.is_latency() && q.fault.matches(path))?;
    let entry = &mut queue[index];
    let fault = entry.fault.clone();
    if let Some(n) = entry.remaining.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            queue.remove(index);
        }
    }
    Some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RecordedRequest {
        RecordedRequest {
            request_id: "req_1".into(),
            method: "POST".into(),
            path: path.into(),
            model: None,
            fields: Value::Null,
            files: vec![],
            status: None,
        }
    }

    #[tokio::test]
    async fn faults_are_consumed_in_order_and_counted() {
        let state = State::new(Duration::ZERO, None);
        state.push_faults(vec![Fault::status(429).times(2), Fault::status(500)]);
        let statuses: Vec<Option<u16>> = futures_statuses(&state, 4).await;
        assert_eq!(statuses, vec![Some(429), Some(429), Some(500), None]);
        assert_eq!(state.requests().len(), 4, "failed calls are recorded too");
        assert!(state.faults().is_empty());
    }

    async fn futures_statuses(state: &State, n: usize) -> Vec<Option<u16>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(
                state
                    .admit(record("/v1/images/generations"))
                    .await
                    .err()
                    .map(|e| e.status.as_u16()),
            );
        }
        out
    }

    #[tokio::test]
    async fn path_filters_skip_other_endpoints() {
        let state = State::new(Duration::ZERO, None);
        state.push_faults(vec![Fault::status(500).path("/images/edits")]);
        assert!(state.admit(record("/v1/images/generations")).await.is_ok());
        assert!(state.admit(record("/v1/images/edits")).await.is_err());
    }

    #[test]
    fn latency_faults_stay_until_reset() {
        let state = State::new(Duration::ZERO, None);
        state.push_faults(vec![Fault::latency(Duration::from_millis(5))]);
        assert_eq!(state.faults()[0].times, None);
        state.reset();
        assert!(state.faults().is_empty());
    }
}
