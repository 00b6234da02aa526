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

/// The name a download is saved under (`Content-Disposition: attachment; filename="…"`): 1 to 200
/// of `[A-Za-z0-9._-]`, not starting with `.`. The character set needs no quoting or escaping in a
/// header, a URL or a signature, so adapters use the name as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 200
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(
                "file name",
                "1 to 200 of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `Content-Disposition` value that makes a browser save the blob under this name.
    pub fn content_disposition(&self) -> String {
        format!("attachment; filename=\"{}\"", self.0)
    }

    /// [`Self::content_disposition`] percent-encoded for a URL query (every byte but RFC 3986's
    /// unreserved ones escaped, spaces as `%20`): S3's `response-content-disposition`.
    pub fn content_disposition_query(&self) -> String {
        let mut out = String::new();
        for b in self.content_disposition().bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
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
    /// or a URL signed by this server). With `download`, the response carries
    /// `Content-Disposition: attachment; filename="<download>"`, and the name is covered by the
    /// URL's signature. `None` when the store cannot make one.
    async fn signed_url(
        &self,
        key: &BlobKey,
        expires_in: Duration,
        download: Option<&FileName>,
    ) -> Result<Option<String>>;
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

    #[test]
    fn file_names_need_no_escaping() {
        for bad in [
            "", ".hidden", "a/b", "a b", "a\"b", "a;b", "é.png", "a\\b", "a\nb",
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let name = FileName::parse("spring-launch_story_v1.png").unwrap();
        assert_eq!(
            name.content_disposition(),
            "attachment; filename=\"spring-launch_story_v1.png\""
        );
        assert_eq!(
            name.content_disposition_query(),
            "attachment%3B%20filename%3D%22spring-launch_story_v1.png%22"
        );
        assert!(FileName::parse(&"a".repeat(201)).is_err());
    }
}
