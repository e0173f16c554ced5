//! The token format: generation, offline parsing, the checksum, [`TokenId`] and the
//! [`SecretToken`] wrapper.
//!
//! A token reads `<prefix>_<id><secret><checksum>`, everything after the underscore in
//! base62 (`0-9A-Za-z`):
//!
//! | part | characters | bits | what it is for |
//! |---|---|---|---|
//! | `id` | [`ID_LEN`] | ≈ 65 | not secret: store key, cache key, the `key` in listings, what revocation takes |
//! | `secret` | [`SECRET_LEN`] | ≈ 131 | from the operating system's generator |
//! | `checksum` | [`CHECKSUM_LEN`] | 32 | CRC32 of everything before it: typos and junk are refused offline |
//!
//! Parsing never touches the store, never hashes, never panics, and refuses any input
//! longer than the longest valid token before looking at it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::digest::TokenDigest;

/// Characters of the id part of a token.
pub const ID_LEN: usize = 11;
/// Characters of the secret part of a token.
pub const SECRET_LEN: usize = 22;
/// Characters of the checksum at the end of a token.
pub const CHECKSUM_LEN: usize = 6;
/// Longest prefix [`TokenPrefix::new`] accepts.
pub const MAX_PREFIX_LEN: usize = 16;
/// Characters after `<prefix>_`.
const BODY_LEN: usize = ID_LEN + SECRET_LEN + CHECKSUM_LEN;
/// No valid token, whatever its prefix, is longer than this many bytes.
pub const MAX_TOKEN_LEN: usize = MAX_PREFIX_LEN + 1 + BODY_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed token. Each failure has its own variant so that a
/// client can be told exactly what is wrong; none of them echoes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFormatError {
    /// The input is longer than any valid token could be; nothing else was looked at.
    #[error("token is too long: {found} bytes, no valid token is longer than {max}")]
    TooLong {
        /// Length of the input in bytes.
        found: usize,
        /// [`MAX_TOKEN_LEN`].
        max: usize,
    },
    /// The input does not start with this application's `<prefix>_`.
    #[error("token does not start with this application's token prefix")]
    WrongPrefix,
    /// The prefix matches but the length is wrong (a truncated or padded token).
    #[error("token has the wrong length: expected {expected} bytes, found {found}")]
    WrongLength {
        /// Length of a valid token with this prefix.
        expected: usize,
        /// Length of the input.
        found: usize,
    },
    /// A byte after the prefix is not base62.
    #[error("token contains a character outside 0-9, A-Z, a-z at position {position}")]
    InvalidCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
    /// The checksum does not match: the token was mistyped, truncated and padded, or made up.
    #[error("token checksum does not match (mistyped or corrupted token)")]
    BadChecksum,
}

/// Why a prefix was refused by [`TokenPrefix::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid token prefix {prefix:?}: use 1 to {MAX_PREFIX_LEN} ASCII letters or digits, \
     for example \"npm\""
)]
pub struct InvalidPrefix {
    prefix: String,
}

/// The fixed prefix of every token an application issues, such as `npm`.
///
/// It never changes for existing tokens: tokens with another prefix are refused as
/// malformed, and secret scanners rely on it to recognise leaked tokens.
///
/// ```
/// use tokengate::TokenPrefix;
///
/// let prefix = TokenPrefix::new("npm").unwrap();
/// assert_eq!(prefix.as_str(), "npm");
/// assert!(TokenPrefix::new("npm_").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenPrefix {
    text: Arc<str>,
}

impl TokenPrefix {
    /// Validates a prefix: 1 to [`MAX_PREFIX_LEN`] ASCII letters or digits.
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        let valid = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && prefix.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(InvalidPrefix {
                prefix: prefix.chars().take(MAX_PREFIX_LEN + 8).collect(),
            });
        }
        Ok(Self {
            text: Arc::from(prefix),
        })
    }

    /// The prefix as text, without the underscore.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Length in bytes of every token with this prefix.
    pub fn token_len(&self) -> usize {
        self.text.len() + 1 + BODY_LEN
    }
}

