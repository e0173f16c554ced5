//! The options for a new token ([`NewToken`]) and their validation: everything about a
//! token that its creator chooses is checked here, before anything is stored.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::access::{Grants, Permission};
use crate::cidr::{CidrError, CidrList};
use crate::clock::whole_millis;
use crate::record::{SecondFactor, TokenKind};

/// Longest owner name, in bytes.
pub const MAX_OWNER_LEN: usize = 256;
/// Longest token name, in characters.
pub const MAX_NAME_LEN: usize = 256;
/// Longest token description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// When a new token stops working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    In(Duration),
    At(SystemTime),
}

/// The options for a new token, as `npm token create` takes them.
///
/// ```
/// use std::time::Duration;
/// use tokengate::{Grant, Grants, NewToken, Permission, ResourcePattern};
///
/// // `npm token create --read-only --cidr=10.0.0.0/8,2001:db8::/32 --expires=30`
/// let ci_mirror = NewToken::read_only()
///     .allow_cidrs(["10.0.0.0/8", "2001:db8::/32"])
///     .expires_in(Duration::from_secs(30 * 24 * 3600))
///     .name("CI")
///     .description("read-only token for the CI mirror");
///
/// // `npm token create --scopes=@acme --packages-and-scopes-permission=read-write --bypass-2fa`
/// let release = NewToken::with_grants(Grants::new([Grant::new(
///     ResourcePattern::parse("@acme/*")?,
///     Permission::ReadWrite,
/// )])?)
/// .bypass_second_factor();
/// # let _ = (ci_mirror, release);
/// # Ok::<(), tokengate::InvalidGrant>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct NewToken {
    grants: Grants,
    kind: TokenKind,
    second_factor: SecondFactor,
    cidr: Vec<String>,
    expiry: Option<Expiry>,
    name: Option<String>,
    description: Option<String>,
}

impl NewToken {
    /// A full-permission token on everything, usable from anywhere, that expires only as
    /// the manager's lifetime policy says.
    pub fn read_write() -> Self {
        Self::default()
    }

    /// A read-only token on everything, usable from anywhere, that never expires.
    pub fn read_only() -> Self {
        Self::with_grants(Grants::everything(Permission::ReadOnly))
    }

    /// A token with these grants.
    pub fn with_grants(grants: Grants) -> Self {
        Self {
            grants,
            ..Self::default()
        }
    }

    /// A login session: read-write on everything, never listed, living as long as the
    /// manager's session lifetime (two hours unless set) unless an expiry is given.
    pub fn session() -> Self {
        Self {
            kind: TokenKind::Session,
            ..Self::default()
        }
    }

    /// Writes with this token skip the second factor (npm's `--bypass-2fa`, for CI).
    pub fn bypass_second_factor(mut self) -> Self {
        self.second_factor = SecondFactor::Bypassed;
        self
    }

    /// Restricts the token to these CIDR ranges or addresses (IPv4 or IPv6). They are
    /// validated by [`Tokens::create`](crate::Tokens::create), which names a bad entry.
    pub fn allow_cidrs<I>(mut self, entries: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.cidr = entries.into_iter().map(Into::into).collect();
        self
    }

    /// The token stops working this long after creation.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expiry = Some(Expiry::In(lifetime));
        self
    }

    /// The token stops working at this instant, which must be in the future.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expiry = Some(Expiry::At(at));
        self
    }

    /// A name for listings.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A description for listings.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// What is wrong with the options for a new token; nothing was stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidNewToken {
    /// The owner name.
    #[error("invalid owner: {0}")]
    Owner(TextProblem),
    /// The token's name.
    #[error("invalid name: {0}")]
    Name(TextProblem),
    /// The token's description.
    #[error("invalid description: {0}")]
    Description(TextProblem),
    /// An allow-list entry; the message is npm's, naming the entry.
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// The expiry.
    #[error("invalid expiry: {0}")]
    Expiry(ExpiryProblem),
}

