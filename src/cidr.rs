//! CIDR allow-lists: which client addresses a token may be used from.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

/// Most entries one allow-list may hold.
pub const MAX_CIDR_ENTRIES: usize = 64;

/// Why an allow-list was refused. The message names the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// An entry is neither a CIDR range nor a bare address.
    #[error("CIDR whitelist contains invalid CIDR entry: {0}")]
    InvalidEntry(String),
    /// More entries than [`MAX_CIDR_ENTRIES`].
    #[error("CIDR whitelist has {count} entries; at most {max} are allowed")]
    TooManyEntries {
        /// Entries given.
        count: usize,
        /// [`MAX_CIDR_ENTRIES`].
        max: usize,
    },
}

/// The address ranges a token may be used from; empty means any address.
///
/// IPv4 and IPv6 ranges are both accepted, and a bare address means that single host.
/// IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are folded to IPv4, in the list and in
/// the addresses checked against it, so the two spellings of one client always agree.
///
/// ```
/// use tokengate::CidrList;
///
/// let list = CidrList::parse(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]).unwrap();
/// assert!(list.contains("10.1.2.3".parse().unwrap()));
/// assert!(list.contains("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(list.contains("2001:db8::1".parse().unwrap()));
/// assert!(!list.contains("192.0.2.8".parse().unwrap()));
///
/// let err = CidrList::parse(["10.0.0.300/8"]).unwrap_err();
/// assert_eq!(err.to_string(), "CIDR whitelist contains invalid CIDR entry: 10.0.0.300/8");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CidrList(Vec<IpNet>);

impl CidrList {
    /// The empty list: any address.
    pub fn any() -> Self {
        Self::default()
    }

    /// Parses entries such as `10.0.0.0/8`, `2001:db8::/32` or `192.0.2.7`. Surrounding
    /// whitespace is ignored; the first bad entry is named in the error.
    pub fn parse<I>(entries: I) -> Result<Self, CidrError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut nets = Vec::new();
        let mut entries = entries.into_iter();
        while let Some(entry) = entries.next() {
            if nets.len() == MAX_CIDR_ENTRIES {
                // Count the rest without parsing it, to say how many were given.
                return Err(CidrError::TooManyEntries {
                    count: MAX_CIDR_ENTRIES + 1 + entries.count(),
                    max: MAX_CIDR_ENTRIES,
                });
            }
            nets.push(parse_entry(entry.as_ref().trim())?);
        }
        Ok(Self(nets))
    }

    /// Whether this list lets `ip` through. The empty list lets every address through.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether the list is empty (any address allowed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges, in the order given.
    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }

    /// The ranges as text, for listings and storage.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for CidrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Folds an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to IPv4; other addresses are
/// returned as they are.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// An address, or an address and a prefix length. The address is parsed strictly
/// (`010.0.0.1` is refused: many tools read a leading zero as octal, so its meaning is a
/// guess), and so is the length (digits only, no leading zero).
fn parse_entry(entry: &str) -> Result<IpNet, CidrError> {
    let invalid = || CidrError::InvalidEntry(shorten(entry));
    let (address, length) = match entry.split_once('/') {
        Some((address, length)) => (address, Some(length)),
        None => (entry, None),
    };
    let address: IpAddr = address.parse().map_err(|_| invalid())?;
    let net = match length {
        None => IpNet::from(address),
        Some(length) => {
            let digits = !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit());
            if !digits || (length.len() > 1 && length.starts_with('0')) {
                return Err(invalid());
            }
            let length: u8 = length.parse().map_err(|_| invalid())?;
            IpNet::new(address, length).map_err(|_| invalid())?
        }
    };
    Ok(canonical_net(net))
}

