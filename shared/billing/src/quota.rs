//! Quota around a generation: the tier's gates (variations, mode) and the org's hard-stop budget
//! first, then a reservation of the requested images by an atomic conditional add *before* the
//! model call; after the call, the unused part is released (all of it on failure), so what stays
//! counted is exactly what was stored. Images past a paid tier's pool are reported to Stripe as
//! Billing Meter events, once per reservation (its identifier is the counter position).
//!
//! A crash between reserve and settle of a request leaves its reservation counted until the period
//! ends: the customer is under-served by at most one request's images, never over-billed beyond
//! them, and no request can pass the quota. A queued job item does better (`Admission::reserve` with
//! the item's marker): its
//! reservation and budget hold are recorded at `JOB#<id>#HOLD#<n>` in the one transaction that
//! takes them, the redelivered item adopts them instead of reserving again, and the transaction
//! that stores the item's images settles them; so a process dying at any instant neither burns
//! quota nor lets the item through twice.
//!
//! The plan is read once, at admission: a request admitted under Pro finishes under Pro and settles
//! on the counter it reserved on, even if a downgrade arrives while it runs (a batch's admitted
//! items finish; its later items are admitted under the new plan).

use imagemcp_core::payments::UsageReport;
use imagemcp_core::quota::{self, Reservation};
use imagemcp_core::table::{Add, Condition, Item, Key, TransactOp};
use imagemcp_core::tier::{self, Feature, Modes, Tier};
use imagemcp_core::{Error, Result};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{budget, plan};
use crate::Billing;
use imagemcp_core::modes::{Budget, Implied, Mode};
use imagemcp_tenancy::Caller;
use imagemcp_tenancy::{items, keys};

/// Images held for one request until [`Metered::settle`].
#[must_use = "settle the reservation after the model call"]
pub struct Metered {
    reservation: Option<Reservation>,
    /// Who to bill past the pool: (customer, included images) on tiers with overage.
    overage: Option<(String, u64)>,
    caller: Option<Caller>,
    /// The estimate held against a hard-stop budget, given back at settlement.
    hold: Option<budget::Hold>,
    /// A job item's recorded holds (then `hold` is `None` and `reservation` mirrors the item's).
    item: Option<ItemHold>,
}

/// The counter a period's images are reserved on.
pub fn counter_key(caller: &Caller, period: &str) -> Key {
    Key::new(keys::org_pk(&caller.org), format!("QUOTA#{period}"))
}

/// The tier feature a generation mode needs.
fn mode_feature(mode: Option<Mode>) -> Option<Feature> {
    match mode {
        None | Some(Mode::Quick) => None,
        Some(_) => Some(Feature::Mode(Modes::All)),
    }
}

/// The cost budget a request is held to: its mode's when it names one, else quick's on a tier
/// whose only mode is quick (Free), so that tier's requests cost what quick allows whether or not
/// they say so. (A mode's time limit applies only when the request names it.)
fn budget(ctx: &Billing, tier: Tier, mode: Option<Mode>) -> Option<Budget> {
    if let Some(mode) = mode {
        return Some(Budget::named(mode));
    }
    let spec = tier.spec();
    (spec.modes == Modes::QuickOnly).then(|| Budget {
        mode: Mode::Quick,
        implied: Some(Implied {
            plan: spec.name,
            unlocking_tier: Feature::Mode(Modes::All)
                .unlocking_tier()
                .map(|t| t.id().to_owned()),
            upgrade_url: super::upgrade_url(ctx),
        }),
    })
}

fn check_gates(ctx: &Billing, tier: Tier, images: u32, mode: Option<Mode>) -> Result<()> {
    if tier == Tier::Local {
        return Ok(());
    }
    let upgrade = super::upgrade_url(ctx);
    tier::gate(tier, Feature::Variations(images), &upgrade)?;
    if let Some(feature) = mode_feature(mode) {
        tier::gate(tier, feature, &upgrade)?;
    }
    Ok(())
}

/// A request let through its tier's gates (variations, mode), with the organisation's plan read
/// once: what every later step of the request is judged by. A cached answer needs only this (its
/// [`budget`](Self::budget) and gates); a model call then [`reserve`](Self::reserve)s, and the
/// engine takes its limits from the same [`tier`](Self::tier).
pub struct Admission {
    plan: plan::OrgPlan,
    tier: Tier,
    now_ms: i64,
    images: u32,
    budget: Option<Budget>,
}

