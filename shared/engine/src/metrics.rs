//! Generation metrics per organisation: request counts, latencies (p50/p95 over the most recent
//! requests), cache hits by tier, model errors and cost. Each request is also one structured
//! `tracing` event (target `imagemcp::metrics`), which the JSON log format turns into a line a log
//! pipeline can aggregate across instances; `GET /v1/metrics` shows this instance's summary.

use std::collections::VecDeque;

use imagemcp_core::Error;
use imagemcp_core::bounded::Bounded;
use imagemcp_core::ids::OrgId;
use schemars::JsonSchema;
use serde::Serialize;

use crate::cache::CacheTier;

/// How many recent latencies each organisation keeps for its percentiles.
const LATENCY_WINDOW: usize = 1024;

/// The most organisations an instance keeps figures for, and the bytes those may weigh (each
/// about 8.5 KB with a full latency window): the least recently active are forgotten first.
pub const METRICS_BOUNDS: (usize, usize) = (2_048, 16 << 20);

/// How the cache took part in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit(CacheTier),
    Miss,
    /// Not looked up (`fresh`, a refinement, an edit, or the cache turned off).
    Bypass,
}

impl CacheOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit(t) => t.as_str(),
            CacheOutcome::Miss => "miss",
            CacheOutcome::Bypass => "bypass",
        }
    }
}

/// One finished request.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    pub org: &'a OrgId,
    pub operation: &'static str,
    pub latency_ms: u64,
    pub cache: CacheOutcome,
    pub images: u64,
    pub cost_micros: u64,
    /// Variations that failed while others succeeded, or 1 when the request failed at the model.
    pub model_errors: u64,
    pub error: Option<&'a Error>,
}

#[derive(Debug, Default)]
struct OrgMetrics {
    requests: u64,
    errors: u64,
    model_errors: u64,
    images: u64,
    cost_micros: u64,
    hits: [u64; 3],
    misses: u64,
    bypassed: u64,
    latencies: VecDeque<u64>,
}

/// Every organisation's figures on this instance, within [`METRICS_BOUNDS`].
#[derive(Debug)]
pub struct Metrics {
    orgs: Bounded<OrgId, OrgMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(METRICS_BOUNDS.0, METRICS_BOUNDS.1)
    }
}

impl OrgMetrics {
    /// What one organisation's figures weigh once its latency window is full.
    const WEIGHT: usize =
        std::mem::size_of::<OrgMetrics>() + LATENCY_WINDOW * std::mem::size_of::<u64>();
}

/// The summary `GET /v1/metrics` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MetricsView {
    /// These figures are this instance's, since it started (see docs/engine.md).
    pub scope: &'static str,
    pub requests: u64,
    pub errors: u64,
    pub model_errors: u64,
    /// Images made (a cache hit makes none).
    pub images: u64,
    pub cost_micros: u64,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub cache: CacheView,
}

/// Cache hits and misses; rates in thousandths of the requests that looked the cache up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CacheView {
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub l3_hits: u64,
    pub misses: u64,
    pub bypassed: u64,
    pub hit_rate_milli: u64,
    pub l1_rate_milli: u64,
    pub l2_rate_milli: u64,
    pub l3_rate_milli: u64,
}

