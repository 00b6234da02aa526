//! The Images API: `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart, or
//! the JSON form with data URLs), with optional server-sent-event streaming.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imagemcp_core::image_params::ModerationLevel;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{RequestId, parse_json_object, summarize};
use crate::moderation::{blocked, classify};
use crate::params::{self, Endpoint, Fields, ImageJob, image_tokens, images_usage, text_tokens};
use crate::render::{Canvas, render, seed};
use crate::state::{RecordedFile, RecordedRequest, State};
use crate::upload::{self, Upload};

const GENERATION_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "stream",
    "partial_images",
    "user",
    "safety_identifier",
    "complexity",
];

const EDIT_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "input_fidelity",
    "stream",
    "partial_images",
    "user",
    "safety_identifier",
    "complexity",
];

pub(crate) async fn generations(
    AxumState(state): AxumState<Arc<State>>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = parse_json_object(&body)?;
    let fields = Fields::json(&map);
    state
        .admit(record(
            &request_id,
            &fields,
            Value::Object(map.clone()),
            vec![],
        ))
        .await?;
    fields.only(GENERATION_FIELDS)?;
    let spec = params::image_model(&fields, None)?;
    let prompt = params::prompt(&fields)?;
    let job = params::image_job(&fields, spec, Endpoint::Generations)?;
    refuse_unsafe(&prompt, job.moderation)?;
    state.model_latency(request_id.path.as_str()).await;
    let images = render_all(job, seed(&[spec.id.as_bytes(), prompt.as_bytes()])).await?;
    let usage = images_usage(
        text_tokens(&prompt),
        0,
        job.output_tokens_per_image() * u64::from(job.n),
    );
    Ok(answer(&job, images, usage, "image_generation"))
}

pub(crate) async fn edits(
    AxumState(state): AxumState<Arc<State>>,
    Extension(request_id): Extension<RequestId>,
    request: Request,
) -> Result<Response, ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let form = if is_multipart {
        read_multipart(request, &state).await?
    } else {
        read_json_edit(request, &state).await?
    };
    let fields = if is_multipart {
        Fields::form(&form.fields)
    } else {
        Fields::json(&form.fields)
    };
    let recorded = if is_multipart {
        Value::Object(form.fields.clone())
    } else {
        form.raw.clone()
    };
    state
        .admit(record(
            &request_id,
            &fields,
            recorded,
            form.recorded_files.clone(),
        ))
        .await?;
    if let Some(unknown) = &form.unknown_file {
        return Err(ApiError::unknown_parameter(unknown));
    }
    fields.only(EDIT_FIELDS)?;
    let spec = params::image_model(&fields, None)?;
    let prompt = params::prompt(&fields)?;
    if form.images.is_empty() {
        return Err(ApiError::missing("image"));
    }
    if form.images.len() > upload::MAX_IMAGES {
        return Err(ApiError::invalid(
            "image",
            "array_above_max_length",
            format!(
                "Invalid 'image': array too long. Expected at most {} images, but got {}.",
                upload::MAX_IMAGES,
                form.images.len()
            ),
        ));
    }
    let mut uploads = Vec::with_capacity(form.images.len());
    for (param, bytes) in form.images {
        uploads.push(upload::image(&param, bytes)?);
    }
    let mask = match form.mask {
        Some(bytes) => Some(upload::mask(bytes, &uploads[0])?),
        None => None,
    };
    let job = params::image_job(&fields, spec, Endpoint::Edits)?;
    refuse_unsafe(&prompt, job.moderation)?;
    state.model_latency(request_id.path.as_str()).await;
    let first_hash = seed(&[&uploads[0].bytes]).to_le_bytes();
    let images = render_all(
        job,
        seed(&[spec.id.as_bytes(), prompt.as_bytes(), &first_hash]),
    )
    .await?;
    let image_in: u64 = uploads
        .iter()
        .chain(mask.as_ref())
        .map(|u: &Upload| image_tokens(u.info.width, u.info.height))
        .sum();
    let usage = images_usage(
        text_tokens(&prompt),
        image_in,
        job.output_tokens_per_image() * u64::from(job.n),
    );
    Ok(answer(&job, images, usage, "image_edit"))
}

fn record(
    request_id: &RequestId,
    fields: &Fields<'_>,
    body: Value,
    files: Vec<RecordedFile>,
) -> RecordedRequest {
    RecordedRequest {
        request_id: request_id.id.clone(),
        method: "POST".into(),
        path: request_id.path.as_str().to_owned(),
        model: fields.str("model").ok().flatten().map(str::to_owned),
        fields: summarize(body),
        files,
        status: None,
    }
}

/// The real safety system refuses flagged prompts before rendering; `moderation: low` relaxes it.
fn refuse_unsafe(prompt: &str, level: ModerationLevel) -> Result<(), ApiError> {
    let categories = classify(prompt);
    if categories.is_empty() || level == ModerationLevel::Low {
        Ok(())
    } else {
        Err(blocked(&categories))
    }
}

