//! The binary's configuration: flags and environment in, one checked `Settings` out. Each flag stands
//! for a variable of `docs/settings.md` and wins over it; the settings every runtime shares are
//! parsed by `imagemcp_app::settings`, the binary's own (address, data directory, log format) here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use imagemcp_app::settings::Defaults;
use imagemcp_core::fetch::FETCH_TIMEOUT;

/// Where the server listens unless `IMAGEMCP_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where state lives.
#[derive(Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// The data directory (SQLite database, image files, secrets) [env: IMAGEMCP_DATA_DIR].
    /// Default: the per-user data dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The key-encryption key: base64 of 32 random bytes [env: IMAGEMCP_KEK]. Without one, a KEK
    /// is made on first run and kept in the data directory (`kek.json`, readable only by its owner).
    #[arg(long)]
    pub kek: Option<String>,
    /// The id of the KEK, stored beside every key it wraps; change it with the key
    /// [env: IMAGEMCP_KEK_ID; default env-1].
    #[arg(long)]
    pub kek_id: Option<String>,
    /// Older KEKs that still unwrap keys not yet re-wrapped, as `id:base64`, comma-separated
    /// [env: IMAGEMCP_KEK_PREVIOUS].
    #[arg(long, value_delimiter = ',')]
    pub kek_previous: Vec<String>,
}

impl StoreArgs {
    /// The value the flags give variable `name`.
    fn flag(&self, name: &str) -> Option<String> {
        match name {
            "IMAGEMCP_DATA_DIR" => self
                .data_dir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned()),
            "IMAGEMCP_KEK" => self.kek.clone(),
            "IMAGEMCP_KEK_ID" => self.kek_id.clone(),
            "IMAGEMCP_KEK_PREVIOUS" => list(&self.kek_previous),
            _ => None,
        }
    }
}

/// A comma-separated flag's values as its variable's value.
fn list(values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| values.join(","))
}

#[derive(Args, Clone, Debug, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The address to listen on [env: IMAGEMCP_ADDR; default 127.0.0.1:8787].
    #[arg(long)]
    pub addr: Option<String>,
    /// The URL clients reach this server at [env: IMAGEMCP_PUBLIC_URL; default http://ADDR].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Browser origins allowed to call /mcp, comma-separated, besides this server's own
    /// [env: IMAGEMCP_ALLOWED_ORIGINS].
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// How long signed download URLs stay valid, 60 to 604800 seconds
    /// [env: IMAGEMCP_DOWNLOAD_URL_TTL_SECS; default 3600].
    #[arg(long)]
    pub download_url_ttl_secs: Option<String>,
    /// The default cost, in cents, above which a generating MCP tool asks before spending
    /// [env: IMAGEMCP_COST_CONFIRMATION_CENTS; default 100].
    #[arg(long)]
    pub cost_confirmation_cents: Option<String>,
    /// FOR TESTS ONLY: origins (http://127.0.0.1:PORT) whose client metadata documents may be
    /// fetched over http and from private or loopback addresses. Leave empty in production
    /// [env: IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS].
    #[arg(long, value_delimiter = ',')]
    pub cimd_test_allow_origins: Vec<String>,
    /// FOR TESTS ONLY: how long fetching a client metadata document may take, 1 to 5000
    /// milliseconds, so a test sees a slow document refused without waiting the full limit. Leave
    /// unset in production [env: IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS; default 5000].
    #[arg(long)]
    pub cimd_test_fetch_timeout_ms: Option<String>,
    /// Log format [env: IMAGEMCP_LOG_FORMAT; default text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// OpenAI API key [env: OPENAI_API_KEY]. Without one, the offline model draws the images.
    #[arg(long = "openai-api-key")]
    pub openai_api_key: Option<String>,
    /// OpenAI API base URL [env: OPENAI_BASE_URL; default https://api.openai.com/v1].
    #[arg(long)]
    pub openai_base_url: Option<String>,
    /// The default OpenAI image model [env: OPENAI_IMAGE_MODEL; default the catalog's].
    #[arg(long)]
    pub openai_image_model: Option<String>,
    #[command(flatten)]
    pub stripe: StripeArgs,
}

impl ServeArgs {
    /// The value the flags give variable `name`.
    fn flag(&self, name: &str) -> Option<String> {
        match name {
            "IMAGEMCP_ADDR" => self.addr.clone(),
            "IMAGEMCP_PUBLIC_URL" => self.public_url.clone(),
            "IMAGEMCP_ALLOWED_ORIGINS" => list(&self.allowed_origins),
            "IMAGEMCP_DOWNLOAD_URL_TTL_SECS" => self.download_url_ttl_secs.clone(),
            "IMAGEMCP_COST_CONFIRMATION_CENTS" => self.cost_confirmation_cents.clone(),
            "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS" => list(&self.cimd_test_allow_origins),
            "IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS" => self.cimd_test_fetch_timeout_ms.clone(),
            "IMAGEMCP_LOG_FORMAT" => self
                .log_format
                .and_then(|f| f.to_possible_value())
                .map(|v| v.get_name().to_owned()),
            "OPENAI_API_KEY" => self.openai_api_key.clone(),
            "OPENAI_BASE_URL" => self.openai_base_url.clone(),
            "OPENAI_IMAGE_MODEL" => self.openai_image_model.clone(),
            _ => self.store.flag(name).or_else(|| self.stripe.flag(name)),
        }
    }
}

