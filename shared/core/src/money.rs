//! Invoice and budget arithmetic in integers: cents for what customers pay, micro-dollars for what
//! the models cost us. Shared by the usage summary, the overage report to Stripe and the tests that
//! check the invoice-facing numbers to the cent.

use crate::tier::{Seats, Tier};

/// What one billing period costs an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invoice {
    /// The subscription's price for the period.
    pub base_cents: u64,
    /// Images included; `None` is unlimited.
    pub included_images: Option<u64>,
    pub used_images: u64,
    /// Images past the pool (billed on tiers with overage; refused on Free).
    pub overage_images: u64,
    pub overage_cents: u64,
    pub total_cents: u64,
}

/// The period's invoice for `used` images on `tier` with `seats`.
pub fn invoice(tier: Tier, seats: Seats, used: u64) -> Invoice {
    let spec = tier.spec();
    let base_cents = spec.unit_price_cents.saturating_mul(spec.units(seats));
    let included = spec.included_images(seats);
    let overage_images = included.map_or(0, |inc| used.saturating_sub(inc));
    let overage_cents = spec
        .overage_cents_per_image
        .map_or(0, |price| price.saturating_mul(overage_images));
    Invoice {
        base_cents,
        included_images: included,
        used_images: used,
        overage_images,
        overage_cents,
        total_cents: base_cents.saturating_add(overage_cents),
    }
}

/// `$12.34` from cents.
pub fn format_cents(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Micro-dollars rounded half up to cents (how a model cost is shown next to invoice numbers).
pub fn micros_to_cents(micros: u64) -> u64 {
    micros.saturating_add(5_000) / 10_000
}

/// Where spending stands against a monthly budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetState {
    Under,
    /// At or past 80 %: alert once.
    Alert,
    /// At or past 100 %.
    Reached,
}

/// The percentage at which a budget alert fires.
pub const BUDGET_ALERT_PERCENT: u64 = 80;

pub fn budget_state(spent_micros: u64, budget_micros: u64) -> BudgetState {
    if budget_micros == 0 || spent_micros >= budget_micros {
        BudgetState::Reached
    } else if u128::from(spent_micros) * 100
        >= u128::from(budget_micros) * u128::from(BUDGET_ALERT_PERCENT)
    {
        BudgetState::Alert
    } else {
        BudgetState::Under
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (tier, seats, used, base, included, overage images, overage cents, total)
    type Case = (Tier, i64, u64, u64, Option<u64>, u64, u64, u64);

    /// Tier × usage × seats → the invoice a customer sees, to the cent.
    #[test]
    fn invoices_match_to_the_cent() {
        // (tier, seats, used, base, included, overage images, overage cents, total)
        let cases: &[Case] = &[
            (Tier::Free, 1, 0, 0, Some(10), 0, 0, 0),
            (Tier::Free, 1, 10, 0, Some(10), 0, 0, 0),
            // Free has no overage: past the pool is counted but never billed (it is refused).
            (Tier::Free, 1, 11, 0, Some(10), 1, 0, 0),
            (Tier::Pro, 1, 0, 2_900, Some(200), 0, 0, 2_900),
            (Tier::Pro, 1, 200, 2_900, Some(200), 0, 0, 2_900),
            (Tier::Pro, 1, 201, 2_900, Some(200), 1, 15, 2_915),
            (Tier::Pro, 1, 1_000, 2_900, Some(200), 800, 12_000, 14_900),
            (Tier::Team, 1, 0, 9_900, Some(1_000), 0, 0, 9_900),
            (Tier::Team, 5, 1_000, 9_900, Some(1_000), 0, 0, 9_900),
            (Tier::Team, 5, 1_001, 9_900, Some(1_000), 1, 12, 9_912),
            (Tier::Team, 6, 1_500, 19_800, Some(2_000), 0, 0, 19_800),
            (
                Tier::Team,
                12,
                3_250,
                29_700,
                Some(3_000),
                250,
                3_000,
                32_700,
            ),
            (Tier::Local, 1, 1_000_000, 0, None, 0, 0, 0),
        ];
        for &(tier, seats, used, base, included, over, over_cents, total) in cases {
            let inv = invoice(tier, Seats::parse(seats).unwrap(), used);
            let expect = Invoice {
                base_cents: base,
                included_images: included,
                used_images: used,
                overage_images: over,
                overage_cents: over_cents,
                total_cents: total,
            };
            assert_eq!(inv, expect, "{tier:?} seats={seats} used={used}");
        }
        assert_eq!(format_cents(32_700), "$327.00");
        assert_eq!(format_cents(2_915), "$29.15");
    }

    #[test]
    fn micro_dollars_round_to_cents_half_up() {
        for (micros, cents) in [
            (0, 0),
            (4_999, 0),
            (5_000, 1),
            (1_234_567, 123),
            (1_235_000, 124),
        ] {
            assert_eq!(micros_to_cents(micros), cents, "{micros}");
        }
    }

    #[test]
    fn budget_alerts_at_80_percent_and_stops_at_100() {
        for (spent, budget, state) in [
            (0, 10_000_000, BudgetState::Under),
            (7_999_999, 10_000_000, BudgetState::Under),
            (8_000_000, 10_000_000, BudgetState::Alert),
            (9_999_999, 10_000_000, BudgetState::Alert),
            (10_000_000, 10_000_000, BudgetState::Reached),
            (u64::MAX, u64::MAX - 1, BudgetState::Reached),
            (1, 0, BudgetState::Reached),
        ] {
            assert_eq!(budget_state(spent, budget), state, "{spent}/{budget}");
        }
    }
}
