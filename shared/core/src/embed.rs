//! Prompt embeddings for the semantic cache: the `Embedding` value the `ImageModel` port returns,
//! cosine similarity, the deterministic local embedding (used by the offline model and the fake
//! OpenAI server), and the intent guard that keeps look-alike prompts of different intent apart.
//!
//! The local embedding is a hashed bag of normalised words and word pairs: no model, no I/O, the
//! same vector on every runtime (wasm32 included). No crate does this small a job without pulling
//! in a model, hence hand-written. It knows nothing of meaning, so the cache never relies on it
//! alone: two prompts only match when their [`intent_guard`]s are equal too (colours, numbers,
//! negations, media, sides and times of day), which is what keeps "a red logo" from matching
//! "a blue logo" whatever the embedding says.

use std::collections::BTreeSet;

/// The length of every embedding the cache stores (OpenAI's `text-embedding-3-small` is asked for
/// this many dimensions, so both embedders give vectors of one size).
pub const DIMS: usize = 256;

/// The name the local embedding goes by; vectors of different models are never compared.
pub const LOCAL_MODEL: &str = "local-hash-v1";

/// An embedding and the model that made it.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    pub model: String,
    /// Unit length (cosine similarity is then a dot product).
    pub vector: Vec<f32>,
}

impl Embedding {
    /// The deterministic local embedding of `text`.
    pub fn local(text: &str) -> Self {
        Self {
            model: LOCAL_MODEL.to_owned(),
            vector: local_vector(text, DIMS),
        }
    }
}

/// Words that carry no intent in an image prompt: articles, fillers and request phrasing.
const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "with",
    "and",
    "for",
    "to",
    "is",
    "are",
    "be",
    "some",
    "please",
    "make",
    "create",
    "generate",
    "draw",
    "render",
    "show",
    "me",
    "i",
    "want",
    "need",
    "would",
    "like",
    "can",
    "you",
    "could",
    "give",
    "image",
    "picture",
    "pic",
    "that",
    "this",
    "its",
    "it",
    "very",
    "really",
    "nice",
    "beautiful",
    "lovely",
    "cool",
    "new",
    "one",
    "my",
    "our",
    "us",
    "we",
    "just",
    "quick",
    "simple",
    "showing",
    "featuring",
    "depicting",
    "by",
];

/// Same-intent spellings folded onto one word.
const SYNONYMS: &[(&str, &str)] = &[
    ("couch", "sofa"),
    ("kitty", "cat"),
    ("kitten", "cat"),
    ("doggy", "dog"),
    ("automobile", "car"),
    ("ocean", "sea"),
    ("mountains", "mountain"),
    ("colour", "color"),
    ("colours", "color"),
    ("grey", "gray"),
    ("centre", "center"),
    ("photograph", "photo"),
    ("photographic", "photo"),
    ("snapshot", "photo"),
    ("sitting", "sit"),
    ("sits", "sit"),
    ("seated", "sit"),
    ("running", "run"),
    ("runs", "run"),
    ("flying", "fly"),
    ("flies", "fly"),
    ("big", "large"),
    ("huge", "large"),
    ("tiny", "small"),
    ("little", "small"),
    ("happy", "joyful"),
    ("cheerful", "joyful"),
    ("icon", "logo"),
    ("emblem", "logo"),
];

/// Words that change what the picture must show; two prompts only match when these agree.
const GUARDED: &[&str] = &[
    // colours
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "purple",
    "violet",
    "pink",
    "black",
    "white",
    "gray",
    "brown",
    "gold",
    "golden",
    "silver",
    "teal",
    "cyan",
    "magenta",
    "beige",
    "navy",
    "turquoise",
    "crimson",
    "maroon",
    "lime",
    "indigo",
    "pastel",
    "neon",
    "monochrome",
    // negations
    "no",
    "not",
    "without",
    "never",
    "none",
    "nothing",
    "except",
    "dont",
    "don't",
    // number words
    "zero",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "single",
    "pair",
    "couple",
    "dozen",
    "many",
    "several",
    // media and styles
    "photo",
    "illustration",
    "watercolor",
    "sketch",
    "cartoon",
    "painting",
    "drawing",
    "vector",
    "pixel",
    "3d",
    "oil",
    "pencil",
    "anime",
    "realistic",
    "abstract",
    "minimalist",
    "isometric",
    // sides, directions and times of day
    "left",
    "right",
    "top",
    "bottom",
    "front",
    "back",
    "above",
    "below",
    "inside",
    "outside",
    "day",
    "night",
    "morning",
    "evening",
    "sunset",
    "sunrise",
    "winter",
    "summer",
    "spring",
    "autumn",
    "fall",
    "rain",
    "snow",
    "dark",
    "light",
    "old",
    "young",
    "small",
    "large",
];

