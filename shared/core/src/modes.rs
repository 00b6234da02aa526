//! Modes with budgets: each caps a request's time and estimated cost. A request whose estimate
//! (the catalog's estimator, times the number of images) exceeds its mode's budget is refused
//! before any model call.

use std::time::Duration;

use crate::catalog::{ModelSpec, RenderParams};
use crate::{Error, Result};

/// How a caller wants to work: quick (one fast draft), explorer (variations), guided (careful).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Quick,
    Explorer,
    Guided,
}

impl Mode {
    /// The wire names of the modes: what a JSON Schema lists as allowed.
    pub const NAMES: &'static [&'static str] = &["quick", "explorer", "guided"];

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "quick" => Ok(Mode::Quick),
            "explorer" => Ok(Mode::Explorer),
            "guided" => Ok(Mode::Guided),
            other => Err(Error::invalid(
                "mode",
                format!("`{other}` is not a mode; use quick, explorer or guided"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Explorer => "explorer",
            Mode::Guided => "guided",
        }
    }

    /// The longest the model calls of one request may take.
    pub fn timeout(self) -> Duration {
        Duration::from_secs(match self {
            Mode::Quick => 10,
            Mode::Explorer => 15,
            Mode::Guided => 20,
        })
    }

    /// The most one request may cost, in micro-dollars.
    pub fn budget_micros(self) -> u64 {
        match self {
            Mode::Quick => 50_000,
            Mode::Explorer => 150_000,
            Mode::Guided => 200_000,
        }
    }

    /// Refuses a request of `images` renders whose estimate is over the budget.
    pub fn check_budget(self, spec: &ModelSpec, params: &RenderParams, images: u32) -> Result<u64> {
        let estimate = estimate(spec, params, images);
        if estimate > self.budget_micros() {
            return Err(Error::invalid(
                "mode",
                format!(
                    "this request is estimated at {} but {} mode allows {}; lower quality, size or n, or use another mode",
                    dollars(estimate),
                    self.as_str(),
                    dollars(self.budget_micros())
                ),
            ));
        }
        Ok(estimate)
    }
}

/// What `images` renders of `params` are estimated to cost.
fn estimate(spec: &ModelSpec, params: &RenderParams, images: u32) -> u64 {
    spec.estimate_cost_micros(params.size, params.quality)
        .saturating_mul(u64::from(images))
}

/// The cost budget a request is held to: the mode it names, or the one its plan implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub mode: Mode,
    /// Set when the request names no mode and its plan has only this one (Free: quick).
    pub implied: Option<Implied>,
}

/// A plan that holds every request to one mode's budget, and how to lift it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Implied {
    /// The plan's name (`Free`).
    pub plan: &'static str,
    /// The cheapest tier with more modes.
    pub unlocking_tier: Option<String>,
    pub upgrade_url: String,
}

impl Budget {
    /// A budget the request asked for by naming `mode`.
    pub fn named(mode: Mode) -> Self {
        Self {
            mode,
            implied: None,
        }
    }

    pub fn micros(&self) -> u64 {
        self.mode.budget_micros()
    }

    /// Refuses a request of `images` renders over the budget: as the named mode's limit, or as
    /// the plan's (with the tier that lifts it) when the plan implied it.
    pub fn check(&self, spec: &ModelSpec, params: &RenderParams, images: u32) -> Result<u64> {
        let Some(implied) = &self.implied else {
            return self.mode.check_budget(spec, params, images);
        };
        let estimate = estimate(spec, params, images);
        if estimate > self.micros() {
            return Err(Error::PlanLimit {
                reason: format!(
                    "this request is estimated at {} but the {} plan holds each request to {} mode's {}; lower quality, size or n",
                    dollars(estimate),
                    implied.plan,
                    self.mode.as_str(),
                    dollars(self.micros())
                ),
                unlocking_tier: implied.unlocking_tier.clone(),
                upgrade_url: implied.upgrade_url.clone(),
            });
        }
        Ok(estimate)
    }
}

/// Micro-dollars as `$0.0123`.
fn dollars(micros: u64) -> String {
    format!("${}.{:04}", micros / 1_000_000, (micros % 1_000_000) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::image_params::{ImageSize, Quality};

    fn params(quality: &str) -> RenderParams {
        RenderParams {
            size: ImageSize::parse("1024x1024").unwrap(),
            quality: Quality::parse(quality).unwrap(),
            background: Default::default(),
            format: Default::default(),
            compression: None,
        }
    }

    #[test]
    fn estimates_over_the_budget_are_refused() {
        let spec = catalog::lookup(catalog::DEFAULT_MODEL).unwrap();
        let low = spec.estimate_cost_micros(params("low").size, params("low").quality);
        assert!(
            low <= Mode::Quick.budget_micros(),
            "a low-quality draft fits quick"
        );
        assert!(Mode::Quick.check_budget(spec, &params("low"), 1).is_ok());
        let high = params("high");
        let per = spec.estimate_cost_micros(high.size, high.quality);
        let n = u32::try_from(Mode::Guided.budget_micros() / per + 1).unwrap();
        let err = Mode::Guided.check_budget(spec, &high, n).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "mode"),
            "{err}"
        );
        assert!(Mode::Guided.check_budget(spec, &high, n - 1).is_ok());
    }

    #[test]
    fn a_default_request_fits_every_mode_on_every_current_model() {
        use crate::catalog::{Lifecycle, MODELS};
        for spec in MODELS
            .iter()
            .filter(|m| m.lifecycle == Lifecycle::Active && !m.offline)
        {
            for mode in [Mode::Quick, Mode::Explorer, Mode::Guided] {
                let size = ImageSize::default();
                let quality =
                    spec.resolve_quality(size, Quality::Auto, 1, Some(mode.budget_micros()));
                let p = RenderParams {
                    quality,
                    size,
                    ..params("auto")
                };
                assert!(spec.validate(&p).is_ok(), "{} {quality}", spec.id);
                let estimate = mode
                    .check_budget(spec, &p, 1)
                    .unwrap_or_else(|e| panic!("{} in {} mode: {e}", spec.id, mode.as_str()));
                assert!(estimate > 0, "{}", spec.id);
                assert_ne!(quality, Quality::Auto, "a concrete quality is sent");
            }
        }
    }

    #[test]
    fn an_implied_budget_refuses_as_the_plans_limit() {
        let spec = catalog::lookup(catalog::DEFAULT_MODEL).unwrap();
        let free = Budget {
            mode: Mode::Quick,
            implied: Some(Implied {
                plan: "Free",
                unlocking_tier: Some("pro".into()),
                upgrade_url: "http://test/billing/upgrade".into(),
            }),
        };
        assert!(free.check(spec, &params("medium"), 1).is_ok());
        let err = free.check(spec, &params("high"), 1).unwrap_err();
        assert!(
            matches!(&err, Error::PlanLimit { unlocking_tier: Some(t), .. } if t == "pro"),
            "{err}"
        );
        assert!(err.to_string().contains("Free plan"), "{err}");
        let named = Budget::named(Mode::Quick).check(spec, &params("high"), 1);
        assert!(
            matches!(named, Err(Error::Invalid { ref field, .. }) if field == "mode"),
            "{named:?}"
        );
    }

    #[test]
    fn modes_parse_and_order_their_limits() {
        assert_eq!(Mode::parse("explorer").unwrap(), Mode::Explorer);
        assert!(Mode::parse("turbo").is_err());
        assert!(Mode::Quick.timeout() < Mode::Explorer.timeout());
        assert_eq!(dollars(50_000), "$0.0500");
    }
}
