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
        Ok(_) => Ok(Some(Reservation {
            key,
            attr: attr.to_owned(),
            count,
        })),
        Err(Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
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
