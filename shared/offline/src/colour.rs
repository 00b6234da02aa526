//! Colours for the offline model: the table of colour words a prompt may use, naming a colour by its
//! nearest word, mixing, and the tone modifiers (`pastel`, `neon`, `dark`, `light`).

/// An sRGB colour.
pub(crate) type Rgb = [u8; 3];

/// A colour word. `describes` marks the canonical names that alt text may use; synonyms and
/// modifiers (`gray`, `golden`, `neon`) are understood in prompts but never chosen as a name.
struct Named {
    word: &'static str,
    rgb: Rgb,
    describes: bool,
}

const fn named(word: &'static str, rgb: Rgb, describes: bool) -> Named {
    Named {
        word,
        rgb,
        describes,
    }
}

/// The colour words, with values picked to read well as large areas rather than the harsh CSS
/// primaries.
const COLOURS: &[Named] = &[
    named("red", [214, 40, 40], true),
    named("crimson", [165, 18, 48], true),
    named("scarlet", [240, 48, 24], false),
    named("maroon", [110, 20, 36], true),
    named("rust", [176, 70, 24], false),
    named("orange", [245, 130, 32], true),
    named("coral", [248, 124, 92], true),
    named("peach", [252, 200, 160], true),
    named("amber", [255, 176, 0], false),
    named("yellow", [247, 212, 46], true),
    named("gold", [212, 168, 52], true),
    named("golden", [212, 168, 52], false),
    named("lime", [160, 215, 50], true),
    named("green", [46, 150, 72], true),
    named("emerald", [16, 140, 96], false),
    named("olive", [112, 118, 40], true),
    named("mint", [160, 228, 196], true),
    named("teal", [16, 128, 128], true),
    named("turquoise", [64, 210, 200], true),
    named("cyan", [20, 196, 226], true),
    named("aqua", [20, 196, 226], false),
    named("blue", [36, 96, 220], true),
    named("azure", [40, 140, 250], false),
    named("cobalt", [0, 72, 170], false),
    named("navy", [22, 32, 92], true),
    named("indigo", [72, 30, 140], true),
    named("purple", [128, 48, 168], true),
    named("violet", [146, 90, 222], true),
    named("lavender", [184, 164, 232], true),
    named("magenta", [214, 36, 160], true),
    named("pink", [244, 140, 182], true),
    named("brown", [120, 74, 42], true),
    named("copper", [184, 110, 60], false),
    named("bronze", [176, 128, 60], false),
    named("tan", [204, 172, 132], false),
    named("beige", [228, 212, 178], true),
    named("cream", [250, 243, 218], true),
    named("black", [18, 18, 22], true),
    named("charcoal", [54, 56, 62], true),
    named("grey", [128, 130, 134], true),
    named("gray", [128, 130, 134], false),
    named("silver", [192, 196, 204], true),
    named("white", [246, 246, 244], true),
    named("pastel", [236, 196, 220], false),
    named("neon", [60, 255, 120], false),
];

/// The colour a word names, if it is a colour word.
pub(super) fn lookup(word: &str) -> Option<Rgb> {
    COLOURS.iter().find(|c| c.word == word).map(|c| c.rgb)
}

/// The canonical colour word nearest to `rgb`, by the "redmean" weighted distance, which tracks
/// perceived difference far better than plain RGB distance at the cost of two multiplications.
pub(super) fn nearest_name(rgb: Rgb) -> &'static str {
    let mut best = ("grey", u32::MAX);
    for c in COLOURS.iter().filter(|c| c.describes) {
        let d = distance(rgb, c.rgb);
        if d < best.1 {
            best = (c.word, d);
        }
    }
    best.0
}

fn distance(a: Rgb, b: Rgb) -> u32 {
    let mean_r = (u32::from(a[0]) + u32::from(b[0])) / 2;
    let dr = u32::from(a[0].abs_diff(b[0]));
    let dg = u32::from(a[1].abs_diff(b[1]));
    let db = u32::from(a[2].abs_diff(b[2]));
    (((512 + mean_r) * dr * dr) >> 8) + 4 * dg * dg + (((767 - mean_r) * db * db) >> 8)
}

/// `a` moved towards `b` by `t` (0 = `a`, 1 = `b`).
pub(super) fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let ch = |i: usize| (f32::from(a[i]) + (f32::from(b[i]) - f32::from(a[i])) * t + 0.5) as u8;
    [ch(0), ch(1), ch(2)]
}

pub(super) const WHITE: Rgb = [255, 255, 255];
pub(super) const BLACK: Rgb = [0, 0, 0];