/// What is wrong with a text option (owner, name or description).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextProblem {
    /// Empty or only white space, where a value is required.
    Empty,
    /// Longer than allowed: `max` bytes for an owner, characters otherwise.
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A control character (a line break, where only one line is allowed), which would
    /// garble a listing or a log line.
    ControlCharacter,
    /// An invisible formatting character (Unicode category Cf), such as a bidirectional
    /// override that makes a listing read differently from what it holds.
    FormatCharacter,
}

impl fmt::Display for TextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextProblem::Empty => f.write_str("must not be empty"),
            TextProblem::TooLong { max } => write!(f, "too long (at most {max})"),
            TextProblem::ControlCharacter => f.write_str("must not contain control characters"),
            TextProblem::FormatCharacter => {
                f.write_str("must not contain invisible formatting characters")
            }
        }
    }
}

/// What is wrong with an expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryProblem {
    /// The token would expire immediately or in the past.
    NotInFuture,
    /// The expiry is past what the clock or the stores can represent.
    Unrepresentable,
    /// A token that can write would outlive the manager's maximum lifetime for such
    /// tokens, or a session the session lifetime.
    PastMaximum {
        /// What kind of token was asked for: the maximum differs for sessions.
        kind: TokenKind,
        /// The maximum lifetime.
        max: Duration,
    },
}

impl fmt::Display for ExpiryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpiryProblem::NotInFuture => {
                f.write_str("the token would expire immediately or in the past")
            }
            ExpiryProblem::Unrepresentable => {
                f.write_str("the token would expire too far in the future")
            }
            ExpiryProblem::PastMaximum { kind, max } => {
                let what = match kind {
                    TokenKind::Session => "sessions",
                    _ => "tokens that can write",
                };
                let seconds = max.as_secs();
                let (count, unit) = match seconds {
                    s if s > 0 && s % 86_400 == 0 => (s / 86_400, "day"),
                    s if s > 0 && s % 3_600 == 0 => (s / 3_600, "hour"),
                    s => (s, "second"),
                };
                let plural = if count == 1 { "" } else { "s" };
                write!(f, "{what} may live at most {count} {unit}{plural}")
            }
        }
    }
}

/// How long new tokens live when their creator does not say, and at most: set on the
/// [`TokensBuilder`](crate::TokensBuilder).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LifetimePolicy {
    /// For ordinary tokens that can write and were given no expiry.
    pub(crate) write_default: Option<Duration>,
    /// For ordinary tokens that can write.
    pub(crate) write_max: Option<Duration>,
    /// For sessions given no expiry.
    pub(crate) session: Duration,
    /// For tokens minted by an exchange (trusted publishing).
    #[cfg(feature = "oidc")]
    pub(crate) exchanged: Duration,
}

impl Default for LifetimePolicy {
    /// No limits on ordinary tokens; sessions for two hours.
    fn default() -> Self {
        Self {
            write_default: None,
            write_max: None,
            session: Duration::from_secs(2 * 3600),
            #[cfg(feature = "oidc")]
            exchanged: crate::tokens::DEFAULT_EXCHANGED_TOKEN_LIFETIME,
        }
    }
}

/// A [`NewToken`] whose options passed every check.
pub(crate) struct ValidNewToken {
    pub(crate) grants: Grants,
    pub(crate) kind: TokenKind,
    pub(crate) second_factor: SecondFactor,
    pub(crate) cidr: CidrList,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
}

