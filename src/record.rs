//! What is stored about a token, the options for a new one, and the listing view.

use std::time::{Duration, SystemTime};

use crate::cidr::CidrList;
use crate::digest::TokenDigest;
use crate::token::{TokenId, TokenPrefix};

/// What a token may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads only: every write is refused with 403.
    ReadOnly,
    /// Reads and writes (npm's "full permission" token).
    #[default]
    ReadWrite,
}

impl Access {
    /// Whether this access level allows a request; `is_write` says whether the request
    /// changes something.
    ///
    /// ```
    /// use tokengate::Access;
    ///
    /// assert!(Access::ReadOnly.allows(false));
    /// assert!(!Access::ReadOnly.allows(true));
    /// assert!(Access::ReadWrite.allows(true));
    /// ```
    pub fn allows(self, is_write: bool) -> bool {
        !is_write || self == Access::ReadWrite
    }

    /// Whether this is [`Access::ReadOnly`].
    pub fn is_read_only(self) -> bool {
        self == Access::ReadOnly
    }
}

/// Everything a store keeps about one token. Holds the digest, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id; the store key.
    pub id: TokenId,
    /// Who the token belongs to (a user name for a registry).
    pub owner: String,
    /// SHA-256 of the whole token.
    pub digest: TokenDigest,
    /// Read-only or read-write.
    pub access: Access,
    /// Addresses the token may be used from; empty means any.
    pub cidr: CidrList,
    /// When the token was made.
    pub created_at: SystemTime,
    /// After this instant the token is refused.
    pub expires_at: Option<SystemTime>,
    /// When it was revoked; a revoked record is kept so that it can never be reused.
    pub revoked_at: Option<SystemTime>,
    /// A name chosen by the owner.
    pub name: Option<String>,
    /// A longer description chosen by the owner.
    pub description: Option<String>,
    /// When the token was last accepted, to the minute (npm lists it as `accessed`).
    pub last_used_at: Option<SystemTime>,
}

/// Whether a record is usable at `now`, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Neither revoked nor expired.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl TokenRecord {
    /// The record's status at `now`. Revocation wins over expiry; a token expires at the
    /// instant `expires_at`, not after it.
    pub fn status(&self, now: SystemTime) -> Status {
        if self.revoked_at.is_some() {
            Status::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Status::Expired
        } else {
            Status::Active
        }
    }
}

/// When a new token stops working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    In(Duration),
    At(SystemTime),
}

/// The options for a new token, as `npm token create` takes them.
///
/// ```
/// use std::time::Duration;
/// use tokengate::NewToken;
///
/// let options = NewToken::read_only()
///     .allow_cidrs(["10.0.0.0/8", "2001:db8::/32"])
///     .expires_in(Duration::from_secs(30 * 24 * 3600))
///     .name("CI")
///     .description("read-only token for the CI mirror");
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
pub struct NewToken {
    pub(crate) access: Access,
    pub(crate) cidr: Vec<String>,
    pub(crate) expiry: Option<Expiry>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
}

impl NewToken {
    /// A full-permission token, usable from anywhere, that never expires.
    pub fn read_write() -> Self {
        Self::default()
    }

    /// A read-only token, usable from anywhere, that never expires.
    pub fn read_only() -> Self {
        Self::default().access(Access::ReadOnly)
    }

    /// Sets the access level.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Restricts the token to these CIDR ranges or addresses (IPv4 or IPv6). They are
    /// validated by [`Tokens::create`](crate::Tokens::create), which names a bad entry.
    pub fn allow_cidrs<I>(mut self, entries: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.cidr = entries.into_iter().map(Into::into).collect();
        self
    }

    /// The token stops working this long after creation.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expiry = Some(Expiry::In(lifetime));
        self
    }

    /// The token stops working at this instant, which must be in the future.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expiry = Some(Expiry::At(at));
        self
    }

    /// A name for listings.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A description for listings.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// How many characters of the id a listing shows after the prefix.
pub const LISTED_ID_CHARS: usize = 6;

/// A token as listings show it: no digest, no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenListing {
    /// The public id (npm calls it `key`); revocation takes it.
    pub id: TokenId,
    /// A short pure prefix of the token, such as `npm_AbC123`, so that a client holding
    /// the full token can tell which listing is its own.
    pub token_prefix: String,
    /// Who the token belongs to.
    pub owner: String,
    /// Read-only or read-write.
    pub access: Access,
    /// Addresses the token may be used from; empty means any.
    pub cidr: CidrList,
    /// When the token was made.
    pub created_at: SystemTime,
    /// When it stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// Its name.
    pub name: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// When it was last accepted, to the minute.
    pub last_used_at: Option<SystemTime>,
}

impl TokenListing {
    /// The listing view of a record issued with `prefix`.
    pub fn from_record(prefix: &TokenPrefix, record: &TokenRecord) -> Self {
        Self {
            id: record.id,
            token_prefix: listed_prefix(prefix, record.id),
            owner: record.owner.clone(),
            access: record.access,
            cidr: record.cidr.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            name: record.name.clone(),
            description: record.description.clone(),
            last_used_at: record.last_used_at,
        }
    }
}

/// `<prefix>_` and the first [`LISTED_ID_CHARS`] characters of the id.
fn listed_prefix(prefix: &TokenPrefix, id: TokenId) -> String {
    format!("{prefix}_{}", &id.as_str()[..LISTED_ID_CHARS])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::token::generate;

    /// A live read-write record created at `at`, for unit tests.
    pub(crate) fn sample_record(at: SystemTime) -> TokenRecord {
        let token = generate(&TokenPrefix::default()).unwrap();
        TokenRecord {
            id: token.id(),
            owner: "alice".into(),
            digest: token.digest(),
            access: Access::ReadWrite,
            cidr: CidrList::any(),
            created_at: at,
            expires_at: None,
            revoked_at: None,
            name: None,
            description: None,
            last_used_at: None,
        }
    }

    #[test]
    fn access_table() {
        let cases = [
            (Access::ReadOnly, false, true),
            (Access::ReadOnly, true, false),
            (Access::ReadWrite, false, true),
            (Access::ReadWrite, true, true),
        ];
        for (access, is_write, allowed) in cases {
            assert_eq!(
                access.allows(is_write),
                allowed,
                "{access:?} write={is_write}"
            );
        }
    }

    #[test]
    fn status_table() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let record = |expires_at, revoked_at| TokenRecord {
            expires_at,
            revoked_at,
            ..sample_record(t0)
        };
        let later = t0 + Duration::from_secs(10);
        let cases = [
            (record(None, None), t0, Status::Active),
            (record(Some(later), None), t0, Status::Active),
            (record(Some(later), None), later, Status::Expired),
            (record(None, Some(t0)), t0, Status::Revoked),
            (record(Some(t0), Some(t0)), later, Status::Revoked),
        ];
        for (record, now, expected) in cases {
            assert_eq!(record.status(now), expected);
        }
    }

    #[test]
    fn listing_prefix_is_a_pure_prefix_of_the_token() {
        let prefix = TokenPrefix::new("npm").unwrap();
        let token = generate(&prefix).unwrap();
        let listed = listed_prefix(&prefix, token.id());
        assert_eq!(listed.len(), 4 + LISTED_ID_CHARS);
        assert!(token.expose_secret().starts_with(&listed));
    }
}
