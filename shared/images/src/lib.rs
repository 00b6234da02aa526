//! The image service: generate, edit, list, read and delete images, and the conversations that
//! chain refinements. Used by the MCP tools and the REST routes alike.
//!
//! Write order is what keeps state whole: moderation and validation first (nothing written), then
//! the model calls, then blobs, then one transaction that records the images, the conversation turn
//! and the usage together. If that transaction fails, the blobs are removed and nothing refers to
//! them; usage is never recorded for a failed call.

pub mod campaign;
mod engine_step;
pub mod imaging;
pub mod job_item;
pub mod params;
pub mod queued;
pub mod record;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::future::join_all;
use imagemcp_billing::Billing;
use imagemcp_billing::quota::Admission;
use imagemcp_core::blob::Blob;
use imagemcp_core::catalog::{self, ModelSpec, RenderParams};
use imagemcp_core::ids::{ConversationId, ImageId};
use imagemcp_core::image_params::{
    Background, ImageSize, ModerationLevel, OutputFormat, Quality, Style,
};
use imagemcp_core::model::{EditRequest, GenerateRequest, InputImage, Refinement, Rendered, Usage};
use imagemcp_core::modes::{Budget, Mode};
use imagemcp_core::prompt::Prompt;
use imagemcp_core::rbac::Action;
use imagemcp_core::table::{Add, Condition, Query, TransactOp};
use imagemcp_core::tier::Tier;
use imagemcp_core::{Error, Result};
use imagemcp_engine::Engine;
use imagemcp_tenancy::{Caller, Ports};
use params::{EditArgs, GenerateArgs, ListArgs, MAX_VARIATIONS};
use record::{ConversationRecord, ImageRecord};

/// A progress report while a request works.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub progress: u32,
    pub total: u32,
    pub message: String,
}

/// Where progress goes: the MCP handler turns it into `notifications/progress`.
pub type ProgressTx = futures::channel::mpsc::UnboundedSender<Progress>;

fn report(tx: Option<&ProgressTx>, progress: u32, total: u32, message: impl Into<String>) {
    if let Some(tx) = tx {
        // A closed receiver means the client went away; the work still completes and is stored.
        let _ = tx.unbounded_send(Progress {
            progress,
            total,
            message: message.into(),
        });
    }
}

/// The outcome of a generate or edit call.
#[derive(Clone, Debug)]
pub struct Generated {
    pub images: Vec<ImageRecord>,
    pub conversation: ConversationRecord,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: u64,
    /// Variations that failed while others succeeded (their errors, shown to the caller).
    pub failed_variations: Vec<String>,
    /// Set when the cache answered: no model call was made and no quota used.
    pub cache: Option<imagemcp_engine::cache::CacheHit>,
    /// The chat previews of `images`, in order, as this call made and stored them, so the result
    /// shows them without reading back what was just written; empty for an answer from the cache
    /// (its previews are read with [`ImageService::preview`]).
    pub previews: Vec<Blob>,
}

/// What the image service runs on: the ports, billing (gates, reservations, retention), the
/// engine (limits, cache, slots, metrics) and its settings. Cheap to clone.
#[derive(Clone)]
pub struct Images {
    pub ports: Ports,
    pub billing: Billing,
    pub engine: Arc<Engine>,
    pub settings: ImageSettings,
}

/// The image service's settings, from the deployment's configuration.
#[derive(Clone, Copy, Debug)]
pub struct ImageSettings {
    /// How long signed download URLs stay valid.
    pub download_url_ttl: std::time::Duration,
    /// The longest edge of the preview returned inline in MCP results, in pixels.
    pub preview_max_edge: u32,
    /// The largest accepted upload (decoded), in bytes.
    pub max_upload_bytes: usize,
}

impl Images {
    /// The image service.
    pub fn service(&self) -> ImageService<'_> {
        ImageService::new(self)
    }

    /// Jobs on the same ports, billing and engine.
    pub fn jobs(&self) -> imagemcp_jobs::Jobs<'_> {
        imagemcp_jobs::Jobs {
            ports: &self.ports,
            billing: &self.billing,
            engine: &self.engine,
        }
    }
}

pub struct ImageService<'a> {
    cx: &'a Images,
}

/// A fully checked render request, shared by generate and edit.
struct Plan {
    spec: &'static ModelSpec,
    prompt: Prompt,
    full_prompt: String,
    params: RenderParams,
    style: Style,
    /// The campaign a batch item belongs to: its cost is attributed to it too (billing).
    campaign: Option<String>,
    /// The job item this generation is for: recorded in the commit of its images.
    job_item: Option<job_item::JobItem>,
    /// When its records expire (the tier's retention, from its admission); `None` keeps them.
    expires_at: Option<i64>,
}

