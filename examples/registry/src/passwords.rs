//! Password checks that cost the guesser, not the registry: Argon2 runs outside every lock,
//! a few at a time, and an account or an address that keeps failing is told to wait.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::{HeaderValue, StatusCode};
use moka::sync::Cache;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::users::User;

/// How long failures are remembered, and so how long a locked-out caller waits at most.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords one account may take in a window.
const PER_ACCOUNT: u32 = 10;
/// Wrong passwords one address (an IPv6 /64) may send in a window, across accounts.
const PER_ADDRESS: u32 = 30;
/// Argon2 checks running at once; more wait their turn without holding anything else.
const AT_ONCE: usize = 4;

pub struct PasswordGuard {
    running: Semaphore,
    by_account: Cache<String, Arc<AtomicU32>>,
    by_address: Cache<IpAddr, Arc<AtomicU32>>,
}

impl Default for PasswordGuard {
    fn default() -> Self {
        Self {
            running: Semaphore::new(AT_ONCE),
            by_account: failures(),
            by_address: failures(),
        }
    }
}

/// Failure counts that forget after [`WINDOW`], for at most 100,000 keys.
fn failures<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, Arc<AtomicU32>> {
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(WINDOW)
        .build()
}

impl PasswordGuard {
    /// Whether `password` is `user`'s. Refused with 429 before any hashing when the account
    /// or the address has failed too often; a wrong password counts against both.
    /// Never call it holding the registry's write lock.
    pub async fn check(
        &self,
        user: &User,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<bool, ApiError> {
        // Every check counts as a failure until it is found right: guesses sent at once
        // would otherwise all pass the limit before any of them had failed.
        let mut reserved = Reserved {
            counts: Vec::with_capacity(2),
            failed: false,
        };
        let mut over = false;
        let account = self
            .by_account
            .get_with(user.name.clone(), Default::default);
        over |= account.fetch_add(1, Ordering::Relaxed) >= PER_ACCOUNT;
        reserved.counts.push(account);
        if let Some(ip) = client {
            let address = self.by_address.get_with(network(ip), Default::default);
            over |= address.fetch_add(1, Ordering::Relaxed) >= PER_ADDRESS;
            reserved.counts.push(address);
        }
        if over {
            return Err(too_many_wrong("passwords"));
        }
        let right = {
            let _turn = self
                .running
                .acquire()
                .await
                .map_err(|e| ApiError::internal("password check failed", e))?;
            verify(
                user.password_hash.clone(),
                Zeroizing::new(password.to_owned()),
            )
            .await?
        };
        reserved.failed = !right;
        Ok(right)
    }

    /// The Argon2 hash of a new password, computed in turn with the checks.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|e| ApiError::internal("password hashing failed", e))?;
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut random = [0u8; 16];
            getrandom::fill(&mut random).map_err(|e| e.to_string())?;
            let salt = SaltString::encode_b64(&random).map_err(|e| e.to_string())?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ApiError::internal("password hashing failed", e))?
        .map_err(|e| ApiError::internal("password hashing failed", e))
    }
}

/// What the address limit counts by: an IPv4 address, or an IPv6 client's /64, since one
/// host usually holds a whole /64 (as the token gate's `FailureLimit` counts). Also what
/// npm's waiting browser logins and open connections are counted by.
pub fn network(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
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

/// Failures counted for a check in progress: given back when it ends any way but with a
/// wrong password (a right one, a refusal, an error, or a request dropped half-way).
struct Reserved {
    counts: Vec<Arc<AtomicU32>>,
    failed: bool,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if !self.failed {
            for count in &self.counts {
                count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Argon2 compares in constant time; hashing is deliberately slow, so it runs off the
/// async workers.
async fn verify(hash: String, password: Zeroizing<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
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

    use crate::app::{self, AppState};

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
            crate::storage::Storage::memory(),
            crate::tfa::Sealer::ephemeral().unwrap(),
            TrustedProxies::none(),
        );
        let app = app::router(state.clone(), 1024 * 1024);
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

    use super::{PER_ACCOUNT, PER_ADDRESS, PasswordGuard};
    use crate::users::User;

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
            tfa: None,
            profile: Default::default(),
            sessions: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guesses_sent_at_once_are_held_to_the_limits() {
        let bursts = [
            Burst {
                what: "one account from many addresses",
                guesses: 40,
                from: From::ManyAddresses,
                checked_at_most: PER_ACCOUNT as usize,
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
            let guard = Arc::new(PasswordGuard::default());
            let mut running = Vec::new();
            for guess in 0..burst.guesses {
                let guard = Arc::clone(&guard);
                let mut user = user();
                let client: IpAddr = match burst.from {
                    From::ManyAddresses => format!("198.51.100.{guess}").parse().unwrap(),
                    From::OneAddress => "203.0.113.7".parse().unwrap(),
                    From::OneIpv6Network => format!("2001:db8:7:1::{guess:x}").parse().unwrap(),
                };
                if !matches!(burst.from, From::ManyAddresses) {
                    // Each guess at an account of its own: only the address limit applies.
                    user.name = format!("user{guess}");
                }
                running.push(tokio::spawn(async move {
                    guard.check(&user, "a wrong password", Some(client)).await
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
