//! imagemcp's Stripe adapter: the [`Payments`] port over Stripe's HTTP API (form-encoded requests,
//! JSON responses, `Authorization: Bearer sk_…`, `Idempotency-Key` on every POST).
//!
//! Why not `async-stripe`: its 1.x line is split into generated crates that are still release
//! candidates (`async-stripe-core` 1.0.0-rc.x) or alphas (`async-stripe-billing`, which holds the
//! meter events, 1.0.0-alpha.x as of 2026-11), and the generated request types cost minutes of
//! build time on every clean build for the four POSTs we make. Those four calls are small and
//! stable, so a ~200-line client over `reqwest` (already in the tree) is the smaller risk.
//!
//! Overage is reported as **Billing Meter events** (`POST /v1/billing/meter_events`): Stripe's
//! current usage-based billing mechanism. The older usage records
//! (`/v1/subscription_items/{id}/usage_records`) belong to "legacy metered prices" and were removed
//! in API version 2025-03-31.basil, which is the version we pin. A meter event names the customer
//! (not a subscription item), carries an `identifier` Stripe de-duplicates on, and is aggregated
//! by the meter (sum) into the invoice of the customer's metered price.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::payments::{CheckoutRequest, Payments, UsageReport};
use imagemcp_core::{Error, Result};
use serde_json::Value;

/// The API version requests are made with: the request shapes and the webhook objects we parse
/// (periods on subscription items) are those of this version.
pub const API_VERSION: &str = "2025-03-31.basil";

/// Stripe's production API base.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// Attempts for a request Stripe says is worth retrying (409 lock, 429, 5xx, connection errors).
const ATTEMPTS: u32 = 3;

/// Waits between retries: tokio's timer natively; a runtime without one (the Worker) injects its
/// own with [`StripeClient::with_sleeper`].
pub type Sleeper = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A Stripe client. Cheap to clone.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    secret_key: String,
    /// Per request (set on each request, since `fetch` on wasm32 has no client-wide timeout).
    timeout: Duration,
    /// The first wait between retries; doubles each time.
    backoff: Duration,
    sleeper: Sleeper,
}

/// The sleeper a new client starts with: tokio's timer natively.
#[cfg(not(target_arch = "wasm32"))]
fn default_sleeper() -> Sleeper {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

/// On wasm32 there is no timer this crate can reach: retries go again at once unless the runtime
/// injects one (the Worker does, on `setTimeout`).
#[cfg(target_arch = "wasm32")]
fn default_sleeper() -> Sleeper {
    Arc::new(|_| Box::pin(std::future::ready(())))
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

impl StripeClient {
    /// A client for `base` (`https://api.stripe.com`, or a fake's URL) with `secret_key`.
    pub fn new(base: &str, secret_key: &str, timeout: Duration) -> Result<Self> {
        let url = reqwest::Url::parse(base)
            .map_err(|_| Error::invalid("STRIPE_API_BASE", "is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid("STRIPE_API_BASE", "must be http(s)"));
        }
        if secret_key.trim().is_empty() {
            return Err(Error::invalid("STRIPE_SECRET_KEY", "is empty"));
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
            timeout,
            backoff: Duration::from_millis(250),
            sleeper: default_sleeper(),
        })
    }

    /// The client a runtime's billing settings describe: `base` (Stripe's own API when `None`)
    /// and `secret_key` (both checked where the settings are parsed), with a 20 s request timeout.
    pub fn configured(base: Option<&str>, secret_key: &str) -> Result<Self> {
        Self::new(
            base.unwrap_or(DEFAULT_API_BASE),
            secret_key,
            Duration::from_secs(20),
        )
    }

    /// Changes what waits between retries (the Worker's `setTimeout`).
    pub fn with_sleeper(mut self, sleeper: Sleeper) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Changes the first retry wait (tests use a short one).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// POSTs `form` to `path` and returns the JSON object Stripe answers with; `Send` on every
    /// target (on wasm32 the `fetch` future is `!Send` and is wrapped: one thread per isolate).
    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<Value> {
        #[cfg(target_arch = "wasm32")]
        return send_wrapper::SendWrapper::new(self.post_local(path, form, idempotency_key)).await;
        #[cfg(not(target_arch = "wasm32"))]
        return self.post_local(path, form, idempotency_key).await;
    }

    async fn post_local(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<Value> {
        let body = serde_urlencoded::to_string(form).map_err(Error::internal)?;
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff;
        let mut last = Error::Unavailable("Stripe was not reached".into());
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .post(&url)
                .timeout(self.timeout)
                .bearer_auth(&self.secret_key)
                .header("Stripe-Version", API_VERSION)
                .header("Idempotency-Key", idempotency_key)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            let (retry, err) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    // Stripe tells clients whether a retry can succeed; honour it when present.
                    let should_retry = resp
                        .headers()
                        .get("stripe-should-retry")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v == "true");
                    let text = resp.text().await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        return serde_json::from_str(&text).map_err(|_| {
                            Error::Unavailable(
                                "Stripe answered with a body that is not JSON".into(),
                            )
                        });
                    }
                    let err = map_error(status, &text);
                    let retry =
                        should_retry.unwrap_or(status == 409 || status == 429 || status >= 500);
                    (retry, err)
                }
                Err(e) => {
                    // No secret in the message: reqwest errors carry the URL, never headers.
                    let why = if e.is_timeout() {
                        "timed out"
                    } else {
                        "could not be reached"
                    };
                    tracing::warn!(path, attempt, why, "stripe request failed");
                    (true, Error::Unavailable(format!("Stripe {why}")))
                }
            };
            last = err;
            if !retry || attempt == ATTEMPTS {
                break;
            }
            (self.sleeper)(wait).await;
            wait *= 2;
        }
        Err(last)
    }
}

