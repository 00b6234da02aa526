//! The `MetadataFetcher` port: a GET of a document at a URL a client chose (an OAuth Client ID
//! Metadata Document), done by the runtime because only the runtime can guard it against SSRF (the
//! native fetcher vets resolved addresses; the Worker's does what `fetch()` allows), and the rule
//! of what counts as a public address, written once for both.

use std::time::Duration;

/// The largest document accepted (the fetcher stops reading past it).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The longest a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A fetched response, as the runtime's fetcher got it.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub date: Option<String>,
}

/// GETs a client metadata document. Implementations must refuse non-public addresses (unless
/// `allow_private`, set only for origins on the test allow-list), connect only to the address
/// they vetted, follow no redirects, read at most [`MAX_DOCUMENT_BYTES`] (more is an error) and
/// give up after [`FETCH_TIMEOUT`]. Errors are `Invalid` with the reason, for the consent page.
#[async_trait::async_trait]
pub trait MetadataFetcher: crate::MaybeSendSync {
    async fn fetch(&self, url: &url::Url, allow_private: bool) -> crate::Result<Fetched>;
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918), shared
/// (100.64/10), link-local, unique-local (fc00::/7), multicast, unspecified, documentation,
/// benchmarking or reserved, nor an IPv4 address hidden in IPv6.
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b)
                || s[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }
}