/// `::ffff:0:0/96` and longer, written as IPv6, become the IPv4 range they map.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// Error messages echo the entry; a pasted novel is cut short.
fn shorten(entry: &str) -> String {
    const MAX: usize = 64;
    if entry.chars().count() <= MAX {
        entry.to_owned()
    } else {
        let mut short: String = entry.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ambiguous_entries_are_refused() {
        for entry in [
            "010.0.0.1",
            "010.0.0.1/32",
            "10.0.0.01/32",
            "10.0.0.1/08",
            "10.0.0.1/",
            "10.0.0.1/+8",
            "10.0.0.1/33",
            "2001:db8::/129",
            "::ffff:010.0.0.1",
        ] {
            assert_eq!(
                CidrList::parse([entry]),
                Err(CidrError::InvalidEntry(entry.to_owned())),
                "{entry}"
            );
        }
        for entry in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "10.0.0.1",
            "2001:db8::/32",
            "::/0",
        ] {
            assert!(CidrList::parse([entry]).is_ok(), "{entry}");
        }
    }

    #[test]
    fn contains_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "203.0.113.9", true),
            (&[], "2001:db8::1", true),
            (&["10.0.0.0/8"], "10.255.0.1", true),
            (&["10.0.0.0/8"], "11.0.0.1", false),
            (&["10.0.0.0/8"], "::ffff:10.1.2.3", true),
            (&["10.0.0.0/8"], "::ffff:11.1.2.3", false),
            (&["10.0.0.0/8"], "2001:db8::1", false),
            (&["192.0.2.7"], "192.0.2.7", true),
            (&["192.0.2.7"], "192.0.2.8", false),
            (&["2001:db8::/32"], "2001:db8:ffff::1", true),
            (&["2001:db8::/32"], "2001:db9::1", false),
            (&["2001:db8::/32"], "10.0.0.1", false),
            (&["2001:db8::5"], "2001:db8::5", true),
            (&["::ffff:10.0.0.0/104"], "10.9.9.9", true),
            (&["::ffff:10.0.0.0/104"], "::ffff:10.9.9.9", true),
            (&[" 10.0.0.0/8 ", "172.16.0.0/12"], "172.20.1.1", true),
            (&["10.0.0.1/8"], "10.200.0.1", true),
            (&["0.0.0.0/0"], "8.8.8.8", true),
            (&["::/0"], "::1", true),
        ];
        for (entries, addr, expected) in cases {
            let list = CidrList::parse(entries.iter()).unwrap();
            assert_eq!(list.contains(ip(addr)), *expected, "{entries:?} ∋ {addr}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "10.0.0.300/8",
            "10.0.0.0/33",
            "2001:db8::/129",
            "banana",
            "",
            "10.0.0.0/",
            "fe80::1%eth0",
            "10.0.0.0/8,11.0.0.0/8",
        ] {
            let err = CidrList::parse(["10.0.0.0/8", bad]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("CIDR whitelist contains invalid CIDR entry: {}", bad.trim())
            );
        }
    }

    #[test]
    fn long_entries_are_shortened_in_errors() {
        let long = "x".repeat(10_000);
        let message = CidrList::parse([&long]).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn size_is_bounded() {
        let max: Vec<String> = (0..MAX_CIDR_ENTRIES)
            .map(|i| format!("10.0.{i}.0/24"))
            .collect();
        assert_eq!(
            CidrList::parse(&max).unwrap().nets().len(),
            MAX_CIDR_ENTRIES
        );
        let mut over = max.clone();
        over.extend(["10.1.0.0/24".into(), "not even parsed".into()]);
        assert_eq!(
            CidrList::parse(&over).unwrap_err(),
            CidrError::TooManyEntries {
                count: MAX_CIDR_ENTRIES + 2,
                max: MAX_CIDR_ENTRIES
            }
        );
    }

    #[test]
    fn mapped_addresses_fold() {
        assert_eq!(canonical_ip(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(canonical_ip(ip("::1")), ip("::1"));
        assert_eq!(canonical_ip(ip("10.1.2.3")), ip("10.1.2.3"));
        let list = CidrList::parse(["::ffff:10.0.0.0/104"]).unwrap();
        assert_eq!(list.to_strings(), ["10.0.0.0/8"]);
    }
}
