//! The `BlobStore` port: bytes by key, with a content type, and URLs a browser can fetch.

use std::time::Duration;

use crate::{Error, Result};

/// A blob's key: `/`-separated segments of `[A-Za-z0-9._-]`, none empty, `.` or `..`, at most 512
/// bytes. Adapters only ever see validated keys, so a key can never escape its store (no path
/// traversal on the filesystem, no surprise prefixes on S3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 512
            && s.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid("blob key", "not a valid key"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, each safe to use as one path component.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// A stored blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

#[async_trait::async_trait]
pub trait BlobStore: crate::MaybeSendSync {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>, content_type: &str) -> Result<()>;
    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>>;
    /// Deletes the blob; deleting a missing blob succeeds.
    async fn delete(&self, key: &BlobKey) -> Result<()>;
    /// A URL that serves the blob without other credentials until it expires (a presigned S3 URL,
    /// or a URL signed by this server). `None` when the store cannot make one.
    async fn signed_url(&self, key: &BlobKey, expires_in: Duration) -> Result<Option<String>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_traverse() {
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a\\b", "a\0", "a b", "a#b",
        ] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            BlobKey::parse("orgs/org_1/img_2.png")
                .unwrap()
                .segments()
                .count(),
            3
        );
    }
}
