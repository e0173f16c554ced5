//! [`TokenDigest`]: the SHA-256 of a whole token, the only form a token is kept in at rest.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a whole token (prefix included).
///
/// Equality is constant time: two 32-byte arrays compared with [`subtle`], with no early
/// return, so `==` on digests is safe to use on the request path.
#[derive(Clone, Copy)]
pub struct TokenDigest([u8; 32]);

/// Why bytes or text are not a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid token digest: expected 32 bytes (64 hexadecimal characters)")]
pub struct InvalidDigest;

impl TokenDigest {
    /// Hashes a whole token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A digest read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A digest read back from storage as a byte slice of length 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, InvalidDigest> {
        bytes.try_into().map(Self).map_err(|_| InvalidDigest)
    }

    /// The 32 bytes, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, for stores that keep text.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses the output of [`TokenDigest::to_hex`] (either case).
    pub fn from_hex(text: &str) -> Result<Self, InvalidDigest> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(InvalidDigest);
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or(InvalidDigest)?;
            let low = hex_value(pair[1]).ok_or(InvalidDigest)?;
            *slot = (high << 4) | low;
        }
        Ok(Self(out))
    }

    /// Constant-time comparison of two digests.
    pub fn verify(&self, other: &TokenDigest) -> bool {
        // XOR the digests word by word and OR the words together: every byte is read and
        // no branch depends on where they differ. Only the final word is compared, with
        // `subtle`, so that the compiler cannot turn the result into an early exit.
        let word = |bytes: &[u8; 32], i: usize| {
            u64::from_ne_bytes(std::array::from_fn(|j| bytes[8 * i + j]))
        };
        let difference = (0..4).fold(0u64, |acc, i| acc | (word(&self.0, i) ^ word(&other.0, i)));
        difference.ct_eq(&0).into()
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        self.verify(other)
    }
}

impl Eq for TokenDigest {}

impl fmt::Debug for TokenDigest {
    // A digest is not the token, but there is no reason to spread it through logs either.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            TokenDigest::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let digest = TokenDigest::of("npm_x");
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Ok(digest));
        assert_eq!(
            TokenDigest::from_hex(&digest.to_hex().to_uppercase()),
            Ok(digest)
        );
        assert_eq!(TokenDigest::from_hex("abc"), Err(InvalidDigest));
        assert_eq!(TokenDigest::from_hex(&"g".repeat(64)), Err(InvalidDigest));
        assert_eq!(TokenDigest::from_slice(&[0; 31]), Err(InvalidDigest));
        assert_eq!(
            TokenDigest::from_slice(digest.as_bytes()),
            Ok(TokenDigest::from_bytes(*digest.as_bytes()))
        );
    }

    #[test]
    fn debug_is_redacted() {
        let digest = TokenDigest::of("npm_x");
        assert_eq!(format!("{digest:?}"), "TokenDigest([redacted])");
    }

    proptest! {
        #[test]
        fn constant_time_equality_agrees_with_plain_equality(
            a in proptest::array::uniform32(any::<u8>()),
            b in proptest::array::uniform32(any::<u8>()),
            flip in 0usize..32,
        ) {
            let (da, db) = (TokenDigest::from_bytes(a), TokenDigest::from_bytes(b));
            prop_assert_eq!(da.verify(&db), a == b);
            prop_assert!(da.verify(&da));
            let mut near = a;
            near[flip] ^= 1;
            prop_assert!(!da.verify(&TokenDigest::from_bytes(near)));
        }
    }
}
