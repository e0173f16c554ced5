//! The checks after a token's record is found: secret, status, address, grants.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::access::{Action, Grants, Permission, Resource};
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
    resource: Option<&Resource>,
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
    grants_allow(&record.grants, action, resource)
}

/// Whether `grants` allow `action` on `resource` (or, with none, at all), and if not, why.
pub(crate) fn grants_allow(
    grants: &Grants,
    action: Action,
    resource: Option<&Resource>,
) -> Result<(), Reason> {
    match resource {
        None if grants.broadest().allows(action) => Ok(()),
        // A token that may stage somewhere, writing live: told to stage instead.
        None if grants.broadest() == Permission::ReadStage => {
            Err(Reason::NotPermitted(Permission::ReadStage))
        }
        None => Err(Reason::ReadOnly),
        Some(resource) => {
            let permission = grants.permission_on(resource.as_str());
            if permission.allows(action) {
                Ok(())
            } else if permission == Permission::ReadOnly && grants.on_everything().is_some() {
                // A classic read-only token: the message it has always had.
                Err(Reason::ReadOnly)
            } else {
                Err(Reason::NotPermitted(permission))
            }
        }
    }
}
