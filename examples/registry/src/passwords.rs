//! Password checks that cost the guesser, not the registry: Argon2 runs outside every lock,
//! a few at a time, and an account or an address that keeps failing is told to wait.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::http::{HeaderValue, StatusCode};
use moka::sync::Cache;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::users::User;

/// How long failures are remembered, and so how long a locked-out caller waits at most.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords one account may take in a window.
const PER_ACCOUNT: u32 = 10;
/// Wrong passwords one address may send in a window, across accounts.
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
        let over = |count: Option<Arc<AtomicU32>>, max| {
            count.is_some_and(|count| count.load(Ordering::Relaxed) >= max)
        };
        if over(self.by_account.get(&user.name), PER_ACCOUNT)
            || over(client.and_then(|ip| self.by_address.get(&ip)), PER_ADDRESS)
        {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong passwords; wait a few minutes before trying again",
            );
            error.retry_after(HeaderValue::from(WINDOW.as_secs()));
            return Err(error);
        }
        let right = {
            let _turn = self
                .running
                .acquire()
                .await
                .map_err(|e| ApiError::internal("password check failed", e))?;
            verify(user.password_hash.clone(), password.to_owned()).await?
        };
        if !right {
            self.by_account
                .get_with(user.name.clone(), Default::default)
                .fetch_add(1, Ordering::Relaxed);
            if let Some(ip) = client {
                self.by_address
                    .get_with(ip, Default::default)
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(right)
    }
}

/// Argon2 compares in constant time; hashing is deliberately slow, so it runs off the
/// async workers.
async fn verify(hash: String, password: String) -> Result<bool, ApiError> {
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