/// The prompt's words, lower-cased, with punctuation, stop words and trivial plurals removed and
/// synonyms folded.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty() && !STOP.contains(w))
        .map(|w| {
            let folded = SYNONYMS
                .iter()
                .find(|(from, _)| *from == w)
                .map_or(w, |(_, to)| *to);
            singular(folded)
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// "cats" → "cat", "boxes" → "box"; leaves "glass", "bus" and short words alone.
fn singular(w: &str) -> String {
    if w.len() > 4 && w.ends_with("es") && !w.ends_with("ses") {
        return w[..w.len() - 2].to_owned();
    }
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

/// The intent-bearing tokens of a prompt: guarded words and every number, sorted and unique.
pub fn intent_guard(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out: BTreeSet<String> = BTreeSet::new();
    for raw in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let w = raw.trim_matches('\'');
        if w.is_empty() {
            continue;
        }
        let folded = SYNONYMS
            .iter()
            .find(|(from, _)| *from == w)
            .map_or(w, |(_, to)| *to);
        if GUARDED.contains(&folded) || folded.chars().any(|c| c.is_ascii_digit()) {
            out.insert(folded.to_owned());
        } else if let Some(stem) = folded.strip_suffix("n't") {
            // "isn't", "doesn't": a negation however it is spelled.
            if !stem.is_empty() {
                out.insert("not".to_owned());
            }
        }
    }
    out.into_iter().collect()
}

/// FNV-1a, 64 bits: a stable hash that needs no crate and gives the same value on every target.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn add_feature(v: &mut [f32], feature: &str, weight: f32) {
    let h = fnv1a(feature.as_bytes());
    let slot = (h % v.len() as u64) as usize;
    let sign = if (h >> 63) == 1 { -1.0 } else { 1.0 };
    v[slot] += sign * weight;
}

/// The weight of a pair of neighbouring words against a word's 1: enough that swapping roles
/// ("a man walking a dog" / "a dog walking a man", "a small dog on a large bed" / "a large dog on
/// a small bed") falls well under the cache's threshold although the words are the same.
const PAIR_WEIGHT: f32 = 0.7;

/// The local embedding: each distinct word adds 1 to a hashed, signed slot and each ordered pair
/// of neighbouring words adds [`PAIR_WEIGHT`]; unit length.
pub fn local_vector(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.max(1);
    let mut v = vec![0.0f32; dims];
    let words = words(text);
    let unique: BTreeSet<&str> = words.iter().map(String::as_str).collect();
    for w in &unique {
        add_feature(&mut v, w, 1.0);
    }
    let pairs: BTreeSet<String> = words
        .windows(2)
        .map(|pair| format!("{} {}", pair[0], pair[1]))
        .collect();
    for p in &pairs {
        add_feature(&mut v, p, PAIR_WEIGHT);
    }
    normalize(&mut v);
    v
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two vectors (0 when their lengths differ or either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(a: &str, b: &str) -> f32 {
        cosine(&Embedding::local(a).vector, &Embedding::local(b).vector)
    }

    #[test]
    fn paraphrases_are_close_and_different_subjects_are_not() {
        assert!(sim("A cat sitting on a sofa", "cats sit on the couch") > 0.95);
        assert!(
            sim(
                "please generate an image of a cat on a sofa",
                "cat on a sofa"
            ) > 0.95
        );
        assert!(sim("a lighthouse on a cliff", "a dog in a park") < 0.2);
        assert!(sim("a man walking a dog", "a dog walking a man") < 0.8);
    }

    #[test]
    fn the_guard_separates_look_alikes() {
        assert_eq!(intent_guard("a red logo"), vec!["red"]);
        assert_ne!(intent_guard("a red logo"), intent_guard("a blue logo"));
        assert_ne!(intent_guard("3 apples"), intent_guard("4 apples"));
        assert_ne!(
            intent_guard("a room with a cat"),
            intent_guard("a room without a cat")
        );
        assert_ne!(
            intent_guard("a house that isn't red"),
            intent_guard("a red house")
        );
        assert_eq!(intent_guard("A GREY cat"), intent_guard("a gray cat"));
    }

    #[test]
    fn vectors_are_deterministic_and_unit_length() {
        let a = local_vector("a fox in the snow", DIMS);
        assert_eq!(a, local_vector("a fox in the snow", DIMS));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(cosine(&a, &[0.0; 3]), 0.0);
    }
}
