//! `FsBlobStore`: the contract, signed URLs, paths that stay under the root, atomic overwrites.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use imagemcp_core::blob::{BlobKey, BlobStore, FileName};
use imagemcp_core::clock::{Clock, ManualClock};
use imagemcp_core::contract;
use imagemcp_local::FsBlobStore;

use crate::Files;

const BASE: &str = "http://127.0.0.1:8080";

fn store(root: &Path, secret: u8, clock: Arc<dyn Clock>) -> FsBlobStore {
    FsBlobStore::new(
        root.to_path_buf(),
        format!("{BASE}/"),
        vec![secret; 32],
        clock,
    )
    .unwrap()
}

fn key(s: &str) -> BlobKey {
    BlobKey::parse(s).unwrap()
}

#[tokio::test]
async fn fs_blob_store_meets_the_contract() {
    let files = Files::new();
    contract::blob_store_suite(async |clock| store(&files.next("blobs"), 1, clock)).await;
}

/// The `expires` and `sig` of a signed URL, checking its shape on the way.
fn parse_signed(url: &str, key: &BlobKey) -> (i64, String) {
    let prefix = format!("{BASE}/files/{}?expires=", key.as_str());
    let rest = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} must start with {prefix}"));
    let (expires, sig) = rest
        .split_once("&sig=")
        .unwrap_or_else(|| panic!("{url} must carry a sig"));
    assert_eq!(sig.len(), 64, "the signature is a hex HMAC-SHA256");
    assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()));
    (expires.parse().unwrap(), sig.to_owned())
}

#[tokio::test]
async fn signed_urls_verify_until_they_expire_and_not_when_tampered() {
    let files = Files::new();
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let root = files.next("blobs");
    let s = store(&root, 1, clock.clone());
    let k = key("orgs/org_1/img_1.png");
    let url = s
        .signed_url(&k, Duration::from_secs(600), None)
        .await
        .unwrap()
        .unwrap();
    let (expires, sig) = parse_signed(&url, &k);
    assert_eq!(expires, contract::START_MS / 1000 + 600);

    assert!(
        s.verify_signed(&k, expires, None, &sig),
        "the URL just made must verify"
    );
    let mut flipped = sig.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    assert!(
        !s.verify_signed(&k, expires, None, &String::from_utf8(flipped).unwrap()),
        "a changed signature must not verify"
    );
    assert!(
        !s.verify_signed(&key("orgs/org_1/img_2.png"), expires, None, &sig),
        "another key must not verify"
    );
    assert!(
        !s.verify_signed(&k, expires + 3600, None, &sig),
        "a pushed-back expiry must not verify"
    );
    assert!(
        !s.verify_signed(&k, expires, None, &sig[..62]),
        "a truncated signature must not verify"
    );
    assert!(
        !s.verify_signed(&k, expires, None, "zz"),
        "a non-hex signature must not verify"
    );
    assert!(
        !s.verify_signed(&k, expires, None, ""),
        "an empty signature must not verify"
    );
    let other_install = store(&files.next("blobs"), 2, clock.clone());
    assert!(
        !other_install.verify_signed(&k, expires, None, &sig),
        "another install's secret must not verify"
    );

    clock.advance_ms(599_000);
    assert!(
        s.verify_signed(&k, expires, None, &sig),
        "the URL must verify until its expiry"
    );
    clock.advance_ms(1_000);
    assert!(
        !s.verify_signed(&k, expires, None, &sig),
        "an expired URL must not verify"
    );
}

