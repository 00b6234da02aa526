//! The `Cache` contract: values by key, overwrite, delete, and expiry by the injected clock.

use std::sync::Arc;
use std::time::Duration;

use super::{START_MS, ok};
use crate::cache::Cache;
use crate::clock::ManualClock;

/// Runs every `Cache` check, each against a fresh adapter from `make`.
///
/// TTLs in the suite are at least 120 s, because adapters may round shorter ones up to their
/// minimum (Workers KV: 60 s).
pub async fn cache_suite<C: Cache>(make: impl AsyncFn(Arc<ManualClock>) -> C) {
    let fresh = async || {
        let clock = Arc::new(ManualClock::new(START_MS));
        (make(clock.clone()).await, clock)
    };
    let (c, _) = fresh().await;
    put_get_overwrite_delete(&c).await;
    let (c, clock) = fresh().await;
    ttl_expires(&c, &clock).await;
}

const HOUR: Duration = Duration::from_secs(3600);

async fn get<C: Cache>(c: &C, key: &str, what: &str) -> Option<Vec<u8>> {
    ok(c.get(key).await, what)
}

async fn put_get_overwrite_delete<C: Cache>(c: &C) {
    assert_eq!(
        get(c, "img:abc", "get of a missing key").await,
        None,
        "cache: a missing key must read as None"
    );

    let binary: Vec<u8> = (0..=255u8).rev().collect();
    ok(c.put("img:abc", binary.clone(), HOUR).await, "cache: put");
    ok(
        c.put("img:abd", b"neighbour".to_vec(), HOUR).await,
        "cache: put",
    );
    assert_eq!(
        get(c, "img:abc", "get").await,
        Some(binary),
        "cache: get must return the bytes put (any byte values)"
    );

    ok(
        c.put("img:abc", b"second".to_vec(), HOUR).await,
        "cache: overwrite",
    );
    assert_eq!(
        get(c, "img:abc", "get after overwrite").await,
        Some(b"second".to_vec()),
        "cache: a put must replace the value"
    );

    ok(
        c.put("empty", Vec::new(), HOUR).await,
        "cache: put of an empty value",
    );
    assert_eq!(
        get(c, "empty", "get").await,
        Some(Vec::new()),
        "cache: an empty value is a value, not a miss"
    );

    ok(c.delete("img:abc").await, "cache: delete");
    assert_eq!(
        get(c, "img:abc", "get after delete").await,
        None,
        "cache: a deleted key must read as None"
    );
    assert_eq!(
        get(c, "img:abd", "get of a neighbour").await,
        Some(b"neighbour".to_vec()),
        "cache: delete must remove only its key"
    );
    ok(
        c.delete("img:abc").await,
        "cache: deleting a missing key must succeed",
    );
}

async fn ttl_expires<C: Cache>(c: &C, clock: &ManualClock) {
    ok(
        c.put("short", b"s".to_vec(), Duration::from_secs(120))
            .await,
        "cache: put with a 120 s TTL",
    );
    ok(
        c.put("long", b"l".to_vec(), HOUR).await,
        "cache: put with a one-hour TTL",
    );
    clock.advance_ms(119_000);
    assert_eq!(
        get(c, "short", "get before expiry").await,
        Some(b"s".to_vec()),
        "cache: a value must live until its TTL"
    );
    clock.advance_ms(2_000);
    assert_eq!(
        get(c, "short", "get after expiry").await,
        None,
        "cache: a value past its TTL must read as None"
    );
    assert_eq!(
        get(c, "long", "get of a longer-lived value").await,
        Some(b"l".to_vec()),
        "cache: expiry must be per key"
    );

    // Overwriting restarts the TTL.
    ok(
        c.put("long", b"l2".to_vec(), Duration::from_secs(120))
            .await,
        "cache: overwrite with a new TTL",
    );
    clock.advance_ms(3_600_000);
    assert_eq!(
        get(c, "long", "get after the new TTL").await,
        None,
        "cache: an overwrite must set the new TTL"
    );
    ok(
        c.put("short", b"again".to_vec(), Duration::from_secs(120))
            .await,
        "cache: put after expiry",
    );
    assert_eq!(
        get(c, "short", "get").await,
        Some(b"again".to_vec()),
        "cache: an expired key must be writable again"
    );
}
