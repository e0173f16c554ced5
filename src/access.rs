//! What a request does ([`Action`]), to what ([`Resource`]), and what a token may do:
//! [`Grants`], each a [`Permission`] on the resources a [`ResourcePattern`] covers.

use std::fmt;

use http::Method;

/// What a request does to the resource it touches.
///
/// ```
/// use http::Method;
/// use tokengate::Action;
///
/// assert_eq!(Action::of_method(&Method::GET), Action::Read);
/// assert_eq!(Action::of_method(&Method::PUT), Action::Write);
/// assert!(Action::Stage.changes() && !Action::Read.changes());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Looks without changing anything.
    Read,
    /// Stages a change that a person later makes live (or throws away): uploads
    /// something that nobody else sees until then. No method means this by itself; the
    /// application tells the gate which requests stage
    /// ([`TokenAuthLayer::request_actions`](crate::TokenAuthLayer::request_actions)).
    Stage,
    /// Changes something, live.
    Write,
}

impl Action {
    /// Whether the action changes anything at all (staged or live): what a browser's
    /// cross-site check guards.
    pub fn changes(self) -> bool {
        self != Action::Read
    }

    /// GET, HEAD, OPTIONS and TRACE read; every other method writes. Extension methods
    /// count as writes: an unknown verb gets the stricter treatment. Headers such as
    /// `X-HTTP-Method-Override` are never consulted.
    pub fn of_method(method: &Method) -> Self {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE => Action::Read,
            _ => Action::Write,
        }
    }
}

/// How much a grant allows, weakest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Permission {
    /// Nothing: every request to the resource is refused.
    NoAccess,
    /// Reads only: writes are refused with 403.
    ReadOnly,
    /// Reads and stages changes ([`Action::Stage`]), which a person later makes live;
    /// a direct write is refused with 403 saying to stage it instead. What a CI token
    /// should carry, so that a stolen one cannot ship anything by itself.
    ReadStage,
    /// Reads, stages and writes.
    #[default]
    ReadWrite,
}

impl Permission {
    /// Whether this permission allows `action`.
    ///
    /// ```
    /// use tokengate::{Action, Permission};
    ///
    /// assert!(Permission::ReadOnly.allows(Action::Read));
    /// assert!(!Permission::ReadOnly.allows(Action::Write));
    /// assert!(!Permission::NoAccess.allows(Action::Read));
    /// assert!(Permission::ReadStage.allows(Action::Stage));
    /// assert!(!Permission::ReadStage.allows(Action::Write));
    /// assert!(Permission::ReadWrite.allows(Action::Stage));
    /// ```
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => self >= Permission::ReadOnly,
            Action::Stage => self >= Permission::ReadStage,
            Action::Write => self == Permission::ReadWrite,
        }
    }

    /// `no-access`, `read-only`, `read-stage` or `read-write`: how grants print
    /// (`no-access`, `read-only` and `read-write` as npm writes them; npm calls
    /// `read-stage` `read-write-stage-only`).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::NoAccess => "no-access",
            Permission::ReadOnly => "read-only",
            Permission::ReadStage => "read-stage",
            Permission::ReadWrite => "read-write",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Permission {
    type Err = InvalidGrant;

    /// `no-access`, `read-only`, `read-stage` or `read-write`.
    fn from_str(text: &str) -> Result<Self, InvalidGrant> {
        match text {
            "no-access" => Ok(Permission::NoAccess),
            "read-only" => Ok(Permission::ReadOnly),
            "read-stage" => Ok(Permission::ReadStage),
            "read-write" => Ok(Permission::ReadWrite),
            _ => Err(InvalidGrant::Permission(shorten(text))),
        }
    }
}

/// The resource a request touches, as the application names it (a package name for a
/// registry, say); see [`TokenAuthLayer::resources`](crate::TokenAuthLayer::resources).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource(String);

impl Resource {
    /// A resource named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// Its name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest resource pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 256;
/// Most grants one token may carry.
pub const MAX_GRANTS: usize = 100;

/// Which resources a grant covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResourcePattern {
    /// Every resource: `*`.
    All,
    /// The resource with exactly this name, such as `left-pad`.
    Exact(String),
    /// Every resource whose name starts with this, written with a trailing `*`: `@acme/*`
    /// covers each package of the scope `@acme`.
    Prefix(String),
}

