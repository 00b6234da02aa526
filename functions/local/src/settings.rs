//! The binary's configuration: raw flags and environment in, one checked `Settings` out.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where state lives.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// The data directory (SQLite database, image files, secrets). Default: the per-user data dir.
    #[arg(long, env = "IMAGEMCP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The key-encryption key: base64 of 32 random bytes. Without one, a KEK is made on first run
    /// and kept in the data directory (`kek.json`, readable only by its owner).
    #[arg(long, env = "IMAGEMCP_KEK", hide_env_values = true)]
    pub kek: Option<String>,
    /// The id of IMAGEMCP_KEK, stored beside every key it wraps. Change it with the key.
    #[arg(long, env = "IMAGEMCP_KEK_ID", default_value = "env-1")]
    pub kek_id: String,
    /// Older KEKs that still unwrap keys not yet re-wrapped, as `id:base64`, comma-separated.
    #[arg(
        long,
        env = "IMAGEMCP_KEK_PREVIOUS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub kek_previous: Vec<String>,
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The address to listen on.
    #[arg(long, env = "IMAGEMCP_ADDR", default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,
    /// The URL clients reach this server at (default: http://ADDR).
    #[arg(long, env = "IMAGEMCP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Browser origins allowed to call /mcp, comma-separated, besides this server's own.
    #[arg(long, env = "IMAGEMCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The default cost, in cents, above which a generating MCP tool asks before spending.
    #[arg(long, env = "IMAGEMCP_COST_CONFIRMATION_CENTS", default_value_t = imagemcp_app::mcp::confirm::DEFAULT_THRESHOLD_CENTS)]
    pub cost_confirmation_cents: u64,
    /// FOR TESTS ONLY: origins (http://127.0.0.1:PORT) whose client metadata documents may be
    /// fetched over http and from private or loopback addresses. Leave empty in production.
    #[arg(long, env = "IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS", value_delimiter = ',')]
    pub cimd_test_allow_origins: Vec<String>,
    /// Log format.
    #[arg(long, env = "IMAGEMCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// OpenAI API key. Without one, the offline model draws the images.
    #[arg(
        long = "openai-api-key",
        env = "OPENAI_API_KEY",
        hide_env_values = true
    )]
    pub openai_api_key: Option<String>,
    /// OpenAI API base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,
    /// The default OpenAI image model.
    #[arg(long, env = "OPENAI_IMAGE_MODEL", default_value = imagemcp_core::catalog::DEFAULT_MODEL)]
    pub openai_image_model: String,
    #[command(flatten)]
    pub stripe: StripeArgs,
}

/// Billing with Stripe. Without `STRIPE_SECRET_KEY` billing is off: every organisation is on the
/// unlimited `local` plan and nothing is metered or billed.
#[derive(Args, Clone, Debug, Default)]
pub struct StripeArgs {
    /// Stripe secret key (sk_…); switches billing on.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Webhook signing secrets (whsec_…), comma-separated during a rotation.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe API base URL (a fake Stripe in tests).
    #[arg(long, env = "STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// The price id of Pro.
    #[arg(long, env = "STRIPE_PRO_PRICE")]
    pub stripe_pro_price: Option<String>,
    /// The price id of Team (per seat, package-priced by 5).
    #[arg(long, env = "STRIPE_TEAM_PRICE")]
    pub stripe_team_price: Option<String>,
    /// The Billing Meter event name overage is reported under.
    #[arg(long, env = "STRIPE_METER_EVENT")]
    pub stripe_meter_event: Option<String>,
    /// Days a failed payment is tolerated before the org drops to Free.
    #[arg(long, env = "STRIPE_GRACE_DAYS")]
    pub stripe_grace_days: Option<String>,
}

