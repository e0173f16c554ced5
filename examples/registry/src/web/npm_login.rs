//! npm's browser login: `POST /-/v1/login` starts one, the person finishes it on the login
//! page, and npm collects a session of its own from `doneUrl`.
//!
//! npm prints only `loginUrl`, so whoever starts a login can send that link to someone
//! else, who logs in and hands the starter a session for their account: the remote
//! phishing that RFC 8628, section 5.4, describes for device flows. The protocol gives the
//! page nothing that only the terminal knows, so the page is bound to the terminal as far
//! as addresses and time allow:
//!
//! - a login waits [`TTL`] (five minutes) at most, and the page says so;
//! - the page says when and from which address the login was started, and asks the person
//!   to go on only if they ran `npm login` there themselves, just now;
//! - when the browser comes from another address than the terminal did (compared as the
//!   password limits compare them: an IPv4 address, an IPv6 client's /64), the page says so
//!   plainly, and the user name and password alone do not finish it: a separate box must be
//!   ticked that says "I ran npm login myself, at that address" (see [`Waiting::elsewhere`]).
//!
//! Why a confirmation and not a refusal: a terminal and a browser of the same person are
//! often at different addresses — `npm login` on a server over SSH with the link opened on
//! the laptop, npm in a container, VM or WSL behind its own NAT, Node on IPv4 while the
//! browser prefers IPv6, a VPN that carries only one of them. Refusing those would leave
//! them only the password prompt (`npm login --auth-type=legacy`). The box costs them one
//! click, and it stops the phishing that works by a victim logging in without reading: the
//! victim must now act on a warning that names the stranger's address.
//!
//! Anonymous callers cannot fill the table for everyone: each address (an IPv6 /64) may
//! have [`PER_ADDRESS`] logins waiting at once (429 past that, which npm answers with its
//! password prompt), so the table's [`MAX_WAITING`] is reached only by many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::http::header::{CACHE_CONTROL, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{Markup, html};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::layout::when;
use super::session::own_origin;
use super::{WebState, random_key};
use crate::error::ApiError;
use crate::query::KnownQuery;
use crate::state::ClientAddress;
use tokengate::ClientBucket;

/// How long a login waits for the person to finish it on the page.
pub const TTL: Duration = Duration::from_secs(5 * 60);
/// How long a finished login's session waits for npm to collect it (npm polls each second).
const PICK_UP: Duration = Duration::from_secs(60);
/// Logins waiting at once from one address (an IPv6 /64).
pub const PER_ADDRESS: usize = 5;
/// Logins waiting at once in all.
pub const MAX_WAITING: usize = 1_000;

/// The logins in progress, by the id in `loginUrl`.
#[derive(Default)]
pub struct NpmLogins(Mutex<HashMap<String, NpmLogin>>);

struct NpmLogin {
    /// The id in `doneUrl`, which only npm sees.
    done: String,
    /// The session token for npm, once the person has logged in on the page.
    token: Option<Zeroizing<String>>,
    /// Where `POST /-/v1/login` came from.
    from: Option<IpAddr>,
    /// When it came, for the page.
    started: SystemTime,
    /// When the login is gone: [`TTL`] after the start, or [`PICK_UP`] after the page.
    until: Instant,
}

/// A login waiting for the person, as the page shows it.
#[derive(Clone, Debug)]
pub struct Waiting {
    /// The address `npm login` ran at.
    pub from: Option<IpAddr>,
    pub started: SystemTime,
    /// How long until it expires.
    pub left: Duration,
}

impl Waiting {
    /// Whether a browser at `browser` is somewhere else than the terminal was, or either
    /// address is unknown: then the page's password alone does not finish the login.
    pub fn elsewhere(&self, browser: Option<IpAddr>) -> bool {
        match (self.from, browser) {
            (Some(from), Some(browser)) => ClientBucket::from(from) != ClientBucket::from(browser),
            _ => true,
        }
    }
}

/// What `doneUrl` answers. (No `Debug`: it may hold a token.)
pub enum Collected {
    Unknown,
    Waiting,
    Token(Zeroizing<String>),
}

