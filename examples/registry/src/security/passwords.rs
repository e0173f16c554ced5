//! Password checks that cost the guesser, not the registry or the account's owner: Argon2
//! runs outside every lock, a few at a time, and failures are counted per account and
//! address, per address, and per account.
//!
//! - An address that keeps failing for one account, or across accounts, is told to wait
//!   (429): that stops a guesser without touching anyone else.
//! - An account that keeps failing from many addresses is slowed down, not locked: past
//!   [`ACCOUNT_SLOWDOWN_AFTER`] failures every check from an address that has not logged
//!   in to it lately waits first, and only past [`ACCOUNT_CEILING`] (NIST SP 800-63B's
//!   100) are such checks refused. An address that logged in to the account lately, and a
//!   request that carries one of the account's own valid tokens, are never held to the
//!   account-wide count, so strangers cannot lock the owner out.
//! - Checks in flight count against the limits (guesses sent at once cannot all pass a
//!   limit before any has failed), but a right password is never counted: a check that
//!   would pass a limit only because of others in flight waits for them to end.
//! - An unknown user's check hashes against a dummy, so that it takes as long as a known
//!   user's and answers the same.
//! - Argon2's working memory (19 MiB a check) is kept in a pool of [`AT_ONCE`] buffers
//!   and reused ([`argon_pool`]), so that checks do not grow the process.

mod argon_pool;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, SaltString};
use axum::http::{HeaderValue, StatusCode};
use moka::sync::Cache;
use tokengate::ClientBucket;
use tokio::sync::{Notify, Semaphore};
use zeroize::Zeroizing;

use crate::db::User;
use crate::error::ApiError;
use argon_pool::ArgonPool;

/// How long failures are remembered, and so how long a locked-out caller waits at most.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords one address (an IPv6 /64) may send for one account in a window.
const PER_ACCOUNT_AND_ADDRESS: u32 = 10;
/// Wrong passwords one address may send in a window, across accounts.
const PER_ADDRESS: u32 = 30;
/// Wrong passwords for one account, from anywhere, before its checks are slowed down.
pub const ACCOUNT_SLOWDOWN_AFTER: u32 = 10;
/// How long a slowed-down check waits per [`ACCOUNT_SLOWDOWN_AFTER`] failures, and in
/// how many steps at most (eight seconds).
const SLOWDOWN_STEP: Duration = Duration::from_secs(1);
const SLOWDOWN_MAX_STEPS: u32 = 8;
/// Wrong passwords for one account, from anywhere, past which only the addresses and
/// tokens it knows may still try.
pub const ACCOUNT_CEILING: u32 = 100;
/// How long an address that logged in to an account is remembered as the account's.
const KNOWN_ADDRESS_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Argon2 checks running at once; more wait their turn without holding anything else.
/// As many buffers of Argon2 memory are kept, so at most this many times 19 MiB.
const AT_ONCE: usize = 4;
/// Longest a check waits for others in flight to end before it is refused.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(30);

/// What a request proves about the account besides the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Nothing: a login, or a change made without a token of the account.
    Stranger,
    /// It carries one of the account's own valid tokens (a change to the account's tokens
    /// or profile): past the account-wide count, whoever else is guessing.
    HoldsToken,
}

pub struct PasswordGuard {
    running: Semaphore,
    /// Argon2's memory, one buffer per turn of `running`.
    argon: Arc<ArgonPool>,
    by_account_and_address: Cache<(String, ClientBucket), Arc<Count>>,
    by_address: Cache<ClientBucket, Arc<Count>>,
    by_account: Cache<String, Arc<Count>>,
    /// Addresses that logged in to an account lately.
    known: Cache<(String, ClientBucket), ()>,
    slowdown_step: Duration,
}

impl Default for PasswordGuard {
    fn default() -> Self {
        Self {
            running: Semaphore::new(AT_ONCE),
            argon: Arc::new(ArgonPool::new(AT_ONCE)),
            by_account_and_address: failures(),
            by_address: failures(),
            by_account: failures(),
            known: windowed(KNOWN_ADDRESS_FOR),
            slowdown_step: SLOWDOWN_STEP,
        }
    }
}

/// Failure counts that forget after [`WINDOW`], for at most 100,000 keys.
fn failures<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, Arc<Count>> {
    windowed(WINDOW)
}

/// A map of at most 100,000 entries, each forgotten `window` after it was written: what
/// every count of failures here and in `tfa`, and the known addresses, are kept in.
pub fn windowed<K, V>(window: Duration) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(window)
        .build()
}

