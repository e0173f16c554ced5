//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: registry [--listen ADDR] [--data DIR | --memory] [--write-token-days N]
                [--max-write-token-days N] [--max-publish-mb N] [--header-timeout S]
                [--request-timeout S] [--max-connections N]
                [--max-connections-per-address N] [--trusted-proxy CIDR]...
                [--oidc-issuer PROVIDER[=URL]]... [--public-host HOST]
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
  --oidc-issuer PROVIDER[=URL]
                              trust this CI provider's ID tokens for trusted publishing
                              (npm trust): github (GitHub Actions on github.com), gitlab
                              (GitLab.com) or circleci (CircleCI's cloud), or
                              PROVIDER=URL for another issuer of that provider (GitHub
                              Enterprise Server, a self-managed GitLab, CircleCI server).
                              One issuer per provider; none by default (trusted
                              publishing is off)
  --public-host HOST          the host name npm reaches this registry by (the host of
                              its registry URL): ID tokens must name the audience
                              npm:HOST (default: the --listen address's IP, when it is
                              not 0.0.0.0 or [::])
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

/// One `--oidc-issuer`: `github`, `gitlab`, `circleci`, or `PROVIDER=URL`.
fn oidc_issuer(text: &str) -> Result<tokengate::oidc::TrustedIssuer, String> {
    use tokengate::oidc::{IssuerUrl, Provider, TrustedIssuer};
    let (provider, url) = match text.split_once('=') {
        Some((provider, url)) => (provider, Some(url)),
        None => (text, None),
    };
    let url = url
        .map(|url| {
            IssuerUrl::parse(url).map_err(|e| format!("--oidc-issuer {provider}={url}: {e}"))
        })
        .transpose()?;
    Ok(match (provider, url) {
        ("github", None) => TrustedIssuer::github_actions(),
        ("gitlab", None) => TrustedIssuer::gitlab_com(),
        ("circleci", None) => TrustedIssuer::circleci(),
        ("github", Some(url)) => TrustedIssuer::exact(Provider::GitHub, url),
        ("gitlab", Some(url)) => TrustedIssuer::exact(Provider::GitLab, url),
        ("circleci", Some(url)) => TrustedIssuer::circleci_at(url),
        (other, _) => {
            return Err(format!(
                "--oidc-issuer: {other:?} is not a CI provider this registry knows \
                 (github, gitlab or circleci, optionally =URL)"
            ));
        }
    })
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
    /// Trusted publishing: the CI issuers trusted, and the audience their ID tokens must
    /// name; `None` when no `--oidc-issuer` is given.
    pub trusted_publishing: Option<TrustedPublishing>,
    /// How long a staged release waits for approval before it is removed.
    pub stage_expiry: std::time::Duration,
}

/// `--oidc-issuer` and the audience from `--public-host`.
#[derive(Debug, PartialEq)]
pub struct TrustedPublishing {
    pub issuers: Vec<tokengate::oidc::TrustedIssuer>,
    /// `npm:<public host>`.
    pub audience: tokengate::oidc::Audience,
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
        let mut issuers: Vec<tokengate::oidc::TrustedIssuer> = Vec::new();
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
                    let issuer = oidc_issuer(&value("--oidc-issuer")?)?;
                    // A policy names a provider, not an issuer: with two issuers of one
                    // provider, a workflow on one could use the other's policies.
                    if issuers.iter().any(|i| i.provider() == issuer.provider()) {
                        return Err(format!(
                            "--oidc-issuer: {} is given twice; one issuer per provider",
                            issuer.provider().as_str()
                        ));
                    }
                    issuers.push(issuer);
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
        if host.is_some() && issuers.is_empty() {
            return Err(
                "--public-host is used by trusted publishing only: give an --oidc-issuer too"
                    .into(),
            );
        }
        let trusted_publishing = if issuers.is_empty() {
            None
        } else {
            let host = match host {
                Some(host) => host,
                None if listen.ip().is_unspecified() => {
                    return Err(format!(
                        "--oidc-issuer needs --public-host when listening on {}: the host \
                         name npm reaches the registry by is the ID tokens' audience",
                        listen.ip()
                    ));
                }
                None => match listen.ip() {
                    std::net::IpAddr::V4(ip) => ip.to_string(),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                },
            };
            let audience =
                tokengate::oidc::Audience::npm(&host).map_err(|e| format!("--public-host: {e}"))?;
            Some(TrustedPublishing { issuers, audience })
        };
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
