//! The signature algorithms an ID token may use: asymmetric ones only.

use std::fmt;

use jsonwebtoken::Algorithm;

/// An asymmetric JWS algorithm the verifier accepts. `none` and every HMAC algorithm
/// (`HS256`, …) are not among them: a token naming one is refused before any key is
/// looked at, so a public key can never be used as an HMAC secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (GitHub, GitLab and CircleCI sign with this).
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
}

impl SigningAlgorithm {
    /// The algorithm named by a JOSE `alg` value, if it is one of these.
    pub fn from_jose(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            _ => return None,
        })
    }

    /// The JOSE name (`RS256`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// Whether a key of this JWK type (`kty`) and curve (`crv`, EC only) can verify it.
    pub(crate) fn fits(self, kty: KeyType) -> bool {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                kty == KeyType::Rsa
            }
            Self::Es256 => kty == KeyType::P256,
            Self::Es384 => kty == KeyType::P384,
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Rs384 => Algorithm::RS384,
            Self::Rs512 => Algorithm::RS512,
            Self::Ps256 => Algorithm::PS256,
            Self::Ps384 => Algorithm::PS384,
            Self::Ps512 => Algorithm::PS512,
            Self::Es256 => Algorithm::ES256,
            Self::Es384 => Algorithm::ES384,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of public key a key set may hold that the verifier uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa,
    P256,
    P384,
}

impl KeyType {
    /// The one algorithm a key that declares none is used with.
    pub(crate) fn implied_algorithm(self) -> SigningAlgorithm {
        match self {
            KeyType::Rsa => SigningAlgorithm::Rs256,
            KeyType::P256 => SigningAlgorithm::Es256,
            KeyType::P384 => SigningAlgorithm::Es384,
        }
    }
}