/// Maps Stripe's error body (`{"error":{"type","message","param","code"}}`) onto our error.
fn map_error(status: u16, body: &str) -> Error {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let err = &parsed["error"];
    let message = err["message"].as_str().unwrap_or("no message").to_owned();
    let param = err["param"].as_str().unwrap_or("request").to_owned();
    match status {
        400 | 402 => Error::invalid(param, format!("Stripe refused it: {message}")),
        401 | 403 => {
            // Our key is wrong or lacks permission: an operator problem, never the caller's.
            tracing::error!(status, "stripe rejected the secret key");
            Error::Unavailable("billing is misconfigured (Stripe rejected the API key)".into())
        }
        404 => Error::not_found(format!("Stripe object ({message})")),
        409 => Error::Conflict(format!("Stripe: {message}")),
        429 => Error::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        _ => Error::Unavailable(format!("Stripe failed ({status})")),
    }
}

fn id_of(value: &Value, what: &str, field: &str) -> Result<String> {
    value[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::Unavailable(format!("Stripe's {what} has no `{field}`")))
}

#[async_trait::async_trait]
impl Payments for StripeClient {
    async fn create_customer(
        &self,
        org: &str,
        name: &str,
        idempotency_key: &str,
    ) -> Result<String> {
        let form = [
            ("name", name.to_owned()),
            ("metadata[org_id]", org.to_owned()),
        ];
        let customer = self.post("/v1/customers", &form, idempotency_key).await?;
        id_of(&customer, "customer", "id")
    }

    async fn checkout_session(&self, req: &CheckoutRequest) -> Result<String> {
        let form = [
            ("mode", "subscription".to_owned()),
            ("customer", req.customer.clone()),
            ("client_reference_id", req.org.clone()),
            ("line_items[0][price]", req.price.clone()),
            ("line_items[0][quantity]", req.quantity.to_string()),
            ("success_url", req.success_url.clone()),
            ("cancel_url", req.cancel_url.clone()),
            ("metadata[org_id]", req.org.clone()),
            // On the subscription too: its events may arrive before checkout.session.completed.
            ("subscription_data[metadata][org_id]", req.org.clone()),
        ];
        let session = self
            .post("/v1/checkout/sessions", &form, &req.idempotency_key)
            .await?;
        id_of(&session, "checkout session", "url")
    }

    async fn portal_session(&self, customer: &str, return_url: &str) -> Result<String> {
        let form = [
            ("customer", customer.to_owned()),
            ("return_url", return_url.to_owned()),
        ];
        // A portal session is single-use and cheap: a fresh key per call is what Stripe's own
        // libraries do when none is given.
        let key = format!("portal-{customer}-{}", unique());
        let session = self
            .post("/v1/billing_portal/sessions", &form, &key)
            .await?;
        id_of(&session, "billing portal session", "url")
    }

    async fn report_usage(&self, report: &UsageReport) -> Result<()> {
        let form = [
            ("event_name", report.event_name.clone()),
            ("payload[stripe_customer_id]", report.customer.clone()),
            ("payload[value]", report.value.to_string()),
            ("identifier", report.identifier.clone()),
            ("timestamp", report.timestamp.to_string()),
        ];
        self.post("/v1/billing/meter_events", &form, &report.identifier)
            .await
            .map(|_| ())
    }
}

/// A value unique within this process (time and a counter), for idempotency keys of single-use
/// requests.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_what_a_caller_can_do() {
        let body = r#"{"error":{"type":"invalid_request_error","message":"No such price: 'price_x'","param":"line_items[0][price]"}}"#;
        match map_error(400, body) {
            Error::Invalid { field, reason } => {
                assert_eq!(field, "line_items[0][price]");
                assert!(reason.contains("No such price"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(map_error(401, "{}"), Error::Unavailable(_)));
        assert!(matches!(map_error(429, "{}"), Error::RateLimited { .. }));
        assert!(matches!(map_error(500, "not json"), Error::Unavailable(_)));
    }

    #[test]
    fn debug_hides_the_key() {
        let c = StripeClient::new(
            "http://127.0.0.1:1",
            "sk_test_secret",
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("sk_test_secret"));
        assert!(StripeClient::new("ftp://x", "sk", Duration::from_secs(1)).is_err());
        assert!(StripeClient::new("http://x", " ", Duration::from_secs(1)).is_err());
    }
}
