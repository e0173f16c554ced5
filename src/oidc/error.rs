//! Why an ID token was not accepted: refused (the token's fault) or unavailable (the
//! issuer's keys or the replay record could not be reached; never an accept).

use std::time::SystemTime;

use super::algorithm::SigningAlgorithm;
use super::fetch::FetchError;
use crate::store::StoreError;

/// Why [`IdTokenVerifier::verify`](super::IdTokenVerifier::verify) did not accept a token.
/// No variant holds the token or any part of it beyond short, sanitised claim values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not acceptable (answer 401 or 400, with this message).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The issuer's keys could not be fetched, so the token could not be checked
    /// (answer 503).
    #[error("the keys of issuer {issuer} cannot be fetched: {source}")]
    IssuerUnavailable {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        #[source]
        source: FetchError,
    },
    /// The record of used tokens could not be reached, so single use could not be
    /// enforced (answer 503).
    #[error("the record of used ID tokens is unavailable: {0}")]
    ReplayGuardUnavailable(#[source] StoreError),
}

impl VerifyError {
    /// Whether this is a failure to reach something (answer 503), not a refusal.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, VerifyError::Refused(_))
    }

    /// The refusal, when it is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            VerifyError::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// What is wrong with a refused ID token. The messages are meant for the person reading
/// npm's verbose log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Longer than the verifier takes; nothing of it was parsed.
    #[error("the ID token is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a JWS in compact form with JSON header and claims.
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm that is not accepted: `none`, an HMAC (`HS256`), or
    /// one unknown here.
    #[error(
        "the ID token's algorithm {0:?} is not accepted (only asymmetric signatures: RS256, ES256, …)"
    )]
    Algorithm(String),
    /// The header has `crit` extensions, none of which are understood here.
    #[error("the ID token's header has critical extensions, which are not supported")]
    CriticalHeader,
    /// The header has no `kid`.
    #[error("the ID token's header names no key (kid)")]
    MissingKeyId,
    /// `iss` is not one of the trusted issuers.
    #[error("the ID token's issuer {0:?} is not trusted here")]
    UntrustedIssuer(String),
    /// The issuer's current key set has no key with this id (after a refetch, or a
    /// refetch within the last interval).
    #[error("the issuer {issuer} has no key {kid:?}")]
    UnknownKeyId {
        /// The issuer.
        issuer: String,
        /// The key id, sanitised.
        kid: String,
    },
    /// The token's algorithm is not the one its key is for.
    #[error("the ID token is signed with {token}, but its key {kid:?} is for {key}")]
    AlgorithmNotDeclared {
        /// The token's algorithm.
        token: SigningAlgorithm,
        /// The key's algorithm.
        key: SigningAlgorithm,
        /// The key id, sanitised.
        kid: String,
    },
    /// The signature does not verify.
    #[error("the ID token's signature does not verify")]
    BadSignature,
    /// `aud` is not exactly the expected audience.
    #[error("the ID token's audience {found:?} is not {expected:?}")]
    WrongAudience {
        /// What this verifier takes.
        expected: String,
        /// What the token says, sanitised.
        found: String,
    },
    /// `exp` has passed (beyond the leeway).
    #[error("the ID token expired")]
    Expired {
        /// Its `exp`.
        expired_at: SystemTime,
    },
    /// `nbf` is still ahead (beyond the leeway).
    #[error("the ID token is not valid yet")]
    NotYetValid {
        /// Its `nbf`.
        not_before: SystemTime,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("the ID token was issued in the future")]
    IssuedInFuture {
        /// Its `iat`.
        issued_at: SystemTime,
    },
    /// A claim the verifier or the provider's policies need is absent.
    #[error("the ID token has no {0} claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or form.
    #[error("the ID token's {0} claim is invalid")]
    InvalidClaim(&'static str),
    /// This token (`iss` and `jti`) was used before.
    #[error("the ID token was already used (each is exchanged once)")]
    Replayed,
}

/// A value from the token, fit to put into a message: printable ASCII, at most 100
/// characters.
pub(crate) fn sanitise(value: &str) -> String {
    let mut out: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    if value.len() > out.len() && value.chars().count() > 100 {
        out.push('…');
    }
    out
}
