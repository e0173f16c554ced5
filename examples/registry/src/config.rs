//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: registry [--listen ADDR] [--data DIR | --memory] [--database URL]
                [--write-token-days N]
                [--max-write-token-days N] [--max-publish-mb N] [--header-timeout S]
                [--request-timeout S] [--max-connections N]
                [--max-connections-per-address N] [--trusted-proxy CIDR]...
                [--oidc-issuer PROVIDER=URL|PROVIDER=off|none]... [--public-host HOST]
                [--stage-expiry-seconds N]

  --listen ADDR               address to listen on (default 127.0.0.1:4873)
  --data DIR                  where tokens (SQLite) and packages are kept
                              (default ./registry-data)
  --memory                    keep nothing on disk
  --database URL              (built with --features postgres) keep users, packages
                              and tokens in PostgreSQL
                              (postgres://user@host/db) instead of SQLite files;
                              tarballs, secret.key and audit.log stay in --data. Several
                              registries on one database and one shared --data folder
                              serve as one
  --write-token-days N        lifetime of a token that can publish, when `npm token
                              create` gives no --expires (default 7, as npm)
  --max-write-token-days N    longest lifetime of a token that can publish (default 90,
                              as npm; 0 for no limit)
  --max-publish-mb N          largest publish accepted, in MiB (default 64); a bigger
                              one is refused with 413 before it is read
  --stage-expiry-seconds N    a staged release (npm stage publish) not approved or
                              rejected within this is removed (default 604800: 7 days)
  --header-timeout SECONDS    a request's head must arrive within this (default 10)
  --request-timeout SECONDS   a request, body included, is answered 408 past this
                              (default 120)
  --max-connections N         connections served at once; more are closed (default 1024)
  --max-connections-per-address N
                              connections served at once from one client address (an
                              IPv6 client's /64); more from it are closed (default 64, or
                              --max-connections if smaller). A --trusted-proxy's own
                              connections count against the total only
  --trusted-proxy CIDR        a reverse proxy whose X-Forwarded-For is believed (repeat
                              for several). Name the proxies' own addresses only: every
                              host in a trusted range can claim to be any client and so
                              pass any token's IP allow-list
  --oidc-issuer PROVIDER=URL|PROVIDER=off|none
                              whose CI ID tokens trusted publishing (npm trust) accepts.
                              Built in: GitHub Actions on github.com, GitLab.com and
                              CircleCI's cloud. github=URL, gitlab=URL or circleci=URL
                              trusts another issuer of that provider instead (GitHub
                              Enterprise Server, a self-managed GitLab, CircleCI
                              server); PROVIDER=off trusts none of its; none turns
                              trusted publishing off. One per provider
  --public-host HOST          the host name npm reaches this registry by (the host of
                              its registry URL): ID tokens must name the audience
                              npm:HOST (default: the --listen address's IP; listening
                              on 0.0.0.0 or [::] without it, trusted publishing is off)
  --help                      this text";

/// Connections from one address when `--max-connections-per-address` is not given (at most
/// `--max-connections`).
const DEFAULT_PER_ADDRESS: usize = 64;

/// A whole number of seconds from 1 to 3600.
fn seconds(flag: &str, text: &str) -> Result<std::time::Duration, String> {
    text.parse::<u64>()
        .ok()
        .filter(|s| (1..=3600).contains(s))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{flag}: {text:?} is not a number of seconds from 1 to 3600"))
}

/// A whole number of days, at most ten years.
fn days(flag: &str, text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|days| *days <= 3650)
        .ok_or_else(|| format!("{flag}: {text:?} is not a number of days from 0 to 3650"))
}

/// The CI providers whose ID tokens are trusted when no `--oidc-issuer` says otherwise:
/// GitHub Actions on github.com, GitLab.com and CircleCI's cloud, as on npm.
fn built_in_issuers() -> Vec<tokengate::oidc::TrustedIssuer> {
    use tokengate::oidc::TrustedIssuer;
    vec![
        TrustedIssuer::github_actions(),
        TrustedIssuer::gitlab_com(),
        TrustedIssuer::circleci(),
    ]
}

/// What one `--oidc-issuer` asks for.
#[derive(Debug)]
enum IssuerChange {
    /// `PROVIDER=URL`: trust this issuer for the provider instead of the built-in one.
    Replace(tokengate::oidc::TrustedIssuer),
    /// `PROVIDER=off`: trust no issuer of the provider.
    Stop(tokengate::oidc::Provider),
    /// `none`: trusted publishing off.
    Nothing,
}