#[tokio::test]
async fn a_download_name_is_signed_with_the_url() {
    let files = Files::new();
    let clock = Arc::new(ManualClock::new(contract::START_MS));
    let s = store(&files.next("blobs"), 1, clock);
    let k = key("orgs/org_1/img_1.png");
    let name = FileName::parse("spring-launch_story_v1.png").unwrap();
    let url = s
        .signed_url(&k, Duration::from_secs(600), Some(&name))
        .await
        .unwrap()
        .unwrap();
    let (query, sig) = url.split_once("&sig=").unwrap();
    assert!(query.ends_with("&name=spring-launch_story_v1.png"), "{url}");
    let expires: i64 = query
        .split_once("expires=")
        .and_then(|(_, r)| r.split_once('&'))
        .unwrap()
        .0
        .parse()
        .unwrap();
    assert!(s.verify_signed(&k, expires, Some(&name), sig));
    let other = FileName::parse("renamed.png").unwrap();
    assert!(
        !s.verify_signed(&k, expires, Some(&other), sig),
        "a changed name must not verify"
    );
    assert!(
        !s.verify_signed(&k, expires, None, sig),
        "a dropped name must not verify"
    );
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn keys_cannot_reach_outside_the_root() {
    let files = Files::new();
    let base = files.next("jail");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let s = store(&root, 1, Arc::new(ManualClock::new(0)));

    // Core refuses every key that could climb out or be absolute.
    for bad in [
        "../outside/x",
        "a/../../outside/x",
        "/etc/passwd",
        "a/./b",
        "..",
        ".",
        "a\\..\\b",
        "a//b",
    ] {
        assert!(BlobKey::parse(bad).is_err(), "{bad:?} must not be a key");
    }
    // Keys that look like traversal but are plain names stay under the root.
    for odd in ["..a/b", "...", ".hidden/..x", "a/..../b", "-/_/."] {
        let Ok(k) = BlobKey::parse(odd) else { continue };
        s.put(&k, odd.as_bytes().to_vec(), "text/plain")
            .await
            .unwrap();
        assert_eq!(s.get(&k).await.unwrap().unwrap().bytes, odd.as_bytes());
    }
    let mut written = Vec::new();
    walk(&root, &mut written);
    assert_eq!(
        written.len(),
        4,
        "one file per stored key, no leftovers: {written:?}"
    );
    for path in &written {
        assert!(path.starts_with(&root), "{path:?} escaped the root");
        assert!(
            path.to_string_lossy().ends_with("~blob"),
            "{path:?} is not a blob file"
        );
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing may be written outside the root"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_half_an_overwrite() {
    let files = Files::new();
    let root = files.next("blobs");
    let s = Arc::new(store(&root, 1, Arc::new(ManualClock::new(0))));
    let k = key("hot/blob.bin");
    let small = (vec![1u8; 10], "image/png");
    let large = (vec![2u8; 300_000], "image/jpeg");
    s.put(&k, small.0.clone(), small.1).await.unwrap();
    let writer = {
        let (s, k, small, large) = (s.clone(), k.clone(), small.clone(), large.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                let (bytes, ct) = if i % 2 == 0 { &large } else { &small };
                s.put(&k, bytes.clone(), ct).await.unwrap();
            }
        })
    };
    for _ in 0..200 {
        let got = s
            .get(&k)
            .await
            .unwrap()
            .expect("the blob exists throughout");
        let whole_small = got.bytes == small.0 && got.content_type == small.1;
        let whole_large = got.bytes == large.0 && got.content_type == large.1;
        assert!(
            whole_small || whole_large,
            "a reader saw a torn blob: {} bytes as {}",
            got.bytes.len(),
            got.content_type
        );
    }
    writer.await.unwrap();
    let mut left = Vec::new();
    walk(&root, &mut left);
    assert_eq!(
        left.len(),
        1,
        "no temporary file may be left behind: {left:?}"
    );
}

#[tokio::test]
async fn a_corrupt_blob_file_is_an_error_not_a_panic() {
    let files = Files::new();
    let root = files.next("blobs");
    let s = store(&root, 1, Arc::new(ManualClock::new(0)));
    let k = key("bad.png");
    s.put(&k, vec![1, 2, 3], "image/png").await.unwrap();
    std::fs::write(root.join("bad.png~blob"), b"no header here").unwrap();
    assert!(s.get(&k).await.is_err());
}
