//! An organisation's plan as Stripe last told us: tier, seats, status and the current period,
//! stored at `ORG#<org>` / `BILLING`. Webhooks write it; everything else only reads it.

use imagemcp_core::Result;
use imagemcp_core::ids::OrgId;
use imagemcp_core::table::Key;
use imagemcp_core::tier::{Seats, Tier};
use serde::{Deserialize, Serialize};

use crate::Billing;
use imagemcp_tenancy::{items, keys};

/// The stored subscription state of one organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPlan {
    /// `free`, `pro`, `team` or `local`.
    pub tier: String,
    pub seats: u32,
    /// Stripe's subscription status (`active`, `past_due`, `canceled`, …) or `none`.
    pub status: String,
    /// The current billing period, Unix seconds; on Free, the calendar month.
    pub period_start: i64,
    pub period_end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The `created` time of the Stripe event this state came from: an older event never
    /// overwrites a newer state (Stripe delivers out of order).
    #[serde(default)]
    pub state_at: i64,
    /// After a failed payment, when the grace period ends (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<i64>,
}

pub fn plan_key(org: &OrgId) -> Key {
    Key::new(keys::org_pk(org), "BILLING")
}

impl OrgPlan {
    /// The plan of an organisation that never subscribed.
    pub fn free() -> Self {
        OrgPlan {
            tier: "free".into(),
            seats: 1,
            status: "none".into(),
            period_start: 0,
            period_end: 0,
            customer_id: None,
            subscription_id: None,
            state_at: 0,
            grace_until: None,
        }
    }

    /// The tier in force at `now`: a lapsed, cancelled or unpaid-past-grace subscription is Free.
    pub fn effective_tier(&self, now_secs: i64) -> Tier {
        let tier = Tier::parse(&self.tier).unwrap_or(Tier::Free);
        if tier == Tier::Local {
            return tier;
        }
        let lapsed = match self.status.as_str() {
            "active" | "trialing" => false,
            "past_due" => self.grace_until.is_none_or(|until| now_secs >= until),
            _ => true,
        };
        if lapsed { Tier::Free } else { tier }
    }

    pub fn seats(&self) -> Seats {
        Seats::parse(i64::from(self.seats)).unwrap_or_else(|_| Seats::parse(1).expect("1 seat"))
    }

    /// The usage period `now` falls in: the subscription's period on paid tiers, the calendar
    /// month on Free (and when the stored period has ended without a renewal event yet).
    pub fn period_id(&self, now_ms: i64) -> String {
        if self.in_subscription_period(now_ms) {
            format!("P{}", self.period_start)
        } else {
            items::month_of(now_ms)
        }
    }

    /// The bounds of [`Self::period_id`]'s period, `[start, end)` in ms since the epoch.
    pub fn period_bounds(&self, now_ms: i64) -> (i64, i64) {
        if self.in_subscription_period(now_ms) {
            (
                self.period_start.saturating_mul(1000),
                self.period_end.saturating_mul(1000),
            )
        } else {
            items::month_bounds(now_ms)
        }
    }

    /// Whether usage at `now` counts against the subscription's period (paid tiers, inside it).
    fn in_subscription_period(&self, now_ms: i64) -> bool {
        let now = now_ms / 1000;
        self.effective_tier(now) != Tier::Free && self.period_start <= now && now < self.period_end
    }
}

/// The plan of `org`: `local` when billing is off, Free when nothing is stored.
pub async fn load(ctx: &Billing, org: &OrgId) -> Result<OrgPlan> {
    if ctx.config.stripe.is_none() {
        return Ok(OrgPlan {
            tier: "local".into(),
            ..OrgPlan::free()
        });
    }
    match ctx.ports.table.get(&plan_key(org)).await? {
        Some(item) => items::from_item(item),
        None => Ok(OrgPlan::free()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_the_subscriptions_or_the_calendar_month() {
        // 2026-11-24T00:00Z; a Pro subscription from 2026-11-15T10:00Z to 2026-12-15T10:00Z.
        let now_ms = 1_795_478_400_000;
        let start = 1_794_736_800;
        let pro = OrgPlan {
            tier: "pro".into(),
            status: "active".into(),
            period_start: start,
            period_end: start + 30 * 86_400,
            ..OrgPlan::free()
        };
        assert_eq!(pro.period_id(now_ms), format!("P{start}"));
        let (from, to) = pro.period_bounds(now_ms);
        assert_eq!(
            (items::rfc3339(from), items::rfc3339(to)),
            (
                "2026-11-15T10:00:00.000Z".to_owned(),
                "2026-12-15T10:00:00.000Z".to_owned()
            )
        );
        // Free, or past the stored period: the calendar month.
        for plan in [
            OrgPlan::free(),
            OrgPlan {
                period_end: start + 86_400,
                ..pro.clone()
            },
        ] {
            assert_eq!(plan.period_id(now_ms), "2026-11");
            assert_eq!(plan.period_bounds(now_ms), items::month_bounds(now_ms));
        }
    }
}
