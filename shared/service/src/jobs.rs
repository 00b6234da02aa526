//! Jobs (`imagemcp_jobs`: the store, idempotent items, the queue consumer) with this application's
//! item kinds registered: campaign batches and queued generations. A new kind is an
//! [`ItemKind`] in its feature and one line in [`kinds`].

use imagemcp_core::queue::Delivery;
pub use imagemcp_jobs::{
    ItemCommit, ItemKind, Job, JobStatus, Jobs, KIND_PING, Kinds, MAX_ITEMS, cancel, enqueue,
    enqueue_items, get, items, job_for_key, results,
};

use crate::App;
use crate::images::Images;

/// The item kinds this application's consumer handles.
pub fn kinds() -> Kinds<Images> {
    Kinds::default()
        .with(crate::images::campaign::CampaignItems)
        .with(crate::images::queued::GenerateItems)
}

/// Processes a batch of deliveries with the application's kinds; returns the message ids that
/// failed (see [`imagemcp_jobs::consume`]).
pub async fn consume(app: &App, deliveries: &[Delivery], max_attempts: u32) -> Vec<String> {
    imagemcp_jobs::consume(app.jobs(), &kinds(), &app.images, deliveries, max_attempts).await
}
