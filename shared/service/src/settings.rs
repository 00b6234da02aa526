//! The settings every runtime shares, parsed and checked once: the public URL, browser origins,
//! download-link lifetime, cost-confirmation default, token signing keys, key-encryption keys, the
//! CIMD test allow-list, the OpenAI model and Stripe billing. Each runtime reads them through a
//! lookup of its own (the environment, Secrets Manager, Worker vars and secrets, command-line
//! flags) and keeps only its own settings (addresses, directories, tables, buckets, bindings).
//! `docs/settings.md` lists every variable and which runtime reads it; the runtimes' tests check
//! that list against what their parsers ask for.
//!
//! Empty or blank values count as unset. Errors are [`Error::Invalid`] naming the variable, never
//! echoing a value (several are secrets).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::payments::Payments;
use imagemcp_core::{Error, Result};

use crate::AppConfig;
use crate::billing::BillingConfig;
use crate::billing::confirmation::{DEFAULT_THRESHOLD_CENTS, MAX_THRESHOLD_CENTS};
use crate::crypto::Keyring;
use crate::oauth::cimd::CimdConfig;
use crate::sessions::KeySet;
use imagemcp_core::fetch::MetadataFetcher;

/// A configured secret: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a runtime chooses where a variable is unset, stated by each runtime.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// `IMAGEMCP_PUBLIC_URL` when unset; `None` makes the variable required.
    pub public_url: Option<String>,
    /// `IMAGEMCP_DOWNLOAD_URL_TTL_SECS` when unset.
    pub download_url_ttl: Duration,
}

impl Defaults {
    /// A deployment behind a public URL (Lambda, Workers): the URL must be given, and download
    /// links are short-lived, since one pasted into a chat outlives its purpose quickly.
    pub fn deployment() -> Self {
        Self {
            public_url: None,
            download_url_ttl: Duration::from_secs(900),
        }
    }

    /// A local install serving at `public_url` unless told otherwise.
    pub fn local(public_url: impl Into<String>) -> Self {
        Self {
            public_url: Some(public_url.into()),
            download_url_ttl: Duration::from_secs(3600),
        }
    }
}

/// The bounds of `IMAGEMCP_DOWNLOAD_URL_TTL_SECS`: a minute to S3's cap on presigned URLs (7 days).
pub const DOWNLOAD_URL_TTL_SECS: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;

/// The key-encryption keys from configuration (see [`crate::crypto`]).
#[derive(Clone, Debug)]
pub struct KekSettings {
    /// `IMAGEMCP_KEK_ID` (default `env-1`), stored beside every data key the KEK wraps.
    pub id: String,
    /// `IMAGEMCP_KEK`: base64 of 32 bytes.
    pub key: Secret,
    /// `IMAGEMCP_KEK_PREVIOUS`: older KEKs as `id:base64`, which only unwrap.
    pub previous: Vec<Secret>,
}

impl KekSettings {
    /// The keyring these keys make (checked when they are parsed).
    pub fn keyring(&self) -> Result<Keyring> {
        let previous: Vec<String> = self
            .previous
            .iter()
            .map(|p| p.expose().to_owned())
            .collect();
        Keyring::from_config(&self.id, self.key.expose(), &previous)
    }
}

/// The OpenAI image model (`OPENAI_API_KEY` set); without it the runtime uses its fallback.
#[derive(Clone, Debug)]
pub struct OpenAiSettings {
    pub api_key: Secret,
    /// `OPENAI_BASE_URL`: an http(s) URL without a trailing slash; `None` is OpenAI's own API.
    pub base_url: Option<String>,
    /// `OPENAI_IMAGE_MODEL`: a usable model of the catalog (default the catalog's default).
    pub image_model: String,
}

/// Billing with Stripe (`STRIPE_SECRET_KEY` set); without it billing is off and every organisation
/// is on the unlimited `local` plan (see [`crate::billing`]).
#[derive(Clone)]
pub struct StripeSettings {
    /// `sk_…` or `rk_…`.
    pub secret_key: Secret,
    /// `STRIPE_WEBHOOK_SECRET`: several during a rotation (`whsec_new,whsec_old`).
    pub webhook_secrets: Vec<String>,
    /// `STRIPE_API_BASE` without a trailing slash; `None` is Stripe's own API.
    pub api_base: Option<String>,
    pub pro_price: String,
    pub team_price: String,
    /// `STRIPE_METER_EVENT` (default [`crate::billing::DEFAULT_METER_EVENT`]).
    pub meter_event: String,
    /// `STRIPE_GRACE_DAYS`: 0 to 60 (default [`DEFAULT_GRACE_DAYS`]).
    pub grace_days: u32,
}

