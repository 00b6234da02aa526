//! The quota contract: reservations made concurrently at the edge of a quota grant exactly what
//! remains, and released units can be reserved again. Runs on any `Table` adapter.

use std::sync::Arc;

use futures::future::join_all;

use super::{START_MS, ok};
use crate::clock::ManualClock;
use crate::quota;
use crate::table::{Key, Table};

/// How many requests race for the last units.
const RACERS: usize = 50;

/// Runs the quota checks against a fresh adapter from `make`.
pub async fn quota_suite<T: Table>(make: impl AsyncFn(Arc<ManualClock>) -> T) {
    let table = make(Arc::new(ManualClock::new(START_MS))).await;
    exactly_the_remainder_is_granted(&table).await;
    released_units_are_granted_again(&table).await;
}

async fn exactly_the_remainder_is_granted<T: Table>(t: &T) {
    let key = Key::new("T#quota-edge", "QUOTA");
    // 7 of 10 used: 50 concurrent one-image requests must get exactly 3 grants.
    ok(
        quota::reserve(t, key.clone(), "images", 7, Some(10), None).await,
        "quota: pre-fill",
    )
    .expect("quota: the pre-fill fits");
    let racers = (0..RACERS).map(|_| quota::reserve(t, key.clone(), "images", 1, Some(10), None));
    let results = join_all(racers).await;
    let granted = results
        .into_iter()
        .map(|r| ok(r, "quota: concurrent reserve"))
        .filter(Option::is_some)
        .count();
    assert_eq!(
        granted, 3,
        "quota: {RACERS} racers at 7/10 must get exactly 3 grants"
    );
    let item = ok(t.get(&key).await, "quota: read back").expect("quota: counter exists");
    assert_eq!(
        item.int("images"),
        Some(10),
        "quota: counter ends at the limit"
    );
}

async fn released_units_are_granted_again<T: Table>(t: &T) {
    let key = Key::new("T#quota-release", "QUOTA");
    let four = ok(
        quota::reserve(t, key.clone(), "images", 4, Some(5), None).await,
        "quota: reserve 4",
    )
    .expect("quota: 4 of 5 fits");
    let two = ok(
        quota::reserve(t, key.clone(), "images", 2, Some(5), None).await,
        "quota: reserve 2",
    );
    assert!(two.is_none(), "quota: 4 + 2 must not fit in 5");
    // The call made only one image: three units come back.
    ok(quota::release(t, &four, 3).await, "quota: release");
    let again = ok(
        quota::reserve(t, key.clone(), "images", 4, Some(5), None).await,
        "quota: reserve after release",
    );
    assert!(again.is_some(), "quota: released units are granted again");
    let item = ok(t.get(&key).await, "quota: read back").expect("quota: counter exists");
    assert_eq!(item.int("images"), Some(5), "quota: 1 used + 4 reserved");
}
