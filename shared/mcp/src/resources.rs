//! MCP resources: every stored image is `image://{id}`, readable as its full bytes. A resource is
//! named by the image's file name (a campaign item's `{campaign}_{asset_type}_v{version}.{ext}`,
//! else `{id}.{ext}`): in listings and links as `name`, and in `resources/read` under the
//! contents' `_meta` key [`FILE_NAME_META`] (the contents object has no name of its own).

use imagemcp_core::Error;
use imagemcp_core::ids::ImageId;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde_json::Value;

use super::protocol::{INVALID_PARAMS, RESOURCE_NOT_FOUND, RpcError};
use crate::App;
use crate::auth::Caller;
use crate::images::params::ListArgs;
use crate::views::image_uri;

const SCHEME: &str = "image://";

/// The `_meta` key of a read resource's file name.
pub const FILE_NAME_META: &str = "io.imagemcp/file_name";

fn to_rpc(err: Error, uri: &str) -> RpcError {
    match err {
        Error::NotFound { .. } | Error::Gone { .. } => RpcError::new(
            RESOURCE_NOT_FOUND,
            format!("Resource not found: {}", crate::error::public_message(&err)),
        )
        .with_data(serde_json::json!({ "uri": uri })),
        Error::Invalid { .. } => RpcError::new(INVALID_PARAMS, err.to_string()),
        other => RpcError::new(
            super::protocol::INTERNAL_ERROR,
            crate::error::public_message(&other),
        ),
    }
}

/// `resources/read`: the image's full bytes as a base64 blob.
pub async fn read(app: &App, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "missing `uri`"))?;
    let id = uri.strip_prefix(SCHEME).ok_or_else(|| {
        RpcError::new(
            INVALID_PARAMS,
            format!("unknown resource URI scheme in {uri:?}; expected image://<id>"),
        )
    })?;
    let id = ImageId::parse_as("uri", id).map_err(|e| to_rpc(e, uri))?;
    let (rec, blob) = app
        .images()
        .content(caller, &id)
        .await
        .map_err(|e| to_rpc(e, uri))?;
    let mut meta = rmcp::model::JsonObject::new();
    meta.insert(FILE_NAME_META.into(), Value::String(rec.download_name()));
    let contents = ResourceContents::blob(crate::imaging::encode_base64(&blob.bytes), uri)
        .with_mime_type(rec.mime_type)
        .with_meta(rmcp::model::MetaObject(meta));
    let result = ReadResourceResult::new(vec![contents]);
    serde_json::to_value(result).map_err(|e| to_rpc(Error::internal(e), uri))
}

/// `resources/list`: the newest images, a page at a time.
pub async fn list(app: &App, caller: &Caller, params: &Value) -> Result<Value, RpcError> {
    let cursor = params
        .get("cursor")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let args = ListArgs {
        limit: Some(50),
        cursor,
    };
    let (records, next) = app
        .images()
        .list(caller, &args)
        .await
        .map_err(|e| to_rpc(e, ""))?;
    let resources = records
        .iter()
        .map(|rec| {
            Resource::new(image_uri(&rec.id), rec.download_name())
                .with_title(rec.prompt.chars().take(80).collect::<String>())
                .with_mime_type(rec.mime_type.clone())
                .with_size(rec.size_bytes)
        })
        .collect();
    let mut result = ListResourcesResult::with_all_items(resources);
    result.next_cursor = next;
    serde_json::to_value(result).map_err(|e| to_rpc(Error::internal(e), ""))
}

/// `resources/templates/list`: the one template, `image://{id}`.
pub fn templates() -> Value {
    let template = ResourceTemplate::new("image://{id}", "image")
        .with_title("Stored image")
        .with_description("A stored image by id (img_…), as its full-size bytes.");
    serde_json::to_value(ListResourceTemplatesResult::with_all_items(vec![template]))
        .unwrap_or(Value::Null)
}
