//! The payments port: what the application asks of a payment provider (Stripe in production, the
//! fake in `infra/fake-stripe` in tests). Subscription *state* never comes back through this port:
//! it arrives by signed webhooks (`imagemcp_app::billing::webhook`), which are the source of truth.

use crate::Result;

/// A hosted checkout for a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The provider's customer id of the organisation.
    pub customer: String,
    /// The price id of the plan.
    pub price: String,
    /// Units of the price (1 for Pro; 5-seat packs for Team).
    pub quantity: u32,
    /// Our organisation id: the session's `client_reference_id` and the subscription's
    /// `metadata[org_id]`, for people reading the Stripe dashboard. Webhooks find the org from the
    /// customer id we recorded, and check `client_reference_id` against it.
    pub org: String,
    pub success_url: String,
    pub cancel_url: String,
    /// Makes a retried request return the first session instead of opening a second one.
    pub idempotency_key: String,
}

/// Usage past the included pool, reported for billing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageReport {
    /// The meter's event name.
    pub event_name: String,
    pub customer: String,
    /// Images to bill.
    pub value: u64,
    /// Unique per report: the provider drops a second report with the same identifier.
    pub identifier: String,
    /// When the usage happened (Unix seconds).
    pub timestamp: i64,
}

#[async_trait::async_trait]
pub trait Payments: crate::MaybeSendSync {
    /// Creates the customer of organisation `org`; the same `idempotency_key` gives the same
    /// customer back. Returns the customer id.
    async fn create_customer(&self, org: &str, name: &str, idempotency_key: &str)
    -> Result<String>;

    /// Opens a checkout session; returns the URL to send the buyer to.
    async fn checkout_session(&self, req: &CheckoutRequest) -> Result<String>;

    /// Opens a billing portal session for `customer`; returns its URL.
    async fn portal_session(&self, customer: &str, return_url: &str) -> Result<String>;

    /// Reports metered usage.
    async fn report_usage(&self, report: &UsageReport) -> Result<()>;
}
