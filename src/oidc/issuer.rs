//! Which issuers are trusted, and for which CI provider.

use std::fmt;

/// A CI provider whose ID tokens the verifier knows how to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// GitHub Actions (github.com, or GitHub Enterprise Server).
    GitHub,
    /// GitLab CI/CD (GitLab.com, or a self-managed GitLab).
    GitLab,
    /// CircleCI (one issuer per organisation).
    CircleCi,
}

impl Provider {
    /// The name npm uses for the provider in `npm trust` (`github`, `gitlab`, `circleci`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::CircleCi => "circleci",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::GitHub => "GitHub Actions",
            Provider::GitLab => "GitLab CI/CD",
            Provider::CircleCi => "CircleCI",
        })
    }
}

/// Why an issuer URL was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidIssuer {
    /// Not `https://`, and not `http://` on a loopback address either.
    #[error("an issuer must be an https:// URL (http:// only on a loopback address): {0}")]
    Scheme(String),
    /// No host, or a query, fragment, user info, whitespace or control character.
    #[error("not a plain issuer URL (scheme, host, optional path): {0}")]
    Malformed(String),
    /// Longer than [`MAX_ISSUER_LEN`].
    #[error("an issuer URL is at most {MAX_ISSUER_LEN} bytes")]
    TooLong,
}

/// The longest issuer URL accepted.
pub const MAX_ISSUER_LEN: usize = 512;

/// An issuer, exactly as its tokens' `iss` claim must read: `https://host[/path]`, or
/// `http://` on a loopback address (127.0.0.0/8, `[::1]`, `localhost`) for tests.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IssuerUrl(String);

impl IssuerUrl {
    /// Checks `url` and keeps it as written (a trailing `/` is part of the issuer).
    pub fn parse(url: impl Into<String>) -> Result<Self, InvalidIssuer> {
        let url = url.into();
        check_url(&url)?;
        Ok(Self(url))
    }

    /// The issuer as tokens name it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery 1.0, §4).
    pub(crate) fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.0.trim_end_matches('/')
        )
    }

    /// Whether this issuer is plain `http://` on loopback (a test issuer), which lets its
    /// key set be served the same way.
    pub(crate) fn is_loopback_http(&self) -> bool {
        self.0.starts_with("http://")
    }
}

impl fmt::Debug for IssuerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IssuerUrl").field(&self.0).finish()
    }
}

impl fmt::Display for IssuerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a URL the verifier will fetch from or compare against: `https://`, or `http://`
/// on loopback; a host; no user info, query or fragment.
pub(crate) fn check_url(url: &str) -> Result<(), InvalidIssuer> {
    if url.len() > MAX_ISSUER_LEN {
        return Err(InvalidIssuer::TooLong);
    }
    let malformed = || InvalidIssuer::Malformed(url.to_owned());
    if url.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
        return Err(malformed());
    }
    let (rest, https) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else {
        return Err(InvalidIssuer::Scheme(url.to_owned()));
    };
    if rest.contains(['?', '#', '@', '\\']) {
        return Err(malformed());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(malformed());
    }
    let host = host_of(authority).ok_or_else(malformed)?;
    if !https && !is_loopback(host) {
        return Err(InvalidIssuer::Scheme(url.to_owned()));
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> Option<&str> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return Some(host);
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => authority,
    };
    (!host.is_empty()).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The issuer of GitHub Actions' ID tokens on github.com.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The issuer of GitLab.com's CI/CD ID tokens.
pub const GITLAB_COM_ISSUER: &str = "https://gitlab.com";
/// The prefix of CircleCI's issuers: each organisation's is `<this>/org/<organisation id>`.
pub const CIRCLECI_ISSUER_BASE: &str = "https://oidc.circleci.com";

/// The most CircleCI organisations whose keys are cached at once; past it the least
/// recently fetched organisation's keys are dropped (and fetched again when needed).
pub const MAX_CIRCLECI_ORGS: usize = 1_024;

/// An issuer the verifier accepts ID tokens from, and the provider whose claims its tokens
/// carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedIssuer {
    provider: Provider,
    kind: IssuerKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum IssuerKind {
    /// `iss` equals this.
    Exact(IssuerUrl),
    /// `iss` is `<base>/org/<uuid>`: CircleCI's issuer per organisation.
    CircleCiOrgs(IssuerUrl),
}

impl TrustedIssuer {
    /// GitHub Actions on github.com ([`GITHUB_ACTIONS_ISSUER`]).
    pub fn github_actions() -> Self {
        Self::exact(
            Provider::GitHub,
            IssuerUrl(GITHUB_ACTIONS_ISSUER.to_owned()),
        )
    }