/// Renders the job's `n` images off the async threads (encoding a large PNG takes a while).
pub(crate) async fn render_all(job: ImageJob, seed: u64) -> Result<Vec<Vec<u8>>, ApiError> {
    let (width, height) = job.dimensions();
    let task = tokio::task::spawn_blocking(move || {
        (0..u64::from(job.n))
            .map(|i| {
                render(Canvas {
                    seed: seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    width,
                    height,
                    format: job.params.format,
                    transparent: job.transparent(),
                    compression: job.params.compression,
                })
            })
            .collect::<Result<Vec<_>, String>>()
    });
    match task.await {
        Ok(Ok(images)) => Ok(images),
        Ok(Err(why)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("render failed: {why}"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("render task failed: {e}"),
        )),
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// The JSON answer, or the event stream when the request asked for one. `event` is the stream's
/// event prefix (`image_generation` or `image_edit`).
fn answer(job: &ImageJob, images: Vec<Vec<u8>>, usage: Value, event: &str) -> Response {
    let created = now_secs();
    let echo = job.echo();
    if !job.stream {
        let mut body = json!({
            "created": created,
            "data": images.iter().map(|b| json!({"b64_json": STANDARD.encode(b)})).collect::<Vec<_>>(),
            "usage": usage,
        });
        merge(&mut body, &echo);
        return axum::Json(body).into_response();
    }
    let mut out = String::new();
    for bytes in &images {
        let b64 = STANDARD.encode(bytes);
        for index in 0..job.partial_images {
            let mut e = json!({"type": format!("{event}.partial_image"), "b64_json": b64, "created_at": created, "partial_image_index": index});
            merge(&mut e, &echo);
            push_event(&mut out, &e);
        }
        let mut e = json!({"type": format!("{event}.completed"), "b64_json": b64, "created_at": created, "usage": usage});
        merge(&mut e, &echo);
        push_event(&mut out, &e);
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(out))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn push_event(out: &mut String, event: &Value) {
    let kind = event["type"].as_str().unwrap_or_default();
    out.push_str(&format!("event: {kind}\ndata: {event}\n\n"));
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// An edit request, from either body form.
#[derive(Default)]
struct EditForm {
    fields: Map<String, Value>,
    /// The JSON body as sent (for the JSON form), for the request log.
    raw: Value,
    /// `(param, bytes)` of each image, in order.
    images: Vec<(String, Vec<u8>)>,
    mask: Option<Vec<u8>>,
    recorded_files: Vec<RecordedFile>,
    /// The name of a file part the API does not take.
    unknown_file: Option<String>,
}

async fn read_multipart(request: Request, state: &Arc<State>) -> Result<EditForm, ApiError> {
    let bad_form = |e: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("Could not parse multipart form: {e}"),
        )
    };
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| bad_form(e.body_text()))?;
    let mut form = EditForm::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad_form(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let is_file = filename.is_some() || matches!(name.as_str(), "image" | "image[]" | "mask");
        if is_file {
            let bytes = field.bytes().await.map_err(|e| bad_form(e.body_text()))?;
            form.recorded_files.push(RecordedFile {
                field: name.clone(),
                filename,
                content_type,
                bytes: bytes.len(),
            });
            match name.as_str() {
                "image" | "image[]" => form.images.push((name, bytes.to_vec())),
                "mask" => form.mask = Some(bytes.to_vec()),
                _ => form.unknown_file = form.unknown_file.take().or(Some(name)),
            }
        } else {
            let text = field.text().await.map_err(|e| bad_form(e.body_text()))?;
            form.fields.insert(name, Value::String(text));
        }
    }
    Ok(form)
}

async fn read_json_edit(request: Request, state: &Arc<State>) -> Result<EditForm, ApiError> {
    let body = Bytes::from_request(request, state).await.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            e.body_text(),
        )
    })?;
    let mut map = parse_json_object(&body)?;
    let raw = Value::Object(map.clone());
    let mut form = EditForm {
        raw,
        ..EditForm::default()
    };
    match map.remove("images") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let param = format!("images[{i}]");
                form.images.push((param.clone(), image_ref(&param, item)?));
            }
        }
        Some(other) => return Err(ApiError::invalid_type("images", "an array", &other)),
    }
    if let Some(mask) = map.remove("mask").filter(|m| !m.is_null()) {
        form.mask = Some(image_ref("mask", &mask)?);
    }
    form.fields = map;
    Ok(form)
}

/// One `{image_url}` or `{file_id}` reference of the JSON edit form.
fn image_ref(param: &str, item: &Value) -> Result<Vec<u8>, ApiError> {
    match (
        item.get("image_url").and_then(Value::as_str),
        item.get("file_id"),
    ) {
        (Some(url), None) => upload::data_url(param, url),
        (None, Some(_)) => Err(ApiError::invalid_value(
            param,
            format!("Invalid '{param}': the fake OpenAI server has no Files API; send a data URL."),
        )),
        _ => Err(ApiError::invalid_value(
            param,
            format!("Invalid '{param}': expected exactly one of 'image_url' or 'file_id'."),
        )),
    }
}