impl NewToken {
    /// Checks every option for a token that `owner` creates at `now`, and applies the
    /// lifetime policy.
    pub(crate) fn validate(
        self,
        owner: &str,
        now: SystemTime,
        policy: &LifetimePolicy,
    ) -> Result<ValidNewToken, InvalidNewToken> {
        check_text(owner, MAX_OWNER_LEN, TextRule::Required).map_err(InvalidNewToken::Owner)?;
        if let Some(name) = &self.name {
            check_text(name, MAX_NAME_LEN, TextRule::SingleLine).map_err(InvalidNewToken::Name)?;
        }
        if let Some(description) = &self.description {
            check_text(description, MAX_DESCRIPTION_LEN, TextRule::MultiLine)
                .map_err(InvalidNewToken::Description)?;
        }
        let cidr = CidrList::parse(&self.cidr)?;
        // A token that can stage uploads too: it lives no longer than one that writes.
        let writes = self.grants.broadest().allows(crate::access::Action::Stage);
        let (default, max) = match self.kind {
            // A session never outlives the session lifetime, whatever it was asked for.
            TokenKind::Session => (Some(policy.session), Some(policy.session)),
            _ if writes => (policy.write_default, policy.write_max),
            _ => (None, None),
        };
        let expiry = self.expiry.or(default.map(Expiry::In));
        let expires_at = expiry
            .map(|expiry| expiry_instant(expiry, now))
            .transpose()
            .map_err(InvalidNewToken::Expiry)?;
        if let Some(max) = max {
            let limit = now.checked_add(max);
            let beyond = match (expires_at, limit) {
                (None, _) => true,
                (Some(at), Some(limit)) => at > limit,
                (Some(_), None) => false,
            };
            if beyond {
                return Err(InvalidNewToken::Expiry(ExpiryProblem::PastMaximum {
                    kind: self.kind,
                    max,
                }));
            }
        }
        Ok(ValidNewToken {
            grants: self.grants,
            kind: self.kind,
            second_factor: self.second_factor,
            cidr,
            expires_at,
            name: self.name,
            description: self.description,
        })
    }
}