/// Billing with Stripe. Without `STRIPE_SECRET_KEY` billing is off: every organisation is on the
/// unlimited `local` plan and nothing is metered or billed.
#[derive(Args, Clone, Debug, Default)]
pub struct StripeArgs {
    /// Stripe secret key (sk_…); switches billing on [env: STRIPE_SECRET_KEY].
    #[arg(long)]
    pub stripe_secret_key: Option<String>,
    /// Webhook signing secrets (whsec_…), comma-separated during a rotation
    /// [env: STRIPE_WEBHOOK_SECRET].
    #[arg(long)]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe API base URL, a fake Stripe in tests [env: STRIPE_API_BASE].
    #[arg(long)]
    pub stripe_api_base: Option<String>,
    /// The price id of Pro [env: STRIPE_PRO_PRICE].
    #[arg(long)]
    pub stripe_pro_price: Option<String>,
    /// The price id of Team, per seat, package-priced by 5 [env: STRIPE_TEAM_PRICE].
    #[arg(long)]
    pub stripe_team_price: Option<String>,
    /// The Billing Meter event name overage is reported under [env: STRIPE_METER_EVENT].
    #[arg(long)]
    pub stripe_meter_event: Option<String>,
    /// Days a failed payment is tolerated before the org drops to Free [env: STRIPE_GRACE_DAYS].
    #[arg(long)]
    pub stripe_grace_days: Option<String>,
}

impl StripeArgs {
    /// The value the flags give variable `name`.
    fn flag(&self, name: &str) -> Option<String> {
        match name {
            "STRIPE_SECRET_KEY" => self.stripe_secret_key.clone(),
            "STRIPE_WEBHOOK_SECRET" => self.stripe_webhook_secret.clone(),
            "STRIPE_API_BASE" => self.stripe_api_base.clone(),
            "STRIPE_PRO_PRICE" => self.stripe_pro_price.clone(),
            "STRIPE_TEAM_PRICE" => self.stripe_team_price.clone(),
            "STRIPE_METER_EVENT" => self.stripe_meter_event.clone(),
            "STRIPE_GRACE_DAYS" => self.stripe_grace_days.clone(),
            _ => None,
        }
    }
}

/// The process environment as a settings lookup.
pub fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Checked settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    pub log_format: LogFormat,
    /// `IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS`: the limit of a client metadata document fetch
    /// ([`FETCH_TIMEOUT`] unless a test shortens it).
    pub cimd_fetch_timeout: Duration,
    /// What every runtime shares; `kek` and `token_keys` unset mean the data directory's own.
    pub app: imagemcp_app::settings::Settings,
}

impl Settings {
    /// The settings of `serve`: its flags, then `env`.
    pub fn from_serve(args: &ServeArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_vars(|name| args.flag(name).or_else(|| env(name)))
    }

    /// The settings of the admin commands: their flags, then `env`.
    pub fn from_store(args: &StoreArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_vars(|name| args.flag(name).or_else(|| env(name)))
    }

    /// Reads and checks every setting through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let addr: SocketAddr = get("IMAGEMCP_ADDR")
            .as_deref()
            .unwrap_or(DEFAULT_ADDR)
            .parse()
            .map_err(|_| {
                anyhow!(
                    "invalid IMAGEMCP_ADDR: must be an address and port, such as {DEFAULT_ADDR}"
                )
            })?;
        let log_format = match get("IMAGEMCP_LOG_FORMAT") {
            None => LogFormat::default(),
            Some(format) => LogFormat::from_str(&format, true)
                .map_err(|_| anyhow!("invalid IMAGEMCP_LOG_FORMAT: must be text or json"))?,
        };
        let cimd_fetch_timeout = match get("IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS") {
            None => FETCH_TIMEOUT,
            Some(ms) => ms
                .parse::<u64>()
                .ok()
                .map(Duration::from_millis)
                .filter(|t| !t.is_zero() && *t <= FETCH_TIMEOUT)
                .ok_or_else(|| {
                    anyhow!(
                        "invalid IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS: must be 1 to {} milliseconds",
                        FETCH_TIMEOUT.as_millis()
                    )
                })?,
        };
        let data_dir = match get("IMAGEMCP_DATA_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => dirs::data_local_dir()
                .map(|d| d.join("imagemcp"))
                .context("no per-user data directory on this system; pass --data-dir")?,
        };
        let defaults = Defaults::local(format!("http://{addr}"));
        let app = imagemcp_app::settings::Settings::from_vars(&var, &defaults)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Self {
            data_dir,
            addr,
            log_format,
            cimd_fetch_timeout,
            app,
        })
    }
}

