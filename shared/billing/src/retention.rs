//! Retention of image bytes: the Table forgets a Free image by its TTL, and this module makes the
//! BlobStore forget its bytes too, the same way on every runtime.
//!
//! When an image is committed with an expiry, the same transaction writes one *index item* for that
//! commit: `RETENTION#<yyyy-mm-dd of the expiry>` / `<org>#<first image id>`, listing the blob keys
//! (full images and previews). It has no TTL: it is the only record left of those bytes once the
//! image item has expired. [`sweep`] walks the days that are over, deletes the listed blobs, then
//! the index item. Every step is idempotent (deleting a missing blob or item succeeds), so two
//! instances sweeping at once, a sweep after a crash, and a sweep over an image the user (or a GDPR
//! erasure) already deleted are all harmless; the sweep only ever deletes, so it cannot bring
//! anything back. The days already known empty are remembered at `RETENTION` / `CURSOR`.
//!
//! Runs: the local binary's background loop, the Lambda `batch` function on an EventBridge
//! schedule (`terraform/modules/imagemcp`) and the Worker's Cron Trigger (`wrangler.toml`).

use imagemcp_core::Result;
use imagemcp_core::blob::BlobKey;
use imagemcp_core::ids::{ImageId, OrgId};
use imagemcp_core::table::{Condition, Item, Key, Query, TransactOp};
use serde_json::{Map, Value, json};

const DAY_SECS: i64 = 86_400;

/// How far back a sweep looks the first time it runs (no cursor yet): index items exist only
/// since this feature shipped, and expire 30 days after their image was made, so 120 days covers
/// a deployment whose sweep started months late. Each empty day costs one query, once.
pub const FIRST_LOOKBACK_DAYS: i64 = 120;

/// A day is swept this long after it ends, so an instance whose clock runs a little fast never
/// deletes bytes whose record another instance still serves.
const CLOCK_GRACE_SECS: i64 = 600;

/// The page size of a day's query.
const PAGE: usize = 100;

fn day_pk(day: i64) -> String {
    format!("RETENTION#{}", date(day))
}

fn cursor_key() -> Key {
    Key::new("RETENTION", "CURSOR")
}

/// The UTC date `yyyy-mm-dd` of a day number (days since 1970-01-01).
pub fn date(day: i64) -> String {
    imagemcp_tenancy::items::date_of(day.saturating_mul(86_400_000))
}

/// The key of the index item of a commit whose images expire at `expires_at` (epoch seconds).
pub fn index_key(org: &OrgId, first_image: &ImageId, expires_at: i64) -> Key {
    Key::new(
        day_pk(expires_at.div_euclid(DAY_SECS)),
        format!("{org}#{first_image}"),
    )
}

/// The index write that goes into the commit's transaction. Unconditional: an image id is new, and
/// writing the same listing twice is the same item.
pub fn index_op(
    org: &OrgId,
    first_image: &ImageId,
    expires_at: i64,
    blobs: &[&BlobKey],
) -> TransactOp {
    let mut attrs = Map::new();
    attrs.insert(
        "blobs".into(),
        json!(blobs.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
    );
    attrs.insert("expires_day".into(), json!(expires_at.div_euclid(DAY_SECS)));
    TransactOp::Put(
        Item::new(index_key(org, first_image, expires_at), attrs),
        Condition::None,
    )
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Index items handled (one per commit of expired images).
    pub entries: usize,
    /// Blob deletions issued (a blob already gone counts too).
    pub blobs: usize,
    /// The sweep stopped at its bound with expired entries left: call again.
    pub more: bool,
}

/// Deletes the blobs of every index item whose day is over at `now_secs`, at most `max_entries`
/// items per call. A blob whose deletion fails keeps its item, so the next sweep retries it.
pub async fn sweep(ctx: &crate::Billing, now_secs: i64, max_entries: usize) -> Result<Swept> {
    let ports = &ctx.ports;
    let today = (now_secs - CLOCK_GRACE_SECS).div_euclid(DAY_SECS);
    let stored = ports.table.get(&cursor_key()).await?;
    let start = stored
        .as_ref()
        .and_then(|c| c.int("day"))
        .unwrap_or(today - FIRST_LOOKBACK_DAYS);
    let mut day = start;
    let mut out = Swept::default();
    // A day is swept once it is over: an image expiring at 13:00 keeps its bytes until the next
    // UTC midnight at least, never losing them while its record is still readable.
    'days: while day < today {
        let remaining = max_entries.saturating_sub(out.entries);
        if remaining == 0 {
            out.more = true;
            break;
        }
        let page = ports
            .table
            .query(&Query::new(day_pk(day), "", remaining.min(PAGE)))
            .await?;
        if page.items.is_empty() {
            day += 1;
            continue;
        }
        for item in page.items {
            let keys = item
                .attrs
                .get("blobs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            for key in keys {
                // A key that does not parse was never written by `index_op`; skip it, drop the item.
                let Ok(key) = BlobKey::parse(key) else {
                    tracing::warn!(item = %item.key.sk, "retention index lists an invalid blob key");
                    continue;
                };
                if let Err(e) = ports.blobs.delete(&key).await {
                    // Keep the item: the day stays unswept and the next sweep tries again.
                    tracing::warn!(key = key.as_str(), error = %e, "expired blob not removed");
                    break 'days;
                }
                out.blobs += 1;
            }
            ports.table.delete(&item.key, Condition::None).await?;
            out.entries += 1;
        }
    }
    if day > start {
        // Conditional on the cursor we read, so a slower instance never moves it back; losing the
        // race only means the next sweep queries a few empty days again.
        let cond = match &stored {
            Some(_) => Condition::AttrEquals("day".into(), json!(start)),
            None => Condition::NotExists,
        };
        let mut attrs = Map::new();
        attrs.insert("day".into(), json!(day));
        match ports.table.put(Item::new(cursor_key(), attrs), cond).await {
            Ok(()) | Err(imagemcp_core::Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if out.entries > 0 {
        tracing::info!(
            entries = out.entries,
            blobs = out.blobs,
            more = out.more,
            "expired image bytes removed"
        );
    }
    Ok(out)
}

/// Sweeps until nothing expired is left, in bounded calls (the background loops' entry point).
pub async fn sweep_all(ctx: &crate::Billing, now_secs: i64, max_entries: usize) -> Result<Swept> {
    let mut total = Swept::default();
    loop {
        let s = sweep(ctx, now_secs, max_entries).await?;
        total.entries += s.entries;
        total.blobs += s.blobs;
        if !s.more || s.entries == 0 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_478_400 / DAY_SECS), "2026-11-24");
        assert_eq!(date(19_782), "2024-02-29");
        assert_eq!(date(19_783), "2024-03-01");
        assert_eq!(date(-1), "1969-12-31");
    }
}
