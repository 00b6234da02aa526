//! The `BlobStore` contract: bytes and content type round-trip, overwrite, delete, signed URLs.

use std::sync::Arc;
use std::time::Duration;

use super::{START_MS, ok};
use crate::blob::{Blob, BlobKey, BlobStore};
use crate::clock::ManualClock;

/// Runs every `BlobStore` check, each against a fresh adapter from `make`.
///
/// What a signed URL serves is adapter-specific (a presigned S3 URL, the local `/files` route), so
/// the suite only checks that one is made; each adapter's own tests fetch or verify it.
pub async fn blob_store_suite<B: BlobStore>(make: impl AsyncFn(Arc<ManualClock>) -> B) {
    let fresh = async || make(Arc::new(ManualClock::new(START_MS))).await;
    round_trip(&fresh().await).await;
    overwrite(&fresh().await).await;
    delete(&fresh().await).await;
    nested_keys_are_independent(&fresh().await).await;
    signed_url(&fresh().await).await;
}

fn key(s: &str) -> BlobKey {
    match BlobKey::parse(s) {
        Ok(k) => k,
        Err(e) => panic!("test bug: {s:?} is not a blob key: {e}"),
    }
}

async fn get<B: BlobStore>(b: &B, k: &BlobKey, what: &str) -> Option<Blob> {
    ok(b.get(k).await, what)
}

async fn round_trip<B: BlobStore>(b: &B) {
    let k = key("orgs/org_1/images/img_1.png");
    assert_eq!(
        get(b, &k, "get of a missing blob").await,
        None,
        "blob: get of a missing blob must be None"
    );

    // Every byte value, so no adapter may treat blobs as text.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    ok(b.put(&k, bytes.clone(), "image/png").await, "blob: put");
    let back = get(b, &k, "get after put").await;
    assert_eq!(
        back,
        Some(Blob {
            bytes,
            content_type: "image/png".into()
        }),
        "blob: get must return the bytes and content type put"
    );

    let empty = key("orgs/org_1/empty.txt");
    ok(
        b.put(&empty, Vec::new(), "text/plain; charset=utf-8").await,
        "blob: put of an empty blob",
    );
    let back = get(b, &empty, "get of an empty blob").await;
    assert_eq!(
        back,
        Some(Blob {
            bytes: Vec::new(),
            content_type: "text/plain; charset=utf-8".into()
        }),
        "blob: an empty blob must round-trip with its content type"
    );

    let flat = key("flat.webp");
    ok(
        b.put(&flat, b"RIFF".to_vec(), "image/webp").await,
        "blob: put of a one-segment key",
    );
    assert_eq!(
        get(b, &flat, "get").await.map(|x| x.bytes),
        Some(b"RIFF".to_vec()),
        "blob: a one-segment key must round-trip"
    );
}

async fn overwrite<B: BlobStore>(b: &B) {
    let k = key("a/b/c.bin");
    ok(
        b.put(&k, vec![1; 10_000], "application/octet-stream").await,
        "blob: put",
    );
    ok(
        b.put(&k, vec![2, 3], "image/jpeg").await,
        "blob: put over a blob",
    );
    let back = get(b, &k, "get after overwrite").await;
    assert_eq!(
        back,
        Some(Blob {
            bytes: vec![2, 3],
            content_type: "image/jpeg".into()
        }),
        "blob: an overwrite must replace bytes and content type (and not keep a longer tail)"
    );
}

async fn delete<B: BlobStore>(b: &B) {
    let k = key("del/x.png");
    let sibling = key("del/y.png");
    ok(b.put(&k, vec![9], "image/png").await, "blob: put");
    ok(b.put(&sibling, vec![8], "image/png").await, "blob: put");
    ok(b.delete(&k).await, "blob: delete");
    assert_eq!(
        get(b, &k, "get after delete").await,
        None,
        "blob: a deleted blob must read as missing"
    );
    assert_eq!(
        get(b, &sibling, "get of a sibling").await.map(|x| x.bytes),
        Some(vec![8]),
        "blob: delete must remove only its key"
    );
    ok(
        b.delete(&k).await,
        "blob: deleting a missing blob must succeed",
    );
    ok(
        b.delete(&key("never/was/here.png")).await,
        "blob: deleting under a missing prefix must succeed",
    );
    ok(
        b.put(&k, vec![7], "image/png").await,
        "blob: put after delete",
    );
    assert_eq!(
        get(b, &k, "get after re-put").await.map(|x| x.bytes),
        Some(vec![7]),
        "blob: a key must be usable again after delete"
    );
}

