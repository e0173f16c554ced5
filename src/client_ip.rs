//! Where the client address comes from: the peer of the connection, and `X-Forwarded-For`
//! only when that peer is a proxy the application trusts.

use std::net::{IpAddr, SocketAddr};

use http::{Extensions, HeaderMap};

use crate::cidr::{CidrError, CidrList, canonical_ip};

/// The `X-Forwarded-For` header name.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The peer address of the connection, from the request extensions: axum's
/// `ConnectInfo<SocketAddr>` or `MockConnectInfo<SocketAddr>` (with the `axum` feature), or
/// a plain [`SocketAddr`] that a hyper server inserts itself.
pub fn peer_addr(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    {
        use axum::extract::ConnectInfo;
        use axum::extract::connect_info::MockConnectInfo;
        if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
            return Some(addr.ip());
        }
        if let Some(MockConnectInfo(addr)) = extensions.get::<MockConnectInfo<SocketAddr>>() {
            return Some(addr.ip());
        }
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The reverse proxies whose `X-Forwarded-For` is believed. Trust only the proxies' own
/// addresses: every host inside a trusted range can claim to be any client, so trusting a
/// whole `10.0.0.0/8` lets any machine in it pass any token's allow-list.
///
/// Empty ([`TrustedProxies::none`], the default) trusts nobody: the peer address is the
/// client address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(CidrList);

impl TrustedProxies {
    /// Trusts no proxy: the peer is the client.
    pub fn none() -> Self {
        Self(CidrList::any())
    }

    /// Trusts these ranges or addresses.
    ///
    /// # Errors
    ///
    /// [`CidrError`] naming the first entry that is not a CIDR range or address, or when
    /// there are too many.
    pub fn parse<I>(entries: I) -> Result<Self, CidrError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        CidrList::parse(entries).map(Self)
    }

    /// Whether no proxy is trusted.
    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        !self.0.is_empty() && self.0.contains(ip)
    }

    /// The trusted ranges.
    pub fn ranges(&self) -> &CidrList {
        &self.0
    }

    /// The client address of a request that came from `peer`.
    ///
    /// With no trusted proxies, or when `peer` is not one of them, the answer is `peer`: the
    /// forwarded headers are ignored, since anyone can send them. When `peer` is trusted, the
    /// `X-Forwarded-For` entries (all its headers, in order) are walked from the right, and the
    /// first entry that is not itself a trusted proxy is the client. The leftmost entry, which
    /// the client wrote, is never believed on its own. An entry that cannot be read where the
    /// walk reaches it makes the client unknown (`None`): a token with an allow-list is then
    /// refused rather than matched against a guess. IPv4-mapped IPv6 addresses are folded to
    /// IPv4.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use tokengate::TrustedProxies;
    ///
    /// let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"));
    /// let peer = "10.0.0.1".parse().unwrap();
    /// assert_eq!(proxies.client_ip(Some(peer), &headers), Some("203.0.113.7".parse().unwrap()));
    /// ```
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical_ip(peer?);
        if !self.contains(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for value in headers.get_all(X_FORWARDED_FOR).iter().rev() {
            // Read hop by hop: what the client wrote left of its own address may hold
            // any bytes, and is never read.
            for hop in value.as_bytes().rsplit(|&b| b == b',') {
                let hop = std::str::from_utf8(hop).ok()?;
                client = canonical_ip(parse_hop(hop)?);
                if !self.contains(client) {
                    return Some(client);
                }
            }
        }
        // Every hop was a trusted proxy: the leftmost one is as far as the trail goes.
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:443`) or brackets. Zone ids and anything else are refused.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn walk_table() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", "2001:db8::/32"]).unwrap();
        let none = TrustedProxies::none();
        #[rustfmt::skip]
        let cases: &[(&TrustedProxies, &str, &[&str], Option<&str>)] = &[
            // No trusted proxies: the peer, whatever the headers say.
            (&none, "203.0.113.1", &["6.6.6.6"], Some("203.0.113.1")),
            // Untrusted peer: headers ignored.
            (&trusted, "203.0.113.1", &["6.6.6.6"], Some("203.0.113.1")),
            // Trusted peer, no header: the peer.
            (&trusted, "10.0.0.1", &[], Some("10.0.0.1")),
            // Trusted peer: the rightmost untrusted hop, never the forged leftmost one.
            (&trusted, "10.0.0.1", &["6.6.6.6, 198.51.100.4"], Some("198.51.100.4")),
            (&trusted, "10.0.0.1", &["6.6.6.6, 198.51.100.4, 10.0.0.9"], Some("198.51.100.4")),
            // Several headers are one list, in order.
            (&trusted, "10.0.0.1", &["6.6.6.6", "198.51.100.4", "10.0.0.9"], Some("198.51.100.4")),
            // A chain made only of trusted hops ends at the leftmost.
            (&trusted, "10.0.0.1", &["10.0.0.3, 10.0.0.2"], Some("10.0.0.3")),
            // Mapped peers and hops fold to IPv4.
            (&trusted, "::ffff:10.0.0.1", &["::ffff:198.51.100.4"], Some("198.51.100.4")),
            (&none, "::ffff:203.0.113.1", &[], Some("203.0.113.1")),
            // Ports and brackets.
            (&trusted, "10.0.0.1", &["198.51.100.4:5000"], Some("198.51.100.4")),
            (&trusted, "10.0.0.1", &["[2001:db9::1]:443"], Some("2001:db9::1")),
            (&trusted, "10.0.0.1", &["[2001:db9::1]"], Some("2001:db9::1")),
            (&trusted, "2001:db8::1", &["2001:db9::1"], Some("2001:db9::1")),
            // Garbage where the walk reaches it: unknown. Garbage beyond the first
            // untrusted hop is never read.
            (&trusted, "10.0.0.1", &["198.51.100.4, garbage"], None),
            (&trusted, "10.0.0.1", &["garbage, 198.51.100.4"], Some("198.51.100.4")),
            (&trusted, "10.0.0.1", &["fe80::1%eth0"], None),
            (&trusted, "10.0.0.1", &[""], None),
            (&trusted, "10.0.0.1", &["198.51.100.4,"], None),
        ];
        for (trusted, peer, values, expected) in cases {
            let got = trusted.client_ip(Some(ip(peer)), &headers(values));
            assert_eq!(got, expected.map(ip), "peer {peer} xff {values:?}");
        }
    }

    #[test]
    fn no_peer_means_no_client() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        assert_eq!(trusted.client_ip(None, &headers(&["198.51.100.4"])), None);
    }

    #[test]
    fn non_ascii_header_is_unreadable() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let mut map = HeaderMap::new();
        map.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap(),
        );
        assert_eq!(trusted.client_ip(Some(ip("10.0.0.1")), &map), None);
    }

    #[test]
    fn bytes_beyond_the_client_are_never_read() {
        // A proxy appends the address it saw to the client's own header, whatever bytes
        // that held (`HeaderValue` allows 0x80-0xFF): they must not hide the client.
        struct Case {
            what: &'static str,
            value: &'static [u8],
            client: Option<&'static str>,
        }
        let cases = [
            Case {
                what: "a forged hop with a high byte, then the client",
                value: b"6.6.6.6\xff, 198.51.100.4",
                client: Some("198.51.100.4"),
            },
            Case {
                what: "a high byte alone, the client, then a trusted proxy",
                value: b"\x80, 198.51.100.4, 10.0.0.9",
                client: Some("198.51.100.4"),
            },
            Case {
                what: "the high byte in the hop the walk reaches",
                value: b"198.51.100.4, 10.0.0.9\xff",
                client: None,
            },
        ];
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        for case in cases {
            let mut map = HeaderMap::new();
            map.insert(
                X_FORWARDED_FOR,
                HeaderValue::from_bytes(case.value).unwrap(),
            );
            assert_eq!(
                trusted.client_ip(Some(ip("10.0.0.1")), &map),
                case.client.map(ip),
                "{}",
                case.what
            );
        }
    }

    #[test]
    fn peer_from_plain_socket_addr() {
        let mut ext = Extensions::new();
        assert_eq!(peer_addr(&ext), None);
        ext.insert(SocketAddr::from(([192, 0, 2, 1], 80)));
        assert_eq!(peer_addr(&ext), Some(ip("192.0.2.1")));
    }
}