impl Default for TokenPrefix {
    /// The prefix `tg`.
    fn default() -> Self {
        Self {
            text: Arc::from("tg"),
        }
    }
}

impl fmt::Debug for TokenPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenPrefix").field(&self.as_str()).finish()
    }
}

impl fmt::Display for TokenPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The public identifier of a token: [`ID_LEN`] base62 characters.
///
/// Not secret. It is what stores and caches are keyed by, what listings show as `key`, and
/// what revocation takes, so that no lookup ever runs on secret bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; ID_LEN]);

/// Why a string is not a [`TokenId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid token id: expected {ID_LEN} characters from 0-9, A-Z, a-z")]
pub struct InvalidTokenId;

impl TokenId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only base62 bytes are ever stored, so this cannot fail; an empty string is the
        // harmless answer should that ever change.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for TokenId {
    type Err = InvalidTokenId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes: [u8; ID_LEN] = text.as_bytes().try_into().map_err(|_| InvalidTokenId)?;
        if bytes.iter().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(bytes))
        } else {
            Err(InvalidTokenId)
        }
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenId").field(&self.as_str()).finish()
    }
}

/// A full token, secret included. Returned once, at creation.
///
/// The text is wiped from memory when the value is dropped, and neither `Debug` nor
/// `Display` prints the secret: only the prefix and the public id. Call
/// [`SecretToken::expose_secret`] to hand the token to its owner.
pub struct SecretToken {
    text: Zeroizing<String>,
    id: TokenId,
    prefix_len: usize,
}

impl SecretToken {
    /// The whole token, to give to its owner exactly once.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The public id inside the token.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// SHA-256 of the whole token: the only form kept at rest.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.text)
    }

    /// `<prefix>_<id>`: a pure prefix of the token that reveals nothing secret.
    pub fn public_part(&self) -> &str {
        &self.text[..self.prefix_len + 1 + ID_LEN]
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretToken")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…[redacted]", self.public_part())
    }
}

/// A presented token that passed the offline checks. Borrowed: it holds no copy of the
/// secret.
#[derive(Clone, Copy)]
pub struct ParsedToken<'a> {
    text: &'a str,
    id: TokenId,
}

impl ParsedToken<'_> {
    /// The public id inside the token.
    pub fn id(&self) -> TokenId {
        self.id
    }

    /// SHA-256 of the whole token, to compare with the stored digest.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(self.text)
    }

    /// The id and digest: all that is needed to check the token, and nothing secret.
    pub fn presented(&self) -> PresentedToken {
        PresentedToken {
            id: self.id,
            digest: self.digest(),
        }
    }
}

