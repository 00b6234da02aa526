//! The REST API under `/v1`: the same services as the MCP tools, as JSON for integrations.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imagemcp_core::ids::ImageId;

use super::ApiError;
use super::Authed;
use super::extract::{Bytes, Path, Query, json_body};
use crate::App;
use imagemcp_service::images::params::{GenerateArgs, ListArgs};
use imagemcp_service::images::views::{DeletedView, GeneratedView, ImageListView, ImageView};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/images", get(list).post(create))
        .route("/v1/images/{id}", get(show).delete(remove))
        .route("/v1/images/{id}/content", get(content))
}

type ApiResult = Result<Response, ApiError>;

async fn create(State(app): State<App>, Authed(caller): Authed, body: Bytes) -> ApiResult {
    super::billing::api_access(&app, &caller).await?;
    let args: GenerateArgs = json_body(&body)?;
    let generated = app.images().generate(&caller, args, None).await?;
    let mut urls = Vec::new();
    for rec in &generated.images {
        urls.push(app.images().download_url(rec).await?);
    }
    // A cache hit made nothing new.
    let status = if generated.cache.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(GeneratedView::new(&generated, urls))).into_response())
}

async fn list(
    State(app): State<App>,
    Authed(caller): Authed,
    Query(args): Query<ListArgsQuery>,
) -> ApiResult {
    super::billing::api_access(&app, &caller).await?;
    let args = ListArgs {
        limit: args.limit,
        cursor: args.cursor,
    };
    let (records, next) = app.images().list(&caller, &args).await?;
    let mut images = Vec::with_capacity(records.len());
    for rec in &records {
        images.push(ImageView::new(rec, app.images().download_url(rec).await?));
    }
    Ok(axum::Json(ImageListView {
        images,
        next_cursor: next,
    })
    .into_response())
}

/// Query parameters of the list route (a plain struct: `ListArgs` denies unknown fields, which
/// is right for JSON bodies but not for query strings that proxies may decorate).
#[derive(serde::Deserialize)]
struct ListArgsQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn show(State(app): State<App>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult {
    super::billing::api_access(&app, &caller).await?;
    let id = ImageId::parse(&id)?;
    let rec = app.images().get(&caller, &id).await?;
    let url = app.images().download_url(&rec).await?;
    Ok(axum::Json(ImageView::new(&rec, url)).into_response())
}

async fn content(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    super::billing::api_access(&app, &caller).await?;
    let id = ImageId::parse(&id)?;
    let (rec, blob) = app.images().content(&caller, &id).await?;
    let mut response = blob.bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&blob.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // The image's own file name (a campaign item's `{campaign}_{asset}_v{n}.{ext}`): all of
    // [A-Za-z0-9._-], nothing to quote.
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", rec.download_name())) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

async fn remove(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    super::billing::api_access(&app, &caller).await?;
    let id = ImageId::parse(&id)?;
    let view = DeletedView::of(&caller, &id, app.images().delete(&caller, &id).await)?;
    Ok(axum::Json(view).into_response())
}
