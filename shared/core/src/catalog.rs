//! What each image model accepts and costs, as data: one row per model, read by request validation,
//! the fake OpenAI server's checks and the cost estimator alike. A new model is one new row.
//!
//! Source: `OPENAI-IMAGES.md` (OpenAI's guide, API reference and deprecation page as of 2026-11).
//! Prices are integer micro-dollars per million tokens; money is never a float.

use crate::Error;
use crate::image_params::{Background, ImageSize, OutputFormat, Quality};

/// Which sizes a model renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeRule {
    /// Only these sizes (and `auto`).
    Presets(&'static [(u32, u32)]),
    /// Any `WxH` within these bounds (and `auto`).
    Flexible {
        multiple: u32,
        max_ratio: u32,
        max_edge: u32,
        min_pixels: u64,
        max_pixels: u64,
    },
}

/// The three sizes every GPT Image model renders.
pub const PRESET_SIZES: &[(u32, u32)] = &[(1024, 1024), (1536, 1024), (1024, 1536)];

const FLEXIBLE: SizeRule = SizeRule::Flexible {
    multiple: 16,
    max_ratio: 3,
    max_edge: 3840,
    min_pixels: 655_360,
    max_pixels: 8_294_400,
};

/// Token prices in micro-dollars per 1M tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRates {
    pub text_in: u64,
    pub cached_text_in: u64,
    pub image_in: u64,
    pub cached_image_in: u64,
    pub image_out: u64,
}

/// The GPT Image 2 / 2.5 / 2.6 rates: $5 text in, $1.25 cached, $8 image in, $2 cached, $30 image out.
const GPT_IMAGE_RATES: TokenRates = TokenRates {
    text_in: 5_000_000,
    cached_text_in: 1_250_000,
    image_in: 8_000_000,
    cached_image_in: 2_000_000,
    image_out: 30_000_000,
};

/// Where a model is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    /// Still served until the date, then shut down.
    Deprecated {
        shutdown: &'static str,
        replacement: &'static str,
    },
    /// No longer served.
    ShutDown {
        on: &'static str,
        replacement: &'static str,
    },
}

/// One image model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The id sent as `model`.
    pub id: &'static str,
    /// Other ids that name the same model (dated snapshots).
    pub aliases: &'static [&'static str],
    pub lifecycle: Lifecycle,
    pub sizes: SizeRule,
    pub qualities: &'static [Quality],
    pub formats: &'static [OutputFormat],
    pub transparent_background: bool,
    /// Accepts `input_fidelity` on edits.
    pub input_fidelity: bool,
    /// Accepts `complexity`.
    pub complexity: bool,
    pub rates: TokenRates,
    /// The calculator's base `o` per quality (output-token estimate, see [`estimate_output_tokens`]).
    pub quality_base: &'static [(Quality, u64)],
    /// What the model renders (and charges) `auto` as: OpenAI reports `high` for every GPT Image
    /// model. Requests never send `auto` itself (see [`ModelSpec::resolve_quality`]), so what is
    /// estimated is what is rendered.
    pub auto_quality: Quality,
    /// True for the offline model, which costs nothing and needs no key.
    pub offline: bool,
}

const Q_TO_HIGH: &[Quality] = &[Quality::Low, Quality::Medium, Quality::High, Quality::Auto];
const Q_TO_MAX: &[Quality] = &[
    Quality::Low,
    Quality::Medium,
    Quality::High,
    Quality::XHigh,
    Quality::Max,
    Quality::Auto,
];
const RASTER: &[OutputFormat] = &[OutputFormat::Png, OutputFormat::Jpeg, OutputFormat::Webp];
const BASE_2: &[(Quality, u64)] = &[
    (Quality::Low, 16),
    (Quality::Medium, 48),
    (Quality::High, 96),
];
const BASE_25: &[(Quality, u64)] = &[
    (Quality::Low, 16),
    (Quality::Medium, 24),
    (Quality::High, 48),
    (Quality::XHigh, 64),
    (Quality::Max, 96),
];

