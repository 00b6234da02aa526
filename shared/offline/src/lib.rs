//! The offline `ImageModel`: deterministic procedural images, local moderation and alt text, with no
//! network and no API key. It is the embedded default when no OpenAI key is configured.
//!
//! A picture is a pure function of the normalised prompt, the seed and the parameters: the prompt's
//! colour words pick the palette (in order of mention, "a red logo on a blue background" is a red
//! subject on blue), its subject words pick what is drawn (a disc, sun, mountains, logo badge,
//! waves, heart, star, skyline, flower, tree, or an abstract composition), and a PRNG seeded from
//! SHA-256 of the prompt and seed fills in the rest. Response ids record what was drawn, so a
//! refinement keeps the composition and only changes what the new prompt names.

mod codec;
mod colour;
mod describe;
mod edit;
mod intent;
mod moderation;
mod pool;
mod raster;
mod rng;
mod scene;
mod words;

use image::imageops::FilterType;
use image::{ImageFormat, RgbaImage};
use imagemcp_core::catalog::{self, OFFLINE_MODEL, RenderParams};
use imagemcp_core::image_params::{Background, ImageSize, Quality};
use imagemcp_core::model::{
    EditRequest, GenerateRequest, ImageModel, InputImage, Moderation, Refinement, Rendered,
    RenderedImage, Usage,
};
use imagemcp_core::prompt::Prompt;
use imagemcp_core::{Error, Result};

use intent::Intent;
use scene::Frame;

/// Every offline response id starts with this; the rest is the drawn [`Intent`] and a render hash.
const RESPONSE_PREFIX: &str = "offline_resp_";

/// The offline image model. Stateless: every answer is computed from the request alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct OfflineModel;

impl OfflineModel {
    pub fn new() -> Self {
        OfflineModel
    }
}

#[async_trait::async_trait]
impl ImageModel for OfflineModel {
    fn default_model(&self) -> &str {
        OFFLINE_MODEL
    }

    async fn generate(&self, req: GenerateRequest) -> Result<Rendered> {
        off_thread(move || generate(&req)).await
    }

    async fn edit(&self, req: EditRequest) -> Result<Rendered> {
        off_thread(move || edit(&req)).await
    }

    async fn moderate(&self, text: &str) -> Result<Moderation> {
        Ok(moderation::moderate(text))
    }

    async fn describe(&self, image: &InputImage) -> Result<String> {
        let bytes = image.bytes.clone();
        off_thread(move || Ok(describe::describe(&codec::decode(&bytes, "image", None)?))).await
    }
}

/// Runs CPU-bound work (tens of milliseconds per megapixel) on the render threads (`pool`), so it
/// never stalls the request-serving threads and at most one job per core runs at once.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    pool::run(work).await?
}

fn generate(req: &GenerateRequest) -> Result<Rendered> {
    let prompt = Prompt::parse(&req.prompt)?.normalized();
    let p = &req.params;
    let transparent = p.background == Background::Transparent;
    if transparent && !p.format.supports_alpha() {
        return Err(Error::invalid(
            "background",
            "transparent needs output_format png or webp",
        ));
    }
    let (width, height) = p.size.dimensions();
    codec::check_size(width, height)?;
    let intent = match req
        .refine
        .as_ref()
        .and_then(|r| previous_intent(r, &prompt))
    {
        Some(previous) => previous.refined(&words::parse(&prompt)),
        None => Intent::from_prompt(&prompt),
    };
    let frame = Frame {
        width,
        height,
        detail: scene::detail(p.quality),
        transparent,
    };
    let (canvas, pal) = scene::render(&intent, req.seed, frame);
    let img = RgbaImage::from_raw(width, height, canvas.px)
        .ok_or_else(|| Error::internal("canvas size mismatch"))?;
    let bytes = codec::encode(&img, p.format, p.compression, !transparent)?;
    let (subject, background) = (scene::name(pal.subject), scene::name(pal.background));
    let on = if transparent {
        "a transparent".to_owned()
    } else {
        article(background)
    };
    let revised = format!(
        "{} {} on {on} background, drawn offline.",
        capitalised(&article(subject)),
        intent.kind.noun()
    );
    Ok(Rendered {
        image: RenderedImage {
            bytes,
            format: p.format,
            width,
            height,
            revised_prompt: Some(revised),
        },
        model: OFFLINE_MODEL.to_owned(),
        usage: usage(width, height, p.quality),
        response_id: Some(response_id(&intent.for_turn(req.seed), p, &prompt)),
    })
}

/// What the turn being refined drew: read back from its response id when it is ours, else from its
/// prompt, else from its image's dominant colours. `None` when none of these is usable, and the new
/// prompt is then drawn afresh.
fn previous_intent(r: &Refinement, prompt: &str) -> Option<Intent> {
    let from_id = r
        .previous_response_id
        .as_deref()
        .and_then(|id| id.strip_prefix(RESPONSE_PREFIX))
        .and_then(Intent::decode);
    if from_id.is_some() {
        return from_id;
    }
    if let Some(previous) = r
        .previous_prompt
        .as_deref()
        .and_then(|p| Prompt::parse(p).ok())
    {
        return Some(Intent::from_prompt(&previous.normalized()));
    }
    // A previous image that does not decode only loses its palette: the new prompt still renders.
    let image = codec::decode(&r.previous_image.as_ref()?.bytes, "previous_image", None).ok()?;
    let colours = describe::dominant(&image);
    let mut intent = Intent::from_prompt(prompt);
    intent.background = colours.first().map(|c| c.1);
    intent.subject = colours.get(1).map(|c| c.1);
    Some(intent)
}

