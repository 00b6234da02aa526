//! The Worker's fetcher of OAuth Client ID Metadata Documents (`imagemcp_core::fetch`), on
//! the Workers `fetch` API: https only (plain http only for origins on the test allow-list,
//! `IMAGEMCP_CIMD_TEST_ALLOW_ORIGINS`), IP-literal hosts must be public (the same classification
//! as the native fetcher, `imagemcp_core::fetch::is_public_ip`), `localhost` names are refused,
//! no redirect is followed (`redirect: manual`, a 3xx is an error), the body is read to at most
//! 64 KiB while it streams, and the whole fetch is aborted after 5 s.
//!
//! What this cannot do, and why that is acceptable: the native fetcher resolves the host itself
//! and connects only to addresses it vetted, which defeats a name that resolves to a private
//! address (or rebinds to one). A Worker has no DNS API and no sockets for `fetch`; the platform
//! resolves and connects, so a hostname's addresses cannot be vetted here. The fetch leaves from
//! Cloudflare's edge, not from the operator's network: the edge has no route to the operator's
//! private networks, VPCs or a cloud provider's metadata service (169.254.169.254 is not the
//! operator's there). So a name pointing at 10.x or 127.0.0.1 reaches nothing of ours; what we
//! check here (literal addresses, `localhost`, scheme, redirects, size, time) is what still
//! matters, and we do not count on any platform-side refusal beyond that. It is weaker than the
//! native guard if the Worker is ever given private routes (Cloudflare Tunnel or VPC services
//! reached by hostname): such a deployment must not rely on this fetcher alone.

use std::net::IpAddr;

use futures::StreamExt;
use futures::future::{Either, select};
use imagemcp_core::fetch::{
    FETCH_TIMEOUT, Fetched, MAX_DOCUMENT_BYTES, MetadataFetcher, is_public_ip,
};
use imagemcp_core::{Error, Result};
use worker::send::SendFuture;

/// Fetches with the Workers `fetch` API (see the module documentation).
pub(crate) struct EdgeFetcher;

fn refuse(reason: impl Into<String>) -> Error {
    Error::invalid("client_id", reason)
}

/// The scheme and host rules, before any request is made.
fn check_target(url: &url::Url, allow_private: bool) -> Result<()> {
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(refuse("a client_id URL must use https")),
    }
    if allow_private {
        return Ok(());
    }
    let private = || {
        refuse(
            "the client_id URL's host is a private, loopback, link-local or otherwise non-public address",
        )
    };
    match url.host() {
        None => Err(refuse("the client_id URL has no host")),
        Some(url::Host::Ipv4(v4)) if !is_public_ip(IpAddr::V4(v4)) => Err(private()),
        Some(url::Host::Ipv6(v6)) if !is_public_ip(IpAddr::V6(v6)) => Err(private()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Err(private())
            } else {
                Ok(())
            }
        }
        Some(_) => Ok(()),
    }
}

async fn get(url: &url::Url, signal: &worker::AbortSignal) -> Result<Fetched> {
    let unreachable =
        |_: worker::Error| refuse("the client metadata document could not be fetched");
    let headers = worker::Headers::new();
    headers
        .set("accept", "application/json")
        .map_err(unreachable)?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Get)
        .with_headers(headers)
        .with_redirect(worker::RequestRedirect::Manual);
    let request = worker::Request::new_with_init(url.as_str(), &init).map_err(unreachable)?;
    let mut response = worker::Fetch::Request(request)
        .send_with_signal(signal)
        .await
        .map_err(unreachable)?;
    let status = response.status_code();
    if (300..400).contains(&status) {
        return Err(refuse(
            "the client metadata document URL redirects; redirects are not followed",
        ));
    }
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let mut fetched = Fetched {
        status,
        body: Vec::new(),
        cache_control: header("cache-control"),
        expires: header("expires"),
        date: header("date"),
    };
    let too_large = || refuse("the client metadata document is larger than 64 KiB");
    if header("content-length")
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = response.stream().map_err(unreachable)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| refuse("the client metadata document could not be read"))?;
        if fetched.body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        fetched.body.extend_from_slice(&chunk);
    }
    Ok(fetched)
}

#[async_trait::async_trait]
impl MetadataFetcher for EdgeFetcher {
    async fn fetch(&self, url: &url::Url, allow_private: bool) -> Result<Fetched> {
        check_target(url, allow_private)?;
        // `fetch` futures and timers hold JavaScript values (`!Send`); one thread per isolate.
        let url = url.clone();
        SendFuture::new(async move {
            let controller = worker::AbortController::default();
            let signal = controller.signal();
            let fetch = Box::pin(get(&url, &signal));
            let timer = Box::pin(worker::Delay::from(FETCH_TIMEOUT));
            match select(fetch, timer).await {
                Either::Left((fetched, _)) => fetched,
                Either::Right(_) => {
                    // Stop the request (and its body stream) rather than leave it running.
                    controller.abort();
                    Err(refuse("fetching the client metadata document timed out"))
                }
            }
        })
        .await
    }
}
