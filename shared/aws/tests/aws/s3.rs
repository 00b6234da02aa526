//! What only the S3 adapter promises: objects are encrypted at rest, and presigned URLs are
//! short-lived, signed over the key and expiry, and serve the blob. moto does not check presigned
//! signatures, so the signature is recomputed here (SigV4 query signing) from the test credentials.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use imagemcp_aws::{S3BlobStore, Sse, provision};
use imagemcp_core::blob::{BlobKey, BlobStore, FileName};
use sha2::{Digest, Sha256};

use crate::helpers::{Moto, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_written_with_server_side_encryption() {
    let clients = Moto::shared().clients().await;
    let bucket = unique("sse-bucket");
    provision::create_bucket(&clients, &bucket).await.unwrap();
    for (sse, expect) in [
        (Sse::Aes256, "AES256"),
        (Sse::Kms(Some("alias/imagemcp".into())), "aws:kms"),
    ] {
        let store = S3BlobStore::new(clients.s3.clone(), bucket.clone(), sse);
        let key = BlobKey::parse(&format!("orgs/a/{}.png", expect.replace(':', "-"))).unwrap();
        store.put(&key, vec![1, 2, 3], "image/png").await.unwrap();
        let head = clients
            .s3
            .head_object()
            .bucket(&bucket)
            .key(key.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some(expect)
        );
        assert_eq!(head.content_type(), Some("image/png"));
    }
}

fn query_params(url: &str) -> BTreeMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 query signature of a presigned GET `url`, computed with `secret`.
fn expected_signature(url: &str, secret: &str) -> String {
    let (scheme_host, rest) = url
        .split_once("://")
        .map(|(_, r)| r.split_once('/').unwrap())
        .unwrap();
    let (path, _) = rest.split_once('?').unwrap();
    let params = query_params(url);
    let canonical_query: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let canonical_request = format!(
        "GET\n/{path}\n{}\nhost:{scheme_host}\n\nhost\nUNSIGNED-PAYLOAD",
        canonical_query.join("&")
    );
    let amz_date = &params["X-Amz-Date"];
    let scope = params["X-Amz-Credential"].replace("%2F", "/");
    let scope = scope.split_once('/').unwrap().1;
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let parts: Vec<&str> = scope.split('/').collect();
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), parts[0]);
    for part in &parts[1..] {
        key = hmac(&key, part);
    }
    hex::encode(hmac(&key, &to_sign))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_are_short_lived_signed_and_serve_the_blob() {
    let clients = Moto::shared().clients().await;
    let bucket = unique("presign-bucket");
    provision::create_bucket(&clients, &bucket).await.unwrap();
    let store = S3BlobStore::new(clients.s3.clone(), bucket.clone(), Sse::Aes256);
    let key = BlobKey::parse("orgs/org_1/images/img_1.webp").unwrap();
    let bytes: Vec<u8> = (0..=255u8).collect();
    store.put(&key, bytes.clone(), "image/webp").await.unwrap();

    let url = store
        .signed_url(&key, Duration::from_secs(600), None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/{bucket}/orgs/org_1/images/img_1.webp?",
            Moto::shared().url
        )),
        "{url}"
    );
    let params = query_params(&url);
    assert_eq!(
        params["X-Amz-Expires"], "600",
        "the URL expires when asked: {url}"
    );
    assert_eq!(params["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(params["X-Amz-SignedHeaders"], "host");
    assert!(
        params["X-Amz-Credential"].starts_with("AKIDTEST%2F"),
        "{url}"
    );
    assert!(
        params["X-Amz-Credential"].ends_with("%2Fus-east-1%2Fs3%2Faws4_request"),
        "{url}"
    );
    assert!(
        !url.contains("test-secret-key"),
        "the secret never appears in a URL"
    );
    assert_eq!(
        params["X-Amz-Signature"],
        expected_signature(&url, "test-secret-key"),
        "the signature covers the path, the expiry and the credential scope"
    );
    let tampered = url.replace("X-Amz-Expires=600", "X-Amz-Expires=604800");
    assert_ne!(
        expected_signature(&tampered, "test-secret-key"),
        params["X-Amz-Signature"],
        "a longer expiry needs a new signature"
    );

    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/webp");
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        bytes,
        "the URL serves the blob"
    );

    for bad in [Duration::ZERO, Duration::from_secs(8 * 24 * 3600)] {
        assert!(
            store.signed_url(&key, bad, None).await.is_err(),
            "{bad:?} is outside S3's 1 s to 7 days"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_download_is_saved_under_its_file_name() {
    let clients = Moto::shared().clients().await;
    let bucket = unique("download-bucket");
    provision::create_bucket(&clients, &bucket).await.unwrap();
    let store = S3BlobStore::new(clients.s3.clone(), bucket.clone(), Sse::Aes256);
    let key = BlobKey::parse("orgs/org_1/images/img_2.png").unwrap();
    store.put(&key, vec![1, 2, 3], "image/png").await.unwrap();
    let name = FileName::parse("spring-launch_story_v1.png").unwrap();
    let url = store
        .signed_url(&key, Duration::from_secs(600), Some(&name))
        .await
        .unwrap()
        .unwrap();
    let params = query_params(&url);
    assert_eq!(
        params["response-content-disposition"],
        "attachment%3B%20filename%3D%22spring-launch_story_v1.png%22",
        "{url}"
    );
    assert_eq!(
        params["X-Amz-Signature"],
        expected_signature(&url, "test-secret-key"),
        "the signature covers the file name"
    );
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"spring-launch_story_v1.png\""
    );
    let renamed = url.replace("spring-launch_story", "other");
    assert_ne!(
        expected_signature(&renamed, "test-secret-key"),
        params["X-Amz-Signature"],
        "a changed name needs a new signature"
    );
}
