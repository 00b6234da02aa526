//! Local moderation: a short, documented list of words and phrases that the hosted moderation
//! endpoint would certainly flag, matched as whole words, case-insensitively, and reported with
//! OpenAI's category names.
//!
//! The list is deliberately narrow. Everyday words that are only sometimes violent ("kill",
//! "shoot", "bomb", "blood", "weapon") are left out, because "shoot a photo", "a killer app" and
//! "photobomb" must pass; the phrases here have no innocent reading in an image prompt. Slurs are
//! not spelled out in source; deployments that need full coverage use OpenAI's moderation.

use imagemcp_core::model::Moderation;

const VIOLENCE: &str = "violence";
const VIOLENCE_GRAPHIC: &str = "violence/graphic";
const SEXUAL: &str = "sexual";
const SEXUAL_MINORS: &str = "sexual/minors";
const SELF_HARM: &str = "self-harm";
const SELF_HARM_INTENT: &str = "self-harm/intent";
const HATE: &str = "hate";
const HATE_THREATENING: &str = "hate/threatening";
const ILLICIT: &str = "illicit";
const ILLICIT_VIOLENT: &str = "illicit/violent";

/// The order categories are reported in (OpenAI's order), so verdicts are stable.
const ORDER: &[&str] = &[
    SEXUAL,
    SEXUAL_MINORS,
    HATE,
    HATE_THREATENING,
    ILLICIT,
    ILLICIT_VIOLENT,
    SELF_HARM,
    SELF_HARM_INTENT,
    VIOLENCE,
    VIOLENCE_GRAPHIC,
];

