//! Records as `Table` items (serde maps of their attributes) and the time stamps items carry: the
//! months usage is counted in, RFC 3339 times, calendar dates.

use imagemcp_core::table::{Item, Key};
use imagemcp_core::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Serializes a record into a table item's attributes.
pub fn to_item<T: Serialize>(key: Key, record: &T) -> Result<Item> {
    match serde_json::to_value(record).map_err(Error::internal)? {
        Value::Object(attrs) => Ok(Item::new(key, attrs)),
        _ => Err(Error::internal("record did not serialize to an object")),
    }
}

/// Reads a record back from a table item.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_json::from_value(Value::Object(item.attrs))
        .map_err(|e| Error::internal(format!("corrupt record: {e}")))
}

/// An empty attribute map, for marker items.
pub fn no_attrs() -> Map<String, Value> {
    Map::new()
}

/// `YYYY-MM` of a Unix time in milliseconds (UTC), for monthly usage counters. Written by hand
/// (Howard Hinnant's days-to-civil algorithm) because it is ten lines and core takes no date crate.
pub fn month_of(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(1_795_478_400_000), "2026-11"); // 2026-11-24T00:00Z
        assert_eq!(month_of(1_798_761_599_000), "2026-12"); // 2026-12-31T23:59:59Z
        assert_eq!(month_of(1_798_761_600_000), "2027-01");
    }
}

/// RFC 3339 UTC timestamp (`2026-11-24T20:16:00.000Z`) of a Unix time in milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let month = month_of(ms);
    // Day of month: days since the first of this month.
    let (year, mon): (i64, i64) = (
        month[..4].parse().unwrap_or(1970),
        month[5..].parse().unwrap_or(1),
    );
    let first = days_from_civil(year, mon);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!(
        "{month}-{:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z",
        days - first + 1
    )
}

/// Days since 1970-01-01 of the first day of a month (the inverse of the algorithm in `month_of`).
/// The UTC date of a time in ms since the epoch, `YYYY-MM-DD`.
pub fn date_of(ms: i64) -> String {
    rfc3339(ms)[..10].to_owned()
}

/// The calendar month (UTC) that `ms` falls in, as `[first ms, first ms of the next month)`.
pub fn month_bounds(ms: i64) -> (i64, i64) {
    let month = month_of(ms);
    let (year, mon): (i64, i64) = (
        month[..4].parse().unwrap_or(1970),
        month[5..].parse().unwrap_or(1),
    );
    let (next_year, next_mon) = if mon == 12 {
        (year + 1, 1)
    } else {
        (year, mon + 1)
    };
    (
        days_from_civil(year, mon) * 86_400_000,
        days_from_civil(next_year, next_mon) * 86_400_000,
    )
}

fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn dates_and_month_bounds() {
        assert_eq!(date_of(1_795_478_400_000 + 73_000_123), "2026-11-24");
        let (start, end) = month_bounds(1_795_478_400_000);
        assert_eq!(rfc3339(start), "2026-11-01T00:00:00.000Z");
        assert_eq!(rfc3339(end), "2026-12-01T00:00:00.000Z");
        let (start, end) = month_bounds(end + 5);
        assert_eq!(
            (rfc3339(start).as_str(), rfc3339(end).as_str()),
            ("2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_795_478_400_000 + 73_000_123),
            "2026-11-24T20:16:40.123Z"
        );
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