impl IssuerChange {
    fn provider(&self) -> Option<tokengate::oidc::Provider> {
        match self {
            Self::Replace(issuer) => Some(issuer.provider()),
            Self::Stop(provider) => Some(*provider),
            Self::Nothing => None,
        }
    }

    /// Refuses a second word on one provider: a policy names a provider, not an issuer,
    /// so with two issuers of one provider a workflow on one could use the other's
    /// policies.
    fn fits_with(&self, earlier: &[IssuerChange]) -> Result<(), String> {
        let none = |c: &IssuerChange| matches!(c, IssuerChange::Nothing);
        if (none(self) && !earlier.is_empty()) || earlier.iter().any(none) {
            return Err("--oidc-issuer none cannot be used with another --oidc-issuer".into());
        }
        match self.provider() {
            Some(provider) if earlier.iter().any(|e| e.provider() == Some(provider)) => {
                Err(format!(
                    "--oidc-issuer: {} is given twice; one issuer per provider",
                    provider.as_str()
                ))
            }
            _ => Ok(()),
        }
    }
}

/// One `--oidc-issuer`: `PROVIDER=URL`, `PROVIDER=off` or `none`.
fn oidc_issuer(text: &str) -> Result<IssuerChange, String> {
    use tokengate::oidc::{IssuerUrl, Provider, TrustedIssuer};
    if text == "none" {
        return Ok(IssuerChange::Nothing);
    }
    let (name, url) = text.split_once('=').unwrap_or((text, ""));
    let provider = match name {
        "github" => Provider::GitHub,
        "gitlab" => Provider::GitLab,
        "circleci" => Provider::CircleCi,
        other => {
            return Err(format!(
                "--oidc-issuer: {other:?} is not a CI provider this registry knows \
                 (github, gitlab or circleci, as PROVIDER=URL or PROVIDER=off; or none)"
            ));
        }
    };
    // A bare provider once meant "trust only this one"; now all three are built in, so
    // say what to write rather than guess which of the two the operator meant.
    if url.is_empty() {
        return Err(format!(
            "--oidc-issuer {name}: {name}'s cloud issuer is trusted already; give \
             {name}=URL to trust another issuer instead, {name}=off to trust none of \
             {name}'s, or none to turn trusted publishing off"
        ));
    }
    if url == "off" {
        return Ok(IssuerChange::Stop(provider));
    }
    let url = IssuerUrl::parse(url).map_err(|e| format!("--oidc-issuer {name}={url}: {e}"))?;
    Ok(IssuerChange::Replace(match provider {
        Provider::CircleCi => TrustedIssuer::circleci_at(url),
        provider => TrustedIssuer::exact(provider, url),
    }))
}

/// `--public-host`: a DNS name or an IP address, as the host of a URL.
fn public_host(text: &str) -> Result<String, String> {
    let name = text.strip_prefix('[').and_then(|v6| v6.strip_suffix(']'));
    let ok = match name {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            (1..=253).contains(&text.len())
                && text.split('.').all(|label| {
                    (1..=63).contains(&label.len())
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
    };
    if ok {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "--public-host: {text:?} is not a host name (registry.example.com, 10.0.0.5 or \
             [::1]; no scheme, port or path)"
        ))
    }
}

/// Trusted publishing from `--oidc-issuer` and `--public-host`: the built-in issuers
/// with the changes applied, and the audience. Off with `--oidc-issuer none`, and off
/// (with the reason for main to print) when the registry listens on every address and no
/// `--public-host` says which name npm reaches it by, unless an issuer was named: then
/// that is an error, because the operator asked for it.
fn trusted_publishing(
    listen: SocketAddr,
    host: Option<String>,
    changes: Vec<IssuerChange>,
) -> Result<TrustedPublishingSetting, String> {
    let mut issuers = built_in_issuers();
    let asked = !changes.is_empty();
    for change in changes {
        match change {
            IssuerChange::Nothing => issuers.clear(),
            IssuerChange::Stop(provider) => issuers.retain(|i| i.provider() != provider),
            IssuerChange::Replace(issuer) => {
                issuers.retain(|i| i.provider() != issuer.provider());
                issuers.push(issuer);
            }
        }
    }
    if issuers.is_empty() {
        if host.is_some() {
            return Err(
                "--public-host is used by trusted publishing only, which --oidc-issuer \
                 turned off"
                    .into(),
            );
        }
        return Ok(TrustedPublishingSetting::Off(TrustedPublishingOff::ByFlag));
    }
    let host = match host {
        Some(host) => host,
        None if listen.ip().is_unspecified() && asked => {
            return Err(format!(
                "--oidc-issuer needs --public-host when listening on {}: the host name npm \
                 reaches the registry by is the ID tokens' audience",
                listen.ip()
            ));
        }
        None if listen.ip().is_unspecified() => {
            return Ok(TrustedPublishingSetting::Off(
                TrustedPublishingOff::NoPublicHost,
            ));
        }
        None => match listen.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        },
    };
    let audience =
        tokengate::oidc::Audience::npm(&host).map_err(|e| format!("--public-host: {e}"))?;
    Ok(TrustedPublishingSetting::On(TrustedPublishing {
        issuers,
        audience,
        asked,
    }))
}

