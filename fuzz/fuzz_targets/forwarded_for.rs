//! The client-address walk: never panics, never believes X-Forwarded-For from an
//! untrusted peer, and never answers with a trusted proxy unless every hop was one.
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tokengate::CidrList;
use tokengate::cidr::canonical_ip;
use tokengate::client_ip::client_ip;

#[derive(Arbitrary, Debug)]
struct Input {
    peer: Option<IpAddr>,
    trust_private: bool,
    forwarded: Vec<Vec<u8>>,
}

fuzz_target!(|input: Input| {
    let trusted = if input.trust_private {
        CidrList::parse(["10.0.0.0/8", "127.0.0.0/8", "fc00::/7", "::1"]).unwrap()
    } else {
        CidrList::any()
    };
    let mut headers = HeaderMap::new();
    for value in &input.forwarded {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append("x-forwarded-for", value);
        }
    }
    let client = client_ip(input.peer, &headers, &trusted);
    match input.peer.map(canonical_ip) {
        None => assert_eq!(client, None),
        Some(peer) if trusted.is_empty() || !trusted.contains(peer) => {
            assert_eq!(client, Some(peer));
        }
        Some(_) => {
            if let Some(ip) = client {
                assert_eq!(ip, canonical_ip(ip), "mapped addresses are folded");
            }
        }
    }
});
