//! The plans an organisation can be on, as data: one row per tier, read by quota enforcement, feature
//! gating, the invoice arithmetic and the usage summary alike. Money is integer cents.
//!
//! Source: the product spec's pricing table (Free, Pro $29/mo, Team $99/mo per 5 seats). The Team
//! pool of 1,000 images is per 5-seat pack, so a 10-seat team gets 2,000 and pays $198: the pool
//! grows with what the team pays. `Local` is the embedded default's plan when Stripe is not
//! configured: every limit lifted, nothing billed (a self-hosted install pays OpenAI directly).

use crate::Error;

/// A tier's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Free,
    Pro,
    Team,
    /// Billing off: no Stripe configured, no limits (see the module docs).
    Local,
}

/// A count limit: `None` means unlimited.
pub type Limit = Option<u32>;

/// Which generation modes a tier may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modes {
    QuickOnly,
    All,
    AllWithPriority,
}

/// What one tier includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierSpec {
    pub tier: Tier,
    /// The id used in APIs and stored records (`free`, `pro`, `team`, `local`).
    pub id: &'static str,
    pub name: &'static str,
    /// Monthly price of one unit (a Pro subscription, a 5-seat Team pack), in cents.
    pub unit_price_cents: u64,
    /// Seats one unit covers.
    pub seats_per_unit: u32,
    /// Images per unit per period; `None` is unlimited.
    pub images_per_unit: Limit,
    /// Variations per request; `None` is the model's maximum.
    pub max_variations: Limit,
    pub modes: Modes,
    pub dna_presets: Limit,
    pub active_sequences: Limit,
    pub brand_kits: Limit,
    /// Conversation retention in days; `None` keeps them.
    pub retention_days: Option<u32>,
    pub team_collaboration: bool,
    /// REST routes and API keys.
    pub api_access: bool,
    /// Price of each image past the pool, in cents; `None` is a hard stop at the pool.
    pub overage_cents_per_image: Option<u64>,
}

/// Every tier, cheapest first: gating names the first row that unlocks a feature.
pub const TIERS: &[TierSpec] = &[
    TierSpec {
        tier: Tier::Free,
        id: "free",
        name: "Free",
        unit_price_cents: 0,
        seats_per_unit: 1,
        images_per_unit: Some(10),
        max_variations: Some(1),
        modes: Modes::QuickOnly,
        dna_presets: Some(0),
        active_sequences: Some(0),
        brand_kits: Some(0),
        retention_days: Some(30),
        team_collaboration: false,
        api_access: false,
        overage_cents_per_image: None,
    },
    TierSpec {
        tier: Tier::Pro,
        id: "pro",
        name: "Pro",
        unit_price_cents: 2_900,
        seats_per_unit: 1,
        images_per_unit: Some(200),
        max_variations: Some(4),
        modes: Modes::All,
        dna_presets: Some(10),
        active_sequences: Some(3),
        brand_kits: Some(1),
        retention_days: None,
        team_collaboration: false,
        api_access: false,
        overage_cents_per_image: Some(15),
    },
    TierSpec {
        tier: Tier::Team,
        id: "team",
        name: "Team",
        unit_price_cents: 9_900,
        seats_per_unit: 5,
        images_per_unit: Some(1_000),
        max_variations: None,
        modes: Modes::AllWithPriority,
        dna_presets: None,
        active_sequences: None,
        brand_kits: None,
        retention_days: None,
        team_collaboration: true,
        api_access: true,
        overage_cents_per_image: Some(12),
    },
    TierSpec {
        tier: Tier::Local,
        id: "local",
        name: "Local (billing off)",
        unit_price_cents: 0,
        seats_per_unit: 1,
        images_per_unit: None,
        max_variations: None,
        modes: Modes::AllWithPriority,
        dna_presets: None,
        active_sequences: None,
        brand_kits: None,
        retention_days: None,
        team_collaboration: true,
        api_access: true,
        overage_cents_per_image: None,
    },
];

/// The most seats a subscription may carry; more is a typo or an attack, not a customer.
pub const MAX_SEATS: u32 = 10_000;

impl Tier {
    pub fn spec(self) -> &'static TierSpec {
        // Every variant has exactly one row (checked by a test).
        TIERS.iter().find(|s| s.tier == self).unwrap_or(&TIERS[0])
    }

    pub fn id(self) -> &'static str {
        self.spec().id
    }

    pub fn parse(id: &str) -> Result<Tier, Error> {
        TIERS
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.tier)
            .ok_or_else(|| Error::invalid("tier", format!("unknown tier `{id}`")))
    }
}

/// A seat count, checked: 1 to [`MAX_SEATS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seats(u32);

