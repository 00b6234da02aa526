//! How the tools render their results: structured content with a one-line summary, image previews
//! and resource links, a generation's and a job's result in words, and tool errors with their
//! machine-readable details.

use imagemcp_core::Error;
use imagemcp_core::blob::Blob;
use imagemcp_core::ids::ImageId;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Resource};
use serde::Serialize;
use serde_json::Value;

use crate::App;
use crate::auth::Caller;
use crate::images::Generated;
use crate::images::campaign::JobView;
use crate::images::record::ImageRecord;
use crate::views::{GeneratedView, image_uri};

/// The `_meta` key under which a tool error's machine-readable details travel.
pub const ERROR_META_KEY: &str = "io.imagemcp/error";

/// A tool error the client's model can act on: the message in text, the details (code, field,
/// retry delay) in `_meta`. Not in `structuredContent`: clients validate that against the tool's
/// output schema even on errors (the TypeScript SDK does), and an error is not an output.
pub fn error_result(err: &Error) -> CallToolResult {
    let message = crate::error::public_message(err);
    let details = crate::error::details(err);
    let text = match err {
        Error::Invalid { field, .. } => format!("Invalid argument `{field}`: {message}"),
        _ => message,
    };
    tool_error(text, details)
}

/// A tool error: `text` for the model to read, `details` under [`ERROR_META_KEY`].
pub(crate) fn tool_error(text: String, details: Value) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    let mut meta = JsonObject::new();
    meta.insert(ERROR_META_KEY.to_owned(), details);
    result.meta = Some(MetaObject(meta));
    result
}

/// A result: `summary` first in text, then `content`, with `view` as the structured content.
pub(super) fn structured<T: Serialize>(
    view: &T,
    mut content: Vec<ContentBlock>,
    summary: String,
) -> Result<CallToolResult, Error> {
    let value = serde_json::to_value(view).map_err(Error::internal)?;
    content.insert(0, ContentBlock::text(summary));
    let mut result = CallToolResult::success(content);
    result.structured_content = Some(value);
    Ok(result)
}

/// A result whose text is a one-line summary and whose structured content is the view.
pub(super) fn done<T: Serialize>(view: &T, summary: String) -> Result<CallToolResult, Error> {
    structured(view, Vec::new(), summary)
}

/// A link to an image's full-size file, as chat content.
pub(super) fn resource_link(rec: &ImageRecord) -> ContentBlock {
    let resource = Resource::new(image_uri(&rec.id), rec.download_name())
        .with_title(rec.prompt.chars().take(80).collect::<String>())
        .with_mime_type(rec.mime_type.clone())
        .with_size(rec.size_bytes);
    ContentBlock::resource_link(resource)
}

/// An image as chat content: its preview (the one given, made with the image, or else read from
/// storage) and a link to the full image.
pub(super) async fn image_blocks(
    app: &App,
    rec: &ImageRecord,
    made: Option<&Blob>,
) -> Result<Vec<ContentBlock>, Error> {
    let read;
    let preview = match made {
        Some(preview) => preview,
        None => {
            read = app.images().preview(rec).await?;
            &read
        }
    };
    Ok(vec![
        ContentBlock::image(
            crate::imaging::encode_base64(&preview.bytes),
            preview.content_type.clone(),
        ),
        resource_link(rec),
    ])
}

/// Each image's signed download URL, where the store makes one.
pub(super) async fn urls(app: &App, records: &[ImageRecord]) -> Result<Vec<Option<String>>, Error> {
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        out.push(app.images().download_url(rec).await?);
    }
    Ok(out)
}

/// A generation or an edit as a tool result: each image's preview and link, and in text what was
/// made (or found in the cache), the conversation to refine it in, and any variation that failed.
pub(crate) async fn generated_result(app: &App, g: &Generated) -> Result<CallToolResult, Error> {
    let view = GeneratedView::new(g, urls(app, &g.images).await?);
    let mut content = Vec::new();
    for (i, rec) in g.images.iter().enumerate() {
        content.extend(image_blocks(app, rec, g.previews.get(i)).await?);
    }
    let ids: Vec<String> = g.images.iter().map(|r| r.id.to_string()).collect();
    // A cached answer says so first: the person should know nothing new was made.
    let (mut summary, verb) = match g.cache {
        Some(hit) => {
            let request = match hit.similarity_milli {
                Some(milli) => format!("a near-identical request ({}% similar)", milli / 10),
                None => "the same request".to_owned(),
            };
            (
                format!(
                    "From the cache: these images were made earlier for {request}, so nothing new was \
                     generated and no quota was used (pass fresh: true for new images). "
                ),
                "Returned",
            )
        }
        None => (String::new(), "Created"),
    };
    summary.push_str(&format!(
        "{verb} {} image(s) with {} ({}): {}. Conversation {} (turn {}); pass conversation_id to refine.",
        g.images.len(),
        g.model,
        format_args!("{}x{}", g.images[0].width, g.images[0].height),
        ids.join(", "),
        g.conversation.id,
        g.conversation.turns,
    ));
    if !g.failed_variations.is_empty() {
        summary.push_str(&format!(
            " {} variation(s) failed: {}",
            g.failed_variations.len(),
            g.failed_variations.join("; ")
        ));
    }
    structured(&view, content, summary)
}

