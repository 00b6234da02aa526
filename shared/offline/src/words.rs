//! What a prompt asks the offline model for: the colours it names (and which of them is the
//! background), the kind of subject, and a tone for the whole palette. Plain word matching on the
//! normalised prompt; nothing here is random.

use super::colour::{self, Rgb, Tone};

/// The kind of subject drawn in the middle of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Abstract,
    Disc,
    Sun,
    Mountains,
    Badge,
    Waves,
    Heart,
    Star,
    Skyline,
    Flower,
    Tree,
}

/// Subject words, matched whole; the first one the prompt mentions wins.
const KIND_WORDS: &[(&str, Kind)] = &[
    ("circle", Kind::Disc),
    ("circles", Kind::Disc),
    ("orb", Kind::Disc),
    ("ball", Kind::Disc),
    ("sphere", Kind::Disc),
    ("planet", Kind::Disc),
    ("moon", Kind::Disc),
    ("bubble", Kind::Disc),
    ("dot", Kind::Disc),
    ("sun", Kind::Sun),
    ("sunset", Kind::Sun),
    ("sunrise", Kind::Sun),
    ("sunshine", Kind::Sun),
    ("mountain", Kind::Mountains),
    ("mountains", Kind::Mountains),
    ("hill", Kind::Mountains),
    ("hills", Kind::Mountains),
    ("peak", Kind::Mountains),
    ("peaks", Kind::Mountains),
    ("landscape", Kind::Mountains),
    ("valley", Kind::Mountains),
    ("logo", Kind::Badge),
    ("icon", Kind::Badge),
    ("badge", Kind::Badge),
    ("emblem", Kind::Badge),
    ("app", Kind::Badge),
    ("button", Kind::Badge),
    ("sticker", Kind::Badge),
    ("wave", Kind::Waves),
    ("waves", Kind::Waves),
    ("ocean", Kind::Waves),
    ("sea", Kind::Waves),
    ("water", Kind::Waves),
    ("beach", Kind::Waves),
    ("river", Kind::Waves),
    ("lake", Kind::Waves),
    ("heart", Kind::Heart),
    ("hearts", Kind::Heart),
    ("love", Kind::Heart),
    ("valentine", Kind::Heart),
    ("star", Kind::Star),
    ("stars", Kind::Star),
    ("starry", Kind::Star),
    ("sparkle", Kind::Star),
    ("city", Kind::Skyline),
    ("skyline", Kind::Skyline),
    ("building", Kind::Skyline),
    ("buildings", Kind::Skyline),
    ("skyscraper", Kind::Skyline),
    ("skyscrapers", Kind::Skyline),
    ("town", Kind::Skyline),
    ("flower", Kind::Flower),
    ("flowers", Kind::Flower),
    ("blossom", Kind::Flower),
    ("tulip", Kind::Flower),
    ("daisy", Kind::Flower),
    ("bloom", Kind::Flower),
    ("tree", Kind::Tree),
    ("trees", Kind::Tree),
    ("forest", Kind::Tree),
    ("pine", Kind::Tree),
];

impl Kind {
    pub(super) const ALL: [Kind; 11] = [
        Kind::Abstract,
        Kind::Disc,
        Kind::Sun,
        Kind::Mountains,
        Kind::Badge,
        Kind::Waves,
        Kind::Heart,
        Kind::Star,
        Kind::Skyline,
        Kind::Flower,
        Kind::Tree,
    ];

    /// A stable code for response ids: the position in `ALL`, which only ever grows at the end.
    pub(super) fn code(self) -> u8 {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    pub(super) fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(code)).copied()
    }

    /// How the revised prompt names what was drawn.
    pub(super) fn noun(self) -> &'static str {
        match self {
            Kind::Abstract => "abstract composition",
            Kind::Disc => "disc",
            Kind::Sun => "sun over a horizon",
            Kind::Mountains => "mountain range",
            Kind::Badge => "logo badge",
            Kind::Waves => "set of waves",
            Kind::Heart => "heart",
            Kind::Star => "star",
            Kind::Skyline => "city skyline",
            Kind::Flower => "flower",
            Kind::Tree => "tree",
        }
    }
}

/// The words of a prompt that steer the picture. `None` means the prompt did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Words {
    pub(super) subject: Option<Rgb>,
    pub(super) background: Option<Rgb>,
    pub(super) accent: Option<Rgb>,
    pub(super) kind: Option<Kind>,
    pub(super) tone: Option<Tone>,
}

/// Words that make an adjacent colour the background: "a blue background", "background in blue",
/// "a blue sky".
const BACKGROUND_WORDS: &[&str] = &[
    "background",
    "backgrounds",
    "backdrop",
    "bg",
    "sky",
    "skies",
    "wall",
];
/// Words allowed between "background" and its colour ("background in blue", "background is blue").
const LINKING_WORDS: &[&str] = &[
    "to", "in", "of", "is", "as", "color", "colour", "colored", "coloured",
];
/// Words after a tone that make it apply to the whole palette ("pastel colours").
const PALETTE_WORDS: &[&str] = &[
    "colours", "colors", "palette", "tones", "hues", "shades", "style",
];

