//! What a turn asks for: an [`Intent`] holds the colours, subject and tone the prompt (and any
//! turn it refines) named, and the layout key; [`resolve`] fills in the colours left open from the
//! turn's PRNG. Response ids carry an encoded intent, so refinements need no stored state.

use super::colour::{BLACK, Rgb, Tone, WHITE, hsl, luma, mix};
use super::rng::{SplitMix, hash64};
use super::words::{self, Kind, Words};

/// What to draw, before the PRNG fills in what the words left open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Intent {
    /// The layout key: a hash of the normalised prompt of the conversation's first turn, so that
    /// refinements keep the composition.
    pub(super) base: u64,
    /// The layout seed of the turn this intent was read back from (0 for a new prompt). A request's
    /// seed is XORed into it, so variation 0 of a refinement keeps the chosen image's composition
    /// while the other variations still differ.
    pub(super) seed: u64,
    pub(super) kind: Kind,
    pub(super) subject: Option<Rgb>,
    pub(super) background: Option<Rgb>,
    pub(super) accent: Option<Rgb>,
    pub(super) tone: Option<Tone>,
}

/// The length of [`Intent::encode`]'s output.
pub(super) const ENCODED_LEN: usize = 56;

impl Intent {
    /// The intent of a normalised prompt.
    pub(super) fn from_prompt(normalized: &str) -> Intent {
        let w = words::parse(normalized);
        Intent {
            base: hash64(&[b"imagemcp-offline/v1", normalized.as_bytes()]),
            seed: 0,
            kind: w.kind.unwrap_or(Kind::Abstract),
            subject: w.subject,
            background: w.background,
            accent: w.accent,
            tone: w.tone,
        }
    }

    /// This intent refined by a new prompt's words: the layout key stays, and whatever the new
    /// words name (colours, subject, tone) replaces what was there.
    pub(super) fn refined(self, w: &Words) -> Intent {
        Intent {
            base: self.base,
            seed: self.seed,
            kind: w.kind.unwrap_or(self.kind),
            subject: w.subject.or(self.subject),
            background: w.background.or(self.background),
            accent: w.accent.or(self.accent),
            tone: w.tone.or(self.tone),
        }
    }

    /// This intent as drawn with a request's `seed`: what a response id records.
    pub(super) fn for_turn(&self, seed: u64) -> Intent {
        Intent {
            seed: self.seed ^ seed,
            ..self.clone()
        }
    }

    /// 56 hex digits: the layout key and seed, kind, tone and the three colour slots. Response ids carry
    /// this so a conversation can be refined from the id alone, with no state kept anywhere.
    pub(super) fn encode(&self) -> String {
        let slot = |c: Option<Rgb>| match c {
            Some([r, g, b]) => format!("1{r:02x}{g:02x}{b:02x}"),
            None => "0000000".to_owned(),
        };
        format!(
            "{:016x}{:016x}{:02x}{:x}{}{}{}",
            self.base,
            self.seed,
            self.kind.code(),
            self.tone.map_or(0, Tone::code),
            slot(self.subject),
            slot(self.background),
            slot(self.accent)
        )
    }

    /// The inverse of [`Intent::encode`]; `None` for anything it did not produce.
    pub(super) fn decode(s: &str) -> Option<Intent> {
        let s = s.get(..ENCODED_LEN)?;
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let hex = |range: std::ops::Range<usize>| u64::from_str_radix(s.get(range)?, 16).ok();
        let slot = |at: usize| -> Option<Option<Rgb>> {
            match s.get(at..at + 1)? {
                "0" => Some(None),
                "1" => {
                    let v = hex(at + 1..at + 7)?;
                    Some(Some([(v >> 16) as u8, (v >> 8) as u8, v as u8]))
                }
                _ => None,
            }
        };
        let tone = hex(34..35)? as u8;
        Some(Intent {
            base: hex(0..16)?,
            seed: hex(16..32)?,
            kind: Kind::from_code(hex(32..34)? as u8)?,
            tone: if tone == 0 {
                None
            } else {
                Some(Tone::from_code(tone)?)
            },
            subject: slot(35)?,
            background: slot(42)?,
            accent: slot(49)?,
        })
    }
}

/// The three colours of a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Palette {
    pub(super) background: Rgb,
    pub(super) subject: Rgb,
    pub(super) accent: Rgb,
}