/// The base URL as it may be shown: any user name or password in it removed.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            // Both only fail for URLs that cannot carry credentials at all.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use clap::Parser;
    use imagemcp_app::settings::documented::{Recorder, SHARED, assert_shared_landed, read_by};

    use super::*;

    /// The binary's own variables, none at its default.
    const OWN: &[(&str, &str)] = &[
        ("IMAGEMCP_ADDR", "127.0.0.1:9911"),
        ("IMAGEMCP_DATA_DIR", "/var/lib/imagemcp-test"),
        ("IMAGEMCP_LOG_FORMAT", "json"),
        ("IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS", "250"),
    ];

    /// Every variable the local binary is documented to read.
    fn every() -> Vec<(&'static str, &'static str)> {
        [OWN, SHARED].concat()
    }

    fn assert_every_value_landed(s: &Settings) {
        assert_eq!(s.addr, "127.0.0.1:9911".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/imagemcp-test"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.cimd_fetch_timeout, Duration::from_millis(250));
        assert_shared_landed(&s.app);
    }

    #[test]
    fn every_documented_variable_lands_in_the_settings() {
        let vars = Recorder::new(&every());
        assert_eq!(vars.names(), read_by("local"), "the test sets every one");
        let settings = Settings::from_serve(&ServeArgs::default(), |n| vars.get(n)).unwrap();
        assert_eq!(vars.asked(), read_by("local"), "and the parser reads those");
        assert_every_value_landed(&settings);
    }

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn every_flag_stands_for_its_variable_and_wins_over_it() {
        let mut argv = vec!["imagemcp".to_owned()];
        let mut flags = BTreeSet::new();
        let every = every();
        for (name, value) in &every {
            if *name == "IMAGEMCP_TOKEN_KEYS" {
                continue; // no flag: signing keys do not belong on a command line
            }
            let flag = name.strip_prefix("IMAGEMCP_").unwrap_or(name);
            let flag = format!("--{}", flag.to_lowercase().replace('_', "-"));
            flags.insert(flag.clone());
            argv.extend([flag, (*value).to_owned()]);
        }
        let args = Serve::try_parse_from(&argv).unwrap().args;
        // The environment holds unusable values for every flag's variable: the flags win.
        let env = |name: &str| match name {
            "IMAGEMCP_TOKEN_KEYS" => every
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned()),
            _ => Some("from the environment".to_owned()),
        };
        let settings = Settings::from_serve(&args, env).unwrap();
        assert_every_value_landed(&settings);
        assert_eq!(flags.len(), every.len() - 1);
    }

    #[test]
    fn a_bad_value_stops_start_up_naming_its_variable() {
        for (name, bad) in [
            ("IMAGEMCP_ADDR", "localhost"),
            ("IMAGEMCP_LOG_FORMAT", "xml"),
            ("IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS", "0"),
            ("IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS", "5001"),
            ("IMAGEMCP_CIMD_TEST_FETCH_TIMEOUT_MS", "fast"),
            ("IMAGEMCP_PUBLIC_URL", "images.example.com"),
            ("IMAGEMCP_COST_CONFIRMATION_CENTS", "lots"),
            ("OPENAI_BASE_URL", "api.openai.com/v1"),
        ] {
            let vars = Recorder::new(&[(name, bad), ("OPENAI_API_KEY", "sk-x")]);
            let err = Settings::from_vars(|n| vars.get(n))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn unset_the_server_listens_on_loopback_and_keeps_its_keys_in_the_data_dir() {
        let args = StoreArgs {
            data_dir: Some("/tmp/imagemcp-x".into()),
            ..StoreArgs::default()
        };
        let s = Settings::from_store(&args, |_| None).unwrap();
        assert_eq!(s.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(s.app.public_url, format!("http://{DEFAULT_ADDR}"));
        assert_eq!(s.app.download_url_ttl, Duration::from_secs(3600));
        assert_eq!(s.cimd_fetch_timeout, FETCH_TIMEOUT);
        assert!(s.app.kek.is_none() && s.app.token_keys.is_none());
        assert!(s.app.openai.is_none() && s.app.stripe.is_none());
    }

    #[test]
    fn shown_urls_carry_no_credentials() {
        assert_eq!(
            shown_url("https://proxy-user:hunter2@llm.example.com/openai/v1/"),
            "https://llm.example.com/openai/v1"
        );
    }
}