impl NpmLogins {
    fn table(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, NpmLogin>>, ApiError> {
        self.0
            .lock()
            .map_err(|_| ApiError::internal("the login table", "poisoned"))
    }

    /// A new login from `from`: its `loginUrl` id and `doneUrl` id. Refused with 429 when
    /// `from` already has [`PER_ADDRESS`] waiting, 503 when [`MAX_WAITING`] are, each with
    /// `Retry-After` until a place frees.
    pub fn start(
        &self,
        from: Option<IpAddr>,
        now: Instant,
        started: SystemTime,
    ) -> Result<(String, String), ApiError> {
        let mut logins = self.table()?;
        logins.retain(|_, login| login.until > now);
        // When each of this address's logins ends.
        let bucket = from.map(ClientBucket::from);
        let theirs: Vec<Instant> = logins
            .values()
            .filter(|login| login.from.map(ClientBucket::from) == bucket)
            .map(|login| login.until)
            .collect();
        if theirs.len() >= PER_ADDRESS {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many npm logins are waiting from your address (at most {PER_ADDRESS}, \
                     each for {} minutes): finish one in the browser or wait for it to expire",
                    TTL.as_secs() / 60
                ),
            );
            error.retry_after(seconds_until(theirs.iter().min().copied(), now));
            return Err(error);
        }
        if logins.len() >= MAX_WAITING {
            let first_free = logins.values().map(|login| login.until).min();
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many npm logins are in progress; try again shortly",
            );
            error.retry_after(seconds_until(first_free, now));
            return Err(error);
        }
        let (login, done) = (random_key()?, random_key()?);
        logins.insert(
            login.clone(),
            NpmLogin {
                done: done.clone(),
                token: None,
                from,
                started,
                until: now + TTL,
            },
        );
        Ok((login, done))
    }

    /// The login with this `loginUrl` id, while it waits for the page.
    pub fn waiting(&self, id: &str, now: Instant) -> Result<Option<Waiting>, ApiError> {
        let logins = self.table()?;
        Ok(logins
            .get(id)
            .filter(|login| login.token.is_none() && login.until > now)
            .map(|login| Waiting {
                from: login.from,
                started: login.started,
                left: login.until - now,
            }))
    }

    /// Hands `token` to the login that waits under `id`, for npm to collect; `false` (and
    /// the token is not kept) when it no longer waits.
    pub fn finish(
        &self,
        id: &str,
        token: Zeroizing<String>,
        now: Instant,
    ) -> Result<bool, ApiError> {
        let mut logins = self.table()?;
        match logins.get_mut(id) {
            Some(login) if login.token.is_none() && login.until > now => {
                login.token = Some(token);
                login.until = now + PICK_UP;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// What npm polling `doneUrl` gets: the token once, when there is one.
    pub fn collect(&self, done: &str, now: Instant) -> Result<Collected, ApiError> {
        let mut logins = self.table()?;
        let found = logins
            .iter()
            .find(|(_, login)| login.done == done && login.until > now)
            .map(|(key, login)| (key.clone(), login.token.is_some()));
        Ok(match found {
            None => Collected::Unknown,
            Some((_, false)) => Collected::Waiting,
            Some((key, true)) => match logins.remove(&key).and_then(|login| login.token) {
                Some(token) => Collected::Token(token),
                None => Collected::Unknown,
            },
        })
    }
}

/// `Retry-After` for a place that frees at `at` (now, if unknown), in whole seconds.
fn seconds_until(at: Option<Instant>, now: Instant) -> HeaderValue {
    let wait = at.map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
    HeaderValue::from((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
}

// ---------------------------------------------------------------------------------------
// What the login page says

/// "3 minutes", "40 seconds": a span of time, rounded for a person.
fn span(time: Duration) -> String {
    let seconds = time.as_secs();
    match seconds {
        0..=1 => "a second".into(),
        2..=89 => format!("{seconds} seconds"),
        _ => format!("{} minutes", (seconds + 30) / 60),
    }
}

fn address(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "an unknown address".into(), |ip| ip.to_string())
}

/// The part of the login form that binds it to the terminal: when and where `npm login`
/// ran, how long the login waits, and — when this browser is somewhere else — a warning
/// and the box that must be ticked.
pub fn panel(
    waiting: &Waiting,
    browser: Option<IpAddr>,
    confirmed: bool,
    error: Option<&str>,
) -> Markup {
    let ago = SystemTime::now()
        .duration_since(waiting.started)
        .unwrap_or_default();
    let from = address(waiting.from);
    html! {
        p #npm-started {
            "This login was started by " code { "npm login" } " from " strong #npm-from { (from) }
            // As every page shows a time: in the reader's own zone, the exact time on hover.
            " on " (when(Some(waiting.started), "")) ", " (span(ago)) " ago. "
            "This browser connects from " strong #npm-browser { (address(browser)) } "."
        }
        p #npm-expires {
            "npm logins wait " (TTL.as_secs() / 60) " minutes at most: this one expires in "
            (span(waiting.left)) "."
        }
        @if waiting.elsewhere(browser) {
            div.warning #npm-elsewhere role="alert" {
                p {
                    strong { "This login was started from another address than this browser's." }
                    " Whoever ran it receives a session for the account you log in with. If you "
                    "did not just run " code { "npm login" } " yourself at " (from)
                    ", someone may have sent you this link to get into your account: close this page."
                }
                div {
                    input #confirm_npm type="checkbox" name="confirm_npm" value="yes"
                        checked[confirmed] aria-describedby="confirm_npm-error";
                    " "
                    label for="confirm_npm" style="display:inline" {
                        "I ran " code { "npm login" } " myself, at " (from) ", in the last "
                        (TTL.as_secs() / 60) " minutes (for example over SSH)"
                    }
                }
                @if let Some(error) = error {
                    p.error #confirm_npm-error role="alert" { (error) }
                }
            }
        } @else {
            p {
                "Go on only if you ran " code { "npm login" } " yourself, just now: whoever ran "
                "it receives a session for the account you log in with."
            }
        }
    }
}