const fn gpt(
    id: &'static str,
    aliases: &'static [&'static str],
    lifecycle: Lifecycle,
) -> ModelSpec {
    ModelSpec {
        id,
        aliases,
        lifecycle,
        sizes: FLEXIBLE,
        qualities: Q_TO_MAX,
        formats: RASTER,
        transparent_background: true,
        input_fidelity: false,
        complexity: false,
        rates: GPT_IMAGE_RATES,
        quality_base: BASE_25,
        auto_quality: Quality::High,
        offline: false,
    }
}

/// The id of the offline model.
pub const OFFLINE_MODEL: &str = "offline";

/// The default OpenAI image model: pinned, so output does not drift under a moving alias.
pub const DEFAULT_MODEL: &str = "gpt-image-2.5-sunburst-2026-09-08";

/// Every model we know, newest first.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        complexity: true,
        ..gpt("gpt-image-2.6-sunburst", &[], Lifecycle::Active)
    },
    ModelSpec {
        complexity: true,
        ..gpt("gpt-image-2.6-flare", &[], Lifecycle::Active)
    },
    gpt(
        "gpt-image-2.5-sunburst-2026-09-08",
        &["gpt-image-2.5-sunburst"],
        Lifecycle::Active,
    ),
    gpt(
        "gpt-image-2.5-flare-2026-09-08",
        &["gpt-image-2.5-flare"],
        Lifecycle::Active,
    ),
    ModelSpec {
        qualities: Q_TO_HIGH,
        quality_base: BASE_2,
        ..gpt(
            "gpt-image-2-2026-04-21",
            &["gpt-image-2"],
            Lifecycle::Active,
        )
    },
    ModelSpec {
        sizes: SizeRule::Presets(PRESET_SIZES),
        qualities: Q_TO_HIGH,
        quality_base: BASE_2,
        input_fidelity: true,
        ..gpt(
            "gpt-image-1.5-2025-12-16",
            &["gpt-image-1.5", "chatgpt-image-latest"],
            Lifecycle::Deprecated {
                shutdown: "2026-12-01",
                replacement: "gpt-image-2.6-sunburst",
            },
        )
    },
    ModelSpec {
        sizes: SizeRule::Presets(PRESET_SIZES),
        qualities: Q_TO_HIGH,
        quality_base: BASE_2,
        ..gpt(
            "gpt-image-1-mini",
            &[],
            Lifecycle::Deprecated {
                shutdown: "2026-12-01",
                replacement: "gpt-image-2.6-flare",
            },
        )
    },
    ModelSpec {
        qualities: Q_TO_HIGH,
        ..gpt(
            "gpt-image-1",
            &[],
            Lifecycle::ShutDown {
                on: "2026-10-23",
                replacement: "gpt-image-2.5-sunburst",
            },
        )
    },
    ModelSpec {
        qualities: Q_TO_HIGH,
        ..gpt(
            "dall-e-3",
            &["dall-e-2"],
            Lifecycle::ShutDown {
                on: "2026-05-12",
                replacement: "gpt-image-2.5-sunburst",
            },
        )
    },
    ModelSpec {
        rates: TokenRates {
            text_in: 0,
            cached_text_in: 0,
            image_in: 0,
            cached_image_in: 0,
            image_out: 0,
        },
        offline: true,
        // The offline renderer draws `auto` with medium detail.
        auto_quality: Quality::Medium,
        ..gpt(OFFLINE_MODEL, &[], Lifecycle::Active)
    },
];

/// The spec of a model id or alias, whatever its lifecycle.
pub fn lookup(id: &str) -> Option<&'static ModelSpec> {
    MODELS
        .iter()
        .find(|m| m.id == id || m.aliases.contains(&id))
}

/// The spec of a model a request may use: known and not shut down.
pub fn usable(id: &str) -> Result<&'static ModelSpec, Error> {
    match lookup(id) {
        None => Err(Error::invalid(
            "model",
            format!("`{id}` is not a known image model"),
        )),
        Some(ModelSpec {
            lifecycle: Lifecycle::ShutDown { on, replacement },
            ..
        }) => Err(Error::invalid(
            "model",
            format!("`{id}` was shut down on {on}; use `{replacement}`"),
        )),
        Some(spec) => Ok(spec),
    }
}

