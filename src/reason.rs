//! Why a request was refused: [`Reason`] and [`Rejection`], apart from how a refusal is
//! written as HTTP (the gate's `respond` module).

use std::borrow::Cow;
use std::fmt;

use crate::access::{Permission, Resource};
use crate::bearer::HeaderProblem;
use crate::token::{TokenFormatError, TokenId};

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No bearer token was presented.
    MissingToken,
    /// The Authorization header cannot hold a valid token; nothing was hashed.
    MalformedHeader(HeaderProblem),
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
    /// A token that may only read was used for a write (to no particular resource, or on
    /// a token whose grants are all read-only).
    ReadOnly,
    /// The token's grant on the resource the request touches does not allow it; the
    /// permission is the one the token has there ([`Permission::NoAccess`],
    /// [`Permission::ReadOnly`], or [`Permission::ReadStage`] for a live write, whose
    /// message says to stage the change instead). The [`Rejection`] names the resource;
    /// a stage-only token's write to no particular resource names none.
    NotPermitted(Permission),
    /// The token store could not be reached; nothing was allowed.
    StoreUnavailable,
    /// The write needs a one-time password and none was sent.
    SecondFactorRequired,
    /// The one-time password sent is wrong, expired or was already used.
    SecondFactorRejected,
    /// The second factor could not be checked; nothing was allowed.
    SecondFactorUnavailable,
    /// A write made with a token from a cookie (a browser's) did not show that it came from
    /// the site's own pages: see [`same_origin`](crate::same_origin).
    CrossSiteRequest,
    /// The client address made too many failed attempts lately; the store was not asked.
    TooManyFailures,
    /// The application's second-factor check could not tell what the write changes, so it
    /// refused it ([`SecondFactorVerdict::Unresolved`](crate::SecondFactorVerdict::Unresolved)).
    UnresolvedWrite,
    /// The token's grants allow the request, but its owner may not do it (any longer):
    /// the application's [`OwnerRights`](crate::OwnerRights) said so. The [`Rejection`]
    /// names the resource, when there is one.
    OwnerNotPermitted,
    /// The owner's rights could not be checked
    /// ([`RightsError`](crate::RightsError)); nothing was allowed.
    OwnerRightsUnavailable,
}

/// A message and the same message as a JSON body, from one literal.
macro_rules! said {
    ($message:literal) => {
        ($message, concat!("{\"error\":\"", $message, "\"}"))
    };
}

