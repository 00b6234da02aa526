//! Quota reservations: an atomic conditional add on a usage counter *before* the expensive call, so
//! concurrent requests at the edge of a quota are granted exactly what remains; the unused part is
//! given back afterwards (all of it when the call failed).
//!
//! Written once above the `Table` port, so SQLite and DynamoDB enforce the same rule; the contract
//! suite `contract::quota_suite` checks it under concurrency on every adapter.

use crate::table::{Add, Key, Table};
use crate::{Error, Result};

/// Units held against a counter until [`release`] gives back what was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub key: Key,
    pub attr: String,
    pub count: u32,
    /// The counter's value right after this reservation was added (this request's units are the
    /// last `count` of it): where the request falls against an included pool.
    pub total_after: i64,
}

/// Adds `count` to `key`'s `attr` unless that would pass `limit` (`None`: no limit, the add only
/// counts). `Ok(None)` means the quota is used up and nothing was added.
pub async fn reserve(
    table: &dyn Table,
    key: Key,
    attr: &str,
    count: u32,
    limit: Option<u64>,
    expires_at: Option<i64>,
) -> Result<Option<Reservation>> {
    let add = Add {
        key: key.clone(),
        attr: attr.to_owned(),
        delta: i64::from(count),
        max: limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        expires_at,
    };
    match table.add(add).await {
        Ok(total_after) => Ok(Some(Reservation {
            key,
            attr: attr.to_owned(),
            count,
            total_after,
        })),
        Err(Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How many of a reservation's first `kept` units lie past `included` units of the counter: the
/// request's overage. Exact when reservations settle in order; when a concurrent request gives
/// units back, the split between the two may shift by those units, never the total past the pool
/// by more than what was given back.
pub fn overage_of(reservation: &Reservation, kept: u32, included: u64) -> u64 {
    let start = reservation.total_after - i64::from(reservation.count);
    let end = start + i64::from(kept.min(reservation.count));
    let included = i64::try_from(included).unwrap_or(i64::MAX);
    u64::try_from(end - start.max(included)).unwrap_or(0)
}

/// Gives back `unused` units of a reservation (at most its count). Never conditional: giving back
/// cannot pass a limit.
pub async fn release(table: &dyn Table, reservation: &Reservation, unused: u32) -> Result<()> {
    let unused = unused.min(reservation.count);
    if unused == 0 {
        return Ok(());
    }
    table
        .add(Add {
            key: reservation.key.clone(),
            attr: reservation.attr.clone(),
            delta: -i64::from(unused),
            max: None,
            expires_at: None,
        })
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(total_after: i64, count: u32) -> Reservation {
        Reservation {
            key: Key::new("p", "s"),
            attr: "images".into(),
            count,
            total_after,
        }
    }

    #[test]
    fn overage_counts_only_the_kept_units_past_the_pool() {
        // (counter after, reserved, kept, included) -> overage
        let cases = [
            ((4, 4), 4, 200, 0),
            ((200, 4), 4, 200, 0),
            ((202, 4), 4, 200, 2),
            ((202, 4), 1, 200, 0),
            ((202, 4), 3, 200, 1),
            ((210, 4), 4, 200, 4),
            ((210, 4), 0, 200, 0),
            ((1, 1), 1, 0, 1),
        ];
        for ((after, count), kept, included, expect) in cases {
            assert_eq!(
                overage_of(&res(after, count), kept, included),
                expect,
                "{after} {count} {kept} {included}"
            );
        }
    }
}
