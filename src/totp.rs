//! One-time passwords as authenticator apps make them (RFC 6238: HMAC-SHA-1, six digits,
//! 30-second steps, one step of clock skew either way), and recovery codes (feature
//! `totp`). The arithmetic is the `totp-rs` crate's; what is here is keeping secrets
//! secret and every code single-use.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::digest::TokenDigest;
use crate::token::RandomError;

/// Bytes of a TOTP secret: 160 bits, as RFC 4226 recommends for HMAC-SHA-1.
pub const TOTP_SECRET_LEN: usize = 20;
/// Seconds a code lasts.
const STEP_SECONDS: u64 = 30;

/// A user's TOTP secret: generated from the operating system's generator, shown once as an
/// `otpauth://` URL, and never in `Debug`. Zeroed when dropped.
///
/// Store it encrypted (it cannot be hashed: checking a code needs it), and store the step
/// of the last code accepted, so that [`TotpSecret::verify`] can refuse a replay.
///
/// ```
/// use std::time::SystemTime;
/// use tokengate::{OtpError, TotpSecret};
///
/// let secret = TotpSecret::generate()?;
/// let url = secret.otpauth_url("registry", "alice");
/// assert!(url.starts_with("otpauth://totp/"));
///
/// let now = SystemTime::now();
/// let code = secret.code_at(now);
/// let step = secret.verify(&code, now, None).expect("a fresh code");
/// // The same code again is a replay.
/// assert_eq!(secret.verify(&code, now, Some(step)), Err(OtpError::Replayed));
/// # Ok::<(), tokengate::RandomError>(())
/// ```
pub struct TotpSecret {
    bytes: Zeroizing<[u8; TOTP_SECRET_LEN]>,
}

/// Why a one-time password was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpError {
    /// Not six digits.
    #[error("a one-time password is six digits")]
    Malformed,
    /// Not the code of this step or either neighbour.
    #[error("the one-time password is wrong or expired")]
    Wrong,
    /// Right, but a code of this step or a later one was already accepted.
    #[error("the one-time password was already used")]
    Replayed,
}

/// Bytes that cannot be a TOTP secret here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a TOTP secret is {TOTP_SECRET_LEN} bytes")]
pub struct InvalidTotpSecret;

impl TotpSecret {
    /// A new secret from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when the generator fails.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = Zeroizing::new([0u8; TOTP_SECRET_LEN]);
        crate::token::fill_random(&mut bytes[..])?;
        Ok(Self { bytes })
    }

    /// A secret read back from storage.
    ///
    /// # Errors
    ///
    /// [`InvalidTotpSecret`] unless `bytes` has [`TOTP_SECRET_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidTotpSecret> {
        let bytes: [u8; TOTP_SECRET_LEN] = bytes.try_into().map_err(|_| InvalidTotpSecret)?;
        Ok(Self {
            bytes: Zeroizing::new(bytes),
        })
    }

    /// The secret's bytes, to encrypt for storage. Never log them.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes[..]
    }

    fn totp(&self, issuer: Option<&str>, account: &str) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.bytes.to_vec())
            .with_issuer(issuer)
            .with_account_name(account)
            // Six digits, 30 s and a 160-bit secret are RFC 6238's own parameters; the
            // builder's stricter checks are about other shapes.
            .build_noncompliant()
    }

    /// The `otpauth://` URL an authenticator app scans or is given: show it once.
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let url = self
            .totp(Some(issuer), account)
            .to_url()
            .unwrap_or_default();
        Zeroizing::new(url)
    }

    /// The code an authenticator shows at `at`: for enrolment checks and tests.
    pub fn code_at(&self, at: SystemTime) -> Zeroizing<String> {
        let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Zeroizing::new(self.totp(None, "").generate(seconds).to_string())
    }

    /// Checks `code` at `now`, one step either side allowed, and refuses a code whose step
    /// is not later than `last_step` (the step [`TotpSecret::verify`] last returned for
    /// this secret). Returns the code's step, to keep as the new `last_step`.
    ///
    /// # Errors
    ///
    /// [`OtpError`] saying why the code was not accepted.
    pub fn verify(
        &self,
        code: &str,
        now: SystemTime,
        last_step: Option<u64>,
    ) -> Result<u64, OtpError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OtpError::Malformed);
        }
        let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let step = self
            .totp(None, "")
            .check(code, seconds)
            .ok_or(OtpError::Wrong)?;
        if last_step.is_some_and(|last| step <= last) {
            return Err(OtpError::Replayed);
        }
        Ok(step)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// How many recovery codes [`RecoveryCodes::generate`] makes.
pub const RECOVERY_CODES: usize = 10;

/// Recovery codes: shown once when two-factor authentication is enabled, kept only as
/// digests, each accepted once in place of a one-time password. A code is 64 hexadecimal
/// characters, as npm's are (npm's prompt takes them as they are).
///
/// ```
/// use tokengate::RecoveryCodes;
///
/// let (shown, mut kept) = RecoveryCodes::generate()?;
/// assert_eq!(shown.len(), 10);
/// assert!(kept.redeem(&shown[3]));
/// assert!(!kept.redeem(&shown[3]), "each code works once");
/// # Ok::<(), tokengate::RandomError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCodes {
    digests: Vec<TokenDigest>,
}

