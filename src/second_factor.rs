//! The second factor on writes: what the gate asks the application before a write goes
//! through, and what it answers. Reads never ask.
//!
//! The application owns the policy (who has a second factor, which writes need it, how a
//! code is checked, and that a code is used once); with the `totp` feature,
//! [`TotpSecret`](crate::TotpSecret) does the arithmetic.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::access::{Action, Resource};
use crate::record::SecondFactor;
use crate::tokens::Authenticated;

/// The header a one-time password arrives in: npm sends `npm-otp`.
pub const OTP_HEADER: &str = "npm-otp";

/// A one-time password as the client sent it. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeCode(zeroize::Zeroizing<String>);

impl OneTimeCode {
    /// The code the client sent, trimmed of white space.
    pub fn new(code: &str) -> Self {
        Self(zeroize::Zeroizing::new(code.trim().to_owned()))
    }

    /// The code itself, for checking it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(..)")
    }
}

/// A write the gate is about to let through, for the application to judge.
#[derive(Debug)]
#[non_exhaustive]
pub struct SecondFactorRequest {
    /// Who the token belongs to, and what else is known of it.
    pub who: Authenticated,
    /// What the request does (always [`Action::Write`] today; reads never ask).
    pub action: Action,
    /// What it does it to, when the application's resolver said.
    pub resource: Option<Resource>,
    /// The code the client sent in the one-time-password header, if any.
    pub code: Option<OneTimeCode>,
}

impl SecondFactorRequest {
    /// Whether the token was made to skip the second factor (npm's `--bypass-2fa`).
    pub fn token_bypasses(&self) -> bool {
        self.who.second_factor() == SecondFactor::Bypassed
    }
}

/// The application's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondFactorVerdict {
    /// No second factor is needed for this write, or the code was right: go on.
    Pass,
    /// A code is needed and none came: 401, and npm prompts for one.
    CodeRequired,
    /// The code is wrong, expired or was already used: 401, and npm prompts again.
    CodeRejected,
    /// The check could not be made (its store is down): 503, nothing allowed.
    Unavailable,
    /// The write names nothing the check can judge (no resource, or one the application
    /// does not recognise), so whether it needs a code cannot be known: 400, nothing
    /// allowed. A check that fails closed answers this rather than [`Pass`](Self::Pass).
    Unresolved,
}

type CheckFuture = Pin<Box<dyn Future<Output = SecondFactorVerdict> + Send>>;

/// The application's second-factor check, as the gate holds it.
pub(crate) type SecondFactorCheck = Arc<dyn Fn(SecondFactorRequest) -> CheckFuture + Send + Sync>;

/// Wraps an async function as a [`SecondFactorCheck`].
pub(crate) fn boxed_check<F, Fut>(check: F) -> SecondFactorCheck
where
    F: Fn(SecondFactorRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = SecondFactorVerdict> + Send + 'static,
{
    Arc::new(move |request| Box::pin(check(request)))
}