/// One word and whether it directly follows the previous one (only white space or a hyphen
/// between), which decides whether "navy blue" is one colour and "pastel pink" one modified colour.
struct Token<'a> {
    word: &'a str,
    joined: bool,
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut joined = true;
    for (i, ch) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let word_char = ch.is_alphanumeric() || ch == '\'';
        match (start, word_char) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let word = text[s..i].trim_matches('\'');
                let word = word.strip_suffix("'s").unwrap_or(word);
                if !word.is_empty() {
                    out.push(Token { word, joined });
                }
                start = None;
                joined = true;
            }
            _ => {}
        }
        if !word_char && !ch.is_whitespace() && ch != '-' {
            joined = false;
        }
    }
    out
}

/// Reads the colour, subject and tone words of a normalised (lower-case) prompt.
pub(super) fn parse(prompt: &str) -> Words {
    let toks = tokens(prompt);
    let mut words = Words {
        kind: toks.iter().find_map(|t| {
            KIND_WORDS
                .iter()
                .find(|(w, _)| *w == t.word)
                .map(|(_, k)| *k)
        }),
        ..Words::default()
    };
    let joined_at = |i: usize| toks.get(i).is_some_and(|t| t.joined);
    let word_at = |i: usize| toks.get(i).map_or("", |t| t.word);

    // Each mention: the colour and whether the prompt makes it the background.
    let mut mentions: Vec<(Rgb, bool)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let first = i;
        let mut tone = None;
        if let Some(t) = Tone::from_word(toks[i].word) {
            if joined_at(i + 1) && PALETTE_WORDS.contains(&word_at(i + 1)) {
                words.tone = Some(t);
                i += 2;
                continue;
            }
            if joined_at(i + 1) && colour::lookup(word_at(i + 1)).is_some() {
                tone = Some(t);
                i += 1;
            }
        }
        let Some(c) = colour::lookup(toks[i].word) else {
            i += 1;
            continue;
        };
        // A run of adjacent colour words ("blue green", "navy-blue") names one colour between them.
        let mut run = vec![c];
        while let Some(next) = toks
            .get(i + 1)
            .filter(|t| t.joined)
            .and_then(|t| colour::lookup(t.word))
        {
            run.push(next);
            i += 1;
        }
        let last = i;
        let mut rgb = colour::average(&run).unwrap_or(c);
        if let Some(t) = tone {
            rgb = t.apply(rgb);
        }
        let is_bg = |j: usize| BACKGROUND_WORDS.contains(&word_at(j));
        let background = is_bg(last + 1)
            || is_bg(last + 2)
            || (first >= 1 && is_bg(first - 1))
            || (first >= 2 && is_bg(first - 2) && LINKING_WORDS.contains(&word_at(first - 1)));
        if !mentions.iter().any(|(m, _)| *m == rgb) {
            mentions.push((rgb, background));
        }
        i += 1;
    }

    words.background = mentions.iter().find(|(_, bg)| *bg).map(|(c, _)| *c);
    let mut others = mentions.iter().filter(|(_, bg)| !*bg).map(|(c, _)| *c);
    words.subject = others.next();
    if words.background.is_none() {
        words.background = others.next();
    }
    words.accent = others.next();
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(word: &str) -> Option<Rgb> {
        colour::lookup(word)
    }

    #[test]
    fn colours_take_roles_in_order_of_mention() {
        let w = parse("a red logo on a blue background");
        assert_eq!(
            (w.subject, w.background, w.kind),
            (rgb("red"), rgb("blue"), Some(Kind::Badge))
        );
        let w = parse("a blue background with a red logo");
        assert_eq!((w.subject, w.background), (rgb("red"), rgb("blue")));
        let w = parse("a yellow sun in a blue sky, with orange clouds");
        assert_eq!(
            (w.subject, w.background, w.accent),
            (rgb("yellow"), rgb("blue"), rgb("orange"))
        );
        assert_eq!(w.kind, Some(Kind::Sun));
        let w = parse("black and white photo");
        assert_eq!((w.subject, w.background), (rgb("black"), rgb("white")));
        let w = parse("make the background yellow");
        assert_eq!((w.subject, w.background), (None, rgb("yellow")));
    }

    #[test]
    fn runs_modifiers_and_palette_tones() {
        let w = parse("a navy-blue heart");
        assert_eq!(w.subject, colour::average(&[[22, 32, 92], [36, 96, 220]]));
        let w = parse("a pastel pink flower");
        assert_eq!(w.subject, rgb("pink").map(|c| Tone::Pastel.apply(c)));
        assert_eq!(w.kind, Some(Kind::Flower));
        let w = parse("a city at night, neon colours");
        assert_eq!(
            (w.tone, w.subject, w.kind),
            (Some(Tone::Neon), None, Some(Kind::Skyline))
        );
        // Punctuation separates: these are two colours, not one blend.
        let w = parse("red, blue");
        assert_eq!((w.subject, w.background), (rgb("red"), rgb("blue")));
        let w = parse("a fox in the snow");
        assert_eq!(w, Words::default());
    }
}
