//! A prompt, parsed at the edge: non-empty after trimming, at most 32,000 characters (the GPT Image
//! models' documented limit), and free of control characters other than newlines and tabs.

use serde::Serialize;

use crate::Error;

/// The longest prompt the GPT Image models accept, in characters.
pub const MAX_PROMPT_CHARS: usize = 32_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Prompt(String);

impl Prompt {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid("prompt", "must not be empty"));
        }
        let chars = trimmed.chars().count();
        if chars > MAX_PROMPT_CHARS {
            return Err(Error::invalid(
                "prompt",
                format!("is {chars} characters long; the limit is {MAX_PROMPT_CHARS}"),
            ));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(Error::invalid("prompt", "contains control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prompt lower-cased with runs of white space folded: the form cache keys and the offline
    /// model's seed are computed from, so that trivial spacing differences do not matter.
    pub fn normalized(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_bounds() {
        assert!(
            matches!(Prompt::parse("   "), Err(Error::Invalid { field, .. }) if field == "prompt")
        );
        assert!(Prompt::parse(&"a".repeat(MAX_PROMPT_CHARS)).is_ok());
        let err = Prompt::parse(&"a".repeat(MAX_PROMPT_CHARS + 1)).unwrap_err();
        assert!(err.to_string().contains("32000"), "{err}");
        assert!(Prompt::parse("a\u{0}b").is_err());
        assert_eq!(
            Prompt::parse("  A  red\n\tFox ").unwrap().normalized(),
            "a red fox"
        );
    }
}
