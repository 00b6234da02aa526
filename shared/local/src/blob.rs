//! `FsBlobStore`: the `BlobStore` port on a directory, with URLs signed by this server.
//!
//! A key `a/b/c.png` lives in the file `<root>/a/b/c.png~blob`. The file begins with one line of
//! JSON holding the content type, then the bytes, so bytes and type are replaced together by one
//! atomic rename. Paths are built only from [`BlobKey::segments`], which core has already
//! validated, and every file name carries a `~`, a character no key segment may hold: a file can
//! never collide with a directory, so a key and keys "under" it coexist as on S3.
//!
//! Signed URLs are `{public_base_url}/files/{key}?expires={unix secs}&sig={hex}`, plus
//! `&name={file name}` for a named download, the signature an HMAC-SHA256 of the key, the expiry
//! and the name under a per-install secret. The local binary's `/files` route checks them with
//! [`FsBlobStore::verify_signed`] and sends the name as `Content-Disposition`.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use imagemcp_core::blob::{Blob, BlobKey, BlobStore, FileName};
use imagemcp_core::clock::Clock;
use imagemcp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The shortest URL-signing secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// The longest content type stored.
const MAX_CONTENT_TYPE: usize = 255;

/// The suffix of a blob's file.
const BLOB_SUFFIX: &str = "~blob";

#[derive(Serialize, Deserialize)]
struct Header {
    content_type: String,
}

/// The `BlobStore` port on the filesystem.
#[derive(Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    public_base_url: String,
    /// The HMAC keyed with the per-install secret, cloned for each signature.
    signer: Hmac<Sha256>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FsBlobStore {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsBlobStore")
            .field("root", &self.root)
            .field("public_base_url", &self.public_base_url)
            .field("signer", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl FsBlobStore {
    /// A store under `root` (created when missing). `public_base_url` is where this server is
    /// reached (e.g. `http://127.0.0.1:8080`; a trailing `/` is ignored); `url_secret` (at least
    /// [`MIN_SECRET_LEN`] bytes, random per install) signs the URLs.
    pub fn new(
        root: PathBuf,
        public_base_url: String,
        url_secret: Vec<u8>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if url_secret.len() < MIN_SECRET_LEN {
            return Err(Error::invalid(
                "url_secret",
                format!("must be at least {MIN_SECRET_LEN} bytes"),
            ));
        }
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            return Err(Error::invalid("public_base_url", "must be an http(s) URL"));
        }
        std::fs::create_dir_all(&root).map_err(|e| io_err("create the blob directory", e))?;
        let signer = Hmac::<Sha256>::new_from_slice(&url_secret)
            .map_err(|_| Error::invalid("url_secret", "not a usable HMAC key"))?;
        let public_base_url = public_base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            root,
            public_base_url,
            signer,
            clock,
        })
    }

    /// Whether `sig` is this store's signature of `key` with the download name `name` until
    /// `expires` (Unix seconds) and that time has not come. The comparison takes the same time
    /// however many bytes match.
    pub fn verify_signed(
        &self,
        key: &BlobKey,
        expires: i64,
        name: Option<&FileName>,
        sig: &str,
    ) -> bool {
        if self.clock.now_secs() >= expires {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        self.mac(key, expires, name).verify_slice(&sig).is_ok()
    }

    fn mac(&self, key: &BlobKey, expires: i64, name: Option<&FileName>) -> Hmac<Sha256> {
        let mut mac = self.signer.clone();
        // The newline cannot occur in a key, an expiry or a file name, so no (key, expiry, name)
        // signs like another, and a URL without a name signs as before names existed.
        mac.update(key.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        if let Some(name) = name {
            mac.update(b"\n");
            mac.update(name.as_str().as_bytes());
        }
        mac
    }

    /// The file holding `key`: `root`, then one path component per validated segment.
    fn path_of(&self, key: &BlobKey) -> PathBuf {
        let mut path = self.root.clone();
        let mut segments = key.segments().peekable();
        while let Some(seg) = segments.next() {
            if segments.peek().is_some() {
                path.push(seg);
            } else {
                path.push(format!("{seg}{BLOB_SUFFIX}"));
            }
        }
        path
    }
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::Unavailable(format!("cannot {what}: {e}"))
}

fn check_content_type(ct: &str) -> Result<()> {
    let ok = !ct.is_empty()
        && ct.len() <= MAX_CONTENT_TYPE
        && ct.bytes().all(|b| (b' '..=b'~').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "content_type",
            "must be 1 to 255 printable ASCII characters",
        ))
    }
}

