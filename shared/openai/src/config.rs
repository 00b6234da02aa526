//! The adapter's configuration: the API key (which never prints), the base URL, the models, the
//! timeouts and the retry policy. The binary fills it from its environment (`OPENAI_BASE_URL`, …);
//! this crate reads no environment itself. `OpenAiModel::new` validates it once.

use std::fmt;
use std::time::Duration;

use imagemcp_core::{Error, catalog};

/// OpenAI's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The Responses model that drives the image tool for refinements (the guide's samples use it).
pub const DEFAULT_MAINLINE_MODEL: &str = "gpt-6-astra";
/// The vision model that writes alt text: fast and cheap at visual reasoning.
pub const DEFAULT_VISION_MODEL: &str = "gpt-6.1-terra";
/// The moderation model: current and free.
pub const MODERATION_MODEL: &str = "omni-moderation-latest";

/// The embeddings model the semantic cache asks for prompt vectors (at `embed::DIMS` dimensions).
pub(crate) const EMBEDDING_MODEL: &str = "text-embedding-3-small";
/// Large GPT Image renders at high quality can take well over a minute.
pub const DEFAULT_IMAGE_TIMEOUT: Duration = Duration::from_secs(120);
/// Moderation and alt text are short text calls.
pub const DEFAULT_TEXT_TIMEOUT: Duration = Duration::from_secs(30);

/// An OpenAI API key. Its `Debug` and `Display` print `[redacted]`, so it cannot leak into a log line
/// or an error message by accident; [`ApiKey::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key must be non-empty and printable ASCII without spaces, so it fits an HTTP header.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(Error::invalid(
                "api_key",
                "the OpenAI API key is empty; set OPENAI_API_KEY",
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "api_key",
                "the OpenAI API key contains spaces or non-ASCII characters",
            ));
        }
        Ok(Self(key))
    }

    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// When and how long to wait before trying a failed call again. Mirrors the OpenAI SDKs: retry
/// connection errors, timeouts, 408, 409, 429 and 5xx (unless the server sends
/// `x-should-retry: false`), back off exponentially with jitter, and honour `retry-after-ms` or
/// `retry-after` when the server sends one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `2` means up to 3 calls).
    pub max_retries: u32,
    /// The first backoff; each later one doubles, up to `max_backoff`, less up to 25 % jitter.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A server asking to wait longer than this is not retried: the caller gets the error (with the
    /// wait) at once instead of a request that hangs for minutes.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The SDKs' defaults: 2 retries, 0.5 s doubling to 8 s, Retry-After honoured up to 120 s.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(8),
        max_retry_after: Duration::from_secs(120),
    };

    /// No retries at all.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::DEFAULT
    };
}

/// Everything the adapter needs. Build it with [`OpenAiConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    pub api_key: ApiKey,
    /// The API root, `/v1` included (`https://api.openai.com/v1`, or a fake's `http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    /// The image model used when a request names none.
    pub image_model: String,
    /// The Responses model for refinements (the image tool's model is the request's image model).
    pub mainline_model: String,
    /// The Responses model that describes images.
    pub vision_model: String,
    /// Per-attempt timeout of generate and edit calls.
    pub image_timeout: Duration,
    /// Per-attempt timeout of moderate and describe calls.
    pub text_timeout: Duration,
    pub retry: RetryPolicy,
}

impl OpenAiConfig {
    /// The documented defaults around `api_key`: OpenAI's URL, the catalog's default image model,
    /// `gpt-6-astra`, `gpt-6.1-terra`, 120 s / 30 s timeouts and [`RetryPolicy::DEFAULT`].
    pub fn new(api_key: ApiKey) -> Self {
        Self {
            api_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            image_model: catalog::DEFAULT_MODEL.to_owned(),
            mainline_model: DEFAULT_MAINLINE_MODEL.to_owned(),
            vision_model: DEFAULT_VISION_MODEL.to_owned(),
            image_timeout: DEFAULT_IMAGE_TIMEOUT,
            text_timeout: DEFAULT_TEXT_TIMEOUT,
            retry: RetryPolicy::DEFAULT,
        }
    }