/// The instant a new token expires, which must be after `now`.
fn expiry_instant(expiry: Expiry, now: SystemTime) -> Result<SystemTime, ExpiryProblem> {
    let at = match expiry {
        Expiry::In(lifetime) => now
            .checked_add(lifetime)
            .ok_or(ExpiryProblem::Unrepresentable)?,
        Expiry::At(at) => at,
    };
    let at = whole_millis(at).ok_or(ExpiryProblem::Unrepresentable)?;
    if at <= now {
        return Err(ExpiryProblem::NotInFuture);
    }
    Ok(at)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TextRule {
    Required,
    SingleLine,
    MultiLine,
}

/// Owner, name and description: bounded, and free of control and formatting characters
/// that would garble a listing or a log line.
pub(crate) fn check_text(value: &str, max: usize, rule: TextRule) -> Result<(), TextProblem> {
    if rule == TextRule::Required && value.trim().is_empty() {
        return Err(TextProblem::Empty);
    }
    let too_long = match rule {
        TextRule::Required => value.len() > max,
        _ => value.chars().count() > max,
    };
    if too_long {
        return Err(TextProblem::TooLong { max });
    }
    let allowed_control = |c: char| rule == TextRule::MultiLine && (c == '\n' || c == '\t');
    if value.chars().any(|c| c.is_control() && !allowed_control(c)) {
        return Err(TextProblem::ControlCharacter);
    }
    if value.chars().any(crate::text::is_format_character) {
        return Err(TextProblem::FormatCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let day = Duration::from_secs(86_400);
        assert_eq!(expiry_instant(Expiry::In(day), now), Ok(now + day));
        assert_eq!(expiry_instant(Expiry::At(now + day), now), Ok(now + day));
        struct Case {
            expiry: Expiry,
            problem: ExpiryProblem,
        }
        let cases = [
            Case {
                expiry: Expiry::In(Duration::ZERO),
                problem: ExpiryProblem::NotInFuture,
            },
            Case {
                expiry: Expiry::At(now),
                problem: ExpiryProblem::NotInFuture,
            },
            Case {
                expiry: Expiry::At(SystemTime::UNIX_EPOCH),
                problem: ExpiryProblem::NotInFuture,
            },
            Case {
                expiry: Expiry::In(Duration::MAX),
                problem: ExpiryProblem::Unrepresentable,
            },
            // Past what a store can hold: refused, not wrapped into the past.
            Case {
                expiry: Expiry::At(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 1000)),
                problem: ExpiryProblem::Unrepresentable,
            },
        ];
        for case in cases {
            assert_eq!(
                expiry_instant(case.expiry, now),
                Err(case.problem),
                "{:?}",
                case.expiry
            );
        }
    }

    #[test]
    fn text_table() {
        use TextRule::*;
        struct Case {
            value: &'static str,
            max: usize,
            rule: TextRule,
            expected: Result<(), TextProblem>,
        }
        let ok = Ok(());
        let cases = [
            Case {
                value: "alice",
                max: 256,
                rule: Required,
                expected: ok,
            },
            Case {
                value: "",
                max: 256,
                rule: Required,
                expected: Err(TextProblem::Empty),
            },
            Case {
                value: "   ",
                max: 256,
                rule: Required,
                expected: Err(TextProblem::Empty),
            },
            Case {
                value: "al\u{0}ice",
                max: 256,
                rule: Required,
                expected: Err(TextProblem::ControlCharacter),
            },
            Case {
                value: "Zoë \"the\" O'Brien",
                max: 256,
                rule: Required,
                expected: ok,
            },
            Case {
                value: "abc",
                max: 2,
                rule: Required,
                expected: Err(TextProblem::TooLong { max: 2 }),
            },
            Case {
                value: "",
                max: 256,
                rule: SingleLine,
                expected: ok,
            },
            Case {
                value: "a\nb",
                max: 256,
                rule: SingleLine,
                expected: Err(TextProblem::ControlCharacter),
            },
            Case {
                value: "a\nb\tc",
                max: 256,
                rule: MultiLine,
                expected: ok,
            },
            Case {
                value: "a\rb",
                max: 256,
                rule: MultiLine,
                expected: Err(TextProblem::ControlCharacter),
            },
            Case {
                value: "ééé",
                max: 3,
                rule: SingleLine,
                expected: ok,
            },
            Case {
                value: "éééé",
                max: 3,
                rule: SingleLine,
                expected: Err(TextProblem::TooLong { max: 3 }),
            },
            // A right-to-left override makes "CI token" read as something else.
            Case {
                value: "CI \u{202E}nekot",
                max: 256,
                rule: SingleLine,
                expected: Err(TextProblem::FormatCharacter),
            },
            Case {
                value: "zero\u{200B}width",
                max: 256,
                rule: MultiLine,
                expected: Err(TextProblem::FormatCharacter),
            },
            Case {
                value: "ali\u{FEFF}ce",
                max: 256,
                rule: Required,
                expected: Err(TextProblem::FormatCharacter),
            },
            // Other scripts and emoji are text like any other.
            Case {
                value: "🦀 日本語 العربية",
                max: 256,
                rule: SingleLine,
                expected: ok,
            },
        ];
        for case in cases {
            assert_eq!(
                check_text(case.value, case.max, case.rule),
                case.expected,
                "{:?}",
                case.value
            );
        }
    }

    #[test]
    fn a_lifetime_past_the_maximum_is_said_in_the_largest_whole_unit() {
        struct Case {
            kind: TokenKind,
            max: Duration,
            says: &'static str,
        }
        let cases = [
            Case {
                kind: TokenKind::Standard,
                max: Duration::from_secs(90 * 86_400),
                says: "tokens that can write may live at most 90 days",
            },
            Case {
                kind: TokenKind::Standard,
                max: Duration::from_secs(86_400),
                says: "tokens that can write may live at most 1 day",
            },
            Case {
                kind: TokenKind::Session,
                max: Duration::from_secs(3_600),
                says: "sessions may live at most 1 hour",
            },
            Case {
                kind: TokenKind::Session,
                max: Duration::from_secs(90),
                says: "sessions may live at most 90 seconds",
            },
        ];
        for case in cases {
            let problem = ExpiryProblem::PastMaximum {
                kind: case.kind,
                max: case.max,
            };
            assert_eq!(problem.to_string(), case.says);
        }
    }
}
