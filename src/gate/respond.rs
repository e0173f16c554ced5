//! How a refusal becomes an HTTP response: the shipped [`ResponseStyle`]s, or the
//! application's own function.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};

use crate::reason::{Reason, Rejection};

/// An application's own way of writing refusals; see
/// [`TokenAuthLayer::respond_with`](crate::TokenAuthLayer::respond_with).
pub(crate) type RespondFn = dyn Fn(&Rejection, &Parts) -> Response<Bytes> + Send + Sync;

/// How the gate writes refusals.
#[derive(Clone)]
pub(crate) enum Respond {
    Style(ResponseStyle),
    With(Arc<RespondFn>),
}

impl Respond {
    /// The response for `rejection` of the request whose head is `parts`.
    pub(crate) fn to(&self, rejection: &Rejection, parts: &Parts) -> Response<Bytes> {
        match self {
            Respond::Style(style) => style.respond(rejection),
            Respond::With(respond) => respond(rejection, parts),
        }
    }
}

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
    step_up: HeaderValue,
}

/// npm's CLI turns a 401 whose `WWW-Authenticate` lists `ipaddress` into "Login is not
/// allowed from your IP address".
const NPM_IP_CHALLENGE: HeaderValue = HeaderValue::from_static("ipaddress");
/// npm's CLI turns a 401 whose `WWW-Authenticate` lists `otp` into its one-time-password
/// prompt (or, without a terminal, the error that says to pass `--otp`).
const NPM_OTP_CHALLENGE: HeaderValue = HeaderValue::from_static("OTP");
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
    /// | read-only token on a write, or a grant that does not allow the request | 403 | `Bearer realm="…", error="insufficient_scope"` |
    /// | address outside the allow-list, or unknown | 403 | — |
    /// | a write with a cookie-borne token that is not same-origin | 403 | — |
    /// | store unavailable, or the second factor cannot be checked | 503 (`Retry-After: 5`) | — |
    /// | too many failed attempts from the client's address ([`FailureLimit`](crate::FailureLimit)) | 429 (`Retry-After`) | — |
    /// | a write that needs a one-time password: none sent, or a wrong one | 401 | `Bearer realm="…", error="insufficient_user_authentication"` (RFC 9470) |
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
            // RFC 9470's step-up challenge: the token is fine, the user must prove more.
            step_up: challenge(", error=\"insufficient_user_authentication\""),
        }
    }

    /// As [`ResponseStyle::rfc6750`], except that a token used from outside its allow-list
    /// (or from an unknown address) gets what npm's registry sends: 401 with
    /// `WWW-Authenticate: ipaddress`, which npm's CLI reports as "Login is not allowed from
    /// your IP address"; and a write that needs a one-time password gets 401 with
    /// `WWW-Authenticate: OTP`, which npm answers with its prompt (or `--otp`). A read-only token's write stays a 403, whose `error` npm prints.
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
            Reason::AddressNotAllowed | Reason::NoClientAddress | Reason::CrossSiteRequest => {
                (StatusCode::FORBIDDEN, None)
            }
            Reason::ReadOnly | Reason::NotPermitted(_) | Reason::OwnerNotPermitted => {
                (StatusCode::FORBIDDEN, Some(&self.insufficient_scope))
            }
            Reason::StoreUnavailable
            | Reason::SecondFactorUnavailable
            | Reason::OwnerRightsUnavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            Reason::TooManyFailures => (StatusCode::TOO_MANY_REQUESTS, None),
            Reason::UnresolvedWrite => (StatusCode::BAD_REQUEST, None),
            Reason::SecondFactorRequired | Reason::SecondFactorRejected if self.npm => {
                (StatusCode::UNAUTHORIZED, Some(&NPM_OTP_CHALLENGE))
            }
            Reason::SecondFactorRequired | Reason::SecondFactorRejected => {
                (StatusCode::UNAUTHORIZED, Some(&self.step_up))
            }
        };
        let body = match rejection.json_body() {
            Cow::Borrowed(body) => Bytes::from_static(body.as_bytes()),
            Cow::Owned(body) => Bytes::from(body),
        };
        let mut response = Response::new(body);
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
        if let Some(seconds) = rejection.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
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
    use crate::bearer::HeaderProblem;
    use crate::reason::tests::EVERY_REASON;
    use crate::token::TokenFormatError;

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
            (
                Reason::OwnerNotPermitted,
                403,
                Some(r#"Bearer realm="registry", error="insufficient_scope""#),
            ),
            (Reason::OwnerRightsUnavailable, 503, None),
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
        for reason in [Reason::StoreUnavailable, Reason::OwnerRightsUnavailable] {
            let unavailable = style.respond(&Rejection::new(reason, None));
            assert_eq!(unavailable.headers()[RETRY_AFTER], "5", "{reason:?}");
        }
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
            } else if matches!(
                reason,
                Reason::SecondFactorRequired | Reason::SecondFactorRejected
            ) {
                assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
                assert_eq!(a.headers()[WWW_AUTHENTICATE], "OTP");
                assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
                assert_eq!(
                    b.headers()[WWW_AUTHENTICATE],
                    r#"Bearer realm="r", error="insufficient_user_authentication""#
                );
                // npm also recognises the prompt by these words in the body.
                assert!(reason.message().contains("one-time password"), "{reason:?}");
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