impl Admission {
    /// Reads the plan and checks the tier's gates for a request of `images` in `mode`; nothing is
    /// reserved yet.
    pub async fn open(
        ctx: &Billing,
        caller: &Caller,
        images: u32,
        mode: Option<Mode>,
    ) -> Result<Self> {
        let plan = plan::load(ctx, &caller.org).await?;
        let now_ms = ctx.ports.clock.now_ms();
        let tier = plan.effective_tier(now_ms / 1000);
        check_gates(ctx, tier, images, mode)?;
        let budget = budget(ctx, tier, mode);
        Ok(Self {
            plan,
            tier,
            now_ms,
            images,
            budget,
        })
    }

    /// The tier the request was admitted under (its rate limits and concurrency too).
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The cost budget the request is held to (see [`budget`]).
    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// When what the request stores expires, in seconds since the epoch (the Table's TTL): the
    /// tier's retention (Free keeps images 30 days); `None` keeps them, as when billing is off.
    /// Items keep the expiry they were written with: images made on Free still expire after an
    /// upgrade, images made on a paid plan are kept after a downgrade.
    pub fn retention_expiry(&self, ctx: &Billing) -> Option<i64> {
        ctx.config.stripe.as_ref()?;
        let now = self.now_ms / 1000;
        self.tier
            .spec()
            .retention_days
            .map(|days| now + i64::from(days) * 86_400)
    }

    /// Holds the request's estimate against a hard-stop budget and reserves its images; a job
    /// item's holds are recorded at `item` (see `reserve_item`). Settle the result after the call.
    pub async fn reserve(
        &self,
        ctx: &Billing,
        caller: &Caller,
        estimate_micros: u64,
        item: Option<Key>,
    ) -> Result<Metered> {
        if let Some(marker) = item {
            return self
                .reserve_item(ctx, caller, estimate_micros, marker)
                .await;
        }
        let hold = budget::hold(ctx, caller, estimate_micros).await?;
        let metered = reserve(ctx, caller, &self.plan, self.tier, self.images, self.now_ms).await;
        match metered {
            Ok(metered) => Ok(Metered { hold, ..metered }),
            Err(e) => {
                if let Some(hold) = hold {
                    hold.release(ctx).await;
                }
                Err(e)
            }
        }
    }
}

/// Checks the tier's gates for a request of `images` (in `mode`, estimated at `estimate_micros`),
/// holds its estimate against a hard-stop budget and reserves the images: [`Admission::open`] and
/// [`Admission::reserve`] at once.
pub async fn admit(
    ctx: &Billing,
    caller: &Caller,
    images: u32,
    mode: Option<Mode>,
    estimate_micros: u64,
) -> Result<Metered> {
    Admission::open(ctx, caller, images, mode)
        .await?
        .reserve(ctx, caller, estimate_micros, None)
        .await
}

/// The most images the period may count (`None`: no limit, past the pool is billed) and who is
/// billed for them: (customer, included images) on tiers with overage.
fn limits(plan: &plan::OrgPlan, tier: Tier) -> (Option<u64>, Option<(String, u64)>) {
    let spec = tier.spec();
    let included = spec.included_images(plan.seats());
    // Tiers with overage count without a limit (past the pool is billed); Free stops at the pool.
    let limit = match spec.overage_cents_per_image {
        Some(_) => None,
        None => included,
    };
    let overage = match (spec.overage_cents_per_image, included, &plan.customer_id) {
        (Some(_), Some(included), Some(customer)) => Some((customer.clone(), included)),
        _ => None,
    };
    (limit, overage)
}

/// The refusal of a request past the period's images.
fn used_up(ctx: &Billing, tier: Tier, limit: Option<u64>) -> Error {
    Error::PlanLimit {
        reason: format!(
            "the {} plan's {} images this period are used up",
            tier.spec().name,
            limit.unwrap_or(0)
        ),
        unlocking_tier: Feature::Overage.unlocking_tier().map(|t| t.id().to_owned()),
        upgrade_url: super::upgrade_url(ctx),
    }
}

/// Reserves `images` on the period's counter (nothing to reserve on the local plan).
async fn reserve(
    ctx: &Billing,
    caller: &Caller,
    plan: &plan::OrgPlan,
    tier: Tier,
    images: u32,
    now_ms: i64,
) -> Result<Metered> {
    let mut metered = Metered {
        reservation: None,
        overage: None,
        caller: Some(caller.clone()),
        hold: None,
        item: None,
    };
    if tier == Tier::Local {
        return Ok(metered);
    }
    let (limit, overage) = limits(plan, tier);
    let period = plan.period_id(now_ms);
    match quota::reserve(
        &*ctx.ports.table,
        counter_key(caller, &period),
        "images",
        images,
        limit,
        None,
    )
    .await?
    {
        Some(reservation) => {
            metered.reservation = Some(reservation);
            metered.overage = overage;
            Ok(metered)
        }
        None => Err(used_up(ctx, tier, limit)),
    }
}

