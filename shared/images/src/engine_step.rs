//! The image service's side of the engine: rate limits by the admitted tier, the cache looked up
//! and remembered by image ids (a hit is read back through the service, so a deleted image is a
//! miss), and each request counted in the metrics.

use imagemcp_core::tier::Tier;
use imagemcp_core::{Error, Result};
use imagemcp_engine::cache::{self, CacheTier, Cached, Lookup, Probe};
use imagemcp_engine::metrics::{CacheOutcome, Sample};

use imagemcp_tenancy::Caller;

use crate::{Generated, Images};

/// Admits a request of `images` renders under the organisation's and key's rate limits, judged by
/// the `tier` billing admitted it under.
pub(crate) async fn admit(cx: &Images, caller: &Caller, tier: Tier, images: u32) -> Result<()> {
    cx.engine.admit(&cx.ports, caller, tier, images).await
}

/// Reads a cached entry's images and conversation back as a generation result.
struct Reader<'a> {
    cx: &'a Images,
    caller: &'a Caller,
}

#[async_trait::async_trait]
impl cache::Resolve for Reader<'_> {
    type Output = Generated;

    async fn resolve(&self, cached: Cached) -> Option<Generated> {
        let images = self.cx.service();
        let mut records = Vec::with_capacity(cached.image_ids.len());
        for id in &cached.image_ids {
            records.push(images.get(self.caller, id).await.ok()?);
        }
        let conversation = images
            .conversation(self.caller, &cached.conversation_id)
            .await
            .ok()?;
        let model = records.first()?.model.clone();
        Some(Generated {
            images: records,
            conversation,
            model,
            usage: Default::default(),
            // Nothing was spent on this answer.
            cost_micros: 0,
            failed_variations: Vec::new(),
            cache: Some(cached.hit),
            previews: Vec::new(),
        })
    }
}

/// Before billing: the cache answers a request it has seen (`req` is `None` when the request may
/// not be cached), with the prompt's `moderation` run alongside the lookup. Returns the hit,
/// already counted, or the miss to remember later (whose prompt passed `moderation`); a request
/// that is not looked up gets neither, and `moderation` is not run for it. A refused prompt is an
/// error, counted, and nothing of it is remembered.
pub(crate) async fn from_cache(
    cx: &Images,
    caller: &Caller,
    req: Option<cache::Request>,
    moderation: impl Future<Output = Result<()>>,
    started_ms: i64,
) -> Result<(Option<Generated>, Option<Probe>)> {
    let Some(req) = req else {
        return Ok((None, None));
    };
    let reader = Reader { cx, caller };
    let tiers = cx.engine.cache(&cx.ports);
    match cache::lookup(tiers, caller, req, moderation, &reader).await {
        Ok(Lookup::Hit(g)) => {
            let tier = g.cache.map_or(CacheTier::L1, |h| h.tier);
            measure(
                cx,
                caller,
                "generate",
                started_ms,
                CacheOutcome::Hit(tier),
                Ok(&g),
            );
            Ok((Some(*g), None))
        }
        Ok(Lookup::Miss(probe)) => Ok((None, Some(probe))),
        Ok(Lookup::Bypass) => Ok((None, None)),
        Err(e) => {
            measure(
                cx,
                caller,
                "generate",
                started_ms,
                CacheOutcome::Miss,
                Err(&e),
            );
            Err(e)
        }
    }
}

/// After a generation or edit: remembers a whole fresh result in the cache and counts it.
pub(crate) async fn finished(
    cx: &Images,
    caller: &Caller,
    operation: &'static str,
    started_ms: i64,
    probe: Option<Probe>,
    result: &Result<Generated>,
) {
    let outcome = if probe.is_some() {
        CacheOutcome::Miss
    } else {
        CacheOutcome::Bypass
    };
    // Partial results (some variations failed) are not cached: the next request should get all
    // it asked for.
    if let (Some(probe), Ok(g)) = (probe, result)
        && g.failed_variations.is_empty()
    {
        let ids = g.images.iter().map(|r| r.id.clone()).collect();
        let tiers = cx.engine.cache(&cx.ports);
        cache::remember(tiers, caller, probe, ids, g.conversation.id.clone()).await;
    }
    measure(cx, caller, operation, started_ms, outcome, result.as_ref());
}

fn measure(
    cx: &Images,
    caller: &Caller,
    operation: &'static str,
    started_ms: i64,
    cache: CacheOutcome,
    result: std::result::Result<&Generated, &Error>,
) {
    let latency_ms = u64::try_from(cx.ports.clock.now_ms().saturating_sub(started_ms)).unwrap_or(0);
    let (images, cost_micros, model_errors) = match result {
        // A hit made no image.
        Ok(g) if g.cache.is_some() => (0, 0, 0),
        Ok(g) => (
            g.images.len() as u64,
            g.cost_micros,
            g.failed_variations.len() as u64,
        ),
        Err(e) => (0, 0, u64::from(imagemcp_engine::is_model_error(e))),
    };
    cx.engine.record(&Sample {
        org: &caller.org,
        operation,
        latency_ms,
        cache,
        images,
        cost_micros,
        model_errors,
        error: result.err(),
    });
}