/// The named colours, with what was not named filled in: a shade of the named subject for the
/// background (so the named colour dominates), and a colour scheme from the PRNG otherwise.
pub(super) fn resolve(intent: &Intent, rng: &mut SplitMix) -> Palette {
    // The same numbers are drawn whatever was named, so the layout that follows does not shift
    // when a refinement names a colour.
    let hue = rng.range(0.0, 360.0);
    let turn = [180.0, 150.0, 120.0, 35.0][rng.below(4)];
    let dark = rng.chance(0.6);
    let hashed = Palette {
        background: if dark {
            hsl(hue, 0.45, 0.16)
        } else {
            hsl(hue, 0.35, 0.88)
        },
        subject: hsl(hue + turn, 0.7, if dark { 0.58 } else { 0.45 }),
        accent: hsl(hue - turn / 2.0, 0.75, 0.62),
    };
    let background = match (intent.background, intent.subject) {
        (Some(b), _) => b,
        (None, Some(s)) if luma(s) < 70 => mix(s, WHITE, 0.82),
        (None, Some(s)) => mix(s, BLACK, 0.6),
        (None, None) => hashed.background,
    };
    let subject = match intent.subject {
        Some(s) => s,
        // Against a named background the scheme's subject must still stand out.
        None if luma(hashed.subject).abs_diff(luma(background)) < 70 => {
            if luma(background) > 128 {
                mix(hashed.subject, BLACK, 0.5)
            } else {
                mix(hashed.subject, WHITE, 0.5)
            }
        }
        None => hashed.subject,
    };
    let accent = match (intent.accent, intent.subject) {
        (Some(a), _) => a,
        (None, Some(s)) => mix(s, WHITE, 0.55),
        (None, None) => hashed.accent,
    };
    let tone = |c: Rgb| intent.tone.map_or(c, |t| t.apply(c));
    Palette {
        background: tone(background),
        subject: tone(subject),
        accent: tone(accent),
    }
}

/// The stream everything random in a picture is drawn from.
pub(super) fn layout_rng(intent: &Intent, seed: u64) -> SplitMix {
    let seed = intent.seed ^ seed;
    SplitMix::new(hash64(&[
        b"layout",
        &intent.base.to_be_bytes(),
        &seed.to_be_bytes(),
    ]))
}

/// The palette `scene::render` uses, without drawing anything.
pub(super) fn palette(intent: &Intent, seed: u64) -> Palette {
    resolve(intent, &mut layout_rng(intent, seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour;

    #[test]
    fn intents_round_trip_through_their_encoding() {
        let mut intent = Intent::from_prompt("a pastel colours red logo on a navy background")
            .for_turn(u64::MAX - 5);
        intent.accent = Some([1, 2, 3]);
        let code = intent.encode();
        assert_eq!(code.len(), ENCODED_LEN);
        assert_eq!(Intent::decode(&code), Some(intent.clone()));
        assert_eq!(Intent::decode(&format!("{code}trailing")), Some(intent));
        assert_eq!(Intent::decode("zz"), None);
        assert_eq!(
            Intent::decode(&"f".repeat(ENCODED_LEN)),
            None,
            "unknown kind code"
        );
    }

    #[test]
    fn refinement_keeps_the_layout_key_and_overrides_what_is_named() {
        let first = Intent::from_prompt("a red logo on a blue background");
        let refined = first.clone().refined(&words::parse("make it green"));
        assert_eq!((refined.base, refined.seed), (first.base, first.seed));
        let turn = first.for_turn(7);
        assert_eq!(
            palette(&turn, 0),
            palette(&first, 7),
            "variation 0 of a refinement keeps the layout"
        );
        assert_eq!(refined.kind, Kind::Badge);
        assert_eq!(refined.subject, colour::lookup("green"));
        assert_eq!(refined.background, colour::lookup("blue"));
    }

    #[test]
    fn a_named_subject_colour_gets_a_background_of_its_own_hue() {
        let intent = Intent::from_prompt("a red circle");
        let pal = resolve(&intent, &mut SplitMix::new(1));
        assert_eq!(pal.subject, [214, 40, 40]);
        assert!(
            pal.background[0] > pal.background[1] * 3,
            "{:?}",
            pal.background
        );
        let unnamed = resolve(&Intent::from_prompt("a fox"), &mut SplitMix::new(1));
        let other = resolve(&Intent::from_prompt("a fox"), &mut SplitMix::new(2));
        assert_ne!(
            unnamed, other,
            "the palette comes from the seed when no colour is named"
        );
    }
}