/// The refusal when the login was started elsewhere and the box was not ticked.
pub const NOT_CONFIRMED: &str = "this npm login was started from another address: tick the box \
     to confirm that you started it yourself, or close this page";

/// The refusal for a login that no longer waits.
pub const GONE: &str = "this npm login has expired or was already finished: run npm login again";

// ---------------------------------------------------------------------------------------
// npm's side

#[derive(Deserialize, Default)]
pub struct NpmLoginBody {
    #[serde(default)]
    create: bool,
}

/// `POST /-/v1/login`: where npm's browser login starts; answers `loginUrl` (the page the
/// user logs in on) and `doneUrl` (what npm polls for its token).
pub async fn start(
    Extension(web): Extension<Arc<WebState>>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Option<Json<NpmLoginBody>>,
) -> Result<Response, ApiError> {
    if body.is_some_and(|Json(body)| body.create) {
        // npm then falls back to the password prompt, which creates accounts.
        return Err(ApiError::not_found(
            "accounts are created with `npm adduser` at the password prompt, not on the web",
        ));
    }
    let origin = own_origin(&headers)
        .ok_or_else(|| ApiError::bad_request("the Host header is not a host name and port"))?;
    let (login, done) = web.npm.start(client, Instant::now(), SystemTime::now())?;
    Ok(Json(serde_json::json!({
        "loginUrl": format!("{origin}/-/web/login?npm={login}"),
        "doneUrl": format!("{origin}/-/v1/done?session={done}"),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneQuery {
    session: String,
}

/// `GET /-/v1/done?session=…`: 202 with `Retry-After` until the user has logged in, then
/// 200 with the token, once.
pub async fn done(
    Extension(web): Extension<Arc<WebState>>,
    KnownQuery(query): KnownQuery<DoneQuery>,
) -> Result<Response, ApiError> {
    let mut response = match web.npm.collect(&query.session, Instant::now())? {
        Collected::Unknown => {
            return Err(ApiError::not_found(
                "this login is unknown or has expired: run npm login again",
            ));
        }
        Collected::Waiting => {
            let mut response = (StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Collected::Token(token) => {
            Json(serde_json::json!({ "token": token.as_str() })).into_response()
        }
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_login_waits_five_minutes_for_the_page() {
        let logins = NpmLogins::default();
        let now = Instant::now();
        let (id, done) = logins
            .start(ip("192.0.2.1"), now, SystemTime::now())
            .unwrap();
        let almost = now + TTL - Duration::from_millis(1);
        let waiting = logins.waiting(&id, almost).unwrap().expect("still waiting");
        assert_eq!(waiting.left, Duration::from_millis(1));
        assert!(logins.waiting(&id, now + TTL).unwrap().is_none());
        assert!(matches!(
            logins.collect(&done, now + TTL).unwrap(),
            Collected::Unknown
        ));
        let token = Zeroizing::new("npm_x".to_owned());
        assert!(
            !logins.finish(&id, token, now + TTL).unwrap(),
            "finished once expired"
        );
    }

    #[test]
    fn a_finished_login_waits_a_minute_for_npm_and_is_collected_once() {
        let logins = NpmLogins::default();
        let now = Instant::now();
        let (id, done) = logins
            .start(ip("192.0.2.1"), now, SystemTime::now())
            .unwrap();
        let at = now + TTL - Duration::from_secs(1);
        assert!(
            logins
                .finish(&id, Zeroizing::new("npm_x".into()), at)
                .unwrap()
        );
        assert!(
            logins.waiting(&id, at).unwrap().is_none(),
            "no second finish"
        );
        let late = at + PICK_UP;
        assert!(matches!(
            logins.collect(&done, late).unwrap(),
            Collected::Unknown
        ));

        let (id, done) = logins
            .start(ip("192.0.2.1"), now, SystemTime::now())
            .unwrap();
        assert!(
            logins
                .finish(&id, Zeroizing::new("npm_y".into()), now)
                .unwrap()
        );
        match logins
            .collect(&done, now + PICK_UP - Duration::from_secs(1))
            .unwrap()
        {
            Collected::Token(token) => assert_eq!(token.as_str(), "npm_y"),
            _ => panic!("the finished login's token was not collected"),
        }
        assert!(matches!(
            logins.collect(&done, now).unwrap(),
            Collected::Unknown
        ));
    }

    #[test]
    fn an_address_has_five_logins_waiting_and_another_its_own() {
        let logins = NpmLogins::default();
        let now = Instant::now();
        for _ in 0..PER_ADDRESS {
            logins
                .start(ip("2001:db8::1"), now, SystemTime::now())
                .unwrap();
        }
        // The same /64 is the same client.
        let refused = logins
            .start(
                ip("2001:db8::2"),
                now + Duration::from_secs(60),
                SystemTime::now(),
            )
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused.message().contains("at most 5"),
            "{}",
            refused.message()
        );
        assert!(
            logins
                .start(ip("2001:db8:0:1::1"), now, SystemTime::now())
                .is_ok()
        );
        // Once the first expire, the address may start again.
        assert!(
            logins
                .start(ip("2001:db8::1"), now + TTL, SystemTime::now())
                .is_ok()
        );
    }

    #[test]
    fn a_browser_elsewhere_is_told_apart_by_network() {
        struct Case {
            what: &'static str,
            npm: Option<IpAddr>,
            browser: Option<IpAddr>,
            elsewhere: bool,
        }
        let cases = [
            Case {
                what: "the same IPv4 address",
                npm: ip("192.0.2.1"),
                browser: ip("192.0.2.1"),
                elsewhere: false,
            },
            Case {
                what: "another IPv4 address",
                npm: ip("192.0.2.1"),
                browser: ip("192.0.2.2"),
                elsewhere: true,
            },
            Case {
                what: "one IPv6 /64",
                npm: ip("2001:db8::1"),
                browser: ip("2001:db8::ffff:2"),
                elsewhere: false,
            },
            Case {
                what: "another IPv6 /64",
                npm: ip("2001:db8::1"),
                browser: ip("2001:db8:0:1::1"),
                elsewhere: true,
            },
            Case {
                what: "IPv4 and its mapped form",
                npm: ip("192.0.2.1"),
                browser: ip("::ffff:192.0.2.1"),
                elsewhere: false,
            },
            Case {
                what: "an unknown terminal",
                npm: None,
                browser: ip("192.0.2.1"),
                elsewhere: true,
            },
            Case {
                what: "an unknown browser",
                npm: ip("192.0.2.1"),
                browser: None,
                elsewhere: true,
            },
        ];
        for case in cases {
            let waiting = Waiting {
                from: case.npm,
                started: SystemTime::now(),
                left: TTL,
            };
            assert_eq!(
                waiting.elsewhere(case.browser),
                case.elsewhere,
                "{}",
                case.what
            );
        }
    }
}
