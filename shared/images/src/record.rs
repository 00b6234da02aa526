//! How images and conversations are laid out in the `Table` and the `BlobStore`. Every key is
//! scoped by organisation: `ORG#<org>` is the partition of everything an org owns.

use imagemcp_core::Result;
use imagemcp_core::blob::BlobKey;
use imagemcp_core::ids::{ConversationId, ImageId, OrgId, UserId};
use imagemcp_core::model::Usage;
use serde::{Deserialize, Serialize};

pub use imagemcp_tenancy::items::{
    date_of, from_item, month_bounds, month_of, no_attrs, rfc3339, to_item,
};
pub use imagemcp_tenancy::keys::{conversation_key, image_key, org_pk, tombstone_key, usage_key};

/// How long a deleted image is remembered, so a late caller hears "deleted" rather than "not found".
pub const TOMBSTONE_TTL_SECS: i64 = 30 * 24 * 3600;

/// The blob keys of an image: the full asset and its chat preview.
pub fn blob_keys(org: &OrgId, id: &ImageId, ext: &str) -> Result<(BlobKey, BlobKey)> {
    Ok((
        BlobKey::parse(&format!("orgs/{org}/images/{id}.{ext}"))?,
        BlobKey::parse(&format!("orgs/{org}/previews/{id}"))?,
    ))
}

/// The attributes of an image item sealed at rest (see [`crate::crypto`]).
pub const IMAGE_SEALED: &[&str] = &["prompt", "revised_prompt"];

/// The attributes of a conversation item sealed at rest.
pub const CONVERSATION_SEALED: &[&str] = &["title", "last_prompt"];

/// An image's metadata as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    pub prompt: String,
    /// `generate` or `edit`.
    pub source: String,
    pub model: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub mime_type: String,
    pub quality: String,
    pub background: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    pub size_bytes: u64,
    pub conversation_id: ConversationId,
    pub turn: u32,
    /// Who made the image (deleting one's own images needs less power than deleting anyone's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_image_ids: Vec<ImageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revised_prompt: Option<String>,
    pub usage: Usage,
    pub cost_micros: u64,
    pub blob_key: String,
    pub preview_key: String,
    pub preview_mime_type: String,
    pub created_at_ms: i64,
    /// The name the image is downloaded as, when it has one of its own (a campaign item's
    /// `{campaign}_{asset_type}_v{version}.{ext}`); see [`ImageRecord::download_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

impl ImageRecord {
    /// The name the image is downloaded and listed as: its own file name, else `{id}.{format}`.
    pub fn download_name(&self) -> String {
        self.file_name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", self.id, self.format))
    }
}

/// A conversation: a chain of refinements, each turn producing one or more images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub id: ConversationId,
    /// The first prompt, shortened: what a person sees in a list.
    pub title: String,
    pub turns: u32,
    pub last_prompt: String,
    pub last_image_id: ImageId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response_id: Option<String>,
    pub model: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}