/// Words and phrases (single spaces between whole words; punctuation and hyphens in the text count
/// as spaces) and the categories each one flags.
const TERMS: &[(&str, &[&str])] = &[
    // Graphic violence: gore, not ordinary action words.
    ("gore", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("gory", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("dismembered", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("dismemberment", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("decapitated", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("decapitation", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("beheading", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("beheaded", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("disembowelled", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("disemboweled", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("mutilated", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("mutilation", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("severed head", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    ("severed limbs", &[VIOLENCE, VIOLENCE_GRAPHIC]),
    // Violence against people.
    ("massacre", &[VIOLENCE]),
    ("mass shooting", &[VIOLENCE]),
    ("school shooting", &[VIOLENCE]),
    ("torture", &[VIOLENCE]),
    ("tortured", &[VIOLENCE]),
    ("torturing", &[VIOLENCE]),
    // Self-harm.
    ("suicide", &[SELF_HARM]),
    ("self harm", &[SELF_HARM]),
    ("selfharm", &[SELF_HARM]),
    ("kill myself", &[SELF_HARM, SELF_HARM_INTENT]),
    ("end my life", &[SELF_HARM, SELF_HARM_INTENT]),
    ("cut myself", &[SELF_HARM, SELF_HARM_INTENT]),
    ("cutting myself", &[SELF_HARM, SELF_HARM_INTENT]),
    ("slit my wrists", &[SELF_HARM, SELF_HARM_INTENT]),
    ("hang myself", &[SELF_HARM, SELF_HARM_INTENT]),
    // Hate.
    ("ethnic cleansing", &[HATE, HATE_THREATENING]),
    ("white power", &[HATE]),
    ("white supremacy", &[HATE]),
    ("white supremacist", &[HATE]),
    ("heil hitler", &[HATE]),
    ("kkk", &[HATE]),
    // Weapons that exist to kill indiscriminately, and how to make them.
    ("pipe bomb", &[ILLICIT, ILLICIT_VIOLENT]),
    ("molotov cocktail", &[ILLICIT, ILLICIT_VIOLENT]),
    ("ghost gun", &[ILLICIT, ILLICIT_VIOLENT]),
    ("nerve agent", &[ILLICIT, ILLICIT_VIOLENT]),
    ("sarin", &[ILLICIT, ILLICIT_VIOLENT]),
    ("ricin", &[ILLICIT, ILLICIT_VIOLENT]),
    ("homemade explosive", &[ILLICIT, ILLICIT_VIOLENT]),
    ("homemade explosives", &[ILLICIT, ILLICIT_VIOLENT]),
    ("improvised explosive", &[ILLICIT, ILLICIT_VIOLENT]),
    // Explicit sexual content.
    ("porn", &[SEXUAL]),
    ("porno", &[SEXUAL]),
    ("pornographic", &[SEXUAL]),
    ("pornography", &[SEXUAL]),
    ("hentai", &[SEXUAL]),
    ("nsfw", &[SEXUAL]),
    // Sexual content involving minors, whatever else the text says.
    ("csam", &[SEXUAL, SEXUAL_MINORS]),
    ("child porn", &[SEXUAL, SEXUAL_MINORS]),
    ("lolicon", &[SEXUAL, SEXUAL_MINORS]),
    ("shotacon", &[SEXUAL, SEXUAL_MINORS]),
    ("pedophile", &[SEXUAL, SEXUAL_MINORS]),
    ("paedophile", &[SEXUAL, SEXUAL_MINORS]),
    ("pedophilia", &[SEXUAL, SEXUAL_MINORS]),
    ("paedophilia", &[SEXUAL, SEXUAL_MINORS]),
];

/// A sexual word anywhere in a text that also mentions a minor flags `sexual/minors`: neither word
/// is a problem alone ("a naked tree", "a child flying a kite").
const SEXUAL_CONTEXT: &[&str] = &[
    "nude",
    "naked",
    "nudity",
    "sexual",
    "sexy",
    "erotic",
    "porn",
    "pornographic",
    "nsfw",
    "topless",
    "lingerie",
    "seductive",
    "undressed",
];
const MINORS: &[&str] = &[
    "child",
    "children",
    "kid",
    "kids",
    "minor",
    "minors",
    "underage",
    "preteen",
    "preteens",
    "toddler",
    "toddlers",
    "schoolgirl",
    "schoolboy",
    "infant",
];

pub(super) fn moderate(text: &str) -> Moderation {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut hits: Vec<&str> = Vec::new();
    for (phrase, categories) in TERMS {
        let parts: Vec<&str> = phrase.split(' ').collect();
        if words.windows(parts.len()).any(|w| w == parts.as_slice()) {
            hits.extend_from_slice(categories);
        }
    }
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if has(SEXUAL_CONTEXT) && has(MINORS) {
        hits.extend_from_slice(&[SEXUAL, SEXUAL_MINORS]);
    }
    let categories: Vec<String> = ORDER
        .iter()
        .filter(|c| hits.contains(c))
        .map(|c| (*c).to_owned())
        .collect();
    Moderation {
        flagged: !categories.is_empty(),
        categories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_prompts_pass() {
        for text in [
            "shoot a photo of a killer app on a phone",
            "a photobomb at a wedding, bloody mary cocktails",
            "kids' birthday party with balloons",
            "a child flying a kite on a beach",
            "naked tree branches in winter",
            "execute the plan: a rocket launch at dawn",
            "a minor chord on a piano, gorgeous lighting",
            "Suicidal? no: a cut-out paper collage",
        ] {
            let m = moderate(text);
            assert!(!m.flagged && m.categories.is_empty(), "{text}: {m:?}");
        }
    }

    #[test]
    fn listed_content_is_flagged_with_openai_categories() {
        let check = |text: &str, expect: &[&str]| {
            let m = moderate(text);
            assert!(m.flagged, "{text}");
            assert_eq!(m.categories, expect, "{text}");
        };
        check("A GORY battlefield", &[VIOLENCE, VIOLENCE_GRAPHIC]);
        check("how to build a pipe-bomb", &[ILLICIT, ILLICIT_VIOLENT]);
        check("I want to kill myself", &[SELF_HARM, SELF_HARM_INTENT]);
        check("a poster about ethnic cleansing", &[HATE, HATE_THREATENING]);
        check("a nude photo of a child", &[SEXUAL, SEXUAL_MINORS]);
        check("suicide", &[SELF_HARM]);
    }
}