/// Days a failed payment is tolerated when `STRIPE_GRACE_DAYS` is not set.
pub const DEFAULT_GRACE_DAYS: u32 = 7;

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &self.secret_key)
            .field(
                "webhook_secrets",
                &format!("[{} redacted]", self.webhook_secrets.len()),
            )
            .field("api_base", &self.api_base)
            .field("pro_price", &self.pro_price)
            .field("team_price", &self.team_price)
            .field("meter_event", &self.meter_event)
            .field("grace_days", &self.grace_days)
            .finish()
    }
}

/// The checked settings every runtime shares.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `IMAGEMCP_PUBLIC_URL`: an http(s) URL without a trailing slash.
    pub public_url: String,
    /// `IMAGEMCP_ALLOWED_ORIGINS`: browser origins, serialized as browsers send them.
    pub allowed_origins: Vec<String>,
    /// `IMAGEMCP_DOWNLOAD_URL_TTL_SECS`.
    pub download_url_ttl: Duration,
    /// `IMAGEMCP_COST_CONFIRMATION_CENTS` (default [`DEFAULT_THRESHOLD_CENTS`]).
    pub cost_confirmation_cents: u64,
    /// `IMAGEMCP_TOKEN_KEYS`: `None` leaves the choice to the runtime (none, or its own).
    pub token_keys: Option<Arc<KeySet>>,
    /// `IMAGEMCP_KEK`…: `None` leaves the choice to the runtime (required, or its own).
    pub kek: Option<KekSettings>,
    /// `IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS`: origins whose client metadata documents may be
    /// fetched over http and from private addresses. Tests only.
    pub cimd_test_allow_origins: Vec<String>,
    pub openai: Option<OpenAiSettings>,
    pub stripe: Option<StripeSettings>,
}

/// `Invalid` for `name` (the variable), keeping the reason of `e` when it has one.
fn named(name: &str, e: Error) -> Error {
    match e {
        Error::Invalid { reason, .. } => Error::invalid(name, reason),
        other => other,
    }
}