/// The `p`th percentile (0-100) of `values`, nearest rank.
pub fn percentile(values: &[u64], p: u64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn milli(part: u64, whole: u64) -> u64 {
    (part * 1000).checked_div(whole).unwrap_or(0)
}

impl Metrics {
    /// Figures for at most `max_orgs` organisations weighing at most `max_bytes`.
    pub fn new(max_orgs: usize, max_bytes: usize) -> Self {
        Self {
            orgs: Bounded::new(max_orgs, max_bytes),
        }
    }

    /// Counts a request and logs it as one structured event.
    pub fn record(&mut self, s: &Sample<'_>) {
        tracing::info!(
            target: "imagemcp::metrics",
            org = %s.org,
            operation = s.operation,
            latency_ms = s.latency_ms,
            cache = s.cache.as_str(),
            images = s.images,
            cost_micros = s.cost_micros,
            model_errors = s.model_errors,
            outcome = if s.error.is_some() { "error" } else { "ok" },
            "generation request"
        );
        if self.orgs.peek(s.org).is_none() {
            let weight = s.org.as_str().len() + OrgMetrics::WEIGHT;
            self.orgs
                .insert(s.org.clone(), OrgMetrics::default(), weight);
        }
        let Some(m) = self.orgs.get_mut(s.org) else {
            return;
        };
        m.requests += 1;
        if s.error.is_some() {
            m.errors += 1;
        }
        m.model_errors += s.model_errors;
        m.images += s.images;
        m.cost_micros += s.cost_micros;
        match s.cache {
            CacheOutcome::Hit(t) => m.hits[t as usize] += 1,
            CacheOutcome::Miss => m.misses += 1,
            CacheOutcome::Bypass => m.bypassed += 1,
        }
        if m.latencies.len() == LATENCY_WINDOW {
            m.latencies.pop_front();
        }
        m.latencies.push_back(s.latency_ms);
    }

    /// The organisation's summary (zeros when it made no request on this instance).
    pub fn summary(&self, org: &OrgId) -> MetricsView {
        let Some(m) = self.orgs.peek(org) else {
            return MetricsView {
                scope: "instance",
                ..Default::default()
            };
        };
        let latencies: Vec<u64> = m.latencies.iter().copied().collect();
        let hits: u64 = m.hits.iter().sum();
        let looked = hits + m.misses;
        MetricsView {
            scope: "instance",
            requests: m.requests,
            errors: m.errors,
            model_errors: m.model_errors,
            images: m.images,
            cost_micros: m.cost_micros,
            latency_p50_ms: percentile(&latencies, 50),
            latency_p95_ms: percentile(&latencies, 95),
            cache: CacheView {
                l1_hits: m.hits[0],
                l2_hits: m.hits[1],
                l3_hits: m.hits[2],
                misses: m.misses,
                bypassed: m.bypassed,
                hit_rate_milli: milli(hits, looked),
                l1_rate_milli: milli(m.hits[0], looked),
                l2_rate_milli: milli(m.hits[1], looked),
                l3_rate_milli: milli(m.hits[2], looked),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 95), 95);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn summary_counts_tiers_and_rates() {
        let org = OrgId::parse("org_0190000000007000800000000000001").unwrap();
        let mut m = Metrics::default();
        for cache in [
            CacheOutcome::Hit(CacheTier::L1),
            CacheOutcome::Hit(CacheTier::L2),
            CacheOutcome::Miss,
            CacheOutcome::Miss,
            CacheOutcome::Bypass,
        ] {
            m.record(&Sample {
                org: &org,
                operation: "generate",
                latency_ms: 10,
                cache,
                images: 1,
                cost_micros: 5,
                model_errors: 0,
                error: None,
            });
        }
        let s = m.summary(&org);
        assert_eq!((s.requests, s.images, s.cost_micros), (5, 5, 25));
        assert_eq!(
            (s.cache.l1_hits, s.cache.l2_hits, s.cache.misses),
            (1, 1, 2)
        );
        assert_eq!(s.cache.hit_rate_milli, 500, "2 hits of 4 lookups");
        assert_eq!(s.cache.bypassed, 1);
        assert_eq!(s.latency_p95_ms, 10);
    }

    #[test]
    fn figures_over_the_byte_bound_forget_the_least_recently_active_org() {
        let org = |i: u32| OrgId::parse(&format!("org_{i:031}")).unwrap();
        let one =
            org(0).as_str().len() + OrgMetrics::WEIGHT + imagemcp_core::bounded::ENTRY_OVERHEAD;
        let mut m = Metrics::new(1000, 3 * one);
        let mut record = |org: &OrgId| {
            m.record(&Sample {
                org,
                operation: "generate",
                latency_ms: 1,
                cache: CacheOutcome::Miss,
                images: 1,
                cost_micros: 0,
                model_errors: 0,
                error: None,
            })
        };
        for i in 0..3 {
            record(&org(i));
        }
        // Org 0 is active again, so org 1 is the least recently active when org 3 arrives.
        record(&org(0));
        record(&org(3));
        assert_eq!(m.orgs.len(), 3);
        assert!(m.orgs.bytes() <= 3 * one);
        assert_eq!(m.summary(&org(1)).requests, 0, "forgotten");
        assert_eq!(m.summary(&org(0)).requests, 2);
    }
}