async fn nested_keys_are_independent<B: BlobStore>(b: &B) {
    // Object stores allow a key and keys "under" it at once; a filesystem adapter must too.
    let parent = key("n/a");
    let child = key("n/a/b");
    let similar = key("n/a.b");
    ok(
        b.put(&parent, vec![1], "text/plain").await,
        "blob: put of a parent key",
    );
    ok(
        b.put(&child, vec![2], "text/plain").await,
        "blob: put of a key under another key",
    );
    ok(
        b.put(&similar, vec![3], "text/plain").await,
        "blob: put of a similar key",
    );
    assert_eq!(
        get(b, &parent, "get").await.map(|x| x.bytes),
        Some(vec![1]),
        "blob: a key and a key under it must coexist (parent)"
    );
    assert_eq!(
        get(b, &child, "get").await.map(|x| x.bytes),
        Some(vec![2]),
        "blob: a key and a key under it must coexist (child)"
    );
    assert_eq!(
        get(b, &similar, "get").await.map(|x| x.bytes),
        Some(vec![3]),
        "blob: similar keys must be distinct"
    );
    ok(b.delete(&parent).await, "blob: delete of a parent key");
    assert_eq!(
        get(b, &child, "get").await.map(|x| x.bytes),
        Some(vec![2]),
        "blob: deleting a key must not delete the keys under it"
    );
    assert_eq!(
        get(b, &key("n"), "get of a mere prefix").await,
        None,
        "blob: a prefix of keys is not itself a blob"
    );
}

async fn signed_url<B: BlobStore>(b: &B) {
    let k = key("orgs/org_1/img_9.png");
    ok(b.put(&k, vec![1, 2, 3], "image/png").await, "blob: put");
    let url = ok(
        b.signed_url(&k, Duration::from_secs(3600), None).await,
        "blob: signed_url",
    );
    let url = url.unwrap_or_else(|| panic!("blob: signed_url must make a URL for a stored blob"));
    assert!(
        url.starts_with("http://") || url.starts_with("https://"),
        "blob: a signed URL must be an http(s) URL, got {url}"
    );
    assert!(
        url.contains("img_9.png"),
        "blob: a signed URL must address its key, got {url}"
    );
    let other = ok(
        b.signed_url(
            &key("orgs/org_1/img_8.png"),
            Duration::from_secs(3600),
            None,
        )
        .await,
        "blob: signed_url",
    );
    assert_ne!(
        other.as_deref(),
        Some(url.as_str()),
        "blob: different keys must get different URLs"
    );
    // A download name is part of what the URL says (and signs): two names, two URLs.
    let spring = named(b, &k, "spring_hero_v1.png").await;
    assert!(
        spring.contains("spring_hero_v1.png"),
        "blob: a download URL must carry its file name, got {spring}"
    );
    assert_ne!(
        spring,
        named(b, &k, "autumn_hero_v1.png").await,
        "blob: different download names must get different URLs"
    );
}

async fn named<B: BlobStore>(b: &B, k: &BlobKey, name: &str) -> String {
    let name = match crate::blob::FileName::parse(name) {
        Ok(n) => n,
        Err(e) => panic!("test bug: {name:?} is not a file name: {e}"),
    };
    ok(
        b.signed_url(k, Duration::from_secs(3600), Some(&name))
            .await,
        "blob: signed_url with a download name",
    )
    .unwrap_or_else(|| panic!("blob: signed_url must make a URL with a download name"))
}
