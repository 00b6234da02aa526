//! What the generating tools' calls are estimated to cost, in micro-dollars, from the catalog's
//! price table, before any model call: the helpers their cost rules share. Arguments that do not
//! parse estimate to 0: the tool refuses them itself, before spending anything.

use imagemcp_core::catalog::{self, ModelSpec};
use imagemcp_core::image_params::{ImageSize, Quality};
use serde_json::Value;

use crate::App;

/// The model a call asks for (else the deployment's default), if it is one the catalog offers.
pub(super) fn model_spec(app: &App, args: &Value) -> Option<&'static ModelSpec> {
    let id = args
        .get("model")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| app.ports.model.default_model());
    catalog::usable(id).ok()
}

fn size_quality(size: Option<&str>, quality: Option<&str>) -> Option<(ImageSize, Quality)> {
    let size = match size {
        Some(s) => ImageSize::parse(s).ok()?,
        None => ImageSize::default(),
    };
    let quality = match quality {
        Some(q) => Quality::parse(q).ok()?,
        None => Quality::default(),
    };
    Some((size, quality))
}

/// `n` images of the model, size, quality and mode the arguments ask for (a generation's
/// variations, or an edit's one image).
pub(super) fn images_micros(app: &App, args: &Value, n: u64) -> u64 {
    let Some(spec) = model_spec(app, args) else {
        return 0;
    };
    let text = |k: &str| args.get(k).and_then(Value::as_str);
    let Some((size, quality)) = size_quality(text("size"), text("quality")) else {
        return 0;
    };
    // `auto` renders at what the request's mode allows, as the image service resolves it.
    let budget = imagemcp_engine::parse_mode(text("mode"))
        .ok()
        .flatten()
        .map(|mode| mode.budget_micros());
    let images = u32::try_from(n).unwrap_or(1);
    let quality = spec.resolve_quality(size, quality, images, budget);
    spec.estimate_cost_micros(size, quality).saturating_mul(n)
}