/// What a request's unset settings default to: a refinement keeps the size, format and background
/// of the image it refines.
#[derive(Clone, Copy, Debug, Default)]
struct Inherited {
    size: Option<ImageSize>,
    format: Option<OutputFormat>,
    background: Option<Background>,
}

impl Inherited {
    /// The settings of a stored image, as a refinement of it inherits them.
    fn of(rec: &ImageRecord) -> Self {
        Self {
            size: Some(ImageSize::Fixed {
                width: rec.width,
                height: rec.height,
            }),
            format: OutputFormat::parse(&rec.format).ok(),
            background: Background::parse(&rec.background).ok(),
        }
    }
}

/// A generation resolved before anything is spent: its plan, the conversation it refines, and the
/// mode whose time limit its model calls run within.
struct Generation {
    plan: Plan,
    n: u8,
    mode: Option<Mode>,
    conversation: Option<ConversationRecord>,
    /// Whether the cache may answer it (not `fresh`, not a refinement).
    cacheable: bool,
}

impl Plan {
    /// What `n` images of this plan are estimated to cost (the catalog's price table), for the
    /// budget's hard stop.
    fn estimate_micros(&self, n: u32) -> u64 {
        self.spec
            .estimate_cost_micros(self.params.size, self.params.quality)
            .saturating_mul(u64::from(n))
    }
}

impl<'a> ImageService<'a> {
    pub fn new(cx: &'a Images) -> Self {
        Self { cx }
    }