/// An absolute http(s) URL with a host and no credentials, query or fragment; without a
/// trailing slash.
fn http_url(name: &str, raw: &str) -> Result<String> {
    let bad = || Error::invalid(name, "must be an http:// or https:// URL");
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.has_host()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            name,
            "must not carry a user name or password",
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Comma-separated origins (`scheme://host[:port]`), each serialized as a browser sends it.
fn origins(name: &str, raw: Option<String>) -> Result<Vec<String>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let bad = || {
                Error::invalid(
                    name,
                    "entries must be http(s) origins, scheme://host[:port], without a path",
                )
            };
            let url = url::Url::parse(o).map_err(|_| bad())?;
            if !matches!(url.scheme(), "http" | "https")
                || !url.has_host()
                || url.path() != "/"
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(bad());
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

impl Settings {
    /// Reads and checks the settings through `var`, with the runtime's `defaults`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, defaults: &Defaults) -> Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let public_url = match (get("IMAGEMCP_PUBLIC_URL"), &defaults.public_url) {
            (Some(url), _) => http_url("IMAGEMCP_PUBLIC_URL", &url)?,
            (None, Some(default)) => default.trim_end_matches('/').to_owned(),
            (None, None) => {
                return Err(Error::invalid(
                    "IMAGEMCP_PUBLIC_URL",
                    "must be set to the deployment's public base URL",
                ));
            }
        };
        let download_url_ttl = match get("IMAGEMCP_DOWNLOAD_URL_TTL_SECS") {
            None => defaults.download_url_ttl,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| DOWNLOAD_URL_TTL_SECS.contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    Error::invalid(
                        "IMAGEMCP_DOWNLOAD_URL_TTL_SECS",
                        format!(
                            "must be {} to {} seconds",
                            DOWNLOAD_URL_TTL_SECS.start(),
                            DOWNLOAD_URL_TTL_SECS.end()
                        ),
                    )
                })?,
        };
        let cost_confirmation_cents = match get("IMAGEMCP_COST_CONFIRMATION_CENTS") {
            None => DEFAULT_THRESHOLD_CENTS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|c| *c <= MAX_THRESHOLD_CENTS)
                .ok_or_else(|| {
                    Error::invalid(
                        "IMAGEMCP_COST_CONFIRMATION_CENTS",
                        format!("must be a whole number of cents from 0 to {MAX_THRESHOLD_CENTS}"),
                    )
                })?,
        };
        let token_keys = match get("IMAGEMCP_TOKEN_KEYS") {
            None => None,
            Some(keys) => Some(Arc::new(
                KeySet::parse(&keys).map_err(|e| named("IMAGEMCP_TOKEN_KEYS", e))?,
            )),
        };
        Ok(Self {
            public_url,
            allowed_origins: origins("IMAGEMCP_ALLOWED_ORIGINS", get("IMAGEMCP_ALLOWED_ORIGINS"))?,
            download_url_ttl,
            cost_confirmation_cents,
            token_keys,
            kek: kek(&get)?,
            cimd_test_allow_origins: origins(
                "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS",
                get("IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS"),
            )?,
            openai: openai(&get)?,
            stripe: stripe(&get)?,
        })
    }

    /// The keyring of a runtime that has no KEK of its own: `IMAGEMCP_KEK` is then required,
    /// since stored secrets and prompts are sealed with it.
    pub fn required_keyring(&self) -> Result<Keyring> {
        self.kek
            .as_ref()
            .ok_or_else(|| {
                Error::invalid(
                    "IMAGEMCP_KEK",
                    "must be set to the key-encryption key (base64 of 32 random bytes)",
                )
            })?
            .keyring()
    }

    /// The application's configuration from these settings, with the runtime's fetcher of client
    /// metadata documents, and its Stripe client made by `payments` when billing is on.
    pub fn app_config(
        &self,
        fetcher: Arc<dyn MetadataFetcher>,
        payments: impl FnOnce(&StripeSettings) -> Result<Arc<dyn Payments>>,
    ) -> Result<AppConfig> {
        let mut config = AppConfig::local(self.public_url.clone());
        config.allowed_origins = self.allowed_origins.clone();
        config.download_url_ttl = self.download_url_ttl;
        config.cost_confirmation_cents = self.cost_confirmation_cents;
        config.token_keys = self.token_keys.clone();
        config.client_metadata = Some(CimdConfig {
            fetcher,
            test_allow_origins: self.cimd_test_allow_origins.clone(),
        });
        config.billing = match &self.stripe {
            None => None,
            Some(stripe) => Some(Arc::new(BillingConfig {
                webhook_secrets: stripe.webhook_secrets.clone(),
                pro_price: stripe.pro_price.clone(),
                team_price: stripe.team_price.clone(),
                grace_days: stripe.grace_days,
                payments: payments(stripe)?,
                meter_event: stripe.meter_event.clone(),
            })),
        };
        Ok(config)
    }
}

/// `IMAGEMCP_KEK`, `IMAGEMCP_KEK_ID`, `IMAGEMCP_KEK_PREVIOUS`, checked by building the keyring.
fn kek(get: &impl Fn(&str) -> Option<String>) -> Result<Option<KekSettings>> {
    let id = get("IMAGEMCP_KEK_ID");
    let previous: Vec<Secret> = get("IMAGEMCP_KEK_PREVIOUS")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(Secret::new)
                .collect()
        })
        .unwrap_or_default();
    let Some(key) = get("IMAGEMCP_KEK") else {
        for (name, set) in [
            ("IMAGEMCP_KEK_ID", id.is_some()),
            ("IMAGEMCP_KEK_PREVIOUS", !previous.is_empty()),
        ] {
            if set {
                return Err(Error::invalid(name, "is set without IMAGEMCP_KEK"));
            }
        }
        return Ok(None);
    };
    let settings = KekSettings {
        id: id.unwrap_or_else(|| "env-1".to_owned()),
        key: Secret::new(key),
        previous,
    };
    settings.keyring()?;
    Ok(Some(settings))
}

