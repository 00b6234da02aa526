//! One HTTP call to OpenAI with the retry loop around it: bearer auth, per-attempt timeout, retries
//! with backoff or the server's Retry-After, and one log line per attempt (never the key).

use std::sync::Arc;
use std::time::Duration;

use web_time::{Instant, SystemTime};

use bytes::Bytes;
use imagemcp_core::Error;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::config::{ApiKey, RetryPolicy};
use crate::failure::{Failure, WireError};
use crate::retry::{Sleeper, backoff, retry_after, should_retry_header};

/// What is sent. A multipart form is consumed by sending, so it is rebuilt for every attempt.
pub(crate) enum Payload<'a> {
    Json(Bytes),
    Multipart(&'a (dyn Fn() -> Result<reqwest::multipart::Form, Error> + Send + Sync)),
}

/// One logical call (which may take several attempts).
pub(crate) struct Call<'a> {
    /// Below the base URL: `/images/generations`.
    pub(crate) path: &'static str,
    /// For the log.
    pub(crate) model: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) payload: Payload<'a>,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Bytes,
    pub(crate) request_id: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    /// The base URL without a trailing slash.
    base: String,
    key: ApiKey,
    /// `Bearer <key>`, marked sensitive so the HTTP stack never prints it.
    auth: HeaderValue,
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
}

/// How one attempt ended, when it did not succeed.
enum Miss {
    Answered(Failure),
    NoAnswer(reqwest::Error),
}

impl Transport {
    pub(crate) fn new(
        base: &reqwest::Url,
        key: ApiKey,
        retry: RetryPolicy,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Self, Error> {
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                Error::invalid(
                    "api_key",
                    "the OpenAI API key cannot be sent in an HTTP header",
                )
            })?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .user_agent(concat!("imagemcp-openai/", env!("CARGO_PKG_VERSION")));
        // `fetch` has no connect timeout of its own: the per-attempt timeout covers it there.
        #[cfg(not(target_arch = "wasm32"))]
        let client = client.connect_timeout(Duration::from_secs(10));
        let client = client
            .build()
            .map_err(|e| Error::internal(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.as_str().trim_end_matches('/').to_owned(),
            key,
            auth,
            retry,
            sleeper,
        })
    }

    pub(crate) fn set_sleeper(&mut self, sleeper: Arc<dyn Sleeper>) {
        self.sleeper = sleeper;
    }

    pub(crate) fn key(&self) -> &str {
        self.key.expose()
    }

    /// Sends `call`, retrying what the policy allows; a non-2xx answer that is not retried becomes
    /// the matching `imagemcp_core::Error`.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let url = format!("{}{}", self.base, call.path);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let miss = match self.attempt_send(&url, call).await? {
                Ok(answer) => {
                    tracing::info!(
                        path = call.path,
                        model = call.model,
                        status = 200u16,
                        latency_ms = elapsed_ms(started),
                        request_id = answer.request_id.as_deref().unwrap_or(""),
                        attempt,
                        "openai call"
                    );
                    return Ok(answer);
                }
                Err(miss) => miss,
            };
            let retries_left = attempt <= self.retry.max_retries;
            let next_backoff = backoff(&self.retry, attempt - 1, &mut rand::rng());
            match miss {
                Miss::Answered(failure) => {
                    tracing::warn!(
                        path = call.path,
                        model = call.model,
                        status = failure.status.as_u16(),
                        latency_ms = elapsed_ms(started),
                        request_id = failure.request_id.as_deref().unwrap_or(""),
                        code = failure.error.code().as_deref().unwrap_or(""),
                        attempt,
                        "openai call failed"
                    );
                    let wait = failure.retry_after.unwrap_or(next_backoff);
                    if !failure.retryable() || !retries_left || wait > self.retry.max_retry_after {
                        return Err(failure.into_error(self.key(), attempt, wait));
                    }
                    self.pause(call, wait, attempt).await;
                }
                Miss::NoAnswer(err) => {
                    tracing::warn!(
                        path = call.path, model = call.model, latency_ms = elapsed_ms(started), attempt,
                        timeout = err.is_timeout(), error = %source_text(&err), "openai call got no answer"
                    );
                    if !retries_left {
                        return Err(no_answer(&err, call, attempt));
                    }
                    self.pause(call, next_backoff, attempt).await;
                }
            }
        }
    }

    async fn pause(&self, call: &Call<'_>, wait: Duration, attempt: u32) {
        tracing::info!(
            path = call.path,
            wait_ms = elapsed(wait),
            next_attempt = attempt + 1,
            "retrying openai call"
        );
        self.sleeper.sleep(wait).await;
    }

    /// [`Self::attempt`], `Send` on every target: on wasm32 the fetch future is `!Send` and a Worker
    /// isolate has one thread, so `SendWrapper` makes it `Send` soundly (it would panic if moved).
    async fn attempt_send(
        &self,
        url: &str,
        call: &Call<'_>,
    ) -> Result<Result<Answer, Miss>, Error> {
        #[cfg(target_arch = "wasm32")]
        return send_wrapper::SendWrapper::new(self.attempt(url, call)).await;
        #[cfg(not(target_arch = "wasm32"))]
        return self.attempt(url, call).await;
    }

    /// One attempt: `Ok(Ok(_))` on 2xx, `Ok(Err(_))` on an error answer or no answer, `Err` only when
    /// the request could not even be built.
    async fn attempt(&self, url: &str, call: &Call<'_>) -> Result<Result<Answer, Miss>, Error> {
        let request = self
            .client
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(call.timeout);
        let request = match &call.payload {
            Payload::Json(body) => request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone()),
            Payload::Multipart(form) => request.multipart(form()?),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Err(Miss::NoAnswer(e))),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Ok(Err(Miss::NoAnswer(e))),
        };
        if status.is_success() {
            return Ok(Ok(Answer { body, request_id }));
        }
        Ok(Err(Miss::Answered(Failure {
            status,
            error: WireError::parse(&body),
            request_id,
            retry_after: retry_after(&headers, SystemTime::now()),
            should_retry: should_retry_header(&headers),
        })))
    }
}

/// The error for a call that never got an answer.
fn no_answer(err: &reqwest::Error, call: &Call<'_>, attempts: u32) -> Error {
    let tries = if attempts > 1 {
        format!(" ({attempts} attempts)")
    } else {
        String::new()
    };
    // `fetch` does not tell a refused connection from other failures.
    #[cfg(not(target_arch = "wasm32"))]
    let connect = err.is_connect();
    #[cfg(target_arch = "wasm32")]
    let connect = false;
    if err.is_timeout() {
        Error::Unavailable(format!(
            "OpenAI did not answer {} within {} s{tries}; try again later",
            call.path,
            call.timeout.as_secs_f32()
        ))
    } else if connect {
        Error::Unavailable(format!(
            "could not connect to OpenAI{tries}: {}; check the network and OPENAI_BASE_URL",
            source_text(err)
        ))
    } else {
        Error::Unavailable(format!(
            "the connection to OpenAI failed{tries}: {}",
            source_text(err)
        ))
    }
}

/// The innermost cause of a reqwest error (its own text names only the URL).
fn source_text(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

fn elapsed_ms(started: Instant) -> u64 {
    elapsed(started.elapsed())
}

fn elapsed(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
