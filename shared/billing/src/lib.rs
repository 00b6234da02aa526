//! Billing: which plan each organisation is on, quota reservations around generation, feature
//! gating by tier, and (with Stripe configured) checkout, the billing portal and signed webhooks.
//!
//! Billing is *off* when [`Settings::stripe`] is `None` (the embedded default, and any
//! deployment without `STRIPE_SECRET_KEY`): every organisation is on the `local` plan, which lifts
//! every limit and bills nothing. With billing on, an organisation without a subscription is on Free.

pub mod budget;
pub mod checkout;
pub mod confirmation;
pub mod overage;
pub mod plan;
pub mod quota;
pub mod retention;
pub mod signature;
pub mod usage;
pub mod webhook;

use std::fmt;
use std::sync::Arc;

use imagemcp_core::payments::Payments;

pub use plan::OrgPlan;

use imagemcp_tenancy::Ports;

/// Billing's context: the ports it reads and writes and its settings. Cheap to clone.
#[derive(Clone)]
pub struct Billing {
    pub ports: Ports,
    pub config: Arc<Settings>,
}

/// What billing is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Billing's settings when it is on (Stripe configured); `None` is the local plan for everyone.
    pub stripe: Option<Arc<BillingConfig>>,
    /// The server's public base URL, for the links billing gives (upgrade, checkout return).
    pub public_url: String,
    /// The deployment's default cost-confirmation threshold, in cents (see [`confirmation`]).
    pub cost_confirmation_cents: u64,
}

impl Billing {
    pub fn new(ports: Ports, config: Settings) -> Self {
        Self {
            ports,
            config: Arc::new(config),
        }
    }
}

/// Settings of billing when it is on.
#[derive(Clone)]
pub struct BillingConfig {
    /// Secrets that verify `Stripe-Signature` (several during a rotation). Never logged.
    pub webhook_secrets: Vec<String>,
    /// Stripe price ids of the paid tiers.
    pub pro_price: String,
    pub team_price: String,
    /// Days a failed payment is tolerated before the organisation drops to Free.
    pub grace_days: u32,
    /// Stripe (or the fake in `infra/fake-stripe`): customers, checkout, portal, meter events.
    pub payments: Arc<dyn Payments>,
    /// The Billing Meter event name overage images are reported under (the meter's `event_name`).
    pub meter_event: String,
}

/// The meter event name when none is configured.
pub const DEFAULT_METER_EVENT: &str = "imagemcp_overage_images";

impl fmt::Debug for BillingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingConfig")
            .field("webhook_secrets", &"[redacted]")
            .field("pro_price", &self.pro_price)
            .field("team_price", &self.team_price)
            .field("grace_days", &self.grace_days)
            .field("meter_event", &self.meter_event)
            .finish()
    }
}

/// Refuses `feature` when `org`'s plan does not include it, naming the tier that does and where to
/// upgrade (billing off: the local plan includes everything).
pub async fn gate(
    ctx: &crate::Billing,
    org: &imagemcp_core::ids::OrgId,
    feature: imagemcp_core::tier::Feature,
) -> imagemcp_core::Result<()> {
    if ctx.config.stripe.is_none() {
        return Ok(());
    }
    let tier = plan::load(ctx, org)
        .await?
        .effective_tier(ctx.ports.clock.now_secs());
    imagemcp_core::tier::gate(tier, feature, &upgrade_url(ctx))
}

/// Where a caller upgrades: the page that starts a checkout.
pub fn upgrade_url(ctx: &crate::Billing) -> String {
    format!("{}/billing/upgrade", ctx.config.public_url)
}