impl Seats {
    pub fn parse(n: i64) -> Result<Seats, Error> {
        match u32::try_from(n) {
            Ok(n) if (1..=MAX_SEATS).contains(&n) => Ok(Seats(n)),
            _ => Err(Error::invalid(
                "seats",
                format!("must be 1 to {MAX_SEATS}, got {n}"),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TierSpec {
    /// Billing units for `seats` (5-seat packs on Team, rounded up).
    pub fn units(&self, seats: Seats) -> u64 {
        u64::from(seats.get().div_ceil(self.seats_per_unit.max(1)))
    }

    /// The images included per period; `None` is unlimited.
    pub fn included_images(&self, seats: Seats) -> Option<u64> {
        self.images_per_unit
            .map(|per| u64::from(per) * self.units(seats))
    }

    /// Whether this tier allows `feature`.
    pub fn allows(&self, feature: Feature) -> bool {
        let within = |limit: Limit, n: u32| limit.is_none_or(|max| n <= max);
        match feature {
            Feature::Variations(n) => within(self.max_variations, n),
            Feature::Mode(mode) => mode <= self.modes,
            Feature::DnaPresets(n) => within(self.dna_presets, n),
            Feature::ActiveSequences(n) => within(self.active_sequences, n),
            Feature::BrandKits(n) => within(self.brand_kits, n),
            Feature::KeepConversations => self.retention_days.is_none(),
            Feature::TeamCollaboration => self.team_collaboration,
            Feature::ApiAccess => self.api_access,
            Feature::Overage => self.overage_cents_per_image.is_some(),
        }
    }
}

/// Something a tier may or may not include. Counts are how many the caller would have *after* the
/// request (the third brand kit is `BrandKits(3)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Variations(u32),
    Mode(Modes),
    DnaPresets(u32),
    ActiveSequences(u32),
    BrandKits(u32),
    KeepConversations,
    TeamCollaboration,
    ApiAccess,
    /// Generating past the period's pool.
    Overage,
}

impl Feature {
    /// A phrase for error messages.
    pub fn describe(self) -> String {
        match self {
            Feature::Variations(n) => format!("{n} variations per request"),
            Feature::Mode(Modes::QuickOnly) => "quick mode".into(),
            Feature::Mode(Modes::All) => "modes other than quick".into(),
            Feature::Mode(Modes::AllWithPriority) => "priority generation".into(),
            Feature::DnaPresets(n) => format!("{n} DNA preset(s)"),
            Feature::ActiveSequences(n) => format!("{n} active sequence(s)"),
            Feature::BrandKits(n) => format!("{n} brand kit(s)"),
            Feature::KeepConversations => "keeping conversations past 30 days".into(),
            Feature::TeamCollaboration => "team collaboration".into(),
            Feature::ApiAccess => "API access (REST and API keys)".into(),
            Feature::Overage => "images past the monthly allowance".into(),
        }
    }

    /// The cheapest paid tier that allows this, if any does.
    pub fn unlocking_tier(self) -> Option<Tier> {
        TIERS
            .iter()
            .filter(|s| s.tier != Tier::Local)
            .find(|s| s.allows(self))
            .map(|s| s.tier)
    }
}

/// Checks `feature` against `tier`; the error names the tier that unlocks it and where to upgrade.
pub fn gate(tier: Tier, feature: Feature, upgrade_url: &str) -> Result<(), Error> {
    if tier.spec().allows(feature) {
        return Ok(());
    }
    let unlock = feature.unlocking_tier();
    Err(Error::PlanLimit {
        reason: format!(
            "the {} plan does not include {}",
            tier.spec().name,
            feature.describe()
        ),
        unlocking_tier: unlock.map(|t| t.id().to_owned()),
        upgrade_url: upgrade_url.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_has_one_row() {
        for tier in [Tier::Free, Tier::Pro, Tier::Team, Tier::Local] {
            assert_eq!(TIERS.iter().filter(|s| s.tier == tier).count(), 1);
            assert_eq!(Tier::parse(tier.id()).unwrap(), tier);
        }
    }

    #[test]
    fn gating_names_the_cheapest_unlocking_tier() {
        let cases = [
            (Feature::Variations(1), None),
            (Feature::Variations(4), Some(Tier::Pro)),
            (Feature::Variations(8), Some(Tier::Team)),
            (Feature::Mode(Modes::All), Some(Tier::Pro)),
            (Feature::Mode(Modes::AllWithPriority), Some(Tier::Team)),
            (Feature::BrandKits(1), Some(Tier::Pro)),
            (Feature::BrandKits(2), Some(Tier::Team)),
            (Feature::DnaPresets(11), Some(Tier::Team)),
            (Feature::ActiveSequences(3), Some(Tier::Pro)),
            (Feature::ApiAccess, Some(Tier::Team)),
            (Feature::TeamCollaboration, Some(Tier::Team)),
            (Feature::KeepConversations, Some(Tier::Pro)),
            (Feature::Overage, Some(Tier::Pro)),
        ];
        for (feature, expect) in cases {
            let got = gate(Tier::Free, feature, "https://x/upgrade");
            match expect {
                None => assert!(got.is_ok(), "{feature:?}"),
                Some(t) => match got {
                    Err(Error::PlanLimit {
                        unlocking_tier,
                        upgrade_url,
                        ..
                    }) => {
                        assert_eq!(unlocking_tier.as_deref(), Some(t.id()), "{feature:?}");
                        assert_eq!(upgrade_url, "https://x/upgrade");
                    }
                    other => panic!("{feature:?}: {other:?}"),
                },
            }
        }
        assert!(gate(Tier::Local, Feature::Variations(100), "u").is_ok());
    }

    #[test]
    fn seats_reject_negative_zero_and_absurd_counts() {
        for bad in [-5, 0, i64::from(MAX_SEATS) + 1, i64::MAX] {
            assert!(Seats::parse(bad).is_err(), "{bad}");
        }
        let team = Tier::Team.spec();
        assert_eq!(team.units(Seats::parse(5).unwrap()), 1);
        assert_eq!(team.units(Seats::parse(6).unwrap()), 2);
        assert_eq!(team.included_images(Seats::parse(6).unwrap()), Some(2_000));
    }
}