/// What a job item holds while it generates: its images on the period's counter and its estimate
/// against a hard-stop budget, recorded at `ORG#<org>` / `JOB#<id>#HOLD#<n>` in the transaction
/// that takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemHold {
    marker: Key,
    record: HoldRecord,
}

/// The stored form of an [`ItemHold`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HoldRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quota: Option<HeldQuota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    budget: Option<HeldBudget>,
    at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HeldQuota {
    pk: String,
    sk: String,
    count: u32,
    /// The counter right after the images were added (this item's are the last `count`).
    total_after: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HeldBudget {
    pk: String,
    sk: String,
    micros: i64,
}

impl ItemHold {
    /// The hold recorded at `marker`, if any.
    async fn load(ctx: &Billing, marker: &Key) -> Result<Option<Self>> {
        let Some(item) = ctx.ports.table.get(marker).await? else {
            return Ok(None);
        };
        Ok(Some(Self {
            marker: marker.clone(),
            record: items::from_item(item)?,
        }))
    }

    fn reservation(&self) -> Option<Reservation> {
        self.record.quota.as_ref().map(|q| Reservation {
            key: Key::new(q.pk.clone(), q.sk.clone()),
            attr: "images".into(),
            count: q.count,
            total_after: q.total_after,
        })
    }

    /// Settles the hold with `stored` images kept: the record deleted (it must still exist, so a
    /// hold is settled once), the images not stored and the budget estimate given back. Carried
    /// by the transaction that stores the item's images, or run alone when none were stored.
    pub fn settle_ops(&self, stored: u32) -> Vec<TransactOp> {
        let mut ops = vec![TransactOp::Delete(self.marker.clone(), Condition::Exists)];
        if let Some(q) = &self.record.quota {
            let unused = q.count.saturating_sub(stored);
            if unused > 0 {
                ops.push(TransactOp::Add(Add {
                    key: Key::new(q.pk.clone(), q.sk.clone()),
                    attr: "images".into(),
                    delta: -i64::from(unused),
                    max: None,
                    expires_at: None,
                }));
            }
        }
        if let Some(b) = &self.record.budget {
            ops.push(TransactOp::Add(
                budget::Hold {
                    key: Key::new(b.pk.clone(), b.sk.clone()),
                    micros: b.micros,
                }
                .release_add(),
            ));
        }
        ops
    }

    /// Gives the whole hold back (nothing was stored); a hold settled meanwhile stays settled.
    async fn release(&self, ctx: &Billing) {
        match ctx.ports.table.transact(self.settle_ops(0)).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(key = %self.marker.sk, error = %e, "a job item's hold was not released")
            }
        }
    }
}

/// Gives back what a job item held, if a process died holding it and nothing will redeliver the
/// item (its job finished or was cancelled).
pub async fn release_item_hold(ctx: &Billing, marker: &Key) {
    match ItemHold::load(ctx, marker).await {
        Ok(Some(hold)) => hold.release(ctx).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(key = %marker.sk, error = %e, "a job item's hold is unreadable"),
    }
}

/// How many times a job item's admission re-reads a counter that moved under it. Each retry
/// follows another request's successful change of the counter, so the loop ends.
const ITEM_ADMIT_ROUNDS: usize = 32;