/// A PostgreSQL connection URL; its `Debug` does not show it (it may hold a password).
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    fn parse(text: &str) -> Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self(text.to_owned()))
        } else {
            Err(
                "--database: only PostgreSQL is supported, as a URL postgres://user@host/database"
                    .into(),
            )
        }
    }

    #[cfg(feature = "postgres")]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

#[derive(Debug, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None` with `--memory`.
    pub data: Option<PathBuf>,
    /// `--database`: PostgreSQL in place of the SQLite files.
    pub database: Option<DatabaseUrl>,
    /// Days a write token lives without `--expires`.
    pub write_token_days: u32,
    /// Most days a write token may live; `None` for no limit.
    pub max_write_token_days: Option<u32>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: tokengate::TrustedProxies,
    /// Largest publish body, in bytes (the tarball travels base64-encoded inside JSON).
    pub max_publish_bytes: usize,
    /// Timeouts and the connection limit.
    pub limits: crate::server::Limits,
    /// Trusted publishing: on, with the CI issuers trusted and the audience their ID
    /// tokens must name, or off and why.
    pub trusted_publishing: TrustedPublishingSetting,
    /// How long a staged release waits for approval before it is removed.
    pub stage_expiry: std::time::Duration,
}

/// Whether the registry exchanges CI ID tokens, and if not, why not.
#[derive(Debug, PartialEq)]
pub enum TrustedPublishingSetting {
    /// On, with these issuers and this audience.
    On(TrustedPublishing),
    /// Off.
    Off(TrustedPublishingOff),
}

/// Why trusted publishing is off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrustedPublishingOff {
    /// `--oidc-issuer none`, or every provider turned off.
    ByFlag,
    /// Listening on every address with no `--public-host`: the audience is unknown.
    NoPublicHost,
    /// The machine has no root certificates, so providers' keys cannot be fetched.
    NoHttps,
}

impl TrustedPublishingOff {
    /// What to tell a CI job (and the operator) about it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ByFlag => {
                "trusted publishing is turned off on this registry (--oidc-issuer none)"
            }
            Self::NoPublicHost => {
                "trusted publishing is off on this registry: it listens on every address \
                 and its operator has not said, with --public-host, which host name npm \
                 reaches it by (the ID tokens' audience)"
            }
            Self::NoHttps => {
                "trusted publishing is off on this registry: it found no root certificates \
                 to fetch CI providers' keys over HTTPS with"
            }
        }
    }
}

/// `--oidc-issuer` and the audience from `--public-host`.
#[derive(Debug, PartialEq)]
pub struct TrustedPublishing {
    pub issuers: Vec<tokengate::oidc::TrustedIssuer>,
    /// `npm:<public host>`.
    pub audience: tokengate::oidc::Audience,
    /// Whether an `--oidc-issuer` asked for it (then failing to set it up is an error,
    /// not a reason to start without it).
    pub asked: bool,
}