    /// The defaults of [`OpenAiConfig::new`] with a runtime's settings: the key, another base URL
    /// (`None` keeps OpenAI's) and the default image model.
    pub fn configured(
        api_key: &str,
        base_url: Option<&str>,
        image_model: &str,
    ) -> Result<Self, Error> {
        let mut config = Self::new(ApiKey::new(api_key)?);
        if let Some(url) = base_url {
            config.base_url = url.trim_end_matches('/').to_owned();
        }
        config.image_model = image_model.to_owned();
        Ok(config)
    }

    /// Checks the config once, so a bad one fails at startup, not on the first request.
    pub(crate) fn validate(&self) -> Result<reqwest::Url, Error> {
        let base = self.base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(base).map_err(|e| {
            Error::invalid(
                "base_url",
                format!("`{base}` is not a URL ({e}); expected e.g. {DEFAULT_BASE_URL}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Error::invalid(
                "base_url",
                format!("`{base}` must be an http(s) URL such as {DEFAULT_BASE_URL}"),
            ));
        }
        match catalog::lookup(&self.image_model) {
            Some(spec) if !spec.offline => {
                catalog::usable(&self.image_model).map_err(|e| match e {
                    Error::Invalid { reason, .. } => Error::invalid("image_model", reason),
                    other => other,
                })?;
            }
            _ => {
                return Err(Error::invalid(
                    "image_model",
                    format!(
                        "`{}` is not an OpenAI image model; use e.g. {}",
                        self.image_model,
                        catalog::DEFAULT_MODEL
                    ),
                ));
            }
        }
        for (field, model) in [
            ("mainline_model", &self.mainline_model),
            ("vision_model", &self.vision_model),
        ] {
            if model.trim().is_empty() {
                return Err(Error::invalid(field, "must name a model"));
            }
        }
        for (field, t) in [
            ("image_timeout", self.image_timeout),
            ("text_timeout", self.text_timeout),
        ] {
            if t.is_zero() {
                return Err(Error::invalid(field, "must be longer than zero"));
            }
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints() {
        let key = ApiKey::new("sk-secret-123").unwrap();
        let config = OpenAiConfig::new(key.clone());
        assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
        assert!(!format!("{config:?}").contains("sk-secret"), "{config:?}");
        assert_eq!(key.expose(), "sk-secret-123");
    }

    #[test]
    fn keys_must_fit_a_header() {
        assert!(
            matches!(ApiKey::new("  "), Err(Error::Invalid { field, .. }) if field == "api_key")
        );
        assert!(ApiKey::new("sk bad").is_err());
        assert!(ApiKey::new("sk-é").is_err());
        assert_eq!(ApiKey::new(" sk-ok\n").unwrap().expose(), "sk-ok");
    }

    #[test]
    fn config_is_checked_once() {
        let ok = OpenAiConfig::new(ApiKey::new("k").unwrap());
        assert_eq!(ok.validate().unwrap().as_str(), "https://api.openai.com/v1");
        let field = |c: OpenAiConfig| match c.validate() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(
            field(OpenAiConfig {
                base_url: "api.openai.com".into(),
                ..ok.clone()
            }),
            "base_url"
        );
        assert_eq!(
            field(OpenAiConfig {
                base_url: "ftp://x".into(),
                ..ok.clone()
            }),
            "base_url"
        );
        assert_eq!(
            field(OpenAiConfig {
                image_model: "gpt-image-1".into(),
                ..ok.clone()
            }),
            "image_model"
        );
        assert_eq!(
            field(OpenAiConfig {
                image_model: "offline".into(),
                ..ok.clone()
            }),
            "image_model"
        );
        assert_eq!(
            field(OpenAiConfig {
                image_timeout: Duration::ZERO,
                ..ok.clone()
            }),
            "image_timeout"
        );
        assert_eq!(
            field(OpenAiConfig {
                vision_model: " ".into(),
                ..ok
            }),
            "vision_model"
        );
    }
}