impl StripeArgs {
    /// The checked settings; `None` is billing off.
    fn settings(&self) -> Result<Option<imagemcp_stripe::settings::StripeSettings>> {
        let value = |name: &str| -> Option<String> {
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
        };
        imagemcp_stripe::settings::StripeSettings::from_vars(value)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// A secret whose `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn new(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the key-encryption keys come from.
#[derive(Clone, Debug)]
pub enum KekSource {
    /// From configuration (`IMAGEMCP_KEK`…): the operator rotates them.
    Configured {
        id: String,
        key: Secret,
        previous: Vec<Secret>,
    },
    /// Made and kept in the data directory (`kek.json`) by this binary.
    DataDir,
}

/// Checked settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub kek: KekSource,
    pub addr: SocketAddr,
    pub public_url: String,
    pub allowed_origins: Vec<String>,
    pub openai: Option<OpenAiSettings>,
    /// Billing with Stripe; `None` is billing off (the unlimited local plan).
    pub stripe: Option<imagemcp_stripe::settings::StripeSettings>,
    /// The default cost-confirmation threshold, in cents.
    pub cost_confirmation_cents: u64,
    /// Origins whose client metadata documents may be fetched over http and from private
    /// addresses (tests only).
    pub cimd_test_allow_origins: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct OpenAiSettings {
    pub api_key: Secret,
    /// An http(s) URL, without a trailing slash.
    pub base_url: String,
    pub image_model: String,
}

impl OpenAiSettings {
    /// The base URL as it may be shown: any user name or password in it removed.
    pub fn shown_base_url(&self) -> String {
        match url::Url::parse(&self.base_url) {
            Ok(mut url) => {
                // Both only fail for URLs that cannot carry credentials at all.
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.as_str().trim_end_matches('/').to_owned()
            }
            Err(_) => "(unparsable URL)".to_owned(),
        }
    }
}

/// Checks `OPENAI_BASE_URL`: an absolute http or https URL.
fn openai_base_url(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(trimmed.to_owned())
        }
        _ => bail!("OPENAI_BASE_URL must be an http:// or https:// URL"),
    }
}

fn data_dir(args: &StoreArgs) -> Result<PathBuf> {
    match &args.data_dir {
        Some(dir) => Ok(dir.clone()),
        None => dirs::data_local_dir()
            .map(|d| d.join("imagemcp"))
            .context("no per-user data directory on this system; pass --data-dir"),
    }
}

fn kek_source(args: &StoreArgs) -> Result<KekSource> {
    match args.kek.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(key) => {
            let previous: Vec<String> = args
                .kek_previous
                .iter()
                .filter(|p| !p.trim().is_empty())
                .cloned()
                .collect();
            // Checked here, once, so a bad value stops the process before it serves anything.
            imagemcp_app::crypto::Keyring::from_config(&args.kek_id, key, &previous)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(KekSource::Configured {
                id: args.kek_id.clone(),
                key: Secret(key.to_owned()),
                previous: previous.into_iter().map(Secret).collect(),
            })
        }
        None if !args.kek_previous.iter().all(|p| p.trim().is_empty()) => {
            bail!("IMAGEMCP_KEK_PREVIOUS is set without IMAGEMCP_KEK")
        }
        None => Ok(KekSource::DataDir),
    }
}

impl Settings {
    pub fn from_store(args: StoreArgs) -> Result<Self> {
        let addr: SocketAddr = "127.0.0.1:8787".parse()?;
        Ok(Self {
            kek: kek_source(&args)?,
            data_dir: data_dir(&args)?,
            addr,
            public_url: format!("http://{addr}"),
            allowed_origins: Vec::new(),
            openai: None,
            stripe: None,
            cost_confirmation_cents: imagemcp_app::mcp::confirm::DEFAULT_THRESHOLD_CENTS,
            cimd_test_allow_origins: Vec::new(),
        })
    }

    pub fn from_serve(args: ServeArgs) -> Result<Self> {
        let public_url = match &args.public_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => bail!("--public-url must start with http:// or https://, got {url:?}"),
            None => format!("http://{}", args.addr),
        };
        let openai = match args
            .openai_api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            Some(key) => {
                imagemcp_core::catalog::usable(&args.openai_image_model)
                    .map_err(|e| anyhow::anyhow!("OPENAI_IMAGE_MODEL: {e}"))?;
                Some(OpenAiSettings {
                    api_key: Secret(key.to_owned()),
                    base_url: openai_base_url(&args.openai_base_url)?,
                    image_model: args.openai_image_model.clone(),
                })
            }
            None => None,
        };
        Ok(Self {
            kek: kek_source(&args.store)?,
            data_dir: data_dir(&args.store)?,
            addr: args.addr,
            public_url,
            allowed_origins: args
                .allowed_origins
                .into_iter()
                .filter(|o| !o.is_empty())
                .collect(),
            stripe: args.stripe.settings()?,
            openai,
            cost_confirmation_cents: args.cost_confirmation_cents,
            cimd_test_allow_origins: args
                .cimd_test_allow_origins
                .into_iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openai_base_url_is_an_http_url() {
        assert_eq!(
            openai_base_url(" https://api.openai.com/v1/ ").unwrap(),
            "https://api.openai.com/v1"
        );
        assert!(openai_base_url("http://127.0.0.1:9000/v1").is_ok());
        for bad in ["api.openai.com/v1", "ftp://example.com", "", "https://"] {
            assert!(openai_base_url(bad).is_err(), "{bad}");
        }
    }
}
