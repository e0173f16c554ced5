//! Why a request was refused, and how that becomes a response.

use std::fmt;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

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
    /// A read-only token was used for a write.
    ReadOnly,
    /// The token store could not be reached; nothing was allowed.
    StoreUnavailable,
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
            Reason::StoreUnavailable => said!("the token store is unavailable; try again shortly"),
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

/// How refusals are written, built once per layer so that refusing costs no formatting.
///
/// Two styles ship: [`ResponseStyle::rfc6750`], the default, and [`ResponseStyle::npm`],
/// which speaks to npm's CLI. For anything else, give the layer a function of your own
/// ([`TokenAuthLayer::respond_with`](crate::TokenAuthLayer::respond_with)).
#[derive(Clone, Debug)]
pub struct ResponseStyle {
    npm: bool,
    missing: HeaderValue,
    invalid_token: HeaderValue,
    invalid_request: HeaderValue,
    insufficient_scope: HeaderValue,
}

/// npm's CLI turns a 401 whose `WWW-Authenticate` lists `ipaddress` into "Login is not
/// allowed from your IP address".
const NPM_IP_CHALLENGE: HeaderValue = HeaderValue::from_static("ipaddress");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("5");

impl ResponseStyle {
    /// RFC 6750 responses:
    ///
    /// | reason | status | `WWW-Authenticate` |
    /// |---|---|---|
    /// | no token | 401 | `Bearer realm="…"` |
    /// | unreadable Authorization header | 401 | `Bearer realm="…", error="invalid_request"` |
    /// | malformed, unknown, revoked, expired token | 401 | `Bearer realm="…", error="invalid_token"` |
    /// | read-only token on a write | 403 | `Bearer realm="…", error="insufficient_scope"` |
    /// | address outside the allow-list, or unknown | 403 | — |
    /// | store unavailable | 503 (`Retry-After: 5`) | — |
    ///
    /// Every body is JSON, `{"error": "<what is wrong>"}`, and names nothing secret.
    /// Characters of `realm` that cannot stand in a quoted string become `_`.
    pub fn rfc6750(realm: &str) -> Self {
        let realm: String = realm
            .chars()
            .map(|c| match c {
                ' ' | '!' | '#'..='[' | ']'..='~' => c,
                _ => '_',
            })
            .collect();
        let challenge = |extra: &str| {
            HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"{extra}"))
                .unwrap_or(HeaderValue::from_static("Bearer"))
        };
        Self {
            npm: false,
            missing: challenge(""),
            invalid_token: challenge(", error=\"invalid_token\""),
            invalid_request: challenge(", error=\"invalid_request\""),
            insufficient_scope: challenge(", error=\"insufficient_scope\""),
        }
    }

    /// As [`ResponseStyle::rfc6750`], except that a token used from outside its allow-list
    /// (or from an unknown address) gets what npm's registry sends: 401 with
    /// `WWW-Authenticate: ipaddress`, which npm's CLI reports as "Login is not allowed from
    /// your IP address". A read-only token's write stays a 403, whose `error` npm prints.
    pub fn npm(realm: &str) -> Self {
        Self {
            npm: true,
            ..Self::rfc6750(realm)
        }
    }

    /// The response for a rejection.
    pub fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        let reason = rejection.reason();
        let (status, challenge) = match reason {
            Reason::MissingToken => (StatusCode::UNAUTHORIZED, Some(&self.missing)),
            Reason::MalformedHeader(_) => (StatusCode::UNAUTHORIZED, Some(&self.invalid_request)),
            Reason::Malformed(_)
            | Reason::UnknownToken
            | Reason::SecretMismatch
            | Reason::Revoked
            | Reason::Expired => (StatusCode::UNAUTHORIZED, Some(&self.invalid_token)),
            Reason::AddressNotAllowed | Reason::NoClientAddress if self.npm => {
                (StatusCode::UNAUTHORIZED, Some(&NPM_IP_CHALLENGE))
            }
            Reason::AddressNotAllowed | Reason::NoClientAddress => (StatusCode::FORBIDDEN, None),
            Reason::ReadOnly => (StatusCode::FORBIDDEN, Some(&self.insufficient_scope)),
            Reason::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
        };
        let mut response = Response::new(Bytes::from_static(reason.json_body().as_bytes()));
        *response.status_mut() = status;
        // One allocation, sized for every header a refusal carries.
        let headers = response.headers_mut();
        headers.reserve(4);
        headers.insert(CONTENT_TYPE, JSON);
        headers.insert(CACHE_CONTROL, NO_STORE);
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge.clone());
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, RETRY_AFTER_SECONDS);
        }
        response
    }
}