/// Perceived brightness, 0 to 255 (Rec. 601 weights in integers).
pub(super) fn luma(c: Rgb) -> u8 {
    ((299 * u32::from(c[0]) + 587 * u32::from(c[1]) + 114 * u32::from(c[2])) / 1000) as u8
}

/// The integer mean of several colours (a run like "blue green" names the colour between).
pub(super) fn average(colours: &[Rgb]) -> Option<Rgb> {
    if colours.is_empty() {
        return None;
    }
    let n = colours.len() as u32;
    let ch = |i: usize| ((colours.iter().map(|c| u32::from(c[i])).sum::<u32>() + n / 2) / n) as u8;
    Some([ch(0), ch(1), ch(2)])
}

/// An sRGB colour from hue (degrees), saturation and lightness (0 to 1). Only arithmetic, so the
/// result is the same on every machine.
pub(super) fn hsl(hue: f32, s: f32, l: f32) -> Rgb {
    let h = (hue - 360.0 * (hue / 360.0).floor()) / 60.0;
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h - 2.0 * (h / 2.0).floor()) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let ch = |v: f32| ((v + m).clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    [ch(r), ch(g), ch(b)]
}

/// A word that shifts a colour ("pastel pink") or, before "colours" or "palette", every colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tone {
    Pastel,
    Neon,
    Dark,
    Light,
}

impl Tone {
    pub(super) fn from_word(word: &str) -> Option<Tone> {
        Some(match word {
            "pastel" | "soft" => Tone::Pastel,
            "neon" | "vivid" | "bright" | "electric" => Tone::Neon,
            "dark" | "deep" => Tone::Dark,
            "light" | "pale" => Tone::Light,
            _ => return None,
        })
    }

    pub(super) fn apply(self, c: Rgb) -> Rgb {
        match self {
            Tone::Pastel => mix(c, WHITE, 0.55),
            Tone::Light => mix(c, WHITE, 0.4),
            Tone::Dark => mix(c, BLACK, 0.45),
            Tone::Neon => {
                // Stretch the channels to the full range: the most saturated, brightest colour of
                // the same hue. Greys have no hue to stretch and stay as they are.
                let (lo, hi) = (
                    c.iter().min().copied().unwrap_or(0),
                    c.iter().max().copied().unwrap_or(0),
                );
                if hi == lo {
                    return c;
                }
                let span = u32::from(hi - lo);
                c.map(|v| ((u32::from(v - lo) * 255 + span / 2) / span) as u8)
            }
        }
    }

    /// A one-digit code for response ids (0 is reserved for "no tone").
    pub(super) fn code(self) -> u8 {
        match self {
            Tone::Pastel => 1,
            Tone::Neon => 2,
            Tone::Dark => 3,
            Tone::Light => 4,
        }
    }

    pub(super) fn from_code(code: u8) -> Option<Tone> {
        [Tone::Pastel, Tone::Neon, Tone::Dark, Tone::Light]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_resolve_and_names_round_trip() {
        assert_eq!(lookup("red"), Some([214, 40, 40]));
        assert_eq!(lookup("gray"), lookup("grey"));
        assert_eq!(lookup("fox"), None);
        // Every canonical name is its own nearest name, so alt text never renames a prompt colour.
        for c in COLOURS.iter().filter(|c| c.describes) {
            assert_eq!(nearest_name(c.rgb), c.word);
        }
        assert_eq!(nearest_name([250, 10, 10]), "red");
        assert_eq!(nearest_name([10, 20, 80]), "navy");
    }

    #[test]
    fn hsl_hits_the_primaries() {
        assert_eq!(hsl(0.0, 1.0, 0.5), [255, 0, 0]);
        assert_eq!(hsl(120.0, 1.0, 0.5), [0, 255, 0]);
        assert_eq!(hsl(-120.0, 1.0, 0.5), [0, 0, 255]);
        assert_eq!(hsl(0.0, 0.0, 1.0), [255, 255, 255]);
    }

    #[test]
    fn tones_shift_colours() {
        let red = [214, 40, 40];
        assert!(luma(Tone::Pastel.apply(red)) > luma(red));
        assert!(luma(Tone::Dark.apply(red)) < luma(red));
        assert_eq!(Tone::Neon.apply(red), [255, 0, 0]);
        assert_eq!(Tone::Neon.apply([90, 90, 90]), [90, 90, 90]);
        for t in [Tone::Pastel, Tone::Neon, Tone::Dark, Tone::Light] {
            assert_eq!(Tone::from_code(t.code()), Some(t));
        }
        assert_eq!(average(&[[0, 0, 255], [0, 255, 0]]), Some([0, 128, 128]));
    }
}