/// Edits the first image; the others (reference images for the hosted models) are not used.
fn edit(req: &EditRequest) -> Result<Rendered> {
    let prompt = Prompt::parse(&req.prompt)?.normalized();
    let p = &req.params;
    let transparent = p.background == Background::Transparent;
    if transparent && !p.format.supports_alpha() {
        return Err(Error::invalid(
            "background",
            "transparent needs output_format png or webp",
        ));
    }
    let first = req
        .images
        .first()
        .ok_or_else(|| Error::invalid("image", "at least one image is required"))?;
    let mut img = codec::decode(&first.bytes, "image", None)?;
    let (iw, ih) = img.dimensions();
    let mask = match &req.mask {
        Some(bytes) => {
            let mask = codec::decode(bytes, "mask", Some(ImageFormat::Png))?;
            if mask.dimensions() != (iw, ih) {
                return Err(Error::invalid(
                    "mask",
                    format!("must have the same dimensions as the image ({iw}x{ih})"),
                ));
            }
            Some(mask)
        }
        None => None,
    };
    let (width, height) = match p.size {
        ImageSize::Auto => fit(iw, ih),
        ImageSize::Fixed { width, height } => (width, height),
    };
    codec::check_size(width, height)?;

    let intent = Intent::from_prompt(&prompt);
    let overlay = words::parse(&prompt).kind.is_some();
    let step = edit::Edit {
        intent: &intent,
        seed: req.seed,
        detail: scene::detail(p.quality),
        transparent,
        overlay,
    };
    step.apply(&mut img, mask.as_ref());
    if (width, height) != (iw, ih) {
        img = image::imageops::resize(&img, width, height, FilterType::Triangle);
    }
    // Opaque output when asked for, when the format has no alpha, or when nothing is transparent
    // anyway (which also makes the file smaller).
    let opaque = !p.format.supports_alpha()
        || p.background == Background::Opaque
        || (p.background == Background::Auto && img.pixels().all(|px| px.0[3] == 255));
    if opaque {
        codec::flatten(&mut img, colour::WHITE);
    }
    let bytes = codec::encode(&img, p.format, p.compression, opaque)?;
    Ok(Rendered {
        image: RenderedImage {
            bytes,
            format: p.format,
            width,
            height,
            revised_prompt: None,
        },
        model: OFFLINE_MODEL.to_owned(),
        usage: usage(width, height, p.quality),
        response_id: Some(response_id(&intent.for_turn(req.seed), p, &prompt)),
    })
}

/// An input's size, scaled down (keeping its shape) to fit what the model draws: `auto` on a
/// 4032x3024 photo gives a picture that can be stored and shown, not an error.
fn fit(w: u32, h: u32) -> (u32, u32) {
    let pixels = u64::from(w) * u64::from(h);
    if w <= codec::MAX_EDGE && h <= codec::MAX_EDGE && pixels <= codec::MAX_PIXELS {
        return (w, h);
    }
    let by_edge = f64::from(codec::MAX_EDGE) / f64::from(w.max(h));
    let by_area = (codec::MAX_PIXELS as f64 / pixels as f64).sqrt();
    let scale = by_edge.min(by_area);
    let side = |v: u32| ((f64::from(v) * scale).floor() as u32).max(1);
    (side(w), side(h))
}

/// Usage as the product records it: no input tokens, and the output tokens the same render would
/// cost on a hosted model (at the offline model's zero rates, so the cost stays 0).
fn usage(width: u32, height: u32, quality: Quality) -> Usage {
    let size = ImageSize::Fixed { width, height };
    let tokens =
        catalog::lookup(OFFLINE_MODEL).map_or(0, |m| m.estimate_output_tokens(size, quality));
    Usage {
        output_image_tokens: tokens,
        total_tokens: tokens,
        ..Usage::default()
    }
}

/// `offline_resp_` + the drawn intent (so a refinement can continue from the id alone) + 16 hex
/// digits of a hash of everything else in the request (so different renders get different ids).
fn response_id(intent: &Intent, p: &RenderParams, prompt: &str) -> String {
    let code = intent.encode();
    let params = format!(
        "{}|{}|{}|{}|{:?}",
        p.size, p.quality, p.background, p.format, p.compression
    );
    let render = rng::hash64(&[code.as_bytes(), params.as_bytes(), prompt.as_bytes()]);
    format!("{RESPONSE_PREFIX}{code}{render:016x}")
}

/// "a red" or "an orange".
fn article(word: &str) -> String {
    let an = word.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {word}", if an { "an" } else { "a" })
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests;
