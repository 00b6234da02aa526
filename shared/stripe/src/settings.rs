//! Billing settings from a runtime's configuration (environment, Secrets Manager, flags), checked
//! once at start-up. `STRIPE_SECRET_KEY` switches billing on; without it billing is off and every
//! organisation is on the unlimited `local` plan (see `imagemcp_core::tier`).

use std::fmt;

use imagemcp_core::{Error, Result};

/// The variables read, for docs and error messages.
pub const VARS: &[&str] = &[
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "STRIPE_PRO_PRICE",
    "STRIPE_TEAM_PRICE",
    "STRIPE_METER_EVENT",
    "STRIPE_GRACE_DAYS",
];

/// Checked Stripe settings.
#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: String,
    /// Several during a rotation (`STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old`).
    pub webhook_secrets: Vec<String>,
    pub api_base: String,
    pub pro_price: String,
    pub team_price: String,
    pub meter_event: String,
    pub grace_days: u32,
}

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &"[redacted]")
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

/// The meter event name when `STRIPE_METER_EVENT` is not set.
pub const DEFAULT_METER_EVENT: &str = "imagemcp_overage_images";

/// Days a failed payment is tolerated when `STRIPE_GRACE_DAYS` is not set.
pub const DEFAULT_GRACE_DAYS: u32 = 7;

impl StripeSettings {
    /// Reads the settings through `var`; `Ok(None)` is billing off (no `STRIPE_SECRET_KEY`).
    /// Errors name the variable, never its value.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
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
        let api_base = get("STRIPE_API_BASE").unwrap_or_else(|| crate::DEFAULT_API_BASE.to_owned());
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(Error::invalid("STRIPE_API_BASE", "must be an http(s) URL"));
        }
        let grace_days = match get("STRIPE_GRACE_DAYS") {
            None => DEFAULT_GRACE_DAYS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= 60)
                .ok_or_else(|| Error::invalid("STRIPE_GRACE_DAYS", "must be 0 to 60"))?,
        };
        Ok(Some(Self {
            secret_key,
            webhook_secrets,
            api_base: api_base.trim_end_matches('/').to_owned(),
            pro_price,
            team_price,
            meter_event: get("STRIPE_METER_EVENT").unwrap_or_else(|| DEFAULT_METER_EVENT.into()),
            grace_days,
        }))
    }

    /// The client these settings describe.
    pub fn client(&self) -> Result<crate::StripeClient> {
        crate::StripeClient::new(
            &self.api_base,
            &self.secret_key,
            std::time::Duration::from_secs(20),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn billing_is_off_without_a_secret_key_and_checked_with_one() {
        assert!(StripeSettings::from_vars(vars(&[])).unwrap().is_none());
        let full = [
            ("STRIPE_SECRET_KEY", "sk_test_abc"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_new, whsec_old"),
            ("STRIPE_PRO_PRICE", "price_pro"),
            ("STRIPE_TEAM_PRICE", "price_team"),
            ("STRIPE_API_BASE", "http://127.0.0.1:12111/"),
        ];
        let s = StripeSettings::from_vars(vars(&full)).unwrap().unwrap();
        assert_eq!(s.webhook_secrets, vec!["whsec_new", "whsec_old"]);
        assert_eq!(s.api_base, "http://127.0.0.1:12111");
        assert_eq!(s.grace_days, DEFAULT_GRACE_DAYS);
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk_test_abc") && !shown.contains("whsec_new"));
        for (name, bad) in [
            ("STRIPE_SECRET_KEY", "pk_test_public"),
            ("STRIPE_WEBHOOK_SECRET", "not-a-secret"),
            ("STRIPE_API_BASE", "ftp://x"),
            ("STRIPE_GRACE_DAYS", "-1"),
            ("STRIPE_TEAM_PRICE", "price_pro"),
        ] {
            let mut v = full.to_vec();
            v.retain(|(k, _)| *k != name);
            v.push((name, bad));
            match StripeSettings::from_vars(vars(&v)) {
                Err(Error::Invalid { field, reason }) => {
                    assert_eq!(field, name);
                    assert!(!reason.contains(bad), "the value is not echoed");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut missing = full.to_vec();
        missing.retain(|(k, _)| *k != "STRIPE_PRO_PRICE");
        assert!(StripeSettings::from_vars(vars(&missing)).is_err());
    }
}