impl Reason {
    /// A message for the client: says what is wrong and how to fix it, and never names
    /// the token, its secret or its allow-list.
    pub fn message(&self) -> &'static str {
        self.texts().0
    }

    /// [`Reason::message`] as a JSON body: `{"error":"…"}`.
    pub fn json_body(&self) -> &'static str {
        self.texts().1
    }

    fn texts(&self) -> (&'static str, &'static str) {
        match self {
            Reason::MissingToken => {
                said!("authentication required: send an `Authorization: Bearer <token>` header")
            }
            Reason::MalformedHeader(HeaderProblem::Duplicate) => {
                said!("the request has more than one Authorization header")
            }
            Reason::MalformedHeader(HeaderProblem::TooLong) => {
                said!("the Authorization header is too long to hold a token")
            }
            Reason::MalformedHeader(HeaderProblem::NotAscii) => {
                said!("the Authorization header contains bytes a token cannot have")
            }
            Reason::MalformedHeader(HeaderProblem::Empty) => {
                said!("the Authorization header says Bearer but carries no token")
            }
            Reason::MalformedHeader(_) => {
                said!("the bearer token contains characters a token cannot have")
            }
            Reason::Malformed(TokenFormatError::TooLong { .. }) => {
                said!("the bearer token is malformed: it is longer than any valid token")
            }
            Reason::Malformed(TokenFormatError::WrongPrefix) => {
                said!("the bearer token is malformed: it was not issued by this server")
            }
            Reason::Malformed(TokenFormatError::WrongLength { .. }) => {
                said!("the bearer token is malformed: it has the wrong length (was it cut short?)")
            }
            Reason::Malformed(TokenFormatError::InvalidCharacter { .. }) => {
                said!("the bearer token is malformed: it contains a character that no token has")
            }
            Reason::Malformed(_) => {
                said!(
                    "the bearer token is malformed: its checksum does not match (was it mistyped?)"
                )
            }
            // One message for both, so that a guess learns nothing about which ids exist.
            Reason::UnknownToken | Reason::SecretMismatch => said!("the bearer token is not valid"),
            Reason::Revoked => said!("the bearer token has been revoked"),
            Reason::Expired => said!("the bearer token has expired"),
            Reason::AddressNotAllowed => said!("this token may not be used from your IP address"),
            Reason::NoClientAddress => said!(
                "this token is restricted to certain IP addresses and the client address is unknown"
            ),
            Reason::ReadOnly => said!("this token is read-only and cannot be used to make changes"),
            Reason::NotPermitted(Permission::ReadOnly) => {
                said!("this token may read this resource but not change it")
            }
            Reason::NotPermitted(Permission::ReadStage) => said!(
                "this token may only stage changes, not make them live: stage the change instead, and have a maintainer approve it"
            ),
            Reason::NotPermitted(_) => said!("this token has no access to this resource"),
            Reason::StoreUnavailable => said!("the token store is unavailable; try again shortly"),
            Reason::SecondFactorRequired => said!(
                "this operation requires a one-time password: send the code from your authenticator in the npm-otp header (npm: --otp=123456)"
            ),
            Reason::SecondFactorRejected => said!(
                "this operation requires a one-time password, and the one sent is wrong, expired or already used"
            ),
            Reason::SecondFactorUnavailable => {
                said!("the second factor cannot be checked right now; try again shortly")
            }
            Reason::CrossSiteRequest => said!(
                "refused: this change was sent with a browser session but not from this site's own pages (cross-site request forgery protection); make it from the site itself"
            ),
            Reason::TooManyFailures => {
                said!("too many failed attempts from your address; wait before trying again")
            }
            Reason::UnresolvedWrite => said!(
                "refused: this change does not name anything this server recognises, so it cannot tell whether a one-time password is needed; check the URL"
            ),
            Reason::OwnerNotPermitted => said!(
                "this token's owner may not do this (any longer): a token never does more than its owner may"
            ),
            Reason::OwnerRightsUnavailable => {
                said!("the token owner's rights cannot be checked right now; try again shortly")
            }
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A refused token: why, the token's id when it was far enough along to have one (for
/// logs; the id is not secret), and the resource it was refused on, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    reason: Reason,
    token_id: Option<TokenId>,
    resource: Option<Resource>,
    retry_after: Option<u32>,
}

impl Rejection {
    /// A rejection for `reason`, with the token id if known.
    pub fn new(reason: Reason, token_id: Option<TokenId>) -> Self {
        Self {
            reason,
            token_id,
            resource: None,
            retry_after: None,
        }
    }

    /// The same rejection, naming the resource it was refused on.
    pub fn on(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// The same rejection, telling the client to wait this many seconds.
    pub fn retry_after_secs(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Seconds the client should wait before trying again, when the refusal says.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The refused token's id, when it parsed.
    pub fn token_id(&self) -> Option<TokenId> {
        self.token_id
    }

    /// The resource the token was refused on, when the refusal is about one.
    pub fn resource(&self) -> Option<&Resource> {
        self.resource.as_ref()
    }

    /// The message for the client: [`Reason::message`], or for a refusal on a resource,
    /// one that names the resource and what the token may do with it.
    pub fn message(&self) -> Cow<'static, str> {
        match (&self.reason, &self.resource) {
            (Reason::NotPermitted(Permission::ReadOnly), Some(resource)) => Cow::Owned(format!(
                "this token may read {resource} but not change it: its grant on {resource} is read-only"
            )),
            (Reason::NotPermitted(Permission::ReadStage), Some(resource)) => Cow::Owned(format!(
                "this token may only stage changes to {resource}, not make them live (its grant on {resource} is read-stage): stage the change instead, and have a maintainer approve it"
            )),
            (Reason::NotPermitted(permission), Some(resource)) => Cow::Owned(format!(
                "this token has no access to {resource}: its grant on {resource} is {permission}"
            )),
            (Reason::OwnerNotPermitted, Some(resource)) => Cow::Owned(format!(
                "this token's owner may not do this to {resource} (any longer): a token never does more than its owner may"
            )),
            _ => Cow::Borrowed(self.reason.message()),
        }
    }

    /// [`Rejection::message`] as a JSON body: `{"error":"…"}`.
    pub fn json_body(&self) -> Cow<'static, str> {
        match self.message() {
            Cow::Borrowed(_) => Cow::Borrowed(self.reason.json_body()),
            Cow::Owned(message) => Cow::Owned(crate::json::error_body(&message)),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EVERY_REASON: [Reason; 25] = [
        Reason::MissingToken,
        Reason::MalformedHeader(HeaderProblem::Duplicate),
        Reason::MalformedHeader(HeaderProblem::TooLong),
        Reason::MalformedHeader(HeaderProblem::NotAscii),
        Reason::MalformedHeader(HeaderProblem::Empty),
        Reason::Malformed(TokenFormatError::WrongPrefix),
        Reason::Malformed(TokenFormatError::BadChecksum),
        Reason::UnknownToken,
        Reason::SecretMismatch,
        Reason::Revoked,
        Reason::Expired,
        Reason::AddressNotAllowed,
        Reason::ReadOnly,
        Reason::StoreUnavailable,
        Reason::NotPermitted(crate::access::Permission::ReadOnly),
        Reason::NotPermitted(crate::access::Permission::NoAccess),
        Reason::NotPermitted(crate::access::Permission::ReadStage),
        Reason::SecondFactorRequired,
        Reason::SecondFactorRejected,
        Reason::SecondFactorUnavailable,
        Reason::CrossSiteRequest,
        Reason::TooManyFailures,
        Reason::UnresolvedWrite,
        Reason::OwnerNotPermitted,
        Reason::OwnerRightsUnavailable,
    ];

    #[test]
    fn bodies_are_json_carrying_the_message() {
        for reason in EVERY_REASON.iter().chain(&[Reason::NoClientAddress]) {
            let body: serde_json::Value = serde_json::from_str(reason.json_body()).unwrap();
            assert_eq!(body["error"], reason.message(), "{reason:?}");
        }
    }
}
