//! Why a request was refused.

use std::fmt;

use crate::token::{TokenFormatError, TokenId};

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No token was presented.
    MissingToken,
    /// The token failed the offline checks; the store was not asked.
    Malformed(TokenFormatError),
    /// No token has this id.
    UnknownToken,
    /// A token has this id, but the secret does not match its digest.
    SecretMismatch,
    /// The token was revoked.
    Revoked,
    /// The token is past its expiry.
    Expired,
    /// The client address is outside the token's CIDR allow-list.
    AddressNotAllowed,
    /// The token has an allow-list but the client address is unknown: refused, since an
    /// address that cannot be checked cannot be allowed.
    NoClientAddress,
    /// A read-only token was used for a write.
    ReadOnly,
    /// The token store could not be reached; nothing was allowed.
    StoreUnavailable,
}

impl Reason {
    /// A message for the client: says what is wrong and how to fix it, and never names
    /// the token, its secret or its allow-list.
    pub fn message(&self) -> &'static str {
        match self {
            Reason::MissingToken => {
                "authentication required: send an `Authorization: Bearer <token>` header"
            }
            Reason::Malformed(TokenFormatError::TooLong { .. }) => {
                "the bearer token is malformed: it is longer than any valid token"
            }
            Reason::Malformed(TokenFormatError::WrongPrefix) => {
                "the bearer token is malformed: it was not issued by this server"
            }
            Reason::Malformed(TokenFormatError::WrongLength { .. }) => {
                "the bearer token is malformed: it has the wrong length (was it cut short?)"
            }
            Reason::Malformed(TokenFormatError::InvalidCharacter { .. }) => {
                "the bearer token is malformed: it contains a character that no token has"
            }
            Reason::Malformed(_) => {
                "the bearer token is malformed: its checksum does not match (was it mistyped?)"
            }
            // One message for both, so that a guess learns nothing about which ids exist.
            Reason::UnknownToken | Reason::SecretMismatch => "the bearer token is not valid",
            Reason::Revoked => "the bearer token has been revoked",
            Reason::Expired => "the bearer token has expired",
            Reason::AddressNotAllowed => "this token may not be used from your IP address",
            Reason::NoClientAddress => {
                "this token is restricted to certain IP addresses and the client address is unknown"
            }
            Reason::ReadOnly => "this token is read-only and cannot be used to make changes",
            Reason::StoreUnavailable => "the token store is unavailable; try again shortly",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A refused token: why, and the token's id when it was far enough along to have one (for
/// logs; the id is not secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    reason: Reason,
    token_id: Option<TokenId>,
}

impl Rejection {
    /// A rejection for `reason`, with the token id if known.
    pub fn new(reason: Reason, token_id: Option<TokenId>) -> Self {
        Self { reason, token_id }
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The refused token's id, when it parsed.
    pub fn token_id(&self) -> Option<TokenId> {
        self.token_id
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

impl std::error::Error for Rejection {}
