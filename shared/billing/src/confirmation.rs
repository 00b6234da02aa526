//! Cost-confirmation thresholds: above how many cents a generating call asks before it spends.
//!
//! The threshold is the lower of the user's and the organisation's settings
//! (`USER#<user>` / `SETTING#cost_confirmation`, `ORG#<org>` / `SETTING#cost_confirmation`,
//! attribute `threshold_cents`), or the deployment default ([`crate::Settings`]'s
//! `cost_confirmation_cents`, [`DEFAULT_THRESHOLD_CENTS`] unless configured). How a call asks is
//! the protocol's business; what it costs and who decided the limit are billing's.

use imagemcp_core::table::{Condition, Item, Key};
use imagemcp_core::{Error, Result};
use imagemcp_tenancy::Caller;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Billing;

/// The deployment default threshold, in cents, when none is configured.
pub const DEFAULT_THRESHOLD_CENTS: u64 = 100;
/// The highest threshold a user, an organisation or the deployment default may set ($10,000).
pub const MAX_THRESHOLD_CENTS: u64 = 1_000_000;
/// The sort key of a threshold setting.
const SETTING_SK: &str = "SETTING#cost_confirmation";

fn setting_key(pk: String) -> Key {
    Key::new(pk, SETTING_SK)
}

/// The caller's own and their organisation's thresholds, where set.
pub async fn settings(billing: &Billing, caller: &Caller) -> Result<(Option<u64>, Option<u64>)> {
    let mut out = [None, None];
    for (slot, pk) in out.iter_mut().zip([
        format!("USER#{}", caller.user),
        format!("ORG#{}", caller.org),
    ]) {
        *slot = billing
            .ports
            .table
            .get(&setting_key(pk))
            .await?
            .and_then(|item| item.attrs.get("threshold_cents").and_then(Value::as_u64));
    }
    Ok((out[0], out[1]))
}

/// The caller's confirmation threshold in cents: the lower of their own and their
/// organisation's setting, or the deployment default.
pub async fn threshold_cents(billing: &Billing, caller: &Caller) -> Result<u64> {
    let mut found = Vec::new();
    for pk in [
        format!("USER#{}", caller.user),
        format!("ORG#{}", caller.org),
    ] {
        if let Some(item) = billing.ports.table.get(&setting_key(pk)).await?
            && let Some(c) = item.attrs.get("threshold_cents").and_then(Value::as_u64)
        {
            found.push(c);
        }
    }
    Ok(found
        .into_iter()
        .min()
        .unwrap_or(billing.config.cost_confirmation_cents))
}

/// Whose threshold a setting changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingScope {
    User,
    Org,
}

/// Sets the caller's own threshold, or (for a member who manages the organisation) the
/// organisation's.
pub async fn set_threshold(
    billing: &Billing,
    caller: &Caller,
    scope: SettingScope,
    threshold_cents: u64,
) -> Result<()> {
    change_threshold(billing, caller, scope, Some(threshold_cents)).await
}

/// Sets (`Some`) or clears (`None`: back to the default) a threshold; see [`set_threshold`].
pub async fn change_threshold(
    billing: &Billing,
    caller: &Caller,
    scope: SettingScope,
    threshold_cents: Option<u64>,
) -> Result<()> {
    if threshold_cents.is_some_and(|c| c > MAX_THRESHOLD_CENTS) {
        return Err(Error::invalid(
            "threshold_cents",
            "at most 1000000 ($10,000)",
        ));
    }
    let pk = match scope {
        SettingScope::User => {
            caller.authorize(imagemcp_core::rbac::Action::Generate)?;
            format!("USER#{}", caller.user)
        }
        SettingScope::Org => {
            caller.authorize(imagemcp_core::rbac::Action::ManageMembers)?;
            format!("ORG#{}", caller.org)
        }
    };
    let Some(threshold_cents) = threshold_cents else {
        return billing
            .ports
            .table
            .delete(&setting_key(pk), Condition::None)
            .await;
    };
    let Value::Object(attrs) = json!({ "threshold_cents": threshold_cents }) else {
        return Err(Error::internal("a setting is not an object"));
    };
    billing
        .ports
        .table
        .put(Item::new(setting_key(pk), attrs), Condition::None)
        .await
}
