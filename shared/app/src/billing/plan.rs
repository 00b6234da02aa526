//! An organisation's plan as Stripe last told us: tier, seats, status and the current period,
//! stored at `ORG#<org>` / `BILLING`. Webhooks write it; everything else only reads it.

use imagemcp_core::Result;
use imagemcp_core::ids::OrgId;
use imagemcp_core::table::Key;
use imagemcp_core::tier::{Seats, Tier};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::images::record;

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
    Key::new(record::org_pk(org), "BILLING")
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
        let now = now_ms / 1000;
        let tier = self.effective_tier(now);
        if tier != Tier::Free && self.period_start <= now && now < self.period_end {
            format!("P{}", self.period_start)
        } else {
            record::month_of(now_ms)
        }
    }
}

/// The plan of `org`: `local` when billing is off, Free when nothing is stored.
pub async fn load(app: &App, org: &OrgId) -> Result<OrgPlan> {
    if app.config.billing.is_none() {
        return Ok(OrgPlan {
            tier: "local".into(),
            ..OrgPlan::free()
        });
    }
    match app.ports.table.get(&plan_key(org)).await? {
        Some(item) => record::from_item(item),
        None => Ok(OrgPlan::free()),
    }
}