impl Config {
    /// The configuration, `None` for `--help`, or what is wrong with the flags.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 4873));
        let mut data = Some(PathBuf::from("registry-data"));
        let (mut saw_data, mut saw_memory) = (false, false);
        let mut database = None;
        let mut write_token_days = 7;
        let mut max_write_token_days = Some(90);
        let mut proxies = Vec::new();
        let mut max_publish_mb: usize = 64;
        let mut stage_expiry = crate::controllers::stage::DEFAULT_EXPIRY;
        let mut limits = crate::server::Limits {
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(120),
            max_connections: 1024,
            max_connections_per_address: 0,
        };
        let mut per_address = None;
        let mut issuer_changes: Vec<IssuerChange> = Vec::new();
        let mut host = None;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "--listen" => {
                    let text = value("--listen")?;
                    listen = text.parse().map_err(|_| {
                        format!("--listen: {text:?} is not an address like 127.0.0.1:4873")
                    })?;
                }
                "--data" => {
                    data = Some(PathBuf::from(value("--data")?));
                    saw_data = true;
                }
                "--database" => database = Some(DatabaseUrl::parse(&value("--database")?)?),
                "--memory" => {
                    data = None;
                    saw_memory = true;
                }
                "--write-token-days" => {
                    write_token_days = days("--write-token-days", &value("--write-token-days")?)?;
                    if write_token_days == 0 {
                        return Err("--write-token-days must be at least 1".into());
                    }
                }
                "--max-write-token-days" => {
                    let max = days("--max-write-token-days", &value("--max-write-token-days")?)?;
                    max_write_token_days = (max > 0).then_some(max);
                }
                "--trusted-proxy" => proxies.push(value("--trusted-proxy")?),
                "--header-timeout" => {
                    limits.header_timeout =
                        seconds("--header-timeout", &value("--header-timeout")?)?;
                }
                "--request-timeout" => {
                    limits.request_timeout =
                        seconds("--request-timeout", &value("--request-timeout")?)?;
                }
                "--max-connections" => {
                    let text = value("--max-connections")?;
                    limits.max_connections = text
                        .parse()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| {
                            format!("--max-connections: {text:?} is not 1 to 1000000")
                        })?;
                }
                "--max-connections-per-address" => {
                    let text = value("--max-connections-per-address")?;
                    per_address = Some(text.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(
                        || {
                            format!(
                                "--max-connections-per-address: {text:?} is not a number \
                                 from 1 to --max-connections"
                            )
                        },
                    )?);
                }
                "--max-publish-mb" => {
                    let text = value("--max-publish-mb")?;
                    max_publish_mb = text
                        .parse()
                        .ok()
                        .filter(|mb| (1..=1024).contains(mb))
                        .ok_or_else(|| format!("--max-publish-mb: {text:?} is not 1 to 1024"))?;
                }
                "--stage-expiry-seconds" => {
                    let text = value("--stage-expiry-seconds")?;
                    stage_expiry = text
                        .parse()
                        .ok()
                        .filter(|seconds| (1..=365 * 86_400).contains(seconds))
                        .map(std::time::Duration::from_secs)
                        .ok_or_else(|| {
                            format!(
                                "--stage-expiry-seconds: {text:?} is not 1 to 31536000 (a year)"
                            )
                        })?;
                }
                "--oidc-issuer" => {
                    let change = oidc_issuer(&value("--oidc-issuer")?)?;
                    change.fits_with(&issuer_changes)?;
                    issuer_changes.push(change);
                }
                "--public-host" => host = Some(public_host(&value("--public-host")?)?),
                "--help" | "-h" => return Ok(None),
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if saw_data && saw_memory {
            return Err("--data and --memory cannot be used together".into());
        }
        if database.is_some() && saw_memory {
            return Err(
                "--database and --memory cannot be used together: the tarballs need --data".into(),
            );
        }
        if let Some(max) = max_write_token_days {
            if write_token_days > max {
                return Err(format!(
                    "--write-token-days ({write_token_days}) is longer than \
                     --max-write-token-days ({max})"
                ));
            }
        }
        limits.max_connections_per_address = match per_address {
            // Enough for a browser and npm's parallel fetches, a small office behind one
            // address too, but never the whole of a small total.
            None => DEFAULT_PER_ADDRESS.min(limits.max_connections),
            Some(n) if n > limits.max_connections => {
                return Err(format!(
                    "--max-connections-per-address ({n}) is more than --max-connections ({})",
                    limits.max_connections
                ));
            }
            Some(n) => n,
        };
        let trusted_publishing = trusted_publishing(listen, host, issuer_changes)?;
        let trusted_proxies = tokengate::TrustedProxies::parse(&proxies)
            .map_err(|e| format!("--trusted-proxy: {e}"))?;
        Ok(Some(Self {
            listen,
            data,
            database,
            write_token_days,
            max_write_token_days,
            trusted_proxies,
            max_publish_bytes: max_publish_mb * 1024 * 1024,
            limits,
            trusted_publishing,
            stage_expiry,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Config, String> {
        Config::from_args(flags.iter().map(|f| f.to_string())).map(|c| c.expect("not --help"))
    }

    /// The issuer URLs trusted, by provider name, or the reason trusted publishing is off.
    fn trusted(flags: &[&str]) -> Result<Vec<(String, String)>, String> {
        match parse(flags)?.trusted_publishing {
            TrustedPublishingSetting::On(on) => Ok(on
                .issuers
                .iter()
                .map(|i| (i.provider().as_str().to_owned(), i.url().to_string()))
                .collect()),
            TrustedPublishingSetting::Off(off) => Err(off.reason().to_owned()),
        }
    }

    struct Case {
        what: &'static str,
        flags: &'static [&'static str],
        /// Providers trusted (in order), or a phrase of the error or off reason.
        expect: Result<&'static [&'static str], &'static str>,
    }

    #[test]
    fn the_cloud_issuers_are_built_in_and_each_flag_changes_one() {
        let cases = [
            Case {
                what: "no flag: the three cloud providers",
                flags: &[],
                expect: Ok(&["github", "gitlab", "circleci"]),
            },
            Case {
                what: "one replaced, the others kept",
                flags: &["--oidc-issuer", "gitlab=https://gitlab.acme.test"],
                expect: Ok(&["github", "circleci", "gitlab"]),
            },
            Case {
                what: "one turned off",
                flags: &["--oidc-issuer", "circleci=off"],
                expect: Ok(&["github", "gitlab"]),
            },
            Case {
                what: "none: off",
                flags: &["--oidc-issuer", "none"],
                expect: Err("turned off"),
            },
            Case {
                what: "all three off: off",
                flags: &[
                    "--oidc-issuer",
                    "github=off",
                    "--oidc-issuer",
                    "gitlab=off",
                    "--oidc-issuer",
                    "circleci=off",
                ],
                expect: Err("turned off"),
            },
            Case {
                what: "a bare provider is refused, not taken as 'only this one'",
                flags: &["--oidc-issuer", "github"],
                expect: Err("give github=URL"),
            },
            Case {
                what: "two words on one provider",
                flags: &[
                    "--oidc-issuer",
                    "github=off",
                    "--oidc-issuer",
                    "github=https://ghe.test",
                ],
                expect: Err("github is given twice"),
            },
            Case {
                what: "none beside another",
                flags: &["--oidc-issuer", "gitlab=off", "--oidc-issuer", "none"],
                expect: Err("none cannot be used with another"),
            },
            Case {
                what: "an unknown provider",
                flags: &["--oidc-issuer", "jenkins=https://ci.test"],
                expect: Err("\"jenkins\" is not a CI provider"),
            },
            Case {
                what: "every address and no --public-host: off, and says why",
                flags: &["--listen", "0.0.0.0:4873"],
                expect: Err("--public-host"),
            },
            Case {
                what: "every address, an issuer asked for, no --public-host: an error",
                flags: &[
                    "--listen",
                    "0.0.0.0:4873",
                    "--oidc-issuer",
                    "github=https://ghe.test",
                ],
                expect: Err("needs --public-host"),
            },
            Case {
                what: "--public-host with trusted publishing off",
                flags: &["--oidc-issuer", "none", "--public-host", "registry.test"],
                expect: Err("used by trusted publishing only"),
            },
        ];
        for case in cases {
            let got = trusted(case.flags);
            match (case.expect, &got) {
                (Ok(providers), Ok(issuers)) => {
                    let names: Vec<&str> = issuers.iter().map(|(p, _)| p.as_str()).collect();
                    assert_eq!(names, providers, "{}", case.what);
                }
                (Err(phrase), Err(message)) => {
                    assert!(message.contains(phrase), "{}: {message}", case.what)
                }
                (expect, got) => panic!("{}: expected {expect:?}, got {got:?}", case.what),
            }
        }
    }

    #[test]
    fn the_audience_is_the_public_host_or_the_listen_ip() {
        let audience = |flags: &[&str]| match parse(flags).unwrap().trusted_publishing {
            TrustedPublishingSetting::On(on) => on.audience.as_str().to_owned(),
            off => panic!("{off:?}"),
        };
        assert_eq!(audience(&[]), "npm:127.0.0.1");
        assert_eq!(
            audience(&[
                "--listen",
                "0.0.0.0:80",
                "--public-host",
                "Registry.Example.com"
            ]),
            "npm:registry.example.com"
        );
    }
}
