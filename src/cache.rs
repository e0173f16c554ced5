//! The record cache behind [`Tokens`](crate::Tokens): bounded, TTL capped by each token's
//! expiry, one store call for concurrent misses, a separate bounded memory of unknown ids,
//! and the rules that keep a revoked token from coming back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::future::Cache;

use crate::clock::Clock;
use crate::record::TokenRecord;
use crate::reject::Reason;
use crate::store::{StoreError, TokenStore};
use crate::token::TokenId;

/// Sizes and lifetimes of the cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CacheSettings {
    pub(crate) ttl: Duration,
    pub(crate) capacity: u64,
    pub(crate) unknown_ttl: Duration,
    pub(crate) unknown_capacity: u64,
}

/// A cached record, with what the cache needs to know about it.
pub(crate) struct Cached {
    pub(crate) record: Arc<TokenRecord>,
    /// The cache generation when the lookup that produced this entry began.
    generation: u64,
    /// Seconds since the Unix epoch when this token's use was last reported.
    last_reported_use: AtomicU64,
}

impl Cached {
    /// Whether a use at `now` should be reported, at most once per `every`; claims the
    /// report when it should.
    pub(crate) fn claim_use_report(&self, now: SystemTime, every: Duration) -> bool {
        let now = unix_seconds(now);
        let last = self.last_reported_use.load(Ordering::Relaxed);
        now >= last.saturating_add(every.as_secs())
            && self
                .last_reported_use
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) struct RecordCache {
    records: Cache<TokenId, Arc<Cached>>,
    unknown: Cache<TokenId, ()>,
    /// Bumped by [`RecordCache::forget_all`]; an entry from an older generation is never
    /// served, even if its lookup finished after the bump.
    generation: AtomicU64,
}

/// What a store lookup can end in, besides a record. Shared by every request waiting on
/// the same lookup.
#[derive(Debug)]
enum LoadError {
    Unknown,
    Store(StoreError),
}

impl RecordCache {
    pub(crate) fn new(settings: CacheSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            records: Cache::builder()
                .max_capacity(settings.capacity)
                .expire_after(RecordLifetime {
                    ttl: settings.ttl,
                    clock,
                })
                .build(),
            unknown: Cache::builder()
                .max_capacity(settings.unknown_capacity)
                .time_to_live(settings.unknown_ttl)
                .build(),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.records.entry_count()
    }

    /// The record for `id`: from the cache, else from the store, sharing one store call
    /// between concurrent misses. Store failures are not cached; unknown ids are, briefly.
    pub(crate) async fn resolve<S: TokenStore>(
        &self,
        store: &S,
        id: TokenId,
    ) -> Result<Arc<Cached>, Reason> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(cached) = self.records.get(&id).await {
            if cached.generation == generation {
                return Ok(cached);
            }
            self.records.invalidate(&id).await;
        }
        if self.unknown.contains_key(&id) {
            return Err(Reason::UnknownToken);
        }
        match self.records.try_get_with(id, self.load(store, id)).await {
            Ok(cached) => Ok(cached),
            Err(error) => match &*error {
                LoadError::Unknown => {
                    self.unknown.insert(id, ()).await;
                    Err(Reason::UnknownToken)
                }
                LoadError::Store(error) => {
                    tracing::warn!(token_id = %id, %error, "token store lookup failed");
                    Err(Reason::StoreUnavailable)
                }
            },
        }
    }

    /// Drops `id` so that the next lookup asks the store.
    ///
    /// A lookup that read the store before a revoke may still be on its way into the
    /// cache. Joining it first (the cache inserts a lookup's result before it wakes those
    /// waiting on it) means the invalidation comes after that insert, so the stale record
    /// cannot land behind it.
    pub(crate) async fn forget<S: TokenStore>(&self, store: &S, id: TokenId) {
        let _ = self.records.try_get_with(id, self.load(store, id)).await;
        self.records.invalidate(&id).await;
    }

    /// Drops every record and unknown id, including lookups still in flight.
    pub(crate) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.records.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// A new token's id may have been remembered as unknown.
    pub(crate) async fn forget_unknown(&self, id: TokenId) {
        self.unknown.invalidate(&id).await;
    }

    fn load<'a, S: TokenStore>(
        &self,
        store: &'a S,
        id: TokenId,
    ) -> impl Future<Output = Result<Arc<Cached>, LoadError>> + Send + 'a {
        let generation = self.generation.load(Ordering::Acquire);
        async move {
            match store.get(id).await {
                Ok(Some(record)) if record.id == id => {
                    let last_use = record.last_used_at.map_or(0, unix_seconds);
                    Ok(Arc::new(Cached {
                        record: Arc::new(record),
                        generation,
                        last_reported_use: AtomicU64::new(last_use),
                    }))
                }
                Ok(Some(_)) => Err(LoadError::Store(StoreError::Corrupt(format!(
                    "asked for token {id}, got another record"
                )))),
                Ok(None) => Err(LoadError::Unknown),
                Err(error) => Err(LoadError::Store(error)),
            }
        }
    }
}

/// Keeps each cached record for the TTL, but never past its token's expiry.
struct RecordLifetime {
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl Expiry<TokenId, Arc<Cached>> for RecordLifetime {
    fn expire_after_create(
        &self,
        _id: &TokenId,
        cached: &Arc<Cached>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(cache_lifetime(
            self.ttl,
            cached.record.expires_at,
            self.clock.now(),
        ))
    }
}

/// How long a record may stay cached: the TTL, cut short by the token's expiry.
fn cache_lifetime(ttl: Duration, expires_at: Option<SystemTime>, now: SystemTime) -> Duration {
    match expires_at {
        Some(at) => at.duration_since(now).unwrap_or(Duration::ZERO).min(ttl),
        None => ttl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetime_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let ttl = Duration::from_secs(60);
        let cases = [
            (None, ttl),
            (Some(now + Duration::from_secs(3600)), ttl),
            (Some(now + Duration::from_secs(5)), Duration::from_secs(5)),
            (Some(now), Duration::ZERO),
            (Some(now - Duration::from_secs(5)), Duration::ZERO),
        ];
        for (expires_at, expected) in cases {
            assert_eq!(
                cache_lifetime(ttl, expires_at, now),
                expected,
                "{expires_at:?}"
            );
        }
    }

    #[test]
    fn use_reports_are_throttled() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let minute = Duration::from_secs(60);
        let cached = Cached {
            record: Arc::new(crate::record::tests::sample_record(t0)),
            generation: 0,
            last_reported_use: AtomicU64::new(0),
        };
        assert!(cached.claim_use_report(t0, minute));
        assert!(!cached.claim_use_report(t0, minute));
        assert!(!cached.claim_use_report(t0 + Duration::from_secs(59), minute));
        assert!(cached.claim_use_report(t0 + minute, minute));
        assert!(!cached.claim_use_report(t0 + minute, minute));
    }
}
