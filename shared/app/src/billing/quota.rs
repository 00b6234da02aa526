//! Quota around a generation: the tier's gates (variations, mode) and the org's hard-stop budget
//! first, then a reservation of the requested images by an atomic conditional add *before* the
//! model call; after the call, the unused part is released (all of it on failure), so what stays
//! counted is exactly what was stored. Images past a paid tier's pool are reported to Stripe as
//! Billing Meter events, once per reservation (its identifier is the counter position).
//!
//! A crash between reserve and settle leaves the reservation counted until the period ends: the
//! customer is under-served by at most one request's images, never over-billed beyond them, and no
//! request can pass the quota.
//!
//! The plan is read once, at admission: a request admitted under Pro finishes under Pro and settles
//! on the counter it reserved on, even if a downgrade arrives while it runs (a batch's admitted
//! items finish; its later items are admitted under the new plan).

use imagemcp_core::payments::UsageReport;
use imagemcp_core::quota::{self, Reservation};
use imagemcp_core::table::Key;
use imagemcp_core::tier::{self, Feature, Modes, Tier};
use imagemcp_core::{Error, Result};

use super::{budget, plan};
use crate::App;
use crate::auth::Caller;
use crate::engine::modes::{Budget, Implied, Mode};
use crate::images::record;

/// Images held for one request until [`Metered::settle`].
#[must_use = "settle the reservation after the model call"]
pub struct Metered {
    reservation: Option<Reservation>,
    /// Who to bill past the pool: (customer, included images) on tiers with overage.
    overage: Option<(String, u64)>,
    caller: Option<Caller>,
    /// The estimate held against a hard-stop budget, given back at settlement.
    hold: Option<budget::Hold>,
}

/// The counter a period's images are reserved on.
pub fn counter_key(caller: &Caller, period: &str) -> Key {
    Key::new(record::org_pk(&caller.org), format!("QUOTA#{period}"))
}

/// The tier feature a generation mode needs.
fn mode_feature(mode: Option<&str>) -> Result<Option<Feature>> {
    Ok(match crate::engine::parse_mode(mode)? {
        None | Some(Mode::Quick) => None,
        Some(_) => Some(Feature::Mode(Modes::All)),
    })
}

/// The tier's gates for a request of `images` in `mode` (variations, mode), with nothing reserved:
/// what must hold even when the request is answered without a model call (from the cache).
/// Returns the budget the request is held to (see [`budget`]).
pub async fn gates(
    app: &App,
    caller: &Caller,
    images: u32,
    mode: Option<&str>,
) -> Result<Option<Budget>> {
    let plan = plan::load(app, &caller.org).await?;
    let tier = plan.effective_tier(app.ports.clock.now_secs());
    check_gates(app, tier, images, mode)?;
    Ok(budget(app, tier, crate::engine::parse_mode(mode)?))
}

/// The cost budget a request is held to: its mode's when it names one, else quick's on a tier
/// whose only mode is quick (Free), so that tier's requests cost what quick allows whether or not
/// they say so. (A mode's time limit applies only when the request names it.)
fn budget(app: &App, tier: Tier, mode: Option<Mode>) -> Option<Budget> {
    if let Some(mode) = mode {
        return Some(Budget::named(mode));
    }
    let spec = tier.spec();
    (spec.modes == Modes::QuickOnly).then(|| Budget {
        mode: Mode::Quick,
        implied: Some(Implied {
            plan: spec.name,
            unlocking_tier: Feature::Mode(Modes::All)
                .unlocking_tier()
                .map(|t| t.id().to_owned()),
            upgrade_url: super::upgrade_url(app),
        }),
    })
}

fn check_gates(app: &App, tier: Tier, images: u32, mode: Option<&str>) -> Result<()> {
    if tier == Tier::Local {
        return Ok(());
    }
    let upgrade = super::upgrade_url(app);
    tier::gate(tier, Feature::Variations(images), &upgrade)?;
    if let Some(feature) = mode_feature(mode)? {
        tier::gate(tier, feature, &upgrade)?;
    }
    Ok(())
}