/// Writes `header` and `bytes` to `path` atomically: a temporary file in the same directory,
/// synced, then renamed over the old one, so a reader sees the old blob or the new, never a mix.
fn write_atomic(path: &Path, header: &[u8], bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a blob path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = dir.join(format!(".{name}~tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(header)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: a leftover temp file is harmless (its name is no key's) but wastes space.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_blob(path: &Path) -> Result<Option<Blob>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read a blob", e)),
    };
    let corrupt = || Error::internal("a stored blob has no valid header");
    let end = data.iter().position(|&b| b == b'\n').ok_or_else(corrupt)?;
    let header: Header = serde_json::from_slice(&data[..end]).map_err(|_| corrupt())?;
    let mut bytes = data;
    bytes.drain(..=end);
    Ok(Some(Blob {
        bytes,
        content_type: header.content_type,
    }))
}

/// Runs file I/O on tokio's blocking pool, or here when there is no runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt
            .spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("a file task failed: {e}")))?,
        Err(_) => f(),
    }
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        check_content_type(content_type)?;
        let mut header = serde_json::to_vec(&Header {
            content_type: content_type.to_owned(),
        })
        .map_err(Error::internal)?;
        header.push(b'\n');
        let path = self.path_of(key);
        blocking(move || {
            write_atomic(&path, &header, &bytes).map_err(|e| io_err("write a blob", e))
        })
        .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>> {
        let path = self.path_of(key);
        blocking(move || read_blob(&path)).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let path = self.path_of(key);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete a blob", e)),
        })
        .await
    }

    async fn signed_url(
        &self,
        key: &BlobKey,
        expires_in: Duration,
        download: Option<&FileName>,
    ) -> Result<Option<String>> {
        let secs = i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX);
        let expires = self.clock.now_secs().saturating_add(secs);
        let sig = hex::encode(self.mac(key, expires, download).finalize().into_bytes());
        // Key and file name characters are all URL-safe ([A-Za-z0-9._-/]): no escaping needed.
        let name = download.map_or(String::new(), |n| format!("&name={}", n.as_str()));
        Ok(Some(format!(
            "{}/files/{}?expires={expires}{name}&sig={sig}",
            self.public_base_url,
            key.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagemcp_core::clock::ManualClock;

    fn store(root: &Path) -> FsBlobStore {
        FsBlobStore::new(
            root.to_path_buf(),
            "http://127.0.0.1:8080/".into(),
            vec![7; 32],
            Arc::new(ManualClock::new(0)),
        )
        .unwrap()
    }

    #[test]
    fn paths_stay_under_the_root_and_files_never_look_like_directories() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let p = s.path_of(&BlobKey::parse("orgs/org_1/img.png").unwrap());
        assert_eq!(
            p,
            dir.path().join("orgs").join("org_1").join("img.png~blob")
        );
        let p = s.path_of(&BlobKey::parse("..a/.b/c..").unwrap());
        assert!(p.starts_with(dir.path()));
        assert_eq!(p, dir.path().join("..a").join(".b").join("c..~blob"));
    }

    #[test]
    fn weak_secrets_and_odd_base_urls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
        let short = FsBlobStore::new(
            dir.path().into(),
            "http://x".into(),
            vec![1; 31],
            clock.clone(),
        );
        assert!(matches!(short, Err(Error::Invalid { .. })));
        let bad_url = FsBlobStore::new(dir.path().into(), "ftp://x".into(), vec![1; 32], clock);
        assert!(matches!(bad_url, Err(Error::Invalid { .. })));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let shown = format!("{s:?}");
        assert!(
            shown.contains("[redacted]") && !shown.contains("7, 7"),
            "{shown}"
        );
    }

    #[test]
    fn content_types_must_be_printable_ascii() {
        assert!(check_content_type("image/png").is_ok());
        for bad in ["", "image/png\nX-Evil: 1", "imáge/png", &"a".repeat(256)] {
            assert!(check_content_type(bad).is_err(), "{bad:?}");
        }
    }
}