impl RecoveryCodes {
    /// [`RECOVERY_CODES`] new codes, to show the user once, and their digests to keep.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when the operating system's generator fails.
    pub fn generate() -> Result<(Vec<Zeroizing<String>>, Self), RandomError> {
        let mut shown = Vec::with_capacity(RECOVERY_CODES);
        let mut digests = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let mut random = Zeroizing::new([0u8; 32]);
            crate::token::fill_random(&mut random[..])?;
            let code = Zeroizing::new(hex(&random[..]));
            digests.push(TokenDigest::of(&code));
            shown.push(code);
        }
        Ok((shown, Self { digests }))
    }

    /// The digests, to store.
    pub fn digests(&self) -> &[TokenDigest] {
        &self.digests
    }

    /// Codes read back from their stored digests.
    pub fn from_digests(digests: Vec<TokenDigest>) -> Self {
        Self { digests }
    }

    /// Whether any are left.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Accepts `code` if it is one of the codes still unused, and uses it up. Every stored
    /// digest is compared, in constant time, whatever matches.
    pub fn redeem(&mut self, code: &str) -> bool {
        let presented = TokenDigest::of(&code.trim().to_ascii_lowercase());
        let mut found = None;
        for (i, digest) in self.digests.iter().enumerate() {
            if digest.verify(&presented) {
                found = Some(i);
            }
        }
        found.map(|i| self.digests.swap_remove(i)).is_some()
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("left", &self.digests.len())
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// RFC 6238 appendix B, SHA-1: the secret "12345678901234567890".
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        struct Case {
            unix_seconds: u64,
            code: &'static str,
        }
        // The RFC lists eight digits; six are their last six.
        let cases = [
            Case {
                unix_seconds: 59,
                code: "287082",
            },
            Case {
                unix_seconds: 1_111_111_109,
                code: "081804",
            },
            Case {
                unix_seconds: 1_234_567_890,
                code: "005924",
            },
            Case {
                unix_seconds: 2_000_000_000,
                code: "279037",
            },
        ];
        for case in cases {
            let at = UNIX_EPOCH + Duration::from_secs(case.unix_seconds);
            assert_eq!(
                secret.code_at(at).as_str(),
                case.code,
                "{}",
                case.unix_seconds
            );
            assert!(secret.verify(case.code, at, None).is_ok());
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = TotpSecret::generate().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        let step = Duration::from_secs(30);
        struct Case {
            code_from: SystemTime,
            accepted: bool,
        }
        let cases = [
            Case {
                code_from: now - step,
                accepted: true,
            },
            Case {
                code_from: now,
                accepted: true,
            },
            Case {
                code_from: now + step,
                accepted: true,
            },
            Case {
                code_from: now - step * 2,
                accepted: false,
            },
            Case {
                code_from: now + step * 2,
                accepted: false,
            },
        ];
        for case in cases {
            let code = secret.code_at(case.code_from);
            assert_eq!(secret.verify(&code, now, None).is_ok(), case.accepted);
        }
    }

    #[test]
    fn codes_are_single_use_and_never_go_backwards() {
        let secret = TotpSecret::generate().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        let step = Duration::from_secs(30);
        let current = secret.verify(&secret.code_at(now), now, None).unwrap();
        let previous = secret.code_at(now - step);
        assert_eq!(
            secret.verify(&previous, now, Some(current)),
            Err(OtpError::Replayed)
        );
        let next = secret.code_at(now + step);
        assert_eq!(secret.verify(&next, now, Some(current)), Ok(current + 1));
    }

    #[test]
    fn malformed_codes_are_refused_before_any_arithmetic() {
        let secret = TotpSecret::generate().unwrap();
        for code in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(
                secret.verify(code, SystemTime::now(), None),
                Err(OtpError::Malformed)
            );
        }
    }

    #[test]
    fn secrets_and_codes_never_show_in_debug() {
        let secret = TotpSecret::generate().unwrap();
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
        let (shown, kept) = RecoveryCodes::generate().unwrap();
        let debug = format!("{kept:?}");
        for code in &shown {
            assert!(!debug.contains(code.as_str()));
            assert_eq!(code.len(), 64);
        }
        let url = secret.otpauth_url("registry", "alice");
        assert!(url.contains("secret="), "{}", url.as_str());
        assert!(url.contains("issuer=registry"), "{}", url.as_str());
    }

    #[test]
    fn recovery_codes_work_once_each() {
        let (shown, mut kept) = RecoveryCodes::generate().unwrap();
        assert!(!kept.redeem("not a code"));
        for code in &shown {
            assert!(
                kept.redeem(&code.to_uppercase()),
                "codes are not case-sensitive"
            );
            assert!(!kept.redeem(code));
        }
        assert!(kept.is_empty());
    }
}