/// Checks the tier's gates for a request of `images` (in `mode`, estimated at `estimate_micros`),
/// holds its estimate against a hard-stop budget and reserves the images.
pub async fn admit(
    app: &App,
    caller: &Caller,
    images: u32,
    mode: Option<&str>,
    estimate_micros: u64,
) -> Result<Metered> {
    let plan = plan::load(app, &caller.org).await?;
    let now_ms = app.ports.clock.now_ms();
    let tier = plan.effective_tier(now_ms / 1000);
    check_gates(app, tier, images, mode)?;
    let hold = budget::hold(app, caller, estimate_micros).await?;
    let metered = reserve(app, caller, &plan, tier, images, now_ms).await;
    match metered {
        Ok(metered) => Ok(Metered { hold, ..metered }),
        Err(e) => {
            if let Some(hold) = hold {
                hold.release(app).await;
            }
            Err(e)
        }
    }
}

/// Reserves `images` on the period's counter (nothing to reserve on the local plan).
async fn reserve(
    app: &App,
    caller: &Caller,
    plan: &plan::OrgPlan,
    tier: Tier,
    images: u32,
    now_ms: i64,
) -> Result<Metered> {
    if tier == Tier::Local {
        return Ok(Metered {
            reservation: None,
            overage: None,
            caller: Some(caller.clone()),
            hold: None,
        });
    }
    let upgrade = super::upgrade_url(app);
    let spec = tier.spec();
    let included = spec.included_images(plan.seats());
    // Tiers with overage count without a limit (past the pool is billed); Free stops at the pool.
    let limit = match spec.overage_cents_per_image {
        Some(_) => None,
        None => included,
    };
    let period = plan.period_id(now_ms);
    let overage = match (spec.overage_cents_per_image, included, &plan.customer_id) {
        (Some(_), Some(included), Some(customer)) => Some((customer.clone(), included)),
        _ => None,
    };
    match quota::reserve(
        &*app.ports.table,
        counter_key(caller, &period),
        "images",
        images,
        limit,
        None,
    )
    .await?
    {
        Some(reservation) => Ok(Metered {
            reservation: Some(reservation),
            overage,
            caller: Some(caller.clone()),
            hold: None,
        }),
        None => Err(Error::PlanLimit {
            reason: format!(
                "the {} plan's {} images this period are used up",
                spec.name,
                limit.unwrap_or(0)
            ),
            unlocking_tier: Feature::Overage.unlocking_tier().map(|t| t.id().to_owned()),
            upgrade_url: upgrade,
        }),
    }
}

impl Metered {
    /// Keeps the `stored` images counted and releases the rest; reports what passed the pool and
    /// checks the budget alert.
    pub async fn settle(self, app: &App, stored: usize) {
        if let Some(hold) = self.hold {
            hold.release(app).await;
        }
        let stored = u32::try_from(stored).unwrap_or(u32::MAX);
        if let Some(res) = &self.reservation {
            let unused = res.count.saturating_sub(stored);
            if let Err(e) = quota::release(&*app.ports.table, res, unused).await {
                // The units stay counted: the caller is under-served, never over the quota.
                tracing::warn!(key = %res.key.sk, unused, error = %e, "quota release failed");
            }
            if let Some((customer, included)) = &self.overage {
                report_overage(app, res, stored, customer, *included).await;
            }
        }
        if stored > 0
            && let Some(caller) = &self.caller
            && let Err(e) = budget::after_generation(app, caller).await
        {
            tracing::warn!(org = %caller.org, error = %e, "budget alert check failed");
        }
    }
}

/// Reports the images of `res` past the pool as one meter event. Its identifier is the counter
/// position, so a retry (ours, the client's or a pending one's, see `overage.rs`) never bills twice.
async fn report_overage(app: &App, res: &Reservation, kept: u32, customer: &str, included: u64) {
    let over = quota::overage_of(res, kept, included);
    let Some(billing) = app.config.billing.as_ref() else {
        return;
    };
    if over == 0 {
        return;
    }
    let report = UsageReport {
        event_name: billing.meter_event.clone(),
        customer: customer.to_owned(),
        value: over,
        identifier: format!("ovg-{}-{}-{}", res.key.pk, res.key.sk, res.total_after)
            .replace('#', "_"),
        timestamp: app.ports.clock.now_secs(),
    };
    super::overage::send(app, &res.key.pk, report).await;
}
