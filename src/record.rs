//! What is stored about a token, and the listing view.

use std::time::SystemTime;

use crate::access::Grants;
use crate::cidr::CidrList;
use crate::digest::TokenDigest;
use crate::token::{TokenId, TokenPrefix};

/// Everything a store keeps about one token. Holds the digest, never the token.
///
/// A store builds one with [`TokenRecord::new`] and sets the other fields, so that a field
/// added later does not break it.
///
/// ```
/// use std::time::SystemTime;
/// use tokengate::{Grants, Permission, TokenDigest, TokenId, TokenRecord};
///
/// let id: TokenId = "AbCdEfGhIj0".parse().unwrap();
/// let mut record = TokenRecord::new(id, "alice", TokenDigest::of("npm_…"), SystemTime::now());
/// record.grants = Grants::everything(Permission::ReadOnly);
/// record.name = Some("CI".into());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRecord {
    /// Public id; the store key.
    pub id: TokenId,
    /// Who the token belongs to (a user name for a registry).
    pub owner: String,
    /// SHA-256 of the whole token.
    pub digest: TokenDigest,
    /// What the token may do, resource by resource.
    pub grants: Grants,
    /// An ordinary token, a login session, or one minted by an exchange.
    pub kind: TokenKind,
    /// Whether writes with it skip the second factor.
    pub second_factor: SecondFactor,
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

/// What a token is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// Made by its owner to use wherever they like (npm's access tokens); listed.
    #[default]
    Standard,
    /// Made by logging in: short-lived, never listed, revoked by logging out.
    Session,
    /// Minted by [`Tokens::exchange`](crate::Tokens::exchange) for a CI job that proved
    /// who it is with an OIDC ID token (trusted publishing): one grant on one package,
    /// minutes long, never listed. It may write that package and nothing else; an
    /// application refuses it for managing tokens, the profile, owners, access and trust,
    /// whatever its grant says (check [`Authenticated::kind`](crate::Authenticated::kind)).
    Exchanged,
}

impl TokenKind {
    /// `standard`, `session` or `exchanged`: how stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Standard => "standard",
            TokenKind::Session => "session",
            TokenKind::Exchanged => "exchanged",
        }
    }
}

impl std::str::FromStr for TokenKind {
    type Err = UnknownName;

    /// What [`TokenKind::as_str`] writes.
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "standard" => Ok(TokenKind::Standard),
            "session" => Ok(TokenKind::Session),
            "exchanged" => Ok(TokenKind::Exchanged),
            _ => Err(UnknownName),
        }
    }
}

impl SecondFactor {
    /// `enforced` or `bypassed`: how stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Enforced => "enforced",
            SecondFactor::Bypassed => "bypassed",
        }
    }
}

impl std::str::FromStr for SecondFactor {
    type Err = UnknownName;

    /// What [`SecondFactor::as_str`] writes.
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "enforced" => Ok(SecondFactor::Enforced),
            "bypassed" => Ok(SecondFactor::Bypassed),
            _ => Err(UnknownName),
        }
    }
}

/// Text that names no [`TokenKind`] or [`SecondFactor`]: a store read back something it
/// did not write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a name this version of tokengate writes")]
pub struct UnknownName;

/// Whether writes made with a token must pass the application's second-factor check
/// (npm's "bypass 2FA" for automation tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecondFactor {
    /// Writes ask for the second factor when the owner has one.
    #[default]
    Enforced,
    /// Writes skip it: for CI, which cannot type a one-time password.
    Bypassed,
}

/// Whether a record is usable at `now`, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Neither revoked nor expired.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl TokenRecord {
    /// A live, ordinary record: read-write on everything, second factor enforced, usable
    /// from any address, never expiring, unnamed and never used. Set the other fields as
    /// the token has them.
    pub fn new(
        id: TokenId,
        owner: impl Into<String>,
        digest: TokenDigest,
        created_at: SystemTime,
    ) -> Self {
        Self {
            id,
            owner: owner.into(),
            digest,
            grants: Grants::default(),
            kind: TokenKind::Standard,
            second_factor: SecondFactor::Enforced,
            cidr: CidrList::any(),
            created_at,
            expires_at: None,
            revoked_at: None,
            name: None,
            description: None,
            last_used_at: None,
        }
    }

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

/// How many characters of the id a listing shows after the prefix.
pub const LISTED_ID_CHARS: usize = 6;

/// A token as listings show it: no digest, no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenListing {
    /// The public id (npm calls it `key`); revocation takes it.
    pub id: TokenId,
    /// A short pure prefix of the token, such as `npm_AbC123`, so that a client holding
    /// the full token can tell which listing is its own.
    pub token_prefix: String,
    /// Who the token belongs to.
    pub owner: String,
    /// What the token may do, resource by resource.
    pub grants: Grants,
    /// An ordinary token, a login session, or one minted by an exchange.
    pub kind: TokenKind,
    /// Whether writes with it skip the second factor.
    pub second_factor: SecondFactor,
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
            grants: record.grants.clone(),
            kind: record.kind,
            second_factor: record.second_factor,
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
    use std::time::Duration;

    use super::*;
    use crate::token::SecretToken;

    /// A live read-write record created at `at`, for unit tests.
    pub(crate) fn sample_record(at: SystemTime) -> TokenRecord {
        let token = SecretToken::generate(&TokenPrefix::default()).unwrap();
        TokenRecord::new(token.id(), "alice", token.digest(), at)
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
        let token = SecretToken::generate(&prefix).unwrap();
        let listed = listed_prefix(&prefix, token.id());
        assert_eq!(listed.len(), 4 + LISTED_ID_CHARS);
        assert!(token.expose_secret().starts_with(&listed));
    }
}
