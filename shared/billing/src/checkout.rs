//! Buying and managing a plan through Stripe: the organisation's customer (created once, its id
//! stored on the org with a conditional write), Checkout Sessions for Pro and Team, and Billing
//! Portal sessions. Nothing here changes the plan: that happens when Stripe's signed webhooks
//! arrive (`webhook.rs`), so a checkout abandoned half-way changes nothing.

use imagemcp_core::payments::CheckoutRequest;
use imagemcp_core::rbac::Action;
use imagemcp_core::table::{Condition, Item, Key, TransactOp};
use imagemcp_core::tier::{Seats, Tier};
use imagemcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use super::{BillingConfig, plan, webhook};
use crate::Billing;
use imagemcp_tenancy::Caller;
use imagemcp_tenancy::keys;

/// `openai_upgrade_plan`'s arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeArgs {
    /// `pro` ($29/month) or `team` ($99/month per 5 seats).
    pub tier: String,
    /// Seats on Team (1 to 10000, billed in packs of 5; default 5). Pro has one seat.
    #[serde(default)]
    pub seats: Option<i64>,
}

/// Where to pay for the upgrade.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CheckoutView {
    /// Open this URL to pay; the plan changes once Stripe confirms the payment.
    pub checkout_url: String,
    pub tier: String,
    pub seats: u32,
    /// What the subscription will cost per month, in cents.
    pub monthly_cents: u64,
}

/// The billing portal of the organisation.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PortalView {
    /// Open this URL to change plan or seats, update the card, see invoices or cancel.
    pub portal_url: String,
}

/// The billing configuration; with billing off there is nothing to buy or manage, which is the
/// server's state, not a fault in any argument (so no field is named).
fn billing(ctx: &Billing) -> Result<&BillingConfig> {
    ctx.config.stripe.as_deref().ok_or_else(|| {
        Error::Conflict(
            "billing is off on this server: every organisation is on the local plan, with no limits \
             and nothing to pay"
                .into(),
        )
    })
}

/// Where an org's Stripe customer id is kept.
pub fn customer_record_key(org: &imagemcp_core::ids::OrgId) -> Key {
    Key::new(keys::org_pk(org), "STRIPE_CUSTOMER")
}

async fn stored_customer(ctx: &Billing, caller: &Caller) -> Result<Option<String>> {
    Ok(ctx
        .ports
        .table
        .get(&customer_record_key(&caller.org))
        .await?
        .and_then(|i| i.str("customer_id").map(str::to_owned)))
}

/// The org's Stripe customer, created on first use. Two racing first uses send the same
/// idempotency key, so Stripe makes one customer; the conditional write keeps the first id stored.
pub async fn ensure_customer(ctx: &Billing, caller: &Caller) -> Result<String> {
    let billing = billing(ctx)?;
    if let Some(id) = stored_customer(ctx, caller).await? {
        return Ok(id);
    }
    let org = caller.org.to_string();
    let id = billing
        .payments
        .create_customer(&org, &org, &format!("customer-{org}"))
        .await?;
    let mut item = Item::new(customer_record_key(&caller.org), Map::new());
    item.attrs.insert("customer_id".into(), json!(id));
    let mut mapping = Item::new(webhook::customer_key(&id), Map::new());
    mapping.attrs.insert("org".into(), json!(org));
    match ctx
        .ports
        .table
        .transact(vec![
            TransactOp::Put(item, Condition::NotExists),
            TransactOp::Put(mapping, Condition::None),
        ])
        .await
    {
        Ok(()) => Ok(id),
        // Someone stored one first: theirs is the org's customer.
        Err(Error::Conflict(_)) => stored_customer(ctx, caller)
            .await?
            .ok_or_else(|| Error::Unavailable("the billing account changed; retry".into())),
        Err(e) => Err(e),
    }
}

/// Opens a Checkout Session for `args.tier`; returns where to pay.
pub async fn upgrade(ctx: &Billing, caller: &Caller, args: UpgradeArgs) -> Result<CheckoutView> {
    caller.authorize(Action::ManageBilling)?;
    let billing = billing(ctx)?;
    let tier = Tier::parse(args.tier.trim())?;
    let (price, seats) = match tier {
        Tier::Pro => {
            if args.seats.is_some_and(|s| s != 1) {
                return Err(Error::invalid(
                    "seats",
                    "Pro has one seat; choose `team` for more",
                ));
            }
            (&billing.pro_price, Seats::parse(1)?)
        }
        // Team's quantity is seats: the Stripe price is "package" priced ($99 per 5, rounded up,
        // `transform_quantity`), so Stripe's invoice and `money::invoice` agree.
        Tier::Team => (&billing.team_price, Seats::parse(args.seats.unwrap_or(5))?),
        _ => {
            return Err(Error::invalid(
                "tier",
                "choose `pro` or `team` (Free needs no checkout; cancel in the billing portal)",
            ));
        }
    };
    let now = ctx.ports.clock.now_secs();
    let current = plan::load(ctx, &caller.org).await?;
    let in_force = current.effective_tier(now);
    if matches!(in_force, Tier::Pro | Tier::Team) && current.subscription_id.is_some() {
        // A second Checkout would start a second subscription: plan changes go through the portal.
        return Err(Error::Conflict(format!(
            "the organisation already subscribes to {}; change plan or seats with openai_billing_portal",
            in_force.spec().name
        )));
    }
    let customer = ensure_customer(ctx, caller).await?;
    let base = &ctx.config.public_url;
    let req = CheckoutRequest {
        customer,
        price: price.clone(),
        quantity: seats.get(),
        org: caller.org.to_string(),
        success_url: format!("{base}/usage?checkout=success"),
        cancel_url: format!("{base}/usage?checkout=cancelled"),
        // Repeated clicks within the hour get the same session back, not a pile of them.
        idempotency_key: format!(
            "checkout-{}-{}-{}-{}",
            caller.org,
            tier.id(),
            seats.get(),
            now / 3600
        ),
    };
    let url = billing.payments.checkout_session(&req).await?;
    tracing::info!(org = %caller.org, tier = tier.id(), seats = seats.get(), "checkout session opened");
    Ok(CheckoutView {
        checkout_url: url,
        tier: tier.id().to_owned(),
        seats: seats.get(),
        monthly_cents: imagemcp_core::money::invoice(tier, seats, 0).base_cents,
    })
}

/// Opens a Billing Portal session for the org's customer.
pub async fn portal(ctx: &Billing, caller: &Caller) -> Result<PortalView> {
    caller.authorize(Action::ManageBilling)?;
    let billing = billing(ctx)?;
    let Some(customer) = stored_customer(ctx, caller).await? else {
        return Err(Error::not_found(
            "billing account (subscribe first with openai_upgrade_plan)",
        ));
    };
    let url = billing
        .payments
        .portal_session(&customer, &format!("{}/usage", ctx.config.public_url))
        .await?;
    Ok(PortalView { portal_url: url })
}
