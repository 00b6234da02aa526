//! Retry timing: the exponential backoff with jitter, the server's `retry-after-ms` / `retry-after`
//! headers, and the `Sleeper` that waits (injectable, so tests check the waits without waiting).

use std::fmt;
use std::time::Duration;

use web_time::SystemTime;

use rand::Rng;
use reqwest::header::HeaderMap;

use crate::config::RetryPolicy;

/// Waits between attempts. The default sleeps on tokio's timer; tests inject one that records.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync + fmt::Debug {
    async fn sleep(&self, duration: Duration);
}

/// Sleeps on tokio's timer.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleeper;

#[cfg(not(target_arch = "wasm32"))]
#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The sleeper a new model starts with: tokio's timer natively.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn default_sleeper() -> std::sync::Arc<dyn Sleeper> {
    std::sync::Arc::new(TokioSleeper)
}

/// On wasm32 there is no timer this crate can reach: retries go again at once until the runtime
/// injects its own with `OpenAiModel::with_sleeper` (the Worker does, on `setTimeout`).
#[cfg(target_arch = "wasm32")]
pub(crate) fn default_sleeper() -> std::sync::Arc<dyn Sleeper> {
    #[derive(Debug)]
    struct Immediately;
    #[async_trait::async_trait]
    impl Sleeper for Immediately {
        async fn sleep(&self, _duration: Duration) {}
    }
    std::sync::Arc::new(Immediately)
}

/// The wait before retry number `retry` (0 for the first retry): `initial · 2^retry`, capped at
/// `max_backoff`, less a random 0–25 % so that many clients do not retry in lockstep.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32, rng: &mut impl Rng) -> Duration {
    let initial = u64::try_from(policy.initial_backoff.as_millis()).unwrap_or(u64::MAX);
    let cap = u64::try_from(policy.max_backoff.as_millis()).unwrap_or(u64::MAX);
    let base = initial
        .saturating_mul(1u64.checked_shl(retry).unwrap_or(u64::MAX))
        .min(cap);
    let jitter = if base >= 4 {
        rng.random_range(0..=base / 4)
    } else {
        0
    };
    Duration::from_millis(base - jitter)
}

/// What the server asked for: `retry-after-ms` first, then `retry-after` as seconds, then as an
/// HTTP date. Unparseable or non-positive values count as absent, as in the SDKs.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms > 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs));
    }
    // Compared as offsets from the epoch: httpdate speaks std's `SystemTime`, `now` may be
    // web-time's (wasm32).
    let at = httpdate::parse_http_date(value)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let now = now.duration_since(web_time::UNIX_EPOCH).ok()?;
    at.checked_sub(now).filter(|d| !d.is_zero())
}

/// `x-should-retry: true|false`, when the server sends it.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_down() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = RetryPolicy::DEFAULT;
        for _ in 0..50 {
            let first = backoff(&p, 0, &mut rng);
            assert!(
                first <= Duration::from_millis(500) && first >= Duration::from_millis(375),
                "{first:?}"
            );
            let third = backoff(&p, 2, &mut rng);
            assert!(
                third <= Duration::from_secs(2) && third >= Duration::from_millis(1500),
                "{third:?}"
            );
            let late = backoff(&p, 40, &mut rng);
            assert!(
                late <= Duration::from_secs(8) && late >= Duration::from_secs(6),
                "{late:?}"
            );
        }
    }

    #[test]
    fn retry_after_prefers_ms_then_seconds_then_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&[("retry-after", &past)]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(retry_after(&headers(&[]), now), None);
    }

    #[test]
    fn should_retry_is_read_strictly() {
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "maybe")])),
            None
        );
    }
}