impl ResourcePattern {
    /// `*`, `name` or `prefix*`.
    ///
    /// ```
    /// use tokengate::ResourcePattern;
    ///
    /// assert_eq!(ResourcePattern::parse("*").unwrap(), ResourcePattern::All);
    /// let scope = ResourcePattern::parse("@acme/*").unwrap();
    /// assert!(scope.matches("@acme/tool") && !scope.matches("@acmex/tool"));
    /// assert!(ResourcePattern::parse("a*b").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidGrant::Pattern`] for an empty or over-long pattern, white space, control or
    /// formatting characters, or a `*` anywhere but at the end.
    pub fn parse(text: &str) -> Result<Self, InvalidGrant> {
        let pattern = match text.find('*') {
            None => ResourcePattern::Exact(text.to_owned()),
            Some(0) if text.len() == 1 => ResourcePattern::All,
            Some(at) if at + 1 == text.len() => ResourcePattern::Prefix(text[..at].to_owned()),
            Some(_) => return Err(InvalidGrant::Pattern(shorten(text))),
        };
        pattern.check()?;
        Ok(pattern)
    }

    /// Whether the pattern is one [`ResourcePattern::parse`] could have made, so that it
    /// prints and parses back as itself: a name or prefix that is not empty, not over
    /// [`MAX_PATTERN_LEN`], and free of `*`, white space, control and formatting
    /// characters. [`Grants::new`] checks patterns built from the variants directly, so
    /// that `Exact("a*")` cannot be stored and read back as the wider `a*`.
    fn check(&self) -> Result<(), InvalidGrant> {
        let text = match self {
            ResourcePattern::All => return Ok(()),
            ResourcePattern::Exact(text) | ResourcePattern::Prefix(text) => text,
        };
        let bad_char = |c: char| {
            c == '*' || c.is_whitespace() || c.is_control() || crate::text::is_format_character(c)
        };
        if text.is_empty() || text.len() > MAX_PATTERN_LEN || text.chars().any(bad_char) {
            return Err(InvalidGrant::Pattern(shorten(&self.to_string())));
        }
        Ok(())
    }

    /// Whether the pattern covers `resource`.
    pub fn matches(&self, resource: &str) -> bool {
        match self {
            ResourcePattern::All => true,
            ResourcePattern::Exact(name) => name == resource,
            ResourcePattern::Prefix(prefix) => resource.starts_with(prefix.as_str()),
        }
    }

    /// How narrowly the pattern names what it covers: exact names beat prefixes, longer
    /// prefixes beat shorter ones, and `*` comes last.
    fn specificity(&self) -> (u8, usize) {
        match self {
            ResourcePattern::All => (0, 0),
            ResourcePattern::Prefix(prefix) => (1, prefix.len()),
            ResourcePattern::Exact(name) => (2, name.len()),
        }
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourcePattern::All => f.write_str("*"),
            ResourcePattern::Exact(name) => f.write_str(name),
            ResourcePattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// One grant: a permission on the resources a pattern covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Grant {
    /// Which resources.
    pub pattern: ResourcePattern,
    /// How much.
    pub permission: Permission,
}

impl Grant {
    /// `permission` on what `pattern` covers.
    pub fn new(pattern: ResourcePattern, permission: Permission) -> Self {
        Self {
            pattern,
            permission,
        }
    }
}

/// What a token may do: one or more [`Grant`]s. For a resource, the most specific grant
/// that covers it decides (an exact name, then the longest prefix, then `*`); a resource
/// no grant covers gets [`Permission::NoAccess`]. A classic token is one grant on `*`.
///
/// ```
/// use tokengate::{Action, Grant, Grants, Permission, Resource, ResourcePattern};
///
/// let grants = Grants::new([
///     Grant::new(ResourcePattern::parse("@acme/*")?, Permission::ReadOnly),
///     Grant::new(ResourcePattern::parse("@acme/tool")?, Permission::ReadWrite),
/// ])?;
/// assert_eq!(grants.permission_on("@acme/tool"), Permission::ReadWrite);
/// assert_eq!(grants.permission_on("@acme/lib"), Permission::ReadOnly);
/// assert_eq!(grants.permission_on("left-pad"), Permission::NoAccess);
/// assert!(!grants.allows(Action::Write, Some(&Resource::new("@acme/lib"))));
/// # Ok::<(), tokengate::InvalidGrant>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grants(Vec<Grant>);

impl Grants {
    /// One grant on everything: a classic read-only or read-write token.
    pub fn everything(permission: Permission) -> Self {
        Self(vec![Grant::new(ResourcePattern::All, permission)])
    }