/// Wrong passwords counted against one key, and checks in flight against it.
#[derive(Default)]
struct Count {
    failed: AtomicU32,
    in_flight: AtomicU32,
    /// Told when a check in flight ends.
    settled: Notify,
}

impl Count {
    /// Holds a place for one check under `limit`: `Err` when the failures alone reach it;
    /// waits while failures and checks in flight together do.
    async fn reserve(self: &Arc<Self>, limit: u32, what: &str) -> Result<Place, ApiError> {
        let waited = tokio::time::timeout(IN_FLIGHT_WAIT, async {
            loop {
                let settled = self.settled.notified();
                if self.failed.load(Ordering::Relaxed) >= limit {
                    return Err(too_many_wrong(what));
                }
                let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
                if self.failed.load(Ordering::Relaxed) + before < limit {
                    return Ok(Place {
                        count: Arc::clone(self),
                        wrong: false,
                    });
                }
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                settled.await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| Err(too_many_wrong(what)))
    }
}

/// One check's place in a [`Count`]: given back when the check ends, as a failure only if
/// the password was wrong (not for a right one, a refusal, an error, or a request
/// dropped half-way).
struct Place {
    count: Arc<Count>,
    wrong: bool,
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.wrong {
            self.count.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.count.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.count.settled.notify_waiters();
    }
}

impl PasswordGuard {
    /// Whether `password` is `user`'s (`None`: no such user, checked against a dummy so
    /// that it takes as long). Refused with 429 before any hashing when this address has
    /// failed too often, for the account or in all; slowed down, and past the ceiling
    /// refused, when the account has failed too often from everywhere, unless `client`
    /// logged in to it lately or `standing` shows a token of the account. Never call it
    /// holding the registry's write lock.
    pub async fn check(
        &self,
        name: &str,
        user: Option<&User>,
        password: &str,
        client: Option<IpAddr>,
        standing: Standing,
    ) -> Result<bool, ApiError> {
        // An IPv4 address, or an IPv6 client's /64: one host usually holds a whole /64.
        let bucket = client.map(ClientBucket::from);
        let mut places = Vec::with_capacity(3);
        if let Some(bucket) = bucket {
            let pair = self
                .by_account_and_address
                .get_with((name.to_owned(), bucket), Default::default);
            places.push(pair.reserve(PER_ACCOUNT_AND_ADDRESS, "passwords").await?);
            let address = self.by_address.get_with(bucket, Default::default);
            places.push(address.reserve(PER_ADDRESS, "passwords").await?);
        }
        let account = self.by_account.get_with(name.to_owned(), Default::default);
        let known =
            bucket.is_some_and(|bucket| self.known.contains_key(&(name.to_owned(), bucket)));
        let held_to_account = standing == Standing::Stranger && !known;
        if held_to_account {
            let place = account
                .reserve(ACCOUNT_CEILING, "passwords for this account")
                .await?;
            let pressure = account.failed.load(Ordering::Relaxed)
                + account.in_flight.load(Ordering::Relaxed).saturating_sub(1);
            places.push(place);
            if pressure >= ACCOUNT_SLOWDOWN_AFTER {
                tokio::time::sleep(slowdown(pressure, self.slowdown_step)).await;
            }
        }
        let right = {
            let _turn = self
                .running
                .acquire()
                .await
                .map_err(|e| ApiError::internal("password check failed", e))?;
            let hash = match user {
                Some(user) => user.password_hash.clone(),
                None => dummy_hash(&self.argon).await?,
            };
            verify(&self.argon, hash, Zeroizing::new(password.to_owned())).await? && user.is_some()
        };
        if right {
            if let Some(bucket) = bucket {
                self.known.insert((name.to_owned(), bucket), ());
            }
        } else {
            if !held_to_account {
                account.failed.fetch_add(1, Ordering::Relaxed);
            }
            for place in &mut places {
                place.wrong = true;
            }
        }
        Ok(right)
    }

    /// The Argon2 hash of a new password, computed in turn with the checks.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|e| ApiError::internal("password hashing failed", e))?;
        hash_new(&self.argon, Zeroizing::new(password.to_owned())).await
    }
}

/// How long a stranger's check waits once the account has `failed` wrong passwords (and
/// checks in flight) from everywhere: a `step` per ten, at most eight steps.
fn slowdown(failed: u32, step: Duration) -> Duration {
    let steps = (failed / ACCOUNT_SLOWDOWN_AFTER).clamp(1, SLOWDOWN_MAX_STEPS);
    step * steps
}

/// A standard PHC string, as `Argon2::default().hash_password` writes it, computed in
/// the pool's memory.
async fn hash_new(argon: &Arc<ArgonPool>, password: Zeroizing<String>) -> Result<String, ApiError> {
    let argon = Arc::clone(argon);
    tokio::task::spawn_blocking(move || {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| e.to_string())?;
        let salt = SaltString::encode_b64(&random).map_err(|e| e.to_string())?;
        argon
            .hash(password.as_bytes(), salt.as_salt())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal("password hashing failed", e))?
    .map_err(|e| ApiError::internal("password hashing failed", e))
}

/// A hash of a random password nobody knows, made with the same parameters as users'
/// hashes, for checks of users who do not exist.
async fn dummy_hash(argon: &Arc<ArgonPool>) -> Result<String, ApiError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let mut random = [0u8; 32];
            getrandom::fill(&mut random)
                .map_err(|e| ApiError::internal("password check failed", e))?;
            let unknowable =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, random);
            hash_new(argon, Zeroizing::new(unknowable)).await
        })
        .await
        .cloned()
}

