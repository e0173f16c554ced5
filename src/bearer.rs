//! Reading `Authorization: Bearer <token>` from request headers.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::token::MAX_TOKEN_LEN;

/// Longest Authorization value looked at: `Bearer`, a generous run of spaces and the
/// longest token. Anything longer is refused before it is read.
pub const MAX_AUTHORIZATION_LEN: usize = "Bearer".len() + 32 + MAX_TOKEN_LEN;

/// What is wrong with an Authorization header that claims to carry a bearer token, or that
/// cannot be read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// More than one Authorization header: which one counts would be a guess.
    #[error("more than one Authorization header")]
    Duplicate,
    /// Longer than [`MAX_AUTHORIZATION_LEN`].
    #[error("the Authorization header is too long")]
    TooLong,
    /// Not visible ASCII.
    #[error("the Authorization header contains bytes that are not visible ASCII")]
    NotAscii,
    /// `Bearer` with nothing after it.
    #[error("the Authorization header says Bearer but carries no token")]
    Empty,
    /// The token has characters RFC 6750's b64token does not allow (or spaces inside).
    #[error("the bearer token contains characters a token cannot have")]
    InvalidCharacters,
}

/// What the Authorization header holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No Authorization header.
    None,
    /// An Authorization header with another scheme, such as `Basic`.
    OtherScheme,
    /// A bearer token, syntactically valid per RFC 6750 (not yet checked as a token).
    Bearer(&'a str),
}

impl<'a> Credentials<'a> {
    /// Reads the bearer token from the headers.
    ///
    /// The scheme is matched case-insensitively and may be followed by one or more spaces;
    /// the token must be an RFC 6750 `b64token`. Two Authorization headers, a non-ASCII value
    /// or one longer than [`MAX_AUTHORIZATION_LEN`] are refused without looking further.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
    /// use tokengate::Credentials;
    ///
    /// let mut headers = HeaderMap::new();
    /// assert_eq!(Credentials::from_headers(&headers), Ok(Credentials::None));
    /// headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  npm_abc"));
    /// assert_eq!(Credentials::from_headers(&headers), Ok(Credentials::Bearer("npm_abc")));
    /// ```
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Self, HeaderProblem> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(Credentials::None);
        };
        if values.next().is_some() {
            return Err(HeaderProblem::Duplicate);
        }
        if value.len() > MAX_AUTHORIZATION_LEN {
            return Err(HeaderProblem::TooLong);
        }
        if let Some(token) = plain_bearer(value.as_bytes()) {
            return Ok(Credentials::Bearer(token));
        }
        let text = value.to_str().map_err(|_| HeaderProblem::NotAscii)?;
        bearer_from_value(text)
    }
}

/// What nearly every request sends, read in one pass: `Bearer` in any case, one space and
/// a b64token. `None` for anything else, which [`bearer_from_value`] then reads in full
/// (and, for what it refuses, says why); both agree on every value they both accept.
fn plain_bearer(value: &[u8]) -> Option<&str> {
    let (scheme, token) = value.split_at_checked("bearer ".len())?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let body = token.iter().rposition(|&b| b != b'=')? + 1;
    if !token[..body].iter().all(|&b| B64TOKEN[usize::from(b)]) {
        return None;
    }
    // Only ASCII is left, which is always UTF-8.
    std::str::from_utf8(token).ok()
}

/// The bytes RFC 6750's b64token allows before its trailing `=`s.
static B64TOKEN: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        allowed[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    allowed
};

/// The token in one Authorization value, such as `Bearer npm_…`.
fn bearer_from_value(text: &str) -> Result<Credentials<'_>, HeaderProblem> {
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::OtherScheme);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(HeaderProblem::Empty);
    }
    if !is_b64token(token) {
        return Err(HeaderProblem::InvalidCharacters);
    }
    Ok(Credentials::Bearer(token))
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn value_table() {
        use Credentials::*;
        use HeaderProblem::*;
        let cases: &[(&str, Result<Credentials<'_>, HeaderProblem>)] = &[
            ("Bearer npm_abc", Ok(Bearer("npm_abc"))),
            ("bearer npm_abc", Ok(Bearer("npm_abc"))),
            ("BeArEr npm_abc", Ok(Bearer("npm_abc"))),
            ("Bearer    npm_abc", Ok(Bearer("npm_abc"))),
            ("Bearer a-b.c_d~e+f/g==", Ok(Bearer("a-b.c_d~e+f/g=="))),
            ("Bearer", Err(Empty)),
            ("Bearer ", Err(Empty)),
            ("Bearer     ", Err(Empty)),
            ("Bearer npm_abc ", Err(InvalidCharacters)),
            ("Bearer npm abc", Err(InvalidCharacters)),
            ("Bearer\tnpm_abc", Ok(OtherScheme)),
            ("Bearer ===", Err(InvalidCharacters)),
            ("Bearer a=b", Err(InvalidCharacters)),
            ("Bearer npm_abc,x", Err(InvalidCharacters)),
            ("Basic dXNlcjpwYXNz", Ok(OtherScheme)),
            ("Token npm_abc", Ok(OtherScheme)),
            ("", Ok(OtherScheme)),
            ("Bearerx npm_abc", Ok(OtherScheme)),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            assert_eq!(Credentials::from_headers(&headers), *expected, "{value:?}");
            assert_eq!(bearer_from_value(value), *expected, "{value:?}");
        }
    }

    proptest::proptest! {
        /// The one-pass reading agrees with the full one on whatever it accepts.
        #[test]
        fn the_plain_reading_agrees_with_the_full_one(
            value in "(?i:bearer)[ \\t]{0,2}[A-Za-z0-9._~+/=\\-,: ]{0,12}"
        ) {
            if let Some(token) = plain_bearer(value.as_bytes()) {
                proptest::prop_assert_eq!(bearer_from_value(&value), Ok(Credentials::Bearer(token)));
            }
        }
    }

    #[test]
    fn header_map_problems() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(
            Credentials::from_headers(&headers),
            Err(HeaderProblem::Duplicate)
        );

        let mut headers = HeaderMap::new();
        let long = format!("Bearer {}", "a".repeat(100 * 1024));
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&long).unwrap());
        assert_eq!(
            Credentials::from_headers(&headers),
            Err(HeaderProblem::TooLong)
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer npm_\xc3\xa9").unwrap(),
        );
        assert_eq!(
            Credentials::from_headers(&headers),
            Err(HeaderProblem::NotAscii)
        );
    }
}
