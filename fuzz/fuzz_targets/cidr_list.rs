//! Allow-list parsing: never panics; what it accepts prints and re-parses to the same
//! list, and membership agrees for an address and its IPv4-mapped form.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tokengate::CidrList;

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<String>,
    probe: [u8; 4],
}

fuzz_target!(|input: Input| {
    let Ok(list) = CidrList::parse(&input.entries) else {
        return;
    };
    let again = CidrList::parse(list.to_strings()).expect("a printed list parses");
    assert_eq!(again, list);
    let v4 = Ipv4Addr::from(input.probe);
    let mapped = IpAddr::V6(v4.to_ipv6_mapped());
    assert_eq!(list.contains(IpAddr::V4(v4)), list.contains(mapped));
});