/// 429 for a caller who got `what` (passwords, one-time passwords) wrong too often: it may
/// try again once the [`WINDOW`] is over.
pub fn too_many_wrong(what: &str) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong {what}; wait a few minutes before trying again"),
    );
    error.retry_after(HeaderValue::from(WINDOW.as_secs()));
    error
}

/// Checked with the stored hash's own parameters, in the pool's memory, and compared in
/// constant time; hashing is deliberately slow, so it runs off the async workers. A hash
/// that cannot be checked (not a PHC string, not Argon2, parameters Argon2 refuses) is an
/// error, not a wrong password.
async fn verify(
    argon: &Arc<ArgonPool>,
    hash: String,
    password: Zeroizing<String>,
) -> Result<bool, ApiError> {
    let argon = Arc::clone(argon);
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
        argon
            .verify(password.as_bytes(), &parsed)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal("password check failed", e))?
    .map_err(|e| ApiError::internal("a stored password hash is damaged", e))
}

#[cfg(test)]
mod tests {
    //! Password checks never wait for, or hold, the registry's write lock: every request
    //! that carries a wrong password is answered while the test holds that lock.

    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tokengate::store::{DynStore, MemoryStore};
    use tokengate::{NewToken, Tokens, TrustedProxies};
    use tower::ServiceExt;

    use crate::state::AppState;

    /// A request that carries the account's password, and how a wrong one is answered.
    struct PasswordRequest {
        what: &'static str,
        method: &'static str,
        path: &'static str,
        credential: Credential,
        content_type: &'static str,
        body: &'static str,
        status: StatusCode,
        says: &'static str,
    }

    /// How the request is signed in.
    enum Credential {
        None,
        Bearer,
        SessionCookie,
    }

    const JSON: &str = "application/json";
    const FORM: &str = "application/x-www-form-urlencoded";

