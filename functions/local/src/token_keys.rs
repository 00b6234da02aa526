//! The keys that sign access tokens for the local binary: from `IMAGEMCP_TOKEN_KEYS` when set (the
//! operator supplies and rotates them), otherwise one Ed25519 key made on first run and kept in the
//! data directory as `token-signing.keys` (readable only by its owner), like `url-signing.key`.
//!
//! Format (both places): comma-separated `kid:seed` pairs, the seed 32 bytes of unpadded base64url;
//! the first key signs, the others only verify. To rotate, put a new pair first, keep the old one for
//! at least the access-token lifetime (10 minutes), then remove it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use imagemcp_app::sessions::{KeySet, SigningKey};

const FILE: &str = "token-signing.keys";

/// The configured key set, or the data directory's (made on first use).
pub(crate) fn load(data_dir: &Path, configured: Option<&Arc<KeySet>>) -> Result<Arc<KeySet>> {
    if let Some(keys) = configured {
        return Ok(keys.clone());
    }
    let path = data_dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return KeySet::parse(text.trim())
            .map(Arc::new)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let keys = KeySet::new(vec![SigningKey::generate(&imagemcp_native::OsRandom)?])?;
    super::write_private(&path, keys.to_config().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Arc::new(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(dir.path(), None).unwrap();
        let again = load(dir.path(), None).unwrap();
        assert_eq!(first.current().kid(), again.current().kid());
        assert_eq!(
            first.current().public_bytes(),
            again.current().public_bytes()
        );
    }
}
