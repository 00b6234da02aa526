//! A generation done as a job item: the job's [`ItemCommit`] (recorded in the transaction that
//! stores the images) with how the item's result and files are named, by kind.

use imagemcp_core::Result;
use imagemcp_core::ids::ConversationId;
use imagemcp_core::model::Usage;
use imagemcp_core::table::TransactOp;
use imagemcp_jobs::{ItemCommit, Job};
use serde_json::{Value, json};

use super::Generated;
use super::record::ImageRecord;

/// How a job item's result reads, by kind.
#[derive(Clone, Debug)]
pub enum ItemNaming {
    /// A campaign item: its asset, file name and aspect ratio.
    Campaign(super::campaign::ItemName),
    /// A generation run as a task: its images and figures.
    Generate,
}

/// What a job item's generation stored, for its result.
pub struct ItemOutcome<'a> {
    pub images: &'a [ImageRecord],
    pub conversation_id: &'a ConversationId,
    pub model: &'a str,
    pub cost_micros: u64,
    pub usage: Usage,
    pub failed_variations: &'a [String],
}

impl<'a> ItemOutcome<'a> {
    pub fn of(g: &'a Generated) -> Self {
        Self {
            images: &g.images,
            conversation_id: &g.conversation.id,
            model: &g.model,
            cost_micros: g.cost_micros,
            usage: g.usage,
            failed_variations: &g.failed_variations,
        }
    }
}

/// The job item a generation is for, and how its result is named.
#[derive(Clone, Debug)]
pub struct JobItem {
    pub commit: ItemCommit,
    naming: ItemNaming,
}

impl JobItem {
    pub fn new(job: &Job, index: u32, naming: ItemNaming) -> Self {
        Self {
            commit: ItemCommit::new(job, index),
            naming,
        }
    }

    /// The file name an image of this item is downloaded as, where the kind names its files.
    pub fn file_name(&self, ext: &str) -> Option<String> {
        match &self.naming {
            ItemNaming::Campaign(name) => Some(name.file_name(ext)),
            ItemNaming::Generate => None,
        }
    }

    /// The item's result.
    pub fn result(&self, outcome: &ItemOutcome<'_>) -> Result<Value> {
        match &self.naming {
            ItemNaming::Campaign(name) => name.result(outcome),
            ItemNaming::Generate => Ok(generate_result(outcome)),
        }
    }

    /// The operations the images' commit carries for this item (see [`ItemCommit::ops`]).
    pub fn ops(&self, outcome: &ItemOutcome<'_>, now_ms: i64) -> Result<Vec<TransactOp>> {
        let stored = u32::try_from(outcome.images.len()).unwrap_or(u32::MAX);
        self.commit.ops(self.result(outcome)?, stored, now_ms)
    }
}

/// A generation task's recorded result. Only ids and figures: prompts stay sealed in the image
/// records (read back, decrypted, when the task is fetched), so the job holds nothing an erasure
/// would have to find.
pub fn generate_result(outcome: &ItemOutcome<'_>) -> Value {
    json!({
        "image_ids": outcome.images.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        "conversation_id": outcome.conversation_id,
        "model": outcome.model,
        "cost_micros": outcome.cost_micros,
        "usage": outcome.usage,
        "failed_variations": outcome.failed_variations,
    })
}