    /// GitLab.com ([`GITLAB_COM_ISSUER`]).
    pub fn gitlab_com() -> Self {
        Self::exact(Provider::GitLab, IssuerUrl(GITLAB_COM_ISSUER.to_owned()))
    }

    /// CircleCI's cloud: every organisation's issuer under [`CIRCLECI_ISSUER_BASE`].
    ///
    /// Any organisation's tokens are then verified (the policies say which organisation
    /// may publish what); a token naming an organisation not seen before makes the
    /// verifier fetch that organisation's keys, so put the exchange endpoint behind a
    /// failure limit, as for any unauthenticated endpoint.
    pub fn circleci() -> Self {
        Self::circleci_at(IssuerUrl(CIRCLECI_ISSUER_BASE.to_owned()))
    }

    /// CircleCI organisations' issuers under another base (`<base>/org/<uuid>`): CircleCI
    /// server, or a test issuer.
    pub fn circleci_at(base: IssuerUrl) -> Self {
        let base = IssuerUrl(base.0.trim_end_matches('/').to_owned());
        Self {
            provider: Provider::CircleCi,
            kind: IssuerKind::CircleCiOrgs(base),
        }
    }

    /// One issuer, exactly: GitHub Enterprise Server (`https://HOST/_services/token`), a
    /// self-managed GitLab (`https://gitlab.example.com`), a test issuer.
    pub fn exact(provider: Provider, issuer: IssuerUrl) -> Self {
        Self {
            provider,
            kind: IssuerKind::Exact(issuer),
        }
    }

    /// The provider whose claims this issuer's tokens carry.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The issuer URL, or for CircleCI the base under which organisations' issuers lie.
    pub fn url(&self) -> &IssuerUrl {
        match &self.kind {
            IssuerKind::Exact(url) | IssuerKind::CircleCiOrgs(url) => url,
        }
    }

    /// Whether `iss` is this issuer (or one of its organisations' issuers), and the issuer
    /// URL to fetch keys from.
    pub(crate) fn admit(&self, iss: &str) -> Option<IssuerUrl> {
        match &self.kind {
            IssuerKind::Exact(url) => (url.as_str() == iss).then(|| url.clone()),
            IssuerKind::CircleCiOrgs(base) => {
                let org = iss.strip_prefix(base.as_str())?.strip_prefix("/org/")?;
                is_uuid(org).then(|| IssuerUrl(iss.to_owned()))
            }
        }
    }

    /// Whether issuers admitted by this one are many (one per organisation).
    pub(crate) fn is_template(&self) -> bool {
        matches!(self.kind, IssuerKind::CircleCiOrgs(_))
    }
}

/// `8-4-4-4-12` hexadecimal digits, as CircleCI's ids are written.
pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls_are_https_or_loopback_http() {
        let table: &[(&str, bool)] = &[
            ("https://token.actions.githubusercontent.com", true),
            ("https://gitlab.example.com/", true),
            ("https://ghe.example.com/_services/token", true),
            ("http://127.0.0.1:8080", true),
            ("http://[::1]:8080/issuer", true),
            ("http://localhost:1", true),
            ("http://gitlab.example.com", false),
            ("http://10.0.0.1", false),
            ("ftp://example.com", false),
            ("https://", false),
            ("https://example.com?x=1", false),
            ("https://user@example.com", false),
            ("https://example.com/#f", false),
            ("https://exa mple.com", false),
            ("https://example.com:port", false),
        ];
        for (url, ok) in table {
            assert_eq!(IssuerUrl::parse(*url).is_ok(), *ok, "{url}");
        }
    }

    #[test]
    fn circleci_admits_only_org_issuers_under_its_base() {
        let circle = TrustedIssuer::circleci();
        let org = "https://oidc.circleci.com/org/0f3a7c1e-5b7d-4c1e-9a2b-3c4d5e6f7a8b";
        assert_eq!(circle.admit(org).map(|u| u.0), Some(org.to_owned()));
        for bad in [
            "https://oidc.circleci.com/org/",
            "https://oidc.circleci.com/org/not-a-uuid",
            "https://oidc.circleci.com/org/0f3a7c1e-5b7d-4c1e-9a2b-3c4d5e6f7a8b/x",
            "https://oidc.circleci.com.evil.example/org/0f3a7c1e-5b7d-4c1e-9a2b-3c4d5e6f7a8b",
            "https://oidc.circleci.com",
        ] {
            assert_eq!(circle.admit(bad), None, "{bad}");
        }
        let github = TrustedIssuer::github_actions();
        assert!(github.admit(GITHUB_ACTIONS_ISSUER).is_some());
        assert!(
            github
                .admit("https://token.actions.githubusercontent.com/")
                .is_none()
        );
    }
}