/// The fully resolved parameters of one render, checked against a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderParams {
    pub size: ImageSize,
    pub quality: Quality,
    pub background: Background,
    pub format: OutputFormat,
    pub compression: Option<u8>,
}

impl ModelSpec {
    /// Checks every parameter against this model; the error names the first field at fault.
    pub fn validate(&self, p: &RenderParams) -> Result<(), Error> {
        self.validate_size(p.size)?;
        if !self.qualities.contains(&p.quality) {
            return Err(Error::invalid(
                "quality",
                format!(
                    "`{}` is not available on {}; use one of: {}",
                    p.quality,
                    self.id,
                    names(self.qualities)
                ),
            ));
        }
        if !self.formats.contains(&p.format) {
            return Err(Error::invalid(
                "output_format",
                format!("`{}` is not available on {}", p.format, self.id),
            ));
        }
        if p.background == Background::Transparent {
            if !self.transparent_background {
                return Err(Error::invalid(
                    "background",
                    format!("{} cannot render transparent backgrounds", self.id),
                ));
            }
            if !p.format.supports_alpha() {
                return Err(Error::invalid(
                    "background",
                    "transparent needs output_format png or webp",
                ));
            }
        }
        if let Some(c) = p.compression {
            if c > 100 {
                return Err(Error::invalid("output_compression", "must be 0 to 100"));
            }
            if p.format == OutputFormat::Png {
                return Err(Error::invalid(
                    "output_compression",
                    "applies to jpeg and webp only",
                ));
            }
        }
        Ok(())
    }

    /// Checks a size against this model's rule.
    pub fn validate_size(&self, size: ImageSize) -> Result<(), Error> {
        let ImageSize::Fixed {
            width: w,
            height: h,
        } = size
        else {
            return Ok(());
        };
        let bad = |why: String| {
            Err(Error::invalid(
                "size",
                format!("{w}x{h} is not available on {}: {why}", self.id),
            ))
        };
        match self.sizes {
            SizeRule::Presets(list) => {
                if !list.contains(&(w, h)) {
                    let sizes: Vec<String> = list.iter().map(|(w, h)| format!("{w}x{h}")).collect();
                    return bad(format!("use auto or one of {}", sizes.join(", ")));
                }
            }
            SizeRule::Flexible {
                multiple,
                max_ratio,
                max_edge,
                min_pixels,
                max_pixels,
            } => {
                let (long, short) = (w.max(h), w.min(h));
                let pixels = u64::from(w) * u64::from(h);
                if w % multiple != 0 || h % multiple != 0 {
                    return bad(format!("both edges must be multiples of {multiple}"));
                }
                if long > max_edge {
                    return bad(format!("each edge must be at most {max_edge} px"));
                }
                if long > short * max_ratio {
                    return bad(format!(
                        "the long edge may be at most {max_ratio}x the short edge"
                    ));
                }
                if pixels < min_pixels || pixels > max_pixels {
                    return bad(format!("total pixels must be {min_pixels} to {max_pixels}"));
                }
            }
        }
        Ok(())
    }

    /// The estimated image output tokens of one render. `auto` is estimated as what the model
    /// renders it as; a quality the model does not price is estimated as its dearest, so an
    /// estimate never undershoots.
    pub fn estimate_output_tokens(&self, size: ImageSize, quality: Quality) -> u64 {
        let quality = match quality {
            Quality::Auto => self.auto_quality,
            q => q,
        };
        let base = match self.quality_base.iter().find(|(q, _)| *q == quality) {
            Some((_, o)) => *o,
            None => self.quality_base.iter().map(|(_, o)| *o).max().unwrap_or(0),
        };
        let (w, h) = size.dimensions();
        estimate_output_tokens(base, w, h)
    }

    /// The estimated cost of one render's image output, in micro-dollars (input tokens extra).
    pub fn estimate_cost_micros(&self, size: ImageSize, quality: Quality) -> u64 {
        let tokens = self.estimate_output_tokens(size, quality);
        micros(tokens, self.rates.image_out)
    }

