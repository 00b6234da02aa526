//! The adapters an application runs on, chosen by each runtime's `main`.

use std::sync::Arc;

use imagemcp_core::blob::BlobStore;
use imagemcp_core::cache::Cache;
use imagemcp_core::clock::Clock;
use imagemcp_core::ids::{Ids, Random};
use imagemcp_core::model::ImageModel;
use imagemcp_core::queue::Queue;
use imagemcp_core::table::Table;
use imagemcp_core::timer::Timer;

use crate::crypto::Keyring;

/// Every port, behind `Arc<dyn …>` so one value serves all requests.
#[derive(Clone)]
pub struct Ports {
    pub table: Arc<dyn Table>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn Cache>,
    pub queue: Arc<dyn Queue>,
    pub model: Arc<dyn ImageModel>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
    pub random: Arc<dyn Random>,
    /// What timeouts wait on: tokio's timer natively, `setTimeout` on the Worker, a manual one in
    /// tests.
    pub timer: Arc<dyn Timer>,
    /// The key-encryption keys that wrap every data key (see [`crate::crypto`]).
    pub keyring: Arc<Keyring>,
}