    async fn send(app: &Router, request: &PasswordRequest, token: &str) -> (StatusCode, String) {
        let builder = Request::builder()
            .method(request.method)
            .uri(request.path)
            .header("host", "registry.test")
            .header("origin", "http://registry.test")
            .header("content-type", request.content_type);
        let builder = match request.credential {
            Credential::None => builder,
            Credential::Bearer => builder.header("authorization", format!("Bearer {token}")),
            Credential::SessionCookie => builder.header("cookie", format!("tg_session={token}")),
        };
        let request = builder.body(Body::from(request.body)).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn wrong_passwords_are_answered_while_another_request_writes() {
        let tokens = Tokens::builder(DynStore::new(MemoryStore::new()))
            .prefix("npm")
            .unwrap()
            .build();
        let state = AppState::new(
            tokens,
            crate::db::Data::memory().unwrap(),
            crate::security::sealer::Sealer::ephemeral().unwrap(),
            TrustedProxies::none(),
            Err(crate::config::TrustedPublishingOff::ByFlag),
            crate::controllers::stage::DEFAULT_EXPIRY,
        );
        let app = crate::router::router(state.clone(), 1024 * 1024);
        let signup = PasswordRequest {
            what: "npm adduser",
            method: "PUT",
            path: "/-/user/org.couchdb.user:alice",
            credential: Credential::None,
            content_type: JSON,
            body: r#"{"name":"alice","password":"correct horse battery"}"#,
            status: StatusCode::CREATED,
            says: "token",
        };
        let (status, body) = send(&app, &signup, "").await;
        assert_eq!(status, signup.status, "{body}");
        let created = state.tokens().create("alice", NewToken::session()).await;
        let token = created.unwrap().token;

        let requests = [
            PasswordRequest {
                what: "npm login",
                body: r#"{"name":"alice","password":"a wrong password"}"#,
                status: StatusCode::UNAUTHORIZED,
                says: "incorrect user name or password",
                ..signup
            },
            PasswordRequest {
                what: "npm token create",
                method: "POST",
                path: "/-/npm/v1/tokens",
                credential: Credential::Bearer,
                content_type: JSON,
                body: r#"{"password":"a wrong password","readonly":false,"cidr_whitelist":[]}"#,
                status: StatusCode::UNAUTHORIZED,
                says: "incorrect password",
            },
            PasswordRequest {
                what: "npm profile enable-2fa",
                method: "POST",
                path: "/-/npm/v1/user",
                credential: Credential::Bearer,
                content_type: JSON,
                body: r#"{"tfa":{"password":"a wrong password","mode":"auth-only"}}"#,
                status: StatusCode::UNAUTHORIZED,
                says: "incorrect password",
            },
            PasswordRequest {
                what: "npm profile set password",
                method: "POST",
                path: "/-/npm/v1/user",
                credential: Credential::Bearer,
                content_type: JSON,
                body: r#"{"password":{"old":"a wrong password","new":"another long password"}}"#,
                status: StatusCode::UNAUTHORIZED,
                says: "incorrect password",
            },
            PasswordRequest {
                what: "web login",
                method: "POST",
                path: "/-/web/login",
                credential: Credential::None,
                content_type: FORM,
                body: "username=alice&password=a+wrong+password",
                status: StatusCode::UNAUTHORIZED,
                says: "incorrect user name or password",
            },
            PasswordRequest {
                what: "web token creation",
                method: "POST",
                path: "/-/web/tokens/new",
                credential: Credential::SessionCookie,
                content_type: FORM,
                body: "name=ci&permission=read-write&expires=7&password=a+wrong+password",
                status: StatusCode::BAD_REQUEST,
                says: "incorrect password",
            },
        ];
        let _writing = state.write_lock().await;
        for request in &requests {
            // Long enough for any Argon2 check; a request waiting for the lock never ends.
            let answered = tokio::time::timeout(
                Duration::from_secs(30),
                send(&app, request, token.expose_secret()),
            )
            .await;
            let (status, body) = answered.unwrap_or_else(|_| {
                panic!(
                    "{}: a wrong password waited for the write lock",
                    request.what
                )
            });
            assert_eq!(status, request.status, "{}: {body}", request.what);
            assert!(body.contains(request.says), "{}: {body}", request.what);
        }
    }
}

#[cfg(test)]
mod limit_tests {
    //! The failure limits hold for guesses sent at once, not only one after another.

    use std::net::IpAddr;
    use std::sync::Arc;

    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    use axum::http::StatusCode;

    use super::{ACCOUNT_CEILING, PER_ADDRESS, PasswordGuard, Standing};
    use crate::db::User;

    /// Guesses sent together, and how many of them may be checked at most.
    struct Burst {
        what: &'static str,
        guesses: usize,
        /// Where the guesses come from.
        from: From,
        checked_at_most: usize,
    }

    enum From {
        /// A different IPv4 address for each guess, at one account.
        ManyAddresses,
        /// One IPv4 address, each guess at an account of its own.
        OneAddress,
        /// Each guess from another address of one IPv6 /64, at an account of its own.
        OneIpv6Network,
    }

