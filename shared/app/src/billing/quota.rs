//! Quota around a generation: the tier's gates first, then a reservation of the requested images by
//! an atomic conditional add *before* the model call; after the call, the unused part is released
//! (all of it on failure), so what stays counted is exactly what was stored.
//!
//! A crash between reserve and settle leaves the reservation counted until the period ends: the
//! customer is under-served by at most one request's images, never over-billed beyond them, and no
//! request can pass the quota.

use imagemcp_core::quota::{self, Reservation};
use imagemcp_core::table::Key;
use imagemcp_core::tier::{self, Feature, Tier};
use imagemcp_core::{Error, Result};

use super::plan;
use crate::App;
use crate::auth::Caller;
use crate::images::record;

/// Images held for one request until [`Metered::settle`].
#[must_use = "settle the reservation after the model call"]
pub struct Metered {
    reservation: Option<Reservation>,
}

/// The counter a period's images are reserved on.
pub fn counter_key(caller: &Caller, period: &str) -> Key {
    Key::new(record::org_pk(&caller.org), format!("QUOTA#{period}"))
}

/// Checks the tier's gates for a request of `images` and reserves them.
pub async fn admit(app: &App, caller: &Caller, images: u32) -> Result<Metered> {
    let plan = plan::load(app, &caller.org).await?;
    let now_ms = app.ports.clock.now_ms();
    let tier = plan.effective_tier(now_ms / 1000);
    if tier == Tier::Local {
        return Ok(Metered { reservation: None });
    }
    let upgrade = super::upgrade_url(app);
    tier::gate(tier, Feature::Variations(images), &upgrade)?;
    let spec = tier.spec();
    // Tiers with overage count without a limit (past the pool is billed); Free stops at the pool.
    let limit = match spec.overage_cents_per_image {
        Some(_) => None,
        None => spec.included_images(plan.seats()),
    };
    let period = plan.period_id(now_ms);
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
    /// Keeps the `stored` images counted and releases the rest.
    pub async fn settle(self, app: &App, stored: usize) {
        let Some(res) = self.reservation else { return };
        let stored = u32::try_from(stored).unwrap_or(u32::MAX);
        let unused = res.count.saturating_sub(stored);
        if let Err(e) = quota::release(&*app.ports.table, &res, unused).await {
            // The units stay counted: the caller is under-served, never over the quota.
            tracing::warn!(key = %res.key.sk, unused, error = %e, "quota release failed");
        }
    }
}