    /// These grants.
    ///
    /// # Errors
    ///
    /// [`InvalidGrant::Empty`] for none, [`InvalidGrant::TooMany`] past [`MAX_GRANTS`],
    /// [`InvalidGrant::Duplicate`] when two grants share a pattern (which one would decide
    /// is a guess), [`InvalidGrant::Pattern`] for a pattern built from its variants that
    /// [`ResourcePattern::parse`] would refuse.
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Result<Self, InvalidGrant> {
        let grants: Vec<Grant> = grants.into_iter().collect();
        for grant in &grants {
            grant.pattern.check()?;
        }
        if grants.is_empty() {
            return Err(InvalidGrant::Empty);
        }
        if grants.len() > MAX_GRANTS {
            return Err(InvalidGrant::TooMany {
                count: grants.len(),
                max: MAX_GRANTS,
            });
        }
        for (i, grant) in grants.iter().enumerate() {
            if grants[..i]
                .iter()
                .any(|earlier| earlier.pattern == grant.pattern)
            {
                return Err(InvalidGrant::Duplicate(shorten(&grant.pattern.to_string())));
            }
        }
        Ok(Self(grants))
    }

    /// The permission on `resource`: that of the most specific grant covering it.
    pub fn permission_on(&self, resource: &str) -> Permission {
        self.0
            .iter()
            .filter(|grant| grant.pattern.matches(resource))
            .max_by_key(|grant| grant.pattern.specificity())
            .map_or(Permission::NoAccess, |grant| grant.permission)
    }

    /// The strongest permission of any grant: what a request that touches no particular
    /// resource is held to.
    pub fn broadest(&self) -> Permission {
        self.0
            .iter()
            .map(|grant| grant.permission)
            .max()
            .unwrap_or(Permission::NoAccess)
    }

    /// Whether these grants allow `action` on `resource`; with no resource, whether the
    /// broadest grant allows it.
    pub fn allows(&self, action: Action, resource: Option<&Resource>) -> bool {
        match resource {
            Some(resource) => self.permission_on(resource.as_str()).allows(action),
            None => self.broadest().allows(action),
        }
    }

    /// `Some(permission)` when these are one grant on everything (a classic token).
    pub fn on_everything(&self) -> Option<Permission> {
        match self.0.as_slice() {
            [
                Grant {
                    pattern: ResourcePattern::All,
                    permission,
                },
            ] => Some(*permission),
            _ => None,
        }
    }

    /// The grants, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.0.iter()
    }
}

/// One `<permission> <pattern>` line per grant, such as `read-write @acme/*`: the form
/// stores keep grants in ([`Grants::from_str`](std::str::FromStr) reads it back).
impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, grant) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{} {}", grant.permission, grant.pattern)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Grants {
    type Err = InvalidGrant;

    /// What [`Grants`]' `Display` writes, checked as [`Grants::new`] checks.
    fn from_str(text: &str) -> Result<Self, InvalidGrant> {
        let grants = text.lines().map(|line| {
            let (permission, pattern) = line
                .split_once(' ')
                .ok_or_else(|| InvalidGrant::Pattern(shorten(line)))?;
            Ok(Grant::new(
                ResourcePattern::parse(pattern)?,
                permission.parse()?,
            ))
        });
        Grants::new(grants.collect::<Result<Vec<_>, InvalidGrant>>()?)
    }
}

impl Default for Grants {
    /// Read and write on everything.
    fn default() -> Self {
        Self::everything(Permission::ReadWrite)
    }
}

/// What is wrong with a grant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidGrant {
    /// A pattern that is empty, too long, has white space, control or formatting
    /// characters, or a `*` elsewhere than at its end.
    #[error("invalid resource pattern {0:?}: use a name, `prefix*` or `*`")]
    Pattern(String),
    /// Not a permission this crate knows.
    #[error("invalid permission {0:?}: use no-access, read-only, read-stage or read-write")]
    Permission(String),
    /// No grant at all.
    #[error("a token needs at least one grant")]
    Empty,
    /// More grants than allowed.
    #[error("{count} grants; at most {max} are allowed")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two grants for the same pattern.
    #[error("more than one grant for {0:?}")]
    Duplicate(String),
}