    /// The model a request may use: the one it names, or the server's default. A server without an
    /// OpenAI key runs only the offline model, and says so.
    fn resolve_model(&self, requested: Option<&str>) -> Result<&'static ModelSpec> {
        let default_id = self.cx.ports.model.default_model();
        let default = catalog::usable(default_id)?;
        let Some(requested) = requested.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(default);
        };
        let spec = catalog::usable(requested)?;
        if spec.offline != default.offline {
            let why = if default.offline {
                "this server runs the offline model (no OpenAI API key is configured); omit `model`"
            } else {
                "the offline model is only used when no OpenAI API key is configured"
            };
            return Err(Error::invalid("model", why));
        }
        Ok(spec)
    }

    /// Checks a request's settings against its model. Unset settings take `inherited`'s values
    /// where they suit the model and the explicit ones, else the defaults; `auto` quality becomes
    /// the concrete quality to render (within `budget`'s mode for `images` renders, whose estimate
    /// it then must fit: refused before any model call otherwise).
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        prompt: &str,
        model: Option<&str>,
        size: Option<ImageSize>,
        quality: Option<Quality>,
        background: Option<Background>,
        format: Option<OutputFormat>,
        compression: Option<u8>,
        style: Option<Style>,
        inherited: Inherited,
        budget: Option<(&Budget, u32)>,
    ) -> Result<Plan> {
        let prompt = Prompt::parse(prompt)?;
        let quality = quality.unwrap_or_default();
        let style = style.unwrap_or_default();
        let spec = self.resolve_model(model)?;
        let size = size
            .or(inherited.size.filter(|s| spec.validate_size(*s).is_ok()))
            .unwrap_or_default();
        let format = format.or(inherited.format).unwrap_or_default();
        // An inherited transparency yields to an explicit format that cannot carry it.
        let background = background
            .or(inherited
                .background
                .filter(|b| *b != Background::Transparent || format.supports_alpha()))
            .unwrap_or_default();
        let images = budget.map_or(1, |(_, n)| n);
        let params = RenderParams {
            size,
            quality: spec.resolve_quality(
                size,
                quality,
                images,
                budget.map(|(budget, _)| budget.micros()),
            ),
            background,
            format,
            compression,
        };
        spec.validate(&params)?;
        if let Some((budget, n)) = budget {
            budget.check(spec, &params, n)?;
        }
        let full_prompt = match style.phrase() {
            Some(phrase) => format!("{}\n\nStyle: {phrase}.", prompt.as_str()),
            None => prompt.as_str().to_owned(),
        };
        if full_prompt.chars().count() > imagemcp_core::prompt::MAX_PROMPT_CHARS {
            return Err(Error::invalid(
                "prompt",
                "is too long once the style preset is added",
            ));
        }
        Ok(Plan {
            spec,
            prompt,
            full_prompt,
            params,
            style,
            campaign: None,
            job_item: None,
            expires_at: None,
        })
    }

    async fn moderate(&self, prompt: &str) -> Result<()> {
        let verdict = self.cx.ports.model.moderate(prompt).await?;
        if verdict.flagged {
            let list = verdict.categories.join(", ");
            return Err(Error::PolicyViolation {
                reason: format!("the prompt was flagged ({list}); rephrase it and try again"),
                categories: verdict.categories,
            });
        }
        Ok(())
    }

    /// Generates images within the organisation's plan. One admission (the plan read once, the
    /// tier's gates, then a reservation settled to what was stored) and one engine step (the
    /// cache, rate limits, render slots, metrics) frame the model calls of
    /// [`Self::generate_admitted`].
    pub async fn generate(
        &self,
        caller: &Caller,
        mut args: GenerateArgs,
        progress: Option<&ProgressTx>,
    ) -> Result<Generated> {
        caller.authorize(Action::Generate)?;
        let n = u32::from(args.n.unwrap_or(1).clamp(1, MAX_VARIATIONS));
        // A cached answer is still within the plan's gates (variations, mode).
        let admission = Admission::open(&self.cx.billing, caller, n, args.mode).await?;
        let mut job = self
            .resolve_generation(caller, &args, admission.budget())
            .await?;
        // The cache answers first, so a hit reserves nothing; its lookup runs the prompt's
        // moderation alongside, so a miss has the prompt checked already.
        let started = self.cx.ports.clock.now_ms();
        let cacheable = job.cacheable.then(|| imagemcp_engine::cache::Request {
            prompt: job.plan.prompt.normalized(),
            model: job.plan.spec.id,
            params: job.plan.params,
            style: job.plan.style.as_str(),
            n: job.n,
        });
        let moderation = self.moderate(&job.plan.full_prompt);
        let (hit, probe) =
            engine_step::from_cache(self.cx, caller, cacheable, moderation, started).await?;
        if let Some(hit) = hit {
            return Ok(hit);
        }
        // A job item's holds are recorded per item (a redelivery adopts them) and settled by the
        // commit of its images.
        let item_hold = args.job_item.as_ref().map(|item| item.commit.hold_key());
        let metered = admission
            .reserve(
                &self.cx.billing,
                caller,
                job.plan.estimate_micros(n),
                item_hold,
            )
            .await?;
        if let Some(item) = args.job_item.as_mut() {
            item.commit.hold = metered.item_hold().cloned();
        }
        job.plan.job_item = args.job_item.take();
        job.plan.expires_at = admission.retention_expiry(&self.cx.billing);
        let moderated = probe.is_some();
        let result = self
            .generate_admitted(caller, job, admission.tier(), moderated, progress)
            .await;
        metered
            .settle(
                &self.cx.billing,
                result.as_ref().map_or(0, |g| g.images.len()),
            )
            .await;
        engine_step::finished(self.cx, caller, "generate", started, probe, &result).await;
        result
    }

    /// Edits images within the organisation's plan, admitted like [`Self::generate`]; edits are
    /// measured but never cached (their inputs are images).
    pub async fn edit(
        &self,
        caller: &Caller,
        args: EditArgs,
        progress: Option<&ProgressTx>,
    ) -> Result<Generated> {
        caller.authorize(Action::Edit)?;
        let admission = Admission::open(&self.cx.billing, caller, 1, None).await?;
        let started = self.cx.ports.clock.now_ms();
        let mut plan = self.edit_plan(&args, admission.budget())?;
        plan.expires_at = admission.retention_expiry(&self.cx.billing);
        let metered = admission
            .reserve(&self.cx.billing, caller, plan.estimate_micros(1), None)
            .await?;
        let result = self
            .edit_admitted(caller, args, plan, admission.tier(), progress)
            .await;
        metered
            .settle(
                &self.cx.billing,
                result.as_ref().map_or(0, |g| g.images.len()),
            )
            .await;
        engine_step::finished(self.cx, caller, "edit", started, None, &result).await;
        result
    }

    /// A generation's request resolved and checked before anything is spent: `n`, the conversation
    /// a refinement continues (and the settings it inherits from its last image), the plan with
    /// its concrete quality within `budget`'s mode, and that mode's budget.
    async fn resolve_generation(
        &self,
        caller: &Caller,
        args: &GenerateArgs,
        budget: Option<&Budget>,
    ) -> Result<Generation> {
        let n = args.n.unwrap_or(1);
        if !(1..=MAX_VARIATIONS).contains(&n) {
            return Err(Error::invalid(
                "n",
                format!("must be 1 to {MAX_VARIATIONS}, got {n}"),
            ));
        }
        let mode = args.mode;
        let conversation = match args.conversation_id.as_deref() {
            Some(id) => Some(
                self.conversation(caller, &ConversationId::parse(id)?)
                    .await?,
            ),
            None => None,
        };
        let inherited = match &conversation {
            // A refined image that is gone leaves nothing to inherit; the refinement itself then
            // continues from the provider's response id or says the image is missing.
            Some(conv) => match self.get(caller, &conv.last_image_id).await {
                Ok(rec) => Inherited::of(&rec),
                Err(Error::NotFound { .. } | Error::Gone { .. }) => Inherited::default(),
                Err(e) => return Err(e),
            },
            None => Inherited::default(),
        };
        let mut plan = self.plan(
            &args.prompt,
            args.model.as_deref(),
            args.size,
            args.quality,
            args.background,
            args.output_format,
            args.output_compression,
            args.style,
            inherited,
            budget.map(|b| (b, u32::from(n))),
        )?;
        plan.campaign = args.campaign.clone();
        Ok(Generation {
            plan,
            n,
            mode,
            cacheable: args.fresh != Some(true) && conversation.is_none(),
            conversation,
        })
    }

    /// An edit's validated settings (edits take no style).
    fn edit_plan(&self, args: &EditArgs, budget: Option<&Budget>) -> Result<Plan> {
        self.plan(
            &args.prompt,
            args.model.as_deref(),
            args.size,
            args.quality,
            args.background,
            args.output_format,
            args.output_compression,
            None,
            Inherited::default(),
            budget.map(|b| (b, 1)),
        )
    }

    /// Generates 1 to 4 variations in parallel, optionally refining a conversation's last image,
    /// for a request admitted under `tier`. `moderated`: the prompt already passed moderation
    /// (alongside the cache lookup).
    async fn generate_admitted(
        &self,
        caller: &Caller,
        job: Generation,
        tier: Tier,
        moderated: bool,
        progress: Option<&ProgressTx>,
    ) -> Result<Generated> {
        let Generation {
            plan,
            n,
            mode,
            conversation,
            ..
        } = job;
        // Rate limits before any model call; the tier also sets the concurrency.
        engine_step::admit(self.cx, caller, tier, u32::from(n)).await?;
        let total = u32::from(n) + 2;
        report(progress, 0, total, "checking the prompt");
        if !moderated {
            self.moderate(&plan.full_prompt).await?;
        }

        let refine = match &conversation {
            Some(conv) => Some(self.refinement(caller, conv).await?),
            None => None,
        };
        report(
            progress,
            1,
            total,
            format!("rendering {n} image(s) with {}", plan.spec.id),
        );
        // The organisation's concurrency, for this request and across all of its requests and
        // batch items on this instance.
        let limit = self.cx.engine.concurrency(tier);
        let done = AtomicU32::new(0);
        let renders = (0..n).map(|i| {
            let req = GenerateRequest {
                model: plan.spec.id.to_owned(),
                prompt: plan.full_prompt.clone(),
                params: plan.params,
                moderation: ModerationLevel::Auto,
                seed: u64::from(i),
                safety_identifier: Some(caller.safety_identifier()),
                refine: refine.clone(),
            };
            let done = &done;
            async move {
                let result = {
                    let _slot = self.cx.engine.render_slot(&caller.org, limit).await;
                    self.cx.ports.model.generate(req).await
                };
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                report(
                    progress,
                    1 + finished,
                    total,
                    format!("{finished} of {n} rendered"),
                );
                result
            }
        });
        // Variations run up to the organisation's concurrency, within the mode's time limit;
        // each reports progress as it finishes.
        let all = futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffer_unordered(
            futures::stream::iter(renders),
            limit,
        ));
        let results = self.cx.engine.within_mode(mode, all).await?;
        self.store(
            caller,
            &plan,
            results,
            conversation,
            Vec::new(),
            "generate",
            progress,
            total,
        )
        .await
    }

    /// Edits one or more images (stored or uploaded) with an optional mask, for a request
    /// admitted under `tier`.
    async fn edit_admitted(
        &self,
        caller: &Caller,
        args: EditArgs,
        plan: Plan,
        tier: Tier,
        progress: Option<&ProgressTx>,
    ) -> Result<Generated> {
        let count = args.image_ids.len() + args.images_base64.len();
        if count == 0 {
            return Err(Error::invalid(
                "image_ids",
                "give at least one image (image_ids or images_base64)",
            ));
        }
        if count > 16 {
            return Err(Error::invalid(
                "image_ids",
                format!("at most 16 images in all, got {count}"),
            ));
        }
        let max = self.cx.settings.max_upload_bytes;
        let mut images = Vec::with_capacity(count);
        let mut parents = Vec::new();
        let mut conversation = None;
        for (i, raw) in args.image_ids.iter().enumerate() {
            let field = format!("image_ids[{i}]");
            let id = ImageId::parse_as(&field, raw)?;
            let (rec, blob) = self.content(caller, &id).await?;
            if conversation.is_none() {
                conversation = Some(self.conversation(caller, &rec.conversation_id).await?);
            }
            let format = OutputFormat::parse(&rec.format)?;
            images.push(InputImage {
                bytes: blob.bytes,
                format,
            });
            parents.push(id);
        }
        for (i, b64) in args.images_base64.iter().enumerate() {
            let field = format!("images_base64[{i}]");
            let bytes = imaging::decode_base64(&field, b64)?;
            images.push(imaging::check_upload(&field, bytes, max)?);
        }
        let mask = match args.mask_base64.as_deref() {
            Some(b64) => {
                let mask = imaging::decode_base64("mask_base64", b64)?;
                if mask.len() > 4 * 1024 * 1024 {
                    return Err(Error::invalid("mask_base64", "must be under 4 MB"));
                }
                imaging::check_mask(&mask, &images[0]).map_err(|e| match e {
                    Error::Invalid { reason, .. } => Error::invalid("mask_base64", reason),
                    other => other,
                })?;
                Some(mask)
            }
            None => None,
        };
        // Rate limits before any model call.
        engine_step::admit(self.cx, caller, tier, 1).await?;
        let total = 3;
        report(progress, 0, total, "checking the prompt");
        self.moderate(&plan.full_prompt).await?;
        report(progress, 1, total, format!("editing with {}", plan.spec.id));
        let req = EditRequest {
            model: plan.spec.id.to_owned(),
            prompt: plan.full_prompt.clone(),
            images,
            mask,
            params: plan.params,
            seed: 0,
            safety_identifier: Some(caller.safety_identifier()),
        };
        let result = self.cx.ports.model.edit(req).await;
        report(progress, 2, total, "edited");
        // An edit of uploads starts a new conversation; an edit of a stored image continues its own.
        self.store(
            caller,
            &plan,
            vec![result],
            conversation,
            parents,
            "edit",
            progress,
            total,
        )
        .await
    }

    async fn refinement(&self, caller: &Caller, conv: &ConversationRecord) -> Result<Refinement> {
        let previous_image = if conv.last_response_id.is_none() {
            let (rec, blob) = self.content(caller, &conv.last_image_id).await?;
            Some(InputImage {
                bytes: blob.bytes,
                format: OutputFormat::parse(&rec.format)?,
            })
        } else {
            None
        };
        Ok(Refinement {
            previous_response_id: conv.last_response_id.clone(),
            previous_image,
            previous_prompt: Some(conv.last_prompt.clone()),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        caller: &Caller,
        plan: &Plan,
        results: Vec<Result<Rendered>>,
        conversation: Option<ConversationRecord>,
        parents: Vec<ImageId>,
        source: &str,
        progress: Option<&ProgressTx>,
        total: u32,
    ) -> Result<Generated> {
        let mut rendered = Vec::new();
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(r) => rendered.push(r),
                Err(e) => failures.push(e),
            }
        }
        if rendered.is_empty() {
            return Err(failures
                .into_iter()
                .next()
                .unwrap_or_else(|| Error::internal("no result")));
        }
        let ports = &self.cx.ports;
        let now = ports.clock.now_ms();
        let conv_id = conversation
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_else(|| ConversationId::generate(&*ports.ids));
        let turn = conversation.as_ref().map_or(1, |c| c.turns + 1);

        let mut records = Vec::with_capacity(rendered.len());
        let mut blobs = Vec::new();
        let mut previews = Vec::with_capacity(rendered.len());
        let mut usage = Usage::default();
        let mut cost = 0u64;
        for r in &rendered {
            let image = &r.image;
            if OutputFormat::sniff(&image.bytes) != Some(image.format) {
                return Err(Error::Unavailable(
                    "the model returned an image that does not decode".into(),
                ));
            }
            let (width, height) = imaging::dimensions(&image.bytes).ok_or_else(|| {
                Error::Unavailable("the model returned an image that does not decode".into())
            })?;
            let (preview, preview_mime) =
                imaging::preview(&image.bytes, self.cx.settings.preview_max_edge)?;
            let id = ImageId::generate(&*ports.ids);
            let (blob_key, preview_key) =
                record::blob_keys(&caller.org, &id, image.format.extension())?;
            let image_cost = if r.usage == Usage::default() {
                plan.spec
                    .estimate_cost_micros(plan.params.size, plan.params.quality)
            } else {
                r.usage.cost_micros(&plan.spec.rates)
            };
            usage.add(&r.usage);
            cost += image_cost;
            records.push(ImageRecord {
                id,
                prompt: plan.prompt.as_str().to_owned(),
                source: source.to_owned(),
                model: r.model.clone(),
                width,
                height,
                format: image.format.as_str().to_owned(),
                mime_type: image.format.mime().to_owned(),
                quality: plan.params.quality.as_str().to_owned(),
                background: plan.params.background.as_str().to_owned(),
                style: (plan.style != Style::None).then(|| plan.style.as_str().to_owned()),
                size_bytes: image.bytes.len() as u64,
                conversation_id: conv_id.clone(),
                turn,
                created_by: Some(caller.user.clone()),
                parent_image_ids: parents.clone(),
                revised_prompt: image.revised_prompt.clone(),
                usage: r.usage,
                cost_micros: image_cost,
                blob_key: blob_key.as_str().to_owned(),
                preview_key: preview_key.as_str().to_owned(),
                preview_mime_type: preview_mime.to_owned(),
                created_at_ms: now,
                file_name: plan
                    .job_item
                    .as_ref()
                    .and_then(|item| item.file_name(image.format.extension())),
            });
            blobs.push((blob_key, image.bytes.clone(), image.format.mime()));
            previews.push(Blob {
                bytes: preview.clone(),
                content_type: preview_mime.to_owned(),
            });
            blobs.push((preview_key, preview, preview_mime));
        }

        let puts = join_all(
            blobs
                .iter()
                .map(|(key, bytes, mime)| ports.blobs.put(key, bytes.clone(), mime)),
        )
        .await;
        let failed_variations: Vec<String> = failures
            .iter()
            .map(imagemcp_tenancy::error::public_message)
            .collect();
        let result = match puts.into_iter().collect::<Result<Vec<()>>>() {
            Ok(_) => {
                let outcome = job_item::ItemOutcome {
                    images: &records,
                    conversation_id: &conv_id,
                    model: &records[0].model,
                    cost_micros: cost,
                    usage,
                    failed_variations: &failed_variations,
                };
                self.commit(
                    caller,
                    plan,
                    &records,
                    &rendered,
                    conversation,
                    &conv_id,
                    turn,
                    now,
                    cost,
                    &outcome,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let conversation = match result {
            Ok(conv) => conv,
            Err(e) => {
                // Nothing refers to these blobs: remove them so a failed call leaves no trace.
                for (key, _, _) in &blobs {
                    if let Err(cleanup) = ports.blobs.delete(key).await {
                        tracing::warn!(key = key.as_str(), error = %cleanup, "orphan blob left after a failed write");
                    }
                }
                return Err(e);
            }
        };
        report(progress, total, total, "stored");
        tracing::info!(
            org = %caller.org, images = records.len(), model = %records[0].model, cost_micros = cost,
            output_tokens = usage.output_image_tokens, source, "images stored"
        );
        Ok(Generated {
            model: records[0].model.clone(),
            images: records,
            conversation,
            usage,
            cost_micros: cost,
            failed_variations,
            cache: None,
            previews,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        caller: &Caller,
        plan: &Plan,
        records: &[ImageRecord],
        rendered: &[Rendered],
        previous: Option<ConversationRecord>,
        conv_id: &ConversationId,
        turn: u32,
        now: i64,
        cost: u64,
        outcome: &job_item::ItemOutcome<'_>,
    ) -> Result<ConversationRecord> {
        let org = &caller.org;
        let crypto = imagemcp_tenancy::crypto::Crypto::new(&self.cx.ports);
        // Free keeps images and conversations 30 days (the Table's TTL), as admitted.
        let expires = plan.expires_at;
        let keep = |item: imagemcp_core::table::Item| match expires {
            Some(at) => item.with_ttl(at),
            None => item,
        };
        let mut ops = Vec::new();
        for rec in records {
            let mut item = keep(record::to_item(record::image_key(org, &rec.id), rec)?);
            crypto.seal_item(&mut item, record::IMAGE_SEALED).await?;
            ops.push(TransactOp::Put(item, Condition::NotExists));
        }
        // The bytes expire with the records: an index item, in this transaction, for the sweep
        // that deletes them (`billing::retention`).
        if let Some(at) = expires {
            let keys = records
                .iter()
                .flat_map(|r| [&r.blob_key, &r.preview_key])
                .map(|k| imagemcp_core::blob::BlobKey::parse(k))
                .collect::<Result<Vec<_>>>()?;
            ops.push(imagemcp_billing::retention::index_op(
                org,
                &records[0].id,
                at,
                &keys.iter().collect::<Vec<_>>(),
            ));
        }
        let title: String = plan.prompt.as_str().chars().take(80).collect();
        let conversation = ConversationRecord {
            id: conv_id.clone(),
            title: previous.as_ref().map_or(title, |p| p.title.clone()),
            turns: turn,
            last_prompt: plan.prompt.as_str().to_owned(),
            last_image_id: records[0].id.clone(),
            last_response_id: rendered[0].response_id.clone(),
            model: records[0].model.clone(),
            created_at_ms: previous.as_ref().map_or(now, |p| p.created_at_ms),
            updated_at_ms: now,
        };
        let cond = match &previous {
            // Optimistic concurrency: two refinements racing on one turn cannot both win.
            Some(p) => Condition::AttrEquals("turns".into(), serde_json::json!(p.turns)),
            None => Condition::NotExists,
        };
        let mut conv_item = keep(record::to_item(
            record::conversation_key(org, conv_id),
            &conversation,
        )?);
        crypto
            .seal_item(&mut conv_item, record::CONVERSATION_SEALED)
            .await?;
        ops.push(TransactOp::Put(conv_item, cond));
        let month = record::month_of(now);
        let output_tokens: u64 = records.iter().map(|r| r.usage.output_image_tokens).sum();
        for (counter, delta) in [
            ("images", records.len() as u64),
            ("output_tokens", output_tokens),
            ("cost_micros", cost),
        ] {
            ops.push(TransactOp::Add(Add {
                key: record::usage_key(org, &month, counter),
                attr: "value".into(),
                delta: i64::try_from(delta).unwrap_or(i64::MAX),
                max: None,
                expires_at: None,
            }));
        }
        // Billing: the cost attributed to the user, the team and the campaign too, in this
        // transaction.
        ops.extend(imagemcp_billing::budget::attribution_ops(
            caller,
            &month,
            cost,
            plan.campaign.as_deref(),
        ));
        // A job item is done with its images, in this transaction (and its holds settled).
        if let Some(item) = &plan.job_item {
            ops.extend(item.ops(outcome, now)?);
        }
        let event = imagemcp_tenancy::audit::Event::by(
            caller,
            if records[0].source == "edit" {
                "image.edit"
            } else {
                "image.generate"
            },
        )
        .target(&records[0].id)
        .detail(
            "image_ids",
            serde_json::json!(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()),
        )
        .detail("conversation_id", serde_json::json!(conv_id))
        .detail("model", serde_json::json!(records[0].model))
        .detail("cost_micros", serde_json::json!(cost));
        imagemcp_tenancy::audit::commit(&self.cx.ports, &event, ops)
            .await
            .map_err(|e| match e {
                Error::Conflict(_) => {
                    Error::Conflict("the conversation changed while this request ran; retry".into())
                }
                other => other,
            })?;
        Ok(conversation)
    }

    /// An image's metadata, "gone" for a deleted one and "not found" for one never seen (or another
    /// org's: no existence oracle).
    pub async fn get(&self, caller: &Caller, id: &ImageId) -> Result<ImageRecord> {
        caller.authorize(Action::ViewImages)?;
        let table = &self.cx.ports.table;
        match table.get(&record::image_key(&caller.org, id)).await? {
            Some(mut item) => {
                imagemcp_tenancy::crypto::Crypto::new(&self.cx.ports)
                    .open_item(&mut item, record::IMAGE_SEALED)
                    .await?;
                record::from_item(item)
            }
            None if table
                .get(&record::tombstone_key(&caller.org, id))
                .await?
                .is_some() =>
            {
                Err(Error::Gone {
                    what: format!("image {id}"),
                })
            }
            None => Err(Error::not_found(format!("image {id}"))),
        }
    }

    /// An image's metadata and full bytes.
    pub async fn content(&self, caller: &Caller, id: &ImageId) -> Result<(ImageRecord, Blob)> {
        let rec = self.get(caller, id).await?;
        let blob = self.blob(&rec.blob_key).await?;
        Ok((rec, blob))
    }

    /// The chat-sized preview of an image.
    pub async fn preview(&self, rec: &ImageRecord) -> Result<Blob> {
        self.blob(&rec.preview_key).await
    }

    async fn blob(&self, key: &str) -> Result<Blob> {
        let key = imagemcp_core::blob::BlobKey::parse(key)?;
        self.cx.ports.blobs.get(&key).await?.ok_or_else(|| {
            tracing::error!(
                key = key.as_str(),
                "image metadata refers to a missing blob"
            );
            Error::Unavailable("the image file is missing from storage".into())
        })
    }

    /// A time-limited download URL for the full image, where the blob store can make one; the
    /// download is saved under the image's file name ([`ImageRecord::download_name`]).
    pub async fn download_url(&self, rec: &ImageRecord) -> Result<Option<String>> {
        let key = imagemcp_core::blob::BlobKey::parse(&rec.blob_key)?;
        let name = imagemcp_core::blob::FileName::parse(&rec.download_name()).ok();
        self.cx
            .ports
            .blobs
            .signed_url(&key, self.cx.settings.download_url_ttl, name.as_ref())
            .await
    }

    /// Deletes an image: its metadata (leaving a tombstone) in one transaction, then its blobs.
    pub async fn delete(&self, caller: &Caller, id: &ImageId) -> Result<ImageRecord> {
        let rec = self.get(caller, id).await?;
        let own = rec.created_by.as_ref() == Some(&caller.user);
        caller.authorize(if own {
            Action::DeleteOwn
        } else {
            Action::DeleteAny
        })?;
        let now = self.cx.ports.clock.now_secs();
        let mut tomb = imagemcp_core::table::Item::new(
            record::tombstone_key(&caller.org, id),
            record::no_attrs(),
        );
        tomb.expires_at = Some(now + record::TOMBSTONE_TTL_SECS);
        let event = imagemcp_tenancy::audit::Event::by(caller, "image.delete")
            .target(id)
            .detail("own", serde_json::json!(own));
        imagemcp_tenancy::audit::commit(
            &self.cx.ports,
            &event,
            vec![
                TransactOp::Delete(record::image_key(&caller.org, id), Condition::Exists),
                TransactOp::Put(tomb, Condition::None),
            ],
        )
        .await
        .map_err(|e| match e {
            Error::Conflict(_) => Error::Gone {
                what: format!("image {id}"),
            },
            other => other,
        })?;
        for key in [&rec.blob_key, &rec.preview_key] {
            let key = imagemcp_core::blob::BlobKey::parse(key)?;
            if let Err(e) = self.cx.ports.blobs.delete(&key).await {
                tracing::warn!(key = key.as_str(), error = %e, "blob of a deleted image not removed");
            }
        }
        tracing::info!(org = %caller.org, image = %id, "image deleted");
        Ok(rec)
    }

    /// A page of images, newest first.
    pub async fn list(
        &self,
        caller: &Caller,
        args: &ListArgs,
    ) -> Result<(Vec<ImageRecord>, Option<String>)> {
        self.page(caller, "IMG#", args).await
    }

    /// A page of conversations, newest first.
    pub async fn list_conversations(
        &self,
        caller: &Caller,
        args: &ListArgs,
    ) -> Result<(Vec<ConversationRecord>, Option<String>)> {
        self.page(caller, "CONV#", args).await
    }

    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        caller: &Caller,
        prefix: &str,
        args: &ListArgs,
    ) -> Result<(Vec<T>, Option<String>)> {
        caller.authorize(Action::ViewImages)?;
        let mut query = Query::new(record::org_pk(&caller.org), prefix, args.limit()?);
        query.descending = true;
        // The table's cursor is opaque to us and checked by the adapter; tables are partitioned by
        // org, so a cursor can never reach another org's items.
        query.cursor = args.cursor.clone();
        let page = self.cx.ports.table.query(&query).await?;
        let next = page.next;
        let sealed = if prefix == "CONV#" {
            record::CONVERSATION_SEALED
        } else {
            record::IMAGE_SEALED
        };
        let crypto = imagemcp_tenancy::crypto::Crypto::new(&self.cx.ports);
        let mut items = Vec::with_capacity(page.items.len());
        for mut item in page.items {
            crypto.open_item(&mut item, sealed).await?;
            items.push(record::from_item(item)?);
        }
        Ok((items, next))
    }

    /// A conversation of the caller's org.
    pub async fn conversation(
        &self,
        caller: &Caller,
        id: &ConversationId,
    ) -> Result<ConversationRecord> {
        caller.authorize(Action::ViewImages)?;
        let item = self
            .cx
            .ports
            .table
            .get(&record::conversation_key(&caller.org, id))
            .await?;
        let Some(mut item) = item else {
            return Err(Error::not_found(format!("conversation {id}")));
        };
        imagemcp_tenancy::crypto::Crypto::new(&self.cx.ports)
            .open_item(&mut item, record::CONVERSATION_SEALED)
            .await?;
        record::from_item(item)
    }
}
