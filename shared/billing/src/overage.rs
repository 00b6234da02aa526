//! Overage reports to Stripe that survive Stripe being down: a report that still fails after the
//! client's retries is kept in the org's partition (`METER_PENDING#<identifier>`) and sent again,
//! before the next report of that org goes out. Resending is safe: Stripe drops a meter event whose
//! `identifier` (and idempotency key) it has seen, so an image past the pool is billed once.
//!
//! Kept for 30 days: Stripe accepts meter events up to 35 days old.

use imagemcp_core::payments::UsageReport;
use imagemcp_core::table::{Condition, Item, Key, Query};
use serde_json::{Map, json};

use crate::Billing;

const PREFIX: &str = "METER_PENDING#";
const KEEP_SECS: i64 = 30 * 86_400;
/// Pending reports retried before each new one (the rest wait for the next).
const RETRY_BATCH: usize = 25;

fn key(pk: &str, identifier: &str) -> Key {
    Key::new(pk, format!("{PREFIX}{identifier}"))
}

/// Sends `report` for the org whose partition is `pk`, first retrying what is pending there.
pub(crate) async fn send(ctx: &Billing, pk: &str, report: UsageReport) {
    retry_pending(ctx, pk).await;
    if let Err(e) = try_send(ctx, &report).await {
        tracing::error!(customer = %report.customer, images = report.value, identifier = %report.identifier, error = %e, "overage report failed; kept to send again");
        keep(ctx, pk, &report).await;
    }
}

async fn try_send(ctx: &Billing, report: &UsageReport) -> imagemcp_core::Result<()> {
    let Some(billing) = ctx.config.stripe.as_ref() else {
        return Ok(());
    };
    billing.payments.report_usage(report).await?;
    tracing::info!(customer = %report.customer, images = report.value, identifier = %report.identifier, "overage reported");
    Ok(())
}

async fn keep(ctx: &Billing, pk: &str, report: &UsageReport) {
    let mut item = Item::new(key(pk, &report.identifier), Map::new());
    for (name, value) in [
        ("event_name", json!(report.event_name)),
        ("customer", json!(report.customer)),
        ("value", json!(report.value)),
        ("identifier", json!(report.identifier)),
        ("timestamp", json!(report.timestamp)),
    ] {
        item.attrs.insert(name.into(), value);
    }
    let item = item.with_ttl(ctx.ports.clock.now_secs() + KEEP_SECS);
    if let Err(e) = ctx.ports.table.put(item, Condition::None).await {
        // Only the log is left to reconcile from (it names the identifier and the count).
        tracing::error!(identifier = %report.identifier, error = %e, "could not keep a failed overage report");
    }
}

/// Sends the org's pending reports again; each one sent is forgotten.
pub async fn retry_pending(ctx: &Billing, pk: &str) {
    let page = match ctx
        .ports
        .table
        .query(&Query::new(pk, PREFIX, RETRY_BATCH))
        .await
    {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!(error = %e, "pending overage reports could not be read");
            return;
        }
    };
    for item in page.items {
        let report = UsageReport {
            event_name: item.str("event_name").unwrap_or_default().to_owned(),
            customer: item.str("customer").unwrap_or_default().to_owned(),
            value: item
                .int("value")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0),
            identifier: item.str("identifier").unwrap_or_default().to_owned(),
            timestamp: item.int("timestamp").unwrap_or(0),
        };
        if try_send(ctx, &report).await.is_ok()
            && let Err(e) = ctx.ports.table.delete(&item.key, Condition::None).await
        {
            // Sent again next time: Stripe drops the duplicate.
            tracing::warn!(identifier = %report.identifier, error = %e, "a sent overage report stayed pending");
        }
    }
}