/// Input quoted in an error, cut to a readable length.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_table() {
        struct Case {
            method: &'static str,
            action: Action,
        }
        let cases = [
            Case {
                method: "GET",
                action: Action::Read,
            },
            Case {
                method: "HEAD",
                action: Action::Read,
            },
            Case {
                method: "OPTIONS",
                action: Action::Read,
            },
            Case {
                method: "TRACE",
                action: Action::Read,
            },
            Case {
                method: "POST",
                action: Action::Write,
            },
            Case {
                method: "PUT",
                action: Action::Write,
            },
            Case {
                method: "PATCH",
                action: Action::Write,
            },
            Case {
                method: "DELETE",
                action: Action::Write,
            },
            Case {
                method: "CONNECT",
                action: Action::Write,
            },
            Case {
                method: "PURGE",
                action: Action::Write,
            },
            // Methods are case-sensitive: `get` is an extension method.
            Case {
                method: "get",
                action: Action::Write,
            },
        ];
        for case in cases {
            let method = Method::from_bytes(case.method.as_bytes()).unwrap();
            assert_eq!(Action::of_method(&method), case.action, "{}", case.method);
        }
    }

    #[test]
    fn permission_table() {
        struct Case {
            permission: Permission,
            read: bool,
            stage: bool,
            write: bool,
        }
        let cases = [
            Case {
                permission: Permission::NoAccess,
                read: false,
                stage: false,
                write: false,
            },
            Case {
                permission: Permission::ReadOnly,
                read: true,
                stage: false,
                write: false,
            },
            Case {
                permission: Permission::ReadStage,
                read: true,
                stage: true,
                write: false,
            },
            Case {
                permission: Permission::ReadWrite,
                read: true,
                stage: true,
                write: true,
            },
        ];
        for case in cases {
            assert_eq!(
                case.permission.allows(Action::Read),
                case.read,
                "{:?}",
                case.permission
            );
            assert_eq!(
                case.permission.allows(Action::Stage),
                case.stage,
                "{:?}",
                case.permission
            );
            assert_eq!(
                case.permission.allows(Action::Write),
                case.write,
                "{:?}",
                case.permission
            );
            assert_eq!(
                case.permission.as_str().parse::<Permission>(),
                Ok(case.permission)
            );
        }
        assert!("admin".parse::<Permission>().is_err());
        // npm's name is the registry's to translate, not a grant's.
        assert!("read-write-stage-only".parse::<Permission>().is_err());
    }

    #[test]
    fn pattern_table() {
        struct Case {
            text: &'static str,
            parsed: Option<ResourcePattern>,
        }
        let exact = |s: &str| Some(ResourcePattern::Exact(s.to_owned()));
        let prefix = |s: &str| Some(ResourcePattern::Prefix(s.to_owned()));
        let cases = [
            Case {
                text: "*",
                parsed: Some(ResourcePattern::All),
            },
            Case {
                text: "left-pad",
                parsed: exact("left-pad"),
            },
            Case {
                text: "@acme/*",
                parsed: prefix("@acme/"),
            },
            Case {
                text: "@acme/tool",
                parsed: exact("@acme/tool"),
            },
            Case {
                text: "",
                parsed: None,
            },
            Case {
                text: "a*b",
                parsed: None,
            },
            Case {
                text: "**",
                parsed: None,
            },
            Case {
                text: "a b",
                parsed: None,
            },
            Case {
                text: "a\nb",
                parsed: None,
            },
            Case {
                text: "a\u{202E}b",
                parsed: None,
            },
        ];
        for case in cases {
            assert_eq!(
                ResourcePattern::parse(case.text).ok(),
                case.parsed,
                "{:?}",
                case.text
            );
            if let Some(parsed) = case.parsed {
                assert_eq!(parsed.to_string(), case.text, "display round-trips");
            }
        }
        assert!(ResourcePattern::parse(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
    }

    #[test]
    fn the_most_specific_grant_decides() {
        let grant = |pattern: &str, permission| {
            Grant::new(ResourcePattern::parse(pattern).unwrap(), permission)
        };
        let grants = Grants::new([
            grant("*", Permission::ReadOnly),
            grant("@acme/*", Permission::NoAccess),
            grant("@acme/open*", Permission::ReadWrite),
            grant("@acme/open-closed", Permission::NoAccess),
        ])
        .unwrap();
        struct Case {
            resource: &'static str,
            permission: Permission,
        }
        let cases = [
            Case {
                resource: "left-pad",
                permission: Permission::ReadOnly,
            },
            Case {
                resource: "@acme/secret",
                permission: Permission::NoAccess,
            },
            Case {
                resource: "@acme/open-source",
                permission: Permission::ReadWrite,
            },
            Case {
                resource: "@acme/open-closed",
                permission: Permission::NoAccess,
            },
            Case {
                resource: "@acmex/other",
                permission: Permission::ReadOnly,
            },
        ];
        for case in cases {
            assert_eq!(
                grants.permission_on(case.resource),
                case.permission,
                "{}",
                case.resource
            );
        }
        assert_eq!(grants.broadest(), Permission::ReadWrite);
        assert_eq!(grants.on_everything(), None);
        assert_eq!(
            Grants::everything(Permission::ReadOnly).on_everything(),
            Some(Permission::ReadOnly)
        );
    }

    #[test]
    fn patterns_built_by_hand_cannot_widen_when_stored() {
        let grant = |pattern| Grants::new([Grant::new(pattern, Permission::ReadWrite)]);
        for pattern in [
            ResourcePattern::Exact("a*".into()),
            ResourcePattern::Exact("a b".into()),
            ResourcePattern::Exact(String::new()),
            ResourcePattern::Prefix(String::new()),
            ResourcePattern::Prefix("a\nread-write *".into()),
        ] {
            assert!(
                matches!(grant(pattern.clone()), Err(InvalidGrant::Pattern(_))),
                "{pattern:?}"
            );
        }
        assert!(grant(ResourcePattern::Exact("@a/b".into())).is_ok());
    }

    #[test]
    fn grants_print_and_parse_back() {
        let grants = Grants::new([
            Grant::new(
                ResourcePattern::parse("@acme/*").unwrap(),
                Permission::ReadWrite,
            ),
            Grant::new(
                ResourcePattern::parse("left-pad").unwrap(),
                Permission::NoAccess,
            ),
            Grant::new(
                ResourcePattern::parse("@acme/ci").unwrap(),
                Permission::ReadStage,
            ),
            Grant::new(ResourcePattern::All, Permission::ReadOnly),
        ])
        .unwrap();
        let text = grants.to_string();
        assert_eq!(
            text,
            "read-write @acme/*\nno-access left-pad\nread-stage @acme/ci\nread-only *"
        );
        assert_eq!(text.parse::<Grants>(), Ok(grants));
        for bad in [
            "",
            "read-write",
            "admin *",
            "read-write a*b",
            "read-only *\nread-only *",
        ] {
            assert!(bad.parse::<Grants>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grant_lists_are_checked() {
        let all = || Grant::new(ResourcePattern::All, Permission::ReadOnly);
        assert_eq!(Grants::new([]), Err(InvalidGrant::Empty));
        assert_eq!(
            Grants::new([all(), all()]),
            Err(InvalidGrant::Duplicate("*".into()))
        );
        let many = (0..=MAX_GRANTS).map(|i| {
            Grant::new(
                ResourcePattern::Exact(format!("p{i}")),
                Permission::ReadOnly,
            )
        });
        assert!(matches!(
            Grants::new(many),
            Err(InvalidGrant::TooMany { .. })
        ));
    }

    #[test]
    fn a_token_with_no_grant_on_a_resource_cannot_touch_it() {
        let only_foo = Grants::new([Grant::new(
            ResourcePattern::Exact("foo".into()),
            Permission::ReadWrite,
        )])
        .unwrap();
        let bar = Resource::new("bar");
        let foo = Resource::new("foo");
        assert!(only_foo.allows(Action::Write, Some(&foo)));
        assert!(!only_foo.allows(Action::Read, Some(&bar)));
        assert!(!only_foo.allows(Action::Write, Some(&bar)));
        // Requests that touch no resource are held to the broadest grant.
        assert!(only_foo.allows(Action::Write, None));
        assert!(!Grants::everything(Permission::ReadOnly).allows(Action::Write, None));
    }
}