impl Default for ResponseStyle {
    /// [`ResponseStyle::rfc6750`] with the realm `tokengate`.
    fn default() -> Self {
        Self::rfc6750("tokengate")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_REASON: [Reason; 14] = [
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
    ];

    #[test]
    fn bodies_are_json_carrying_the_message() {
        for reason in EVERY_REASON.iter().chain(&[Reason::NoClientAddress]) {
            let body: serde_json::Value = serde_json::from_str(reason.json_body()).unwrap();
            assert_eq!(body["error"], reason.message(), "{reason:?}");
        }
    }

    #[test]
    fn rfc6750_table() {
        let style = ResponseStyle::rfc6750("registry");
        let cases: &[(Reason, u16, Option<&str>)] = &[
            (
                Reason::MissingToken,
                401,
                Some(r#"Bearer realm="registry""#),
            ),
            (
                Reason::MalformedHeader(HeaderProblem::Duplicate),
                401,
                Some(r#"Bearer realm="registry", error="invalid_request""#),
            ),
            (
                Reason::Malformed(TokenFormatError::BadChecksum),
                401,
                Some(r#"Bearer realm="registry", error="invalid_token""#),
            ),
            (
                Reason::Revoked,
                401,
                Some(r#"Bearer realm="registry", error="invalid_token""#),
            ),
            (Reason::AddressNotAllowed, 403, None),
            (Reason::NoClientAddress, 403, None),
            (
                Reason::ReadOnly,
                403,
                Some(r#"Bearer realm="registry", error="insufficient_scope""#),
            ),
            (Reason::StoreUnavailable, 503, None),
        ];
        for (reason, status, challenge) in cases {
            let response = style.respond(&Rejection::new(*reason, None));
            assert_eq!(response.status().as_u16(), *status, "{reason:?}");
            let got = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap());
            assert_eq!(got, *challenge, "{reason:?}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(response.body().as_ref(), reason.json_body().as_bytes());
        }
        let unavailable = style.respond(&Rejection::new(Reason::StoreUnavailable, None));
        assert_eq!(unavailable.headers()[RETRY_AFTER], "5");
    }

    #[test]
    fn npm_style_differs_only_for_addresses() {
        let (npm, rfc) = (ResponseStyle::npm("r"), ResponseStyle::rfc6750("r"));
        for reason in EVERY_REASON.iter().chain(&[Reason::NoClientAddress]) {
            let (a, b) = (
                npm.respond(&Rejection::new(*reason, None)),
                rfc.respond(&Rejection::new(*reason, None)),
            );
            if matches!(reason, Reason::AddressNotAllowed | Reason::NoClientAddress) {
                assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
                assert_eq!(a.headers()[WWW_AUTHENTICATE], "ipaddress");
            } else {
                assert_eq!((a.status(), a.headers()), (b.status(), b.headers()));
            }
        }
    }

    #[test]
    fn realms_cannot_break_the_header() {
        let style = ResponseStyle::rfc6750("my \"realm\"\\\r\nx");
        let response = style.respond(&Rejection::new(Reason::MissingToken, None));
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="my _realm____x""#
        );
    }
}
