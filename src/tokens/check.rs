//! The checks after a token's record is found: secret, status, address, access.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::access::Action;
use crate::digest::TokenDigest;
use crate::reason::Reason;
use crate::record::{Status, TokenRecord};

/// Every check after the lookup, in order. The secret comes first, so that nothing about
/// a token (revoked, expired, restricted) is told to someone who lacks it. The client
/// address is worked out only for a token with an allow-list.
pub(crate) fn check(
    record: &TokenRecord,
    digest: TokenDigest,
    now: SystemTime,
    client: impl FnOnce() -> Option<IpAddr>,
    action: Action,
) -> Result<(), Reason> {
    if !record.digest.verify(&digest) {
        return Err(Reason::SecretMismatch);
    }
    match record.status(now) {
        Status::Active => {}
        Status::Revoked => return Err(Reason::Revoked),
        Status::Expired => return Err(Reason::Expired),
    }
    if !record.cidr.is_empty() {
        let client = client().ok_or(Reason::NoClientAddress)?;
        if !record.cidr.contains(client) {
            return Err(Reason::AddressNotAllowed);
        }
    }
    if !record.access.allows(action) {
        return Err(Reason::ReadOnly);
    }
    Ok(())
}