    /// A user whose hash is cheap to check: the parameters travel in the hash.
    fn user() -> User {
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
        User {
            name: "alice".into(),
            password_hash: cheap
                .hash_password(b"correct horse battery", &salt)
                .unwrap()
                .to_string(),
            email: None,
            created: None,
            updated: None,
            tfa: None,
            profile: Default::default(),
            revision: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guesses_sent_at_once_are_held_to_the_limits() {
        let bursts = [
            Burst {
                what: "one account from many addresses",
                guesses: 150,
                from: From::ManyAddresses,
                checked_at_most: ACCOUNT_CEILING as usize,
            },
            Burst {
                what: "one address across accounts",
                guesses: 60,
                from: From::OneAddress,
                checked_at_most: PER_ADDRESS as usize,
            },
            Burst {
                what: "one IPv6 /64 across accounts",
                guesses: 60,
                from: From::OneIpv6Network,
                checked_at_most: PER_ADDRESS as usize,
            },
        ];
        for burst in bursts {
            // Slowed-down checks wait a millisecond a step here, not a second.
            let guard = Arc::new(PasswordGuard {
                slowdown_step: std::time::Duration::from_millis(1),
                ..PasswordGuard::default()
            });
            let mut running = Vec::new();
            for guess in 0..burst.guesses {
                let guard = Arc::clone(&guard);
                let mut user = user();
                let client: IpAddr = match burst.from {
                    From::ManyAddresses => {
                        let [high, low] = (guess as u16).to_be_bytes();
                        format!("198.51.{high}.{low}").parse().unwrap()
                    }
                    From::OneAddress => "203.0.113.7".parse().unwrap(),
                    From::OneIpv6Network => format!("2001:db8:7:1::{guess:x}").parse().unwrap(),
                };
                if !matches!(burst.from, From::ManyAddresses) {
                    // Each guess at an account of its own: only the address limit applies.
                    user.name = format!("user{guess}");
                }
                running.push(tokio::spawn(async move {
                    let name = user.name.clone();
                    guard
                        .check(
                            &name,
                            Some(&user),
                            "a wrong password",
                            Some(client),
                            Standing::Stranger,
                        )
                        .await
                }));
            }
            let mut checked = 0;
            for task in running {
                match task.await.unwrap() {
                    Ok(right) => {
                        assert!(!right, "{}", burst.what);
                        checked += 1;
                    }
                    Err(error) => {
                        assert_eq!(
                            error.status(),
                            StatusCode::TOO_MANY_REQUESTS,
                            "{}",
                            burst.what
                        )
                    }
                }
            }
            assert!(
                checked <= burst.checked_at_most,
                "{}: {checked} guesses checked, at most {} allowed",
                burst.what,
                burst.checked_at_most
            );
        }
    }
}

#[cfg(test)]
mod memory_tests {
    //! Every Argon2 run of the guard borrows the pool's memory.

    use std::sync::Arc;

    use argon2::Argon2;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    use super::{AT_ONCE, PasswordGuard, Standing};
    use crate::db::User;

    /// Alice's hash as the registry stored it before the pool (`correct horse battery`).
    const STORED_BEFORE: &str = "$argon2id$v=19$m=19456,t=2,p=1$mxQBWRHlEic+R3I1K28Hag$wUOL8O0cn3PK+ykC829Ix4omB4CgJ0vVs4eytD+TB/4";

    fn alice(password_hash: String) -> User {
        User {
            name: "alice".into(),
            password_hash,
            email: None,
            created: None,
            updated: None,
            tfa: None,
            profile: Default::default(),
            revision: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sixteen_checks_at_once_share_at_most_four_buffers() {
        let guard = Arc::new(PasswordGuard::default());
        let checks: Vec<_> = (0..16)
            .map(|check| {
                let guard = Arc::clone(&guard);
                tokio::spawn(async move {
                    let password = if check % 4 == 0 {
                        "a wrong password"
                    } else {
                        "correct horse battery"
                    };
                    let user = alice(STORED_BEFORE.to_owned());
                    let right = guard
                        .check("alice", Some(&user), password, None, Standing::HoldsToken)
                        .await
                        .unwrap();
                    assert_eq!(right, check % 4 != 0, "check {check}");
                })
            })
            .collect();
        for check in checks {
            check.await.unwrap();
        }
        let made = guard.argon.made();
        assert!(
            (1..=AT_ONCE).contains(&made),
            "16 checks made {made} buffers of Argon2 memory"
        );
    }

    #[tokio::test]
    async fn new_hashes_and_unknown_users_use_the_pool_too() {
        let guard = PasswordGuard::default();
        let hash = guard.hash("another long password").await.unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        Argon2::default()
            .verify_password(b"another long password", &parsed)
            .unwrap();
        let right = guard
            .check(
                "nobody",
                None,
                "another long password",
                None,
                Standing::Stranger,
            )
            .await
            .unwrap();
        assert!(!right);
        assert_eq!(guard.argon.made(), 1);
    }

    #[tokio::test]
    async fn a_damaged_hash_is_an_error_not_a_wrong_password() {
        let guard = PasswordGuard::default();
        let user = alice("$argon2id$v=19$m=19456,t=2,p=1$mxQBWRHlEic+R3I1K28Hag".to_owned());
        let checked = guard
            .check(
                "alice",
                Some(&user),
                "correct horse battery",
                None,
                Standing::HoldsToken,
            )
            .await;
        let error = checked.expect_err("a hash without its output was checked");
        assert_eq!(
            error.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
