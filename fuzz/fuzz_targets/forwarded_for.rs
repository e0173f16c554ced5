//! The client-address walk: never panics, never believes X-Forwarded-For from an
//! untrusted peer, and never answers with a trusted proxy unless every hop was one.
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tokengate::TrustedProxies;

#[derive(Arbitrary, Debug)]
struct Input {
    peer: Option<IpAddr>,
    trust_private: bool,
    forwarded: Vec<Vec<u8>>,
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they carry.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fuzz_target!(|input: Input| {
    let trusted = if input.trust_private {
        TrustedProxies::parse(["10.0.0.0/8", "127.0.0.0/8", "fc00::/7", "::1"]).unwrap()
    } else {
        TrustedProxies::none()
    };
    let mut headers = HeaderMap::new();
    for value in &input.forwarded {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append("x-forwarded-for", value);
        }
    }
    let client = trusted.client_ip(input.peer, &headers);
    match input.peer.map(canonical_ip) {
        None => assert_eq!(client, None),
        Some(peer) if !trusted.contains(peer) => {
            assert_eq!(client, Some(peer));
        }
        Some(_) => {
            if let Some(ip) = client {
                assert_eq!(ip, canonical_ip(ip), "mapped addresses are folded");
            }
        }
    }
});