/// `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_IMAGE_MODEL`; the latter two only matter with a key.
fn openai(get: &impl Fn(&str) -> Option<String>) -> Result<Option<OpenAiSettings>> {
    let Some(api_key) = get("OPENAI_API_KEY") else {
        return Ok(None);
    };
    if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "OPENAI_API_KEY",
            "must be printable ASCII without spaces",
        ));
    }
    let base_url = get("OPENAI_BASE_URL")
        .map(|url| http_url("OPENAI_BASE_URL", &url))
        .transpose()?;
    let image_model =
        get("OPENAI_IMAGE_MODEL").unwrap_or_else(|| imagemcp_core::catalog::DEFAULT_MODEL.into());
    let spec =
        imagemcp_core::catalog::usable(&image_model).map_err(|e| named("OPENAI_IMAGE_MODEL", e))?;
    if spec.offline {
        return Err(Error::invalid(
            "OPENAI_IMAGE_MODEL",
            "names the offline model; name an OpenAI image model",
        ));
    }
    Ok(Some(OpenAiSettings {
        api_key: Secret::new(api_key),
        base_url,
        image_model,
    }))
}

/// The `STRIPE_*` settings; `None` (billing off) without `STRIPE_SECRET_KEY`.
fn stripe(get: &impl Fn(&str) -> Option<String>) -> Result<Option<StripeSettings>> {
    let Some(secret_key) = get("STRIPE_SECRET_KEY") else {
        return Ok(None);
    };
    if !secret_key.starts_with("sk_") && !secret_key.starts_with("rk_") {
        return Err(Error::invalid(
            "STRIPE_SECRET_KEY",
            "must be a Stripe secret or restricted key (sk_… or rk_…)",
        ));
    }
    let required = |name: &str| {
        get(name).ok_or_else(|| {
            Error::invalid(
                name,
                "must be set when STRIPE_SECRET_KEY is (billing is on)",
            )
        })
    };
    let webhook_secrets: Vec<String> = required("STRIPE_WEBHOOK_SECRET")?
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if webhook_secrets.is_empty() || webhook_secrets.iter().any(|s| !s.starts_with("whsec_")) {
        return Err(Error::invalid(
            "STRIPE_WEBHOOK_SECRET",
            "must be one or more comma-separated signing secrets (whsec_…)",
        ));
    }
    let pro_price = required("STRIPE_PRO_PRICE")?;
    let team_price = required("STRIPE_TEAM_PRICE")?;
    if pro_price == team_price {
        return Err(Error::invalid(
            "STRIPE_TEAM_PRICE",
            "must differ from STRIPE_PRO_PRICE",
        ));
    }
    let api_base = get("STRIPE_API_BASE")
        .map(|url| http_url("STRIPE_API_BASE", &url))
        .transpose()?;
    let grace_days = match get("STRIPE_GRACE_DAYS") {
        None => DEFAULT_GRACE_DAYS,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| *d <= 60)
            .ok_or_else(|| Error::invalid("STRIPE_GRACE_DAYS", "must be 0 to 60"))?,
    };
    Ok(Some(StripeSettings {
        secret_key: Secret::new(secret_key),
        webhook_secrets,
        api_base,
        pro_price,
        team_price,
        meter_event: get("STRIPE_METER_EVENT")
            .unwrap_or_else(|| crate::billing::DEFAULT_METER_EVENT.into()),
        grace_days,
    }))
}

/// Test support for each runtime's settings tests (feature `testing`): which variables
/// `docs/settings.md` says each runtime reads, and a lookup that records what a parser asks for,
/// so a test can check the two agree.
#[cfg(any(test, feature = "testing"))]
pub mod documented {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;

