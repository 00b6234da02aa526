//! Login protection: per-account back-off and a per-address limit, so passwords cannot be guessed
//! online, with refusals that say only "try again later" (never whether the account exists).
//!
//! Per account: the first 5 failures are free; each further failure locks the account for
//! `2^(n-5)` seconds, capped at 15 minutes, measured from that failure. A success clears it.
//! Per address: at most 50 failures in a 15-minute window.

use std::time::Duration;

use imagemcp_core::table::{Add, Condition, Item, Key};
use imagemcp_core::{Error, Result};
use serde_json::json;

use imagemcp_tenancy::Ports;

pub const FREE_FAILURES: i64 = 5;
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
pub const IP_WINDOW_SECS: i64 = 15 * 60;
pub const IP_MAX_FAILURES: i64 = 50;

fn account_key(email_hash: &str) -> Key {
    Key::new(format!("LOGINFAIL#ACCT#{email_hash}"), "STATE")
}

fn ip_key(ip: &str, window: i64) -> Key {
    Key::new(format!("LOGINFAIL#IP#{ip}"), format!("W#{window}"))
}

/// How long an account is locked after `failures` failures.
pub fn lock_for(failures: i64) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = u32::try_from(failures - FREE_FAILURES)
        .unwrap_or(u32::MAX)
        .min(20);
    Duration::from_secs(1u64 << exp).min(MAX_LOCK)
}

pub struct LoginGuard<'a> {
    ports: &'a Ports,
}

fn too_many(retry_after: Duration) -> Error {
    Error::RateLimited {
        retry_after: retry_after.max(Duration::from_secs(1)),
    }
}

impl<'a> LoginGuard<'a> {
    pub fn new(ports: &'a Ports) -> Self {
        Self { ports }
    }

    /// Refuses an attempt while the account or the address is locked.
    pub async fn check(&self, email_hash: &str, ip: &str) -> Result<()> {
        let now = self.ports.clock.now_ms();
        if let Some(item) = self.ports.table.get(&account_key(email_hash)).await? {
            let failures = item.int("failures").unwrap_or(0);
            let until =
                item.int("last_failure_ms").unwrap_or(0) + lock_for(failures).as_millis() as i64;
            if until > now {
                return Err(too_many(Duration::from_millis((until - now) as u64)));
            }
        }
        let window = now / 1000 / IP_WINDOW_SECS;
        if let Some(item) = self.ports.table.get(&ip_key(ip, window)).await?
            && item.int("failures").unwrap_or(0) >= IP_MAX_FAILURES
        {
            let ends = (window + 1) * IP_WINDOW_SECS * 1000;
            return Err(too_many(Duration::from_millis((ends - now).max(0) as u64)));
        }
        Ok(())
    }

    /// Counts a failed attempt against the account and the address.
    pub async fn record_failure(&self, email_hash: &str, ip: &str) -> Result<()> {
        let now = self.ports.clock.now_ms();
        let key = account_key(email_hash);
        // Read-modify-write with a condition on what was read, retried on a lost race, so
        // concurrent failures are all counted.
        for _ in 0..8 {
            let current = self.ports.table.get(&key).await?;
            let (failures, cond) = match &current {
                Some(item) => {
                    let n = item.int("failures").unwrap_or(0);
                    (n, Condition::AttrEquals("failures".into(), json!(n)))
                }
                None => (0, Condition::NotExists),
            };
            let mut item =
                Item::new(key.clone(), Default::default()).with_ttl(now / 1000 + 24 * 3600);
            item.attrs.insert("failures".into(), json!(failures + 1));
            item.attrs.insert("last_failure_ms".into(), json!(now));
            match self.ports.table.put(item, cond).await {
                Ok(()) => break,
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let window = now / 1000 / IP_WINDOW_SECS;
        self.ports
            .table
            .add(Add {
                key: ip_key(ip, window),
                attr: "failures".into(),
                delta: 1,
                max: None,
                expires_at: Some((window + 2) * IP_WINDOW_SECS),
            })
            .await?;
        Ok(())
    }

    /// Clears the account's failures after a successful login.
    pub async fn record_success(&self, email_hash: &str) -> Result<()> {
        self.ports
            .table
            .delete(&account_key(email_hash), Condition::None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_and_caps() {
        assert_eq!(lock_for(4), Duration::ZERO);
        assert_eq!(lock_for(5), Duration::from_secs(1));
        assert_eq!(lock_for(8), Duration::from_secs(8));
        assert_eq!(lock_for(40), MAX_LOCK);
    }
}