/// A well-formed token reduced to its id and digest: owned, `Copy`, and safe to move into
/// a future or a log field, since it holds no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentedToken {
    /// The public id.
    pub id: TokenId,
    /// SHA-256 of the whole token.
    pub digest: TokenDigest,
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<'a> ParsedToken<'a> {
    /// Checks a presented token offline: prefix, length, alphabet and checksum.
    ///
    /// Total: every input gives `Ok` or one [`TokenFormatError`]; nothing panics, and input
    /// longer than [`MAX_TOKEN_LEN`] is refused before any other work.
    pub fn parse(prefix: &TokenPrefix, text: &'a str) -> Result<Self, TokenFormatError> {
        let bytes = text.as_bytes();
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(TokenFormatError::TooLong {
                found: bytes.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let head = prefix.as_str().len();
        let has_prefix = bytes.len() > head
            && &bytes[..head] == prefix.as_str().as_bytes()
            && bytes[head] == b'_';
        if !has_prefix {
            return Err(TokenFormatError::WrongPrefix);
        }
        if bytes.len() != prefix.token_len() {
            return Err(TokenFormatError::WrongLength {
                expected: prefix.token_len(),
                found: bytes.len(),
            });
        }
        let body = &bytes[head + 1..];
        if let Some(offset) = body.iter().position(|b| !b.is_ascii_alphanumeric()) {
            return Err(TokenFormatError::InvalidCharacter {
                position: head + 1 + offset,
            });
        }
        let (checked, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if encode_checksum(crc32(checked)) != checksum {
            return Err(TokenFormatError::BadChecksum);
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&body[..ID_LEN]);
        Ok(ParsedToken {
            text,
            id: TokenId(id),
        })
    }
}

/// The operating system's random generator failed; no token was made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(getrandom::Error);

impl SecretToken {
    /// Generates a new token with this prefix from the operating system's generator.
    pub fn generate(prefix: &TokenPrefix) -> Result<Self, RandomError> {
        let mut text = Zeroizing::new(String::with_capacity(prefix.token_len()));
        text.push_str(prefix.as_str());
        text.push('_');
        let mut random = Zeroizing::new([0u8; ID_LEN + SECRET_LEN]);
        fill_base62(&mut random[..]).map_err(RandomError)?;
        // fill_base62 writes only ASCII alphanumerics.
        text.extend(random.iter().map(|&b| char::from(b)));
        let checksum = encode_checksum(crc32(text.as_bytes()));
        text.extend(checksum.iter().map(|&b| char::from(b)));
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&random[..ID_LEN]);
        Ok(SecretToken {
            text,
            id: TokenId(id),
            prefix_len: prefix.as_str().len(),
        })
    }
}

/// Fills `out` with bytes from the operating system's generator.
#[cfg_attr(not(feature = "totp"), allow(dead_code))]
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(out).map_err(RandomError)
}

/// Fills `out` with base62 characters drawn uniformly from the OS generator.
fn fill_base62(out: &mut [u8]) -> Result<(), getrandom::Error> {
    let mut pool = Zeroizing::new([0u8; 64]);
    let mut filled = 0;
    while filled < out.len() {
        getrandom::fill(&mut pool[..])?;
        for &byte in pool.iter() {
            if let Some(c) = base62_from_random_byte(byte) {
                out[filled] = c;
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Maps a random byte to a base62 character without bias: bytes of 248 and above (the
/// remainder of 256 / 62) are rejected.
fn base62_from_random_byte(byte: u8) -> Option<u8> {
    (byte < 248).then(|| ALPHABET[usize::from(byte % 62)])
}

fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Fixed-width base62 of a CRC32 (62^6 > 2^32), most significant digit first.
fn encode_checksum(mut value: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// Where a revoke request points: a bare id or a full token. npm's CLI sends either.
pub(crate) fn id_from_id_or_token(prefix: &TokenPrefix, text: &str) -> Option<TokenId> {
    text.parse::<TokenId>()
        .ok()
        .or_else(|| ParsedToken::parse(prefix, text).ok().map(|t| t.id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn npm() -> TokenPrefix {
        TokenPrefix::new("npm").unwrap()
    }

    #[test]
    fn generated_tokens_round_trip() {
        let prefix = npm();
        for _ in 0..200 {
            let token = SecretToken::generate(&prefix).unwrap();
            let text = token.expose_secret();
            assert_eq!(text.len(), prefix.token_len());
            assert!(text.starts_with("npm_"));
            let parsed = ParsedToken::parse(&prefix, text).unwrap();
            assert_eq!(parsed.id(), token.id());
            assert_eq!(parsed.digest(), token.digest());
            assert!(text.starts_with(token.public_part()));
        }
    }

    #[test]
    fn prefixes_are_validated() {
        for good in ["npm", "tg", "A1", "abcdefghijklmnop"] {
            assert!(TokenPrefix::new(good).is_ok(), "{good}");
        }
        for bad in ["", "npm_", "n-p", "abcdefghijklmnopq", "ñpm", "a b"] {
            let err = TokenPrefix::new(bad).unwrap_err();
            assert!(err.to_string().contains("invalid token prefix"), "{bad}");
        }
    }

    #[test]
    fn each_parse_error_is_distinct() {
        let prefix = npm();
        let token = SecretToken::generate(&prefix).unwrap();
        let good = token.expose_secret();
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            ParsedToken::parse(&prefix, &long).unwrap_err(),
            TokenFormatError::TooLong {
                found: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN
            }
        );
        let other = good.replacen("npm_", "ghp_", 1);
        assert_eq!(
            ParsedToken::parse(&prefix, &other).unwrap_err(),
            TokenFormatError::WrongPrefix
        );
        assert!(matches!(
            ParsedToken::parse(&prefix, &good[..good.len() - 1]).unwrap_err(),
            TokenFormatError::WrongLength {
                expected: 43,
                found: 42
            }
        ));
        let mut bad_char = good.to_owned();
        bad_char.replace_range(10..11, "-");
        assert_eq!(
            ParsedToken::parse(&prefix, &bad_char).unwrap_err(),
            TokenFormatError::InvalidCharacter { position: 10 }
        );
        let mut typo = good.as_bytes().to_vec();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            ParsedToken::parse(&prefix, &typo).unwrap_err(),
            TokenFormatError::BadChecksum
        );
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        let prefix = npm();
        let text = format!("npm_{}", "é".repeat(19) + "a");
        assert!(matches!(
            ParsedToken::parse(&prefix, &text),
            Err(TokenFormatError::InvalidCharacter { position: 4 })
        ));
    }

    #[test]
    fn checksum_is_fixed_width() {
        assert_eq!(&encode_checksum(0), b"000000");
        assert_eq!(&encode_checksum(61), b"00000z");
        assert_eq!(&encode_checksum(u32::MAX), b"4gfFC3");
    }

    #[test]
    fn random_bytes_map_without_bias() {
        let accepted: Vec<u8> = (0..=255u8).filter_map(base62_from_random_byte).collect();
        assert_eq!(accepted.len(), 248);
        for c in ALPHABET {
            assert_eq!(accepted.iter().filter(|&&a| a == *c).count(), 4);
        }
    }

    #[test]
    fn secret_never_printed() {
        let token = SecretToken::generate(&npm()).unwrap();
        let secret = &token.expose_secret()[4 + ID_LEN..];
        for shown in [
            format!("{token:?}"),
            format!("{token}"),
            format!("{token:#?}"),
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!shown.contains(token.expose_secret()), "{shown}");
        }
        let parsed = ParsedToken::parse(&npm(), token.expose_secret()).unwrap();
        assert!(!format!("{parsed:?}").contains(secret));
    }

    #[test]
    fn ids_parse_from_text() {
        let token = SecretToken::generate(&npm()).unwrap();
        let id: TokenId = token.id().as_str().parse().unwrap();
        assert_eq!(id, token.id());
        assert!("short".parse::<TokenId>().is_err());
        assert!("abcdefghij-".parse::<TokenId>().is_err());
        assert_eq!(
            id_from_id_or_token(&npm(), token.expose_secret()),
            Some(token.id())
        );
        assert_eq!(id_from_id_or_token(&npm(), id.as_str()), Some(id));
        assert_eq!(id_from_id_or_token(&npm(), "nonsense"), None);
    }

    proptest! {
        #[test]
        fn checksum_catches_every_single_character_change(
            position in 4usize..43,
            replacement in proptest::sample::select(ALPHABET.to_vec()),
        ) {
            let prefix = npm();
            let token = SecretToken::generate(&prefix).unwrap();
            let mut bytes = token.expose_secret().as_bytes().to_vec();
            prop_assume!(bytes[position] != replacement);
            bytes[position] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(ParsedToken::parse(&prefix, &changed).unwrap_err(), TokenFormatError::BadChecksum);
        }

        #[test]
        fn parse_is_total(text in "\\PC{0,80}") {
            let _ = ParsedToken::parse(&npm(), &text);
        }

        #[test]
        fn parse_is_total_on_near_tokens(text in "npm_[0-9A-Za-z_\\-=. ]{30,45}") {
            let _ = ParsedToken::parse(&npm(), &text);
        }
    }
}