    /// `docs/settings.md`, as built.
    pub const SETTINGS_MD: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/settings.md"
    ));

    /// The runtimes, as the table's column headers name them.
    pub const RUNTIMES: [&str; 3] = ["local", "Lambda", "Worker"];

    /// Every variable of the table in `markdown` (the one whose header starts `| variable |`)
    /// with the runtimes whose column marks it `✓`.
    pub fn table(markdown: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut lines = markdown.lines().map(str::trim);
        let cells = |line: &str| -> Vec<String> {
            line.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        };
        let Some(header) = lines.find(|l| l.starts_with("| variable |")) else {
            return BTreeMap::new();
        };
        let header = cells(header);
        let mut vars = BTreeMap::new();
        for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
            let row = cells(line);
            let name = row[0].trim_matches('`').to_owned();
            let readers = header
                .iter()
                .zip(&row)
                .filter(|(h, cell)| RUNTIMES.contains(&h.as_str()) && cell.as_str() == "✓")
                .map(|(h, _)| h.clone())
                .collect();
            vars.insert(name, readers);
        }
        vars
    }

    /// The variables `docs/settings.md` says `runtime` reads.
    pub fn read_by(runtime: &str) -> BTreeSet<String> {
        assert!(RUNTIMES.contains(&runtime), "no runtime {runtime}");
        table(SETTINGS_MD)
            .into_iter()
            .filter(|(_, readers)| readers.contains(runtime))
            .map(|(name, _)| name)
            .collect()
    }

    /// A key-encryption key, its id and an older one, as [`SHARED`] sets them.
    pub const KEK: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
    pub const KEK_ID: &str = "kek-2";
    pub const KEK_PREVIOUS: &str = "kek-1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    /// The seed of the token key [`SHARED`] sets.
    pub const TOKEN_SEED: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";

    /// Every shared variable at a value other than its default, several in a form the parser
    /// normalises (trailing slashes, upper case, spaces).
    pub const SHARED: &[(&str, &str)] = &[
        ("IMAGEMCP_PUBLIC_URL", "https://images.example.com/"),
        (
            "IMAGEMCP_ALLOWED_ORIGINS",
            "https://App.Example.com, http://127.0.0.1:5173/",
        ),
        ("IMAGEMCP_DOWNLOAD_URL_TTL_SECS", "120"),
        ("IMAGEMCP_COST_CONFIRMATION_CENTS", "250"),
        (
            "IMAGEMCP_TOKEN_KEYS",
            "tk-2:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
        ),
        ("IMAGEMCP_KEK", KEK),
        ("IMAGEMCP_KEK_ID", KEK_ID),
        ("IMAGEMCP_KEK_PREVIOUS", KEK_PREVIOUS),
        ("IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS", "http://127.0.0.1:4567/"),
        ("OPENAI_API_KEY", "sk-test-openai"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9000/v1/"),
        ("OPENAI_IMAGE_MODEL", "gpt-image-2"),
        ("STRIPE_SECRET_KEY", "sk_test_abc"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_new, whsec_old"),
        ("STRIPE_PRO_PRICE", "price_pro"),
        ("STRIPE_TEAM_PRICE", "price_team"),
        ("STRIPE_API_BASE", "http://127.0.0.1:12111/"),
        ("STRIPE_METER_EVENT", "overage_images"),
        ("STRIPE_GRACE_DAYS", "3"),
    ];

    /// Asserts that every value of [`SHARED`] landed in `s`.
    pub fn assert_shared_landed(s: &super::Settings) {
        assert_eq!(s.public_url, "https://images.example.com");
        assert_eq!(
            s.allowed_origins,
            ["https://app.example.com", "http://127.0.0.1:5173"]
        );
        assert_eq!(s.download_url_ttl, std::time::Duration::from_secs(120));
        assert_eq!(s.cost_confirmation_cents, 250);
        assert_eq!(
            s.token_keys.as_ref().expect("token keys").current().kid(),
            "tk-2"
        );
        let kek = s.kek.as_ref().expect("a KEK");
        assert_eq!((kek.id.as_str(), kek.key.expose()), (KEK_ID, KEK));
        let previous: Vec<&str> = kek.previous.iter().map(super::Secret::expose).collect();
        assert_eq!(previous, [KEK_PREVIOUS]);
        assert_eq!(s.cimd_test_allow_origins, ["http://127.0.0.1:4567"]);
        let openai = s.openai.as_ref().expect("OpenAI");
        assert_eq!(openai.api_key.expose(), "sk-test-openai");
        assert_eq!(openai.base_url.as_deref(), Some("http://127.0.0.1:9000/v1"));
        assert_eq!(openai.image_model, "gpt-image-2");
        let stripe = s.stripe.as_ref().expect("billing on");
        assert_eq!(stripe.secret_key.expose(), "sk_test_abc");
        assert_eq!(stripe.webhook_secrets, ["whsec_new", "whsec_old"]);
        assert_eq!(stripe.api_base.as_deref(), Some("http://127.0.0.1:12111"));
        assert_eq!(
            (stripe.pro_price.as_str(), stripe.team_price.as_str()),
            ("price_pro", "price_team")
        );
        assert_eq!(
            (stripe.meter_event.as_str(), stripe.grace_days),
            ("overage_images", 3)
        );
    }

    /// A variable lookup over fixed values that records every name asked for.
    #[derive(Debug, Default)]
    pub struct Recorder {
        values: BTreeMap<String, String>,
        asked: Mutex<BTreeSet<String>>,
    }

    impl Recorder {
        pub fn new(values: &[(&str, &str)]) -> Self {
            Self {
                values: values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                asked: Mutex::default(),
            }
        }

        /// The value of `name`, recording the question.
        pub fn get(&self, name: &str) -> Option<String> {
            self.asked
                .lock()
                .expect("not poisoned")
                .insert(name.to_owned());
            self.values.get(name).cloned()
        }

        /// The names given values.
        pub fn names(&self) -> BTreeSet<String> {
            self.values.keys().cloned().collect()
        }

        /// Every name asked for so far.
        pub fn asked(&self) -> BTreeSet<String> {
            self.asked.lock().expect("not poisoned").clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::documented::{KEK, KEK_PREVIOUS, Recorder, SHARED, TOKEN_SEED, read_by};
    use super::*;
    use imagemcp_core::fetch::Fetched;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings> {
        let vars = Recorder::new(vars);
        Settings::from_vars(|n| vars.get(n), &Defaults::deployment())
    }

    /// Never called: the configuration only holds it.
    struct NoFetch;

    #[async_trait::async_trait]
    impl MetadataFetcher for NoFetch {
        async fn fetch(&self, _url: &url::Url, _allow_private: bool) -> Result<Fetched> {
            Err(Error::internal("not used"))
        }
    }

    /// Never called: the configuration only holds it.
    struct NoPayments;

    #[async_trait::async_trait]
    impl Payments for NoPayments {
        async fn create_customer(&self, _: &str, _: &str, _: &str) -> Result<String> {
            Err(Error::internal("not used"))
        }
        async fn checkout_session(
            &self,
            _: &imagemcp_core::payments::CheckoutRequest,
        ) -> Result<String> {
            Err(Error::internal("not used"))
        }
        async fn portal_session(&self, _: &str, _: &str) -> Result<String> {
            Err(Error::internal("not used"))
        }
        async fn report_usage(&self, _: &imagemcp_core::payments::UsageReport) -> Result<()> {
            Err(Error::internal("not used"))
        }
    }

    #[test]
    fn the_shared_parser_reads_exactly_what_every_runtime_is_documented_to_read() {
        let shared: BTreeSet<String> = read_by("local")
            .intersection(&read_by("Lambda"))
            .filter(|name| read_by("Worker").contains(*name))
            .cloned()
            .collect();
        let vars = Recorder::new(SHARED);
        assert_eq!(vars.names(), shared, "the test sets every shared variable");
        Settings::from_vars(|n| vars.get(n), &Defaults::deployment()).unwrap();
        assert_eq!(vars.asked(), shared);
    }

    #[test]
    fn every_shared_variable_lands_in_the_settings_and_the_app_config() {
        let s = parse(SHARED).unwrap();
        documented::assert_shared_landed(&s);
        let ring = s.required_keyring().unwrap();
        assert_eq!(ring.current_id(), "kek-2");
        assert!(ring.knows("kek-1"));

        let mut asked_for_payments = None;
        let config = s
            .app_config(Arc::new(NoFetch), |stripe| {
                asked_for_payments = Some(stripe.secret_key.clone());
                Ok(Arc::new(NoPayments))
            })
            .unwrap();
        assert_eq!(asked_for_payments, Some(Secret::new("sk_test_abc")));
        assert_eq!(config.public_url, "https://images.example.com");
        assert_eq!(config.allowed_origins, s.allowed_origins);
        assert_eq!(config.download_url_ttl, Duration::from_secs(120));
        assert_eq!(config.cost_confirmation_cents, 250);
        assert_eq!(config.token_keys.unwrap().current().kid(), "tk-2");
        assert_eq!(
            config.client_metadata.unwrap().test_allow_origins,
            ["http://127.0.0.1:4567"]
        );
        let billing = config.billing.unwrap();
        assert_eq!(billing.webhook_secrets, ["whsec_new", "whsec_old"]);
        assert_eq!(
            (billing.pro_price.as_str(), billing.team_price.as_str()),
            ("price_pro", "price_team")
        );
        assert_eq!(
            (billing.meter_event.as_str(), billing.grace_days),
            ("overage_images", 3)
        );
    }

    #[test]
    fn unset_variables_take_the_runtimes_defaults() {
        let deployment = Settings::from_vars(|_| None, &Defaults::deployment());
        match deployment {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "IMAGEMCP_PUBLIC_URL"),
            other => panic!("a deployment needs its public URL: {other:?}"),
        }
        let blank = |_: &str| Some("  ".to_owned());
        let s = Settings::from_vars(blank, &Defaults::local("http://127.0.0.1:8787/")).unwrap();
        assert_eq!(s.public_url, "http://127.0.0.1:8787");
        assert_eq!(s.download_url_ttl, Duration::from_secs(3600));
        assert_eq!(s.cost_confirmation_cents, DEFAULT_THRESHOLD_CENTS);
        assert!(s.allowed_origins.is_empty() && s.cimd_test_allow_origins.is_empty());
        assert!(s.token_keys.is_none() && s.kek.is_none());
        assert!(s.openai.is_none() && s.stripe.is_none(), "billing off");
        match s.required_keyring() {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "IMAGEMCP_KEK"),
            other => panic!("{other:?}"),
        }
        let config = s.app_config(Arc::new(NoFetch), |_| unreachable!()).unwrap();
        assert!(config.billing.is_none());

        let vars = [
            ("IMAGEMCP_PUBLIC_URL", "https://x.example"),
            ("OPENAI_API_KEY", "sk-x"),
            ("STRIPE_SECRET_KEY", "rk_live_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("STRIPE_PRO_PRICE", "price_a"),
            ("STRIPE_TEAM_PRICE", "price_b"),
            ("IMAGEMCP_KEK", KEK),
        ];
        let s = parse(&vars).unwrap();
        assert_eq!(s.kek.unwrap().id, "env-1");
        let openai = s.openai.unwrap();
        assert_eq!(openai.base_url, None, "the adapter's own URL");
        assert_eq!(openai.image_model, imagemcp_core::catalog::DEFAULT_MODEL);
        let stripe = s.stripe.unwrap();
        assert_eq!(stripe.api_base, None, "the adapter's own URL");
        assert_eq!(
            (stripe.meter_event.as_str(), stripe.grace_days),
            (crate::billing::DEFAULT_METER_EVENT, DEFAULT_GRACE_DAYS)
        );
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_variable_and_never_showing_it() {
        for (name, bad) in [
            ("IMAGEMCP_PUBLIC_URL", "images.example.com"),
            (
                "IMAGEMCP_PUBLIC_URL",
                "https://user:hunter2@images.example.com",
            ),
            ("IMAGEMCP_ALLOWED_ORIGINS", "https://app.example.com/path"),
            ("IMAGEMCP_ALLOWED_ORIGINS", "*"),
            ("IMAGEMCP_DOWNLOAD_URL_TTL_SECS", "59"),
            ("IMAGEMCP_DOWNLOAD_URL_TTL_SECS", "604801"),
            ("IMAGEMCP_COST_CONFIRMATION_CENTS", "-1"),
            ("IMAGEMCP_COST_CONFIRMATION_CENTS", "1000001"),
            ("IMAGEMCP_COST_CONFIRMATION_CENTS", "1.5"),
            ("IMAGEMCP_TOKEN_KEYS", "tk-1:c2VjcmV0LXZhbHVl"),
            ("IMAGEMCP_KEK", "c2VjcmV0LXZhbHVl"),
            ("IMAGEMCP_KEK_ID", "bad id"),
            ("IMAGEMCP_KEK_PREVIOUS", "no-colon-c2VjcmV0"),
            ("IMAGEMCP_KEK_PREVIOUS", "bad id:c2VjcmV0LXZhbHVl"),
            ("IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS", "ftp://127.0.0.1:21"),
            ("OPENAI_BASE_URL", "api.openai.com/v1"),
            ("OPENAI_IMAGE_MODEL", "dall-e-3"),
            ("OPENAI_IMAGE_MODEL", "offline"),
            ("OPENAI_API_KEY", "sk test"),
            ("STRIPE_SECRET_KEY", "pk_test_public"),
            ("STRIPE_WEBHOOK_SECRET", "not-a-secret"),
            ("STRIPE_API_BASE", "ftp://x"),
            ("STRIPE_GRACE_DAYS", "61"),
            ("STRIPE_TEAM_PRICE", "price_pro"),
        ] {
            let mut vars = SHARED.to_vec();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, bad));
            match parse(&vars) {
                Err(Error::Invalid { field, reason }) => {
                    assert_eq!(field, name, "{bad}: {reason}");
                    // A model id is no secret, and the catalog's answer names it and its successor.
                    if name != "OPENAI_IMAGE_MODEL" {
                        assert!(!reason.contains(bad), "{name}: the value is not echoed");
                    }
                }
                other => panic!("{name}={bad}: {other:?}"),
            }
        }
        for (name, without) in [
            ("IMAGEMCP_KEK_ID", &["IMAGEMCP_KEK"][..]),
            (
                "IMAGEMCP_KEK_PREVIOUS",
                &["IMAGEMCP_KEK", "IMAGEMCP_KEK_ID"],
            ),
            ("STRIPE_PRO_PRICE", &["STRIPE_PRO_PRICE"]),
            ("STRIPE_WEBHOOK_SECRET", &["STRIPE_WEBHOOK_SECRET"]),
        ] {
            let mut vars = SHARED.to_vec();
            vars.retain(|(k, _)| !without.contains(k));
            match parse(&vars) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, name),
                other => panic!("{name} without {without:?}: {other:?}"),
            }
        }
        let shown = format!("{:?}", parse(SHARED).unwrap());
        let old_kek = KEK_PREVIOUS.split_once(':').unwrap().1;
        for secret in [
            "sk_test_abc",
            "whsec_new",
            "sk-test-openai",
            KEK,
            old_kek,
            TOKEN_SEED,
        ] {
            assert!(!shown.contains(secret), "Debug shows no secret");
        }
    }

    #[test]
    fn allow_list_origins_are_normalised() {
        let vars = Recorder::new(&[(
            "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS",
            " http://127.0.0.1:4567/ ,, http://127.0.0.1:4568",
        )]);
        let s = Settings::from_vars(|n| vars.get(n), &Defaults::local("http://127.0.0.1:8787"))
            .unwrap();
        assert_eq!(
            s.cimd_test_allow_origins,
            ["http://127.0.0.1:4567", "http://127.0.0.1:4568"]
        );
    }

    #[test]
    fn the_openai_base_url_is_an_http_url() {
        let base_url = |url: &str| {
            let vars = Recorder::new(&[("OPENAI_API_KEY", "sk-x"), ("OPENAI_BASE_URL", url)]);
            Settings::from_vars(|n| vars.get(n), &Defaults::local("http://127.0.0.1:8787"))
                .map(|s| s.openai.unwrap().base_url)
        };
        assert_eq!(
            base_url(" https://api.openai.com/v1/ ").unwrap().as_deref(),
            Some("https://api.openai.com/v1")
        );
        assert!(base_url("http://127.0.0.1:9000/v1").is_ok());
        for bad in ["api.openai.com/v1", "ftp://example.com", "https://"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        // Empty is unset, as for every variable: OpenAI's own API.
        assert_eq!(base_url("").unwrap(), None);
    }

    /// The `IMAGEMCP_*` names in the files that document or read settings are the table's.
    #[test]
    fn the_settings_table_names_every_variable_the_docs_and_the_code_mention() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![
            root.join("README.md"),
            root.join("ARCHITECTURE.md"),
            root.join("wrangler.toml"),
        ];
        let mut dirs = vec![
            root.join("docs"),
            root.join("terraform"),
            root.join("shared"),
            root.join("functions"),
        ];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    // Test code may name harness variables of its own; settings are read in `src`.
                    if !["tests", "target", "build", "node_modules", ".terraform"]
                        .contains(&name.as_str())
                    {
                        dirs.push(path);
                    }
                } else if [".md", ".rs", ".tf", ".toml"]
                    .iter()
                    .any(|e| name.ends_with(e))
                    && name != "settings.md"
                {
                    files.push(path);
                }
            }
        }
        let mut mentioned = BTreeSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for (at, _) in text.match_indices("IMAGEMCP_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.ends_with('_') {
                    mentioned.insert(name);
                }
            }
        }
        assert!(
            files.len() > 50,
            "the walk found the sources: {}",
            files.len()
        );
        let table: BTreeSet<String> = documented::table(documented::SETTINGS_MD)
            .into_keys()
            .filter(|name| name.starts_with("IMAGEMCP_"))
            .collect();
        assert_eq!(
            mentioned.difference(&table).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "mentioned but not in docs/settings.md"
        );
        assert_eq!(
            table.difference(&mentioned).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "in docs/settings.md but mentioned nowhere else"
        );
    }
}
