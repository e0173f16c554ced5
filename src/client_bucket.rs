//! [`ClientBucket`]: the unit in which clients are counted by rate limits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a limit counts one client by: an IPv4 address, or an IPv6 address's /64, since one
/// host usually holds a whole /64 and can pick any address in it. An IPv4-mapped IPv6
/// address (`::ffff:192.0.2.7`) is the IPv4 client it maps.
///
/// [`FailureLimit`](crate::FailureLimit) counts failures per bucket; an application's own
/// limits (wrong passwords, say) can key their counts by it too, so that all count clients
/// alike. `Display` shows the address, or the network with `/64`.
///
/// ```
/// use std::net::IpAddr;
/// use tokengate::ClientBucket;
///
/// let one: IpAddr = "2001:db8:1:2::1".parse()?;
/// let other: IpAddr = "2001:db8:1:2:ffff::9".parse()?;
/// assert_eq!(ClientBucket::from(one), ClientBucket::from(other));
/// assert_eq!(ClientBucket::from(one).to_string(), "2001:db8:1:2::/64");
///
/// let mapped: IpAddr = "::ffff:192.0.2.7".parse()?;
/// assert_eq!(ClientBucket::from(mapped).to_string(), "192.0.2.7");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientBucket(Bucket);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Bucket {
    V4(Ipv4Addr),
    /// The network's address: the /64, the rest zero.
    V6(Ipv6Addr),
}

impl ClientBucket {
    /// How many leading bits of an IPv6 address name its bucket.
    pub const IPV6_PREFIX_LEN: u8 = 64;

    /// Whether `client` falls in this bucket.
    pub fn contains(&self, client: IpAddr) -> bool {
        Self::from(client) == *self
    }
}

impl From<IpAddr> for ClientBucket {
    fn from(client: IpAddr) -> Self {
        match client {
            IpAddr::V4(v4) => Self::from(v4),
            IpAddr::V6(v6) => Self::from(v6),
        }
    }
}

impl From<Ipv4Addr> for ClientBucket {
    fn from(client: Ipv4Addr) -> Self {
        Self(Bucket::V4(client))
    }
}

impl From<Ipv6Addr> for ClientBucket {
    fn from(client: Ipv6Addr) -> Self {
        match client.to_ipv4_mapped() {
            Some(v4) => Self(Bucket::V4(v4)),
            None => {
                let host_bits = 128 - u32::from(Self::IPV6_PREFIX_LEN);
                let network = u128::from(client) >> host_bits << host_bits;
                Self(Bucket::V6(Ipv6Addr::from(network)))
            }
        }
    }
}

impl fmt::Display for ClientBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Bucket::V4(v4) => write!(f, "{v4}"),
            Bucket::V6(v6) => write!(f, "{v6}/{}", Self::IPV6_PREFIX_LEN),
        }
    }
}

impl fmt::Debug for ClientBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientBucket({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_their_buckets() {
        struct Case {
            what: &'static str,
            client: &'static str,
            bucket: &'static str,
        }
        let cases = [
            Case {
                what: "an IPv4 address is its own bucket",
                client: "192.0.2.1",
                bucket: "192.0.2.1",
            },
            Case {
                what: "an IPv4-mapped address is the IPv4 client",
                client: "::ffff:192.0.2.1",
                bucket: "192.0.2.1",
            },
            Case {
                what: "an IPv6 address counts by its /64",
                client: "2001:db8:1:2:3:4:5:6",
                bucket: "2001:db8:1:2::/64",
            },
            Case {
                what: "the last address of a /64",
                client: "2001:db8:1:2:ffff:ffff:ffff:ffff",
                bucket: "2001:db8:1:2::/64",
            },
            Case {
                what: "loopback",
                client: "::1",
                bucket: "::/64",
            },
            Case {
                what: "the IPv4-compatible form is not a mapped address",
                client: "::192.0.2.1",
                bucket: "::/64",
            },
        ];
        for case in cases {
            let client: IpAddr = case.client.parse().unwrap();
            let bucket = ClientBucket::from(client);
            assert_eq!(bucket.to_string(), case.bucket, "{}", case.what);
            assert!(bucket.contains(client), "{}", case.what);
        }
    }

    #[test]
    fn neighbouring_networks_are_other_buckets() {
        let bucket = |text: &str| ClientBucket::from(text.parse::<IpAddr>().unwrap());
        assert_ne!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:3::1"));
        assert_ne!(bucket("192.0.2.1"), bucket("192.0.2.2"));
        assert_ne!(
            bucket("0.0.0.0"),
            bucket("::"),
            "an IPv4 bucket is not an IPv6 one"
        );
        assert_eq!(
            format!("{:?}", bucket("2001:db8::7")),
            "ClientBucket(2001:db8::/64)"
        );
    }
}