/// "is done: 4 of 5 item(s) done, 1 failed."
pub(super) fn job_state(view: &JobView) -> String {
    format!(
        "is {}: {} of {} item(s) done, {} failed.",
        view.status, view.items_done, view.items_total, view.items_failed
    )
}

/// The ids of the images a finished item made (a campaign item's one, a generation's several).
fn item_images(result: &Value) -> impl Iterator<Item = &str> {
    let one = result.get("image_id").and_then(Value::as_str);
    let several = result.get("image_ids").and_then(Value::as_array);
    one.into_iter()
        .chain(several.into_iter().flatten().filter_map(Value::as_str))
}

/// One finished item of a job in words: "2. spring_hero_v1.png (hero): image://img_…", or
/// "3. square: failed: why".
fn item_line(number: u32, result: &Value, links: &[String]) -> String {
    let text = |key: &str| result.get(key).and_then(Value::as_str);
    let name = match (text("file_name"), text("asset_type")) {
        (Some(file), Some(asset)) => format!("{file} ({asset})"),
        (Some(name), None) | (None, Some(name)) => name.to_owned(),
        (None, None) => format!("item {number}"),
    };
    let error = text("error").or_else(|| {
        result
            .pointer("/tool_error/message")
            .and_then(Value::as_str)
    });
    match error {
        Some(error) => format!("{number}. {name}: failed: {error}"),
        None if links.is_empty() => format!("{number}. {name}: done"),
        None => format!("{number}. {name}: {}", links.join(", ")),
    }
}

/// The most items a job's text lists one by one (its structured content has them all).
const LISTED_ITEMS: u32 = 50;

/// A job as a tool result: its view as structured content, a resource link to each finished
/// image, and in text `head`, then one line per item: its name (file name, else asset type,
/// else its number) with a link to each of its images (the resource URI, and a signed download
/// URL where the store makes one), or its error, or that it is still to come.
pub(super) async fn job_result(
    app: &App,
    caller: &Caller,
    view: JobView,
    head: String,
) -> Result<CallToolResult, Error> {
    let mut content = Vec::new();
    let mut lines = vec![head];
    for index in 0..view.items_total.min(LISTED_ITEMS) {
        let number = index + 1;
        let Some(item) = view.items.iter().find(|i| i.index == index) else {
            let state = if view.status == "cancelled" {
                "not made (cancelled)"
            } else {
                "pending"
            };
            lines.push(format!("{number}. item {number}: {state}"));
            continue;
        };
        let result = &item.result;
        let mut links = Vec::new();
        for image in item_images(result) {
            match app.images().get(caller, &ImageId::parse(image)?).await {
                Ok(rec) => {
                    links.push(match app.images().download_url(&rec).await? {
                        Some(url) => format!("{} (download: {url})", image_uri(&rec.id)),
                        None => image_uri(&rec.id),
                    });
                    content.push(resource_link(&rec));
                }
                Err(Error::Gone { .. } | Error::NotFound { .. }) => {
                    links.push(format!("{image} (since deleted)"));
                }
                Err(e) => return Err(e),
            }
        }
        lines.push(item_line(number, result, &links));
    }
    if view.items_total > LISTED_ITEMS {
        lines.push(format!(
            "… and {} more item(s): see the structured result.",
            view.items_total - LISTED_ITEMS
        ));
    }
    structured(&view, content, lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn job_items_read_as_names_with_links_or_errors() {
        let campaign = json!({"asset_type": "hero", "image_id": "img_1",
            "file_name": "spring_hero_v1.png"});
        let links = vec!["image://img_1".to_owned()];
        assert_eq!(item_images(&campaign).collect::<Vec<_>>(), ["img_1"]);
        assert_eq!(
            item_line(1, &campaign, &links),
            "1. spring_hero_v1.png (hero): image://img_1"
        );
        let failed = json!({"error": "the Free plan's 10 images this period are used up"});
        assert_eq!(
            item_line(3, &failed, &[]),
            "3. item 3: failed: the Free plan's 10 images this period are used up"
        );
        let generation = json!({"image_ids": ["img_a", "img_b"]});
        assert_eq!(
            item_images(&generation).collect::<Vec<_>>(),
            ["img_a", "img_b"]
        );
        let refused = json!({"tool_error": {"message": "refused by the content policy"}});
        assert_eq!(
            item_line(1, &refused, &[]),
            "1. item 1: failed: refused by the content policy"
        );
    }
}