    /// The concrete quality a request renders at. An explicit quality stays. `auto` is what the
    /// model would choose ([`ModelSpec::auto_quality`]), lowered, when `budget_micros` is given, to
    /// the best priced quality whose estimate for `images` renders at `size` fits it; the lowest
    /// when none does (the budget check then refuses the request and says why).
    pub fn resolve_quality(
        &self,
        size: ImageSize,
        quality: Quality,
        images: u32,
        budget_micros: Option<u64>,
    ) -> Quality {
        if quality != Quality::Auto {
            return quality;
        }
        let Some(budget) = budget_micros else {
            return self.auto_quality;
        };
        let mut candidates: Vec<Quality> = self
            .quality_base
            .iter()
            .map(|(q, _)| *q)
            .filter(|q| *q <= self.auto_quality && self.qualities.contains(q))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let fits = |q: &Quality| {
            self.estimate_cost_micros(size, *q)
                .saturating_mul(u64::from(images))
                <= budget
        };
        candidates
            .iter()
            .copied()
            .find(fits)
            .or(candidates.last().copied())
            .unwrap_or(self.auto_quality)
    }
}

/// OpenAI's (unofficial, reverse-engineered) calculator: `ceil(o·u·(2e6+w·h)/4e6)` with
/// `u = round_half_even(o / (long/short))`. It reproduces the official gpt-image-2 table exactly.
pub fn estimate_output_tokens(o: u64, w: u32, h: u32) -> u64 {
    let (long, short) = (u64::from(w.max(h)), u64::from(w.min(h)));
    if short == 0 {
        return 0;
    }
    // u = o * short / long, rounded half to even, in integers.
    let (num, den) = (o * short, long);
    let (q, r) = (num / den, num % den);
    let u = match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    };
    let n = o * u * (2_000_000 + u64::from(w) * u64::from(h));
    n.div_ceil(4_000_000)
}

/// The cost in micro-dollars of `tokens` at `rate` micro-dollars per million, rounded up.
pub fn micros(tokens: u64, rate_per_million: u64) -> u64 {
    (tokens * rate_per_million).div_ceil(1_000_000)
}

