//! What a request does ([`Action`]) and what a token may do ([`Access`]).

use http::Method;

/// What a request does to the resource it touches.
///
/// ```
/// use http::Method;
/// use tokengate::Action;
///
/// assert_eq!(Action::of_method(&Method::GET), Action::Read);
/// assert_eq!(Action::of_method(&Method::PUT), Action::Write);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Looks without changing anything.
    Read,
    /// Changes something.
    Write,
}

impl Action {
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

/// What a token may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Reads only: every write is refused with 403.
    ReadOnly,
    /// Reads and writes (npm's "full permission" token).
    #[default]
    ReadWrite,
}

impl Access {
    /// Whether a token with this access may perform `action`.
    ///
    /// ```
    /// use tokengate::{Access, Action};
    ///
    /// assert!(Access::ReadOnly.allows(Action::Read));
    /// assert!(!Access::ReadOnly.allows(Action::Write));
    /// assert!(Access::ReadWrite.allows(Action::Write));
    /// ```
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Write => self == Access::ReadWrite,
        }
    }

    /// Whether this is [`Access::ReadOnly`].
    pub fn is_read_only(self) -> bool {
        self == Access::ReadOnly
    }
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
    fn access_table() {
        struct Case {
            access: Access,
            action: Action,
            allowed: bool,
        }
        let cases = [
            Case {
                access: Access::ReadOnly,
                action: Action::Read,
                allowed: true,
            },
            Case {
                access: Access::ReadOnly,
                action: Action::Write,
                allowed: false,
            },
            Case {
                access: Access::ReadWrite,
                action: Action::Read,
                allowed: true,
            },
            Case {
                access: Access::ReadWrite,
                action: Action::Write,
                allowed: true,
            },
        ];
        for case in cases {
            assert_eq!(
                case.access.allows(case.action),
                case.allowed,
                "{:?} {:?}",
                case.access,
                case.action
            );
        }
    }
}