/// [`Admission::reserve`] for a job item, whose holds are recorded at its `marker`: a hold a
/// previous delivery recorded (its process died) is adopted, not taken again; otherwise the images
/// are put on the period's counter, the estimate held against a hard-stop budget and the hold
/// recorded, all in one transaction (the counter is rewritten under a condition on its value, which
/// is what tells this item's position against the pool). Nothing held (billing off, no hard stop)
/// records nothing.
impl Admission {
    async fn reserve_item(
        &self,
        ctx: &Billing,
        caller: &Caller,
        estimate_micros: u64,
        marker: Key,
    ) -> Result<Metered> {
        let (plan, tier, now_ms, images) = (&self.plan, self.tier, self.now_ms, self.images);
        let (limit, overage) = limits(plan, tier);
        let held = |hold: ItemHold| Metered {
            reservation: hold.reservation(),
            overage: overage.clone(),
            caller: Some(caller.clone()),
            hold: None,
            item: Some(hold),
        };
        for _ in 0..ITEM_ADMIT_ROUNDS {
            if let Some(hold) = ItemHold::load(ctx, &marker).await? {
                tracing::info!(key = %marker.sk, "a job item adopts the holds of its previous delivery");
                return Ok(held(hold));
            }
            let budget = budget::plan_hold(ctx, caller, estimate_micros).await?;
            let mut ops = Vec::new();
            let mut record = HoldRecord {
                quota: None,
                budget: budget.as_ref().map(|b| HeldBudget {
                    pk: b.hold.key.pk.clone(),
                    sk: b.hold.key.sk.clone(),
                    micros: b.hold.micros,
                }),
                at_ms: now_ms,
            };
            if tier != Tier::Local {
                let key = counter_key(caller, &plan.period_id(now_ms));
                let current = ctx.ports.table.get(&key).await?;
                let before = current.as_ref().and_then(|i| i.int("images")).unwrap_or(0);
                let after = before.saturating_add(i64::from(images));
                if limit.is_some_and(|l| after > i64::try_from(l).unwrap_or(i64::MAX)) {
                    return Err(used_up(ctx, tier, limit));
                }
                let (mut counter, cond) = match current {
                    Some(item) => (item, Condition::AttrEquals("images".into(), json!(before))),
                    None => (
                        Item::new(key.clone(), Default::default()),
                        Condition::NotExists,
                    ),
                };
                counter.attrs.insert("images".into(), json!(after));
                ops.push(TransactOp::Put(counter, cond));
                record.quota = Some(HeldQuota {
                    pk: key.pk,
                    sk: key.sk,
                    count: images,
                    total_after: after,
                });
            }
            if let Some(b) = &budget {
                ops.push(TransactOp::Add(b.add.clone()));
            }
            if ops.is_empty() {
                return reserve(ctx, caller, plan, tier, images, now_ms).await;
            }
            let hold = ItemHold {
                marker: marker.clone(),
                record,
            };
            ops.push(TransactOp::Put(
                items::to_item(marker.clone(), &hold.record)?,
                Condition::NotExists,
            ));
            match ctx.ports.table.transact(ops).await {
                Ok(()) => return Ok(held(hold)),
                Err(Error::Conflict(_)) => {
                    if let Some(b) = &budget
                        && !b.fits(ctx).await?
                    {
                        return Err(b.refusal(ctx));
                    }
                    // The counter moved, or a duplicate delivery recorded the hold first (adopted on
                    // the next round).
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unavailable(
            "the quota counter kept changing; try again".into(),
        ))
    }
}

impl Metered {
    /// A job item's holds, to be settled by the transaction that stores its images.
    pub fn item_hold(&self) -> Option<&ItemHold> {
        self.item.as_ref()
    }

    /// Keeps the `stored` images counted and releases the rest; reports what passed the pool and
    /// checks the budget alert. A job item's holds were settled by the commit of its images when
    /// any were stored, and are given back whole here otherwise.
    pub async fn settle(self, ctx: &Billing, stored: usize) {
        let stored = u32::try_from(stored).unwrap_or(u32::MAX);
        match &self.item {
            Some(item) if stored == 0 => item.release(ctx).await,
            Some(_) => {}
            None => {
                if let Some(hold) = self.hold {
                    hold.release(ctx).await;
                }
                if let Some(res) = &self.reservation {
                    let unused = res.count.saturating_sub(stored);
                    if let Err(e) = quota::release(&*ctx.ports.table, res, unused).await {
                        // The units stay counted: the caller is under-served, never over the quota.
                        tracing::warn!(key = %res.key.sk, unused, error = %e, "quota release failed");
                    }
                }
            }
        }
        if let (Some(res), Some((customer, included))) = (&self.reservation, &self.overage) {
            report_overage(ctx, res, stored, customer, *included).await;
        }
        if stored > 0
            && let Some(caller) = &self.caller
            && let Err(e) = budget::after_generation(ctx, caller).await
        {
            tracing::warn!(org = %caller.org, error = %e, "budget alert check failed");
        }
    }
}

/// Reports the images of `res` past the pool as one meter event. Its identifier is the counter
/// position, so a retry (ours, the client's or a pending one's, see `overage.rs`) never bills twice.
async fn report_overage(
    ctx: &Billing,
    res: &Reservation,
    kept: u32,
    customer: &str,
    included: u64,
) {
    let over = quota::overage_of(res, kept, included);
    let Some(billing) = ctx.config.stripe.as_ref() else {
        return;
    };
    if over == 0 {
        return;
    }
    let report = UsageReport {
        event_name: billing.meter_event.clone(),
        customer: customer.to_owned(),
        value: over,
        identifier: format!("ovg-{}-{}-{}", res.key.pk, res.key.sk, res.total_after)
            .replace('#', "_"),
        timestamp: ctx.ports.clock.now_secs(),
    };
    super::overage::send(ctx, &res.key.pk, report).await;
}