fn names<T: std::fmt::Display>(list: &[T]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(w: u32, h: u32) -> ImageSize {
        ImageSize::Fixed {
            width: w,
            height: h,
        }
    }

    #[test]
    fn estimator_reproduces_the_official_gpt_image_2_table() {
        let m = lookup("gpt-image-2").unwrap();
        // $0.006 / $0.053 / $0.211 at 1024x1024; $0.005 / $0.041 / $0.165 at 1536x1024.
        let cents_tenths = |s, q| (m.estimate_cost_micros(s, q) + 500) / 1000;
        assert_eq!(cents_tenths(fixed(1024, 1024), Quality::Low), 6);
        assert_eq!(cents_tenths(fixed(1024, 1024), Quality::Medium), 53);
        assert_eq!(cents_tenths(fixed(1024, 1024), Quality::High), 211);
        assert_eq!(cents_tenths(fixed(1536, 1024), Quality::Low), 5);
        assert_eq!(cents_tenths(fixed(1536, 1024), Quality::Medium), 41);
        assert_eq!(cents_tenths(fixed(1024, 1536), Quality::High), 165);
    }

    #[test]
    fn sizes_follow_each_models_rule() {
        let flex = usable("gpt-image-2.5-sunburst").unwrap();
        assert!(flex.validate_size(fixed(2048, 1152)).is_ok());
        assert!(flex.validate_size(fixed(3840, 2160)).is_ok());
        assert!(
            flex.validate_size(fixed(1000, 1000)).is_err(),
            "not a multiple of 16"
        );
        assert!(
            flex.validate_size(fixed(3840, 1024)).is_err(),
            "ratio over 3:1"
        );
        assert!(
            flex.validate_size(fixed(512, 512)).is_err(),
            "too few pixels"
        );
        let fixed_only = usable("gpt-image-1.5").unwrap();
        assert!(fixed_only.validate_size(fixed(1536, 1024)).is_ok());
        assert!(fixed_only.validate_size(fixed(2048, 2048)).is_err());
    }

    #[test]
    fn dead_models_name_their_replacement() {
        let err = usable("gpt-image-1").unwrap_err().to_string();
        assert!(
            err.contains("shut down") && err.contains("gpt-image-2.5-sunburst"),
            "{err}"
        );
        assert!(usable("no-such-model").is_err());
        assert_eq!(usable("gpt-image-2.5-sunburst").unwrap().id, DEFAULT_MODEL);
    }

    #[test]
    fn params_are_checked_per_model() {
        let m = usable(DEFAULT_MODEL).unwrap();
        let ok = RenderParams {
            size: ImageSize::Auto,
            quality: Quality::XHigh,
            background: Background::Transparent,
            format: OutputFormat::Webp,
            compression: Some(80),
        };
        assert!(m.validate(&ok).is_ok());
        let jpeg_alpha = RenderParams {
            format: OutputFormat::Jpeg,
            ..ok
        };
        assert!(
            matches!(m.validate(&jpeg_alpha), Err(Error::Invalid { field, .. }) if field == "background")
        );
        let old = usable("gpt-image-2").unwrap();
        assert!(
            matches!(old.validate(&ok), Err(Error::Invalid { field, .. }) if field == "quality")
        );
        let png_compressed = RenderParams {
            format: OutputFormat::Png,
            ..ok
        };
        assert!(m.validate(&png_compressed).is_err());
    }

    /// The models a request may use today: active, not the offline one.
    fn current() -> impl Iterator<Item = &'static ModelSpec> {
        MODELS
            .iter()
            .filter(|m| m.lifecycle == Lifecycle::Active && !m.offline)
    }

    #[test]
    fn auto_is_estimated_as_what_the_model_renders_it_as() {
        let square = fixed(1024, 1024);
        for m in current() {
            assert_eq!(m.auto_quality, Quality::High, "{}", m.id);
            assert_eq!(
                m.estimate_cost_micros(square, Quality::Auto),
                m.estimate_cost_micros(square, Quality::High),
                "{}",
                m.id
            );
            // Without a budget `auto` renders as the model would choose it.
            assert_eq!(
                m.resolve_quality(square, Quality::Auto, 1, None),
                Quality::High
            );
        }
        // 2.5 `high` at 1024x1024 is about $0.053, a quarter of `max`'s $0.211.
        let m = usable(DEFAULT_MODEL).unwrap();
        let cents_tenths = |q| (m.estimate_cost_micros(square, q) + 500) / 1000;
        assert_eq!(cents_tenths(Quality::Auto), 53);
        assert_eq!(cents_tenths(Quality::Max), 211);
    }

    #[test]
    fn auto_is_lowered_to_the_best_quality_within_a_budget() {
        let square = fixed(1024, 1024);
        let (m, two) = (
            usable(DEFAULT_MODEL).unwrap(),
            usable("gpt-image-2").unwrap(),
        );
        for (spec, quality, images, budget, expect, why) in [
            (
                m,
                Quality::Auto,
                1,
                50_000,
                Quality::Medium,
                "2.5 high ($0.0527) is over $0.05",
            ),
            (
                m,
                Quality::Auto,
                1,
                60_000,
                Quality::High,
                "high fits $0.06",
            ),
            (
                m,
                Quality::Auto,
                1,
                10_000_000,
                Quality::High,
                "never above what the model picks",
            ),
            (
                m,
                Quality::Auto,
                4,
                50_000,
                Quality::Low,
                "four at $0.05: only low ($0.006)",
            ),
            (
                m,
                Quality::Auto,
                4,
                1_000,
                Quality::Low,
                "nothing fits: the lowest, refused later",
            ),
            (
                two,
                Quality::Auto,
                1,
                200_000,
                Quality::Medium,
                "gpt-image-2 high ($0.211) > $0.20",
            ),
            (
                m,
                Quality::Max,
                4,
                1_000,
                Quality::Max,
                "an explicit quality is kept",
            ),
        ] {
            assert_eq!(
                spec.resolve_quality(square, quality, images, Some(budget)),
                expect,
                "{why}"
            );
        }
    }

    #[test]
    fn offline_is_free() {
        let m = usable(OFFLINE_MODEL).unwrap();
        assert!(m.offline);
        assert_eq!(m.estimate_cost_micros(ImageSize::Auto, Quality::High), 0);
    }
}
