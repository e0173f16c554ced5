//! Single use of an ID token: its `jti` is accepted once, until the token expires.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::store::{StoreError, TokenStore};

/// Which ID token: its issuer and its `jti` (a `jti` is unique per issuer only).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    issuer: String,
    jti: String,
}

impl ReplayKey {
    /// The key for `jti` from `issuer`.
    pub fn new(issuer: impl Into<String>, jti: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jti: jti.into(),
        }
    }

    /// The issuer, as in the token's `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }
}

/// Remembers which ID tokens were used, so that each is exchanged once.
///
/// The verifier calls [`first_use`](ReplayGuard::first_use) as its last step, after the
/// signature and every claim check. An error fails the verification closed (the
/// application answers 503): a token is never accepted without its use being recorded.
///
/// [`MemoryReplayGuard`] serves one process. With several nodes, every node must see
/// every use: give the verifier the token store itself. [`MemoryStore`], `SqliteStore`,
/// `PostgresStore` and [`DynStore`] implement this trait with
/// [`TokenStore::id_token_first_use`] (a table keyed by issuer and `jti` in the SQL
/// stores), so the guard is as shared as the tokens are. A store of your own implements
/// that method, and this trait in one line that calls it.
///
/// ```
/// use tokengate::oidc::{ReplayGuard, ReplayKey};
/// use tokengate::store::{DynStore, MemoryStore};
/// use std::time::{Duration, SystemTime};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = DynStore::new(MemoryStore::new());
/// let (now, key) = (SystemTime::now(), ReplayKey::new("https://issuer.example", "jti-1"));
/// let until = now + Duration::from_secs(300);
/// assert!(store.first_use(&key, until, now).await?);
/// assert!(!store.first_use(&key, until, now).await?, "a replay");
/// # Ok(())
/// # }
/// ```
///
/// [`MemoryStore`]: crate::store::MemoryStore
/// [`DynStore`]: crate::store::DynStore
/// [`TokenStore::id_token_first_use`]: crate::store::TokenStore::id_token_first_use
pub trait ReplayGuard: Send + Sync + 'static {
    /// Records `key` as used until `until` (the token's `exp` plus the verifier's leeway).
    /// `Ok(true)` when this is its first use, `Ok(false)` when it was seen and is still
    /// remembered. `now` is the verifier's clock, for dropping what has expired.
    ///
    /// The check and the record must be one atomic step: two concurrent calls with the
    /// same key must not both get `true`.
    fn first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: ReplayGuard> ReplayGuard for std::sync::Arc<T> {
    fn first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).first_use(key, until, now)
    }
}

/// The token stores are guards: their [`TokenStore::id_token_first_use`] records the use.
macro_rules! store_guard {
    ($($(#[$cfg:meta])* $store:ty,)*) => {
        $(
            $(#[$cfg])*
            impl ReplayGuard for $store {
                fn first_use(
                    &self,
                    key: &ReplayKey,
                    until: SystemTime,
                    now: SystemTime,
                ) -> impl Future<Output = Result<bool, StoreError>> + Send {
                    TokenStore::id_token_first_use(self, key, until, now)
                }
            }
        )*
    };
}

store_guard! {
    crate::store::MemoryStore,
    crate::store::DynStore,
    #[cfg(feature = "sqlite")]
    crate::store::SqliteStore,
    #[cfg(feature = "postgres")]
    crate::store::PostgresStore,
}

/// A [`ReplayGuard`] in this process's memory, holding at most a given number of unexpired
/// uses; past that it refuses (an error, so verification fails closed) rather than forget
/// a use that could then be replayed.
#[derive(Debug)]
pub struct MemoryReplayGuard {
    seen: Mutex<HashMap<ReplayKey, SystemTime>>,
    capacity: usize,
}

impl MemoryReplayGuard {
    /// The default capacity: unexpired uses remembered at once.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A guard remembering up to [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) uses.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A guard remembering up to `capacity` unexpired uses.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// How many uses are remembered (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no use is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryReplayGuard {
    fn default() -> Self {
        Self::new()
    }
}

/// The memory guard's refusal when it is full of unexpired uses.
#[derive(Debug, thiserror::Error)]
#[error("the replay guard holds {0} unexpired ID-token uses and takes no more")]
struct Full(usize);

impl ReplayGuard for MemoryReplayGuard {
    async fn first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(remembered) = seen.get(key)
            && *remembered > now
        {
            return Ok(false);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until > now);
            if seen.len() >= self.capacity {
                return Err(StoreError::unavailable(Full(self.capacity)));
            }
        }
        seen.insert(key.clone(), until);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_use_is_refused_again_until_it_expires_and_a_full_guard_fails_closed() {
        let guard = MemoryReplayGuard::with_capacity(2);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let until = t0 + Duration::from_secs(60);
        let a = ReplayKey::new("https://issuer", "a");
        let a_elsewhere = ReplayKey::new("https://other", "a");
        assert!(guard.first_use(&a, until, t0).await.unwrap());
        assert!(!guard.first_use(&a, until, t0).await.unwrap(), "replayed");
        assert!(
            guard.first_use(&a_elsewhere, until, t0).await.unwrap(),
            "jti is per issuer"
        );
        // Full of unexpired uses: refused, not forgotten.
        let b = ReplayKey::new("https://issuer", "b");
        assert!(
            guard
                .first_use(&b, until, t0)
                .await
                .unwrap_err()
                .is_unavailable()
        );
        assert!(
            !guard.first_use(&a, until, t0).await.unwrap(),
            "still remembered"
        );
        // Past `until`, expired uses are swept and room is made.
        let later = until + Duration::from_secs(1);
        assert!(
            guard
                .first_use(&b, later + Duration::from_secs(60), later)
                .await
                .unwrap()
        );
        assert_eq!(guard.len(), 1);
    }
}
