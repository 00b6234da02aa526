//! What callers see of images and conversations: the MCP tools' structured output and the REST
//! bodies share these types (and so their JSON Schemas).

use schemars::JsonSchema;
use serde::Serialize;

use crate::Generated;
use crate::record::{ConversationRecord, ImageRecord, rfc3339};

/// The MCP resource URI of an image.
pub fn image_uri(id: &impl std::fmt::Display) -> String {
    format!("image://{id}")
}

/// One stored image.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ImageView {
    /// The image's id (`img_…`).
    pub id: String,
    /// The MCP resource URI of the full image (`resources/read`).
    pub uri: String,
    /// A time-limited HTTPS download URL of the full image, where the server can sign one; it is
    /// saved as `file_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The name the image downloads as: a campaign item's `{campaign}_{asset_type}_v{version}.{ext}`,
    /// else `{id}.{ext}`.
    pub file_name: String,
    pub width: u32,
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub prompt: String,
    /// The prompt as the model rewrote it, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revised_prompt: Option<String>,
    pub model: String,
    pub quality: String,
    pub background: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// `generate` or `edit`.
    pub source: String,
    pub conversation_id: String,
    /// The turn of the conversation this image belongs to (1 for the first).
    pub turn: u32,
    /// The model cost of this image in micro-dollars (millionths of a US dollar).
    pub cost_micros: u64,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl ImageView {
    pub fn new(rec: &ImageRecord, url: Option<String>) -> Self {
        Self {
            id: rec.id.to_string(),
            uri: image_uri(&rec.id),
            url,
            file_name: rec.download_name(),
            width: rec.width,
            height: rec.height,
            format: rec.format.clone(),
            mime_type: rec.mime_type.clone(),
            size_bytes: rec.size_bytes,
            prompt: rec.prompt.clone(),
            revised_prompt: rec.revised_prompt.clone(),
            model: rec.model.clone(),
            quality: rec.quality.clone(),
            background: rec.background.clone(),
            style: rec.style.clone(),
            source: rec.source.clone(),
            conversation_id: rec.conversation_id.to_string(),
            turn: rec.turn,
            cost_micros: rec.cost_micros,
            created_at: rfc3339(rec.created_at_ms),
        }
    }
}

/// Token usage of a call.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct UsageView {
    pub input_text_tokens: u64,
    pub input_image_tokens: u64,
    pub output_image_tokens: u64,
    pub total_tokens: u64,
}

/// The result of generating or editing.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GeneratedView {
    pub images: Vec<ImageView>,
    /// Pass this as `conversation_id` to refine the result.
    pub conversation_id: String,
    /// The turn these images are in the conversation.
    pub turn: u32,
    pub model: String,
    pub usage: UsageView,
    /// The model cost of the call in micro-dollars (millionths of a US dollar).
    pub cost_micros: u64,
    /// Errors of variations that failed while others succeeded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_variations: Vec<String>,
    /// Present when the cache answered with images made earlier: no model call, no quota used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<imagemcp_engine::cache::CacheHit>,
}

impl GeneratedView {
    pub fn new(g: &Generated, urls: Vec<Option<String>>) -> Self {
        Self {
            images: g
                .images
                .iter()
                .zip(urls)
                .map(|(rec, url)| ImageView::new(rec, url))
                .collect(),
            conversation_id: g.conversation.id.to_string(),
            turn: g.conversation.turns,
            model: g.model.clone(),
            usage: UsageView {
                input_text_tokens: g.usage.input_text_tokens,
                input_image_tokens: g.usage.input_image_tokens,
                output_image_tokens: g.usage.output_image_tokens,
                total_tokens: g.usage.total_tokens,
            },
            cost_micros: g.cost_micros,
            failed_variations: g.failed_variations.clone(),
            cache: g.cache,
        }
    }
}

/// A page of images, newest first.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ImageListView {
    pub images: Vec<ImageView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The outcome of a deletion.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DeletedView {
    pub image_id: String,
    /// Always `true`: the image is gone.
    pub deleted: bool,
    /// `true` when an earlier call had already deleted it (deleting is idempotent).
    pub already_deleted: bool,
}

impl DeletedView {
    /// The outcome of `caller` deleting `id`: done now, or done before (the image's tombstone
    /// answers `Gone`, as does a delete that lost a race), so a repeated delete by someone who may
    /// delete succeeds. Anything else is the error; another organisation's id stays "not found",
    /// as it has no tombstone there.
    pub fn of(
        caller: &imagemcp_tenancy::Caller,
        id: &imagemcp_core::ids::ImageId,
        outcome: imagemcp_core::Result<ImageRecord>,
    ) -> imagemcp_core::Result<Self> {
        use imagemcp_core::rbac::Action;
        let may_delete = caller.may(Action::DeleteOwn) || caller.may(Action::DeleteAny);
        let already_deleted = match outcome {
            Ok(_) => false,
            Err(imagemcp_core::Error::Gone { .. }) if may_delete => true,
            Err(e) => return Err(e),
        };
        Ok(Self {
            image_id: id.to_string(),
            deleted: true,
            already_deleted,
        })
    }
}

/// A conversation: a chain of refinements.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConversationView {
    pub id: String,
    pub title: String,
    pub turns: u32,
    pub last_prompt: String,
    pub last_image_id: String,
    pub model: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ConversationRecord> for ConversationView {
    fn from(c: &ConversationRecord) -> Self {
        Self {
            id: c.id.to_string(),
            title: c.title.clone(),
            turns: c.turns,
            last_prompt: c.last_prompt.clone(),
            last_image_id: c.last_image_id.to_string(),
            model: c.model.clone(),
            created_at: rfc3339(c.created_at_ms),
            updated_at: rfc3339(c.updated_at_ms),
        }
    }
}

/// A page of conversations, most recently started first.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ConversationListView {
    pub conversations: Vec<ConversationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
