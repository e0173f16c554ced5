//! The record cache behind [`Tokens`](crate::Tokens): bounded, with a TTL, one store call
//! for concurrent misses, a separate bounded memory of unknown ids, and the rule that keeps
//! a revoked token from coming back.
//!
//! Each id maps to a slot that the first lookup fills. A hit is a synchronous map probe
//! plus a check that the slot is filled, so the layer answers cached tokens without
//! awaiting anything. The record sits inside the slot's own allocation, and a hit hands
//! out that slot ([`CachedRef`]): from moka's entry to the digest, status and grants is
//! one pointer. Forgetting an id removes its slot; a lookup still filling the old
//! slot cannot put anything back, because the old slot is no longer in the map.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use moka::sync::Cache;
use tokio::sync::OnceCell;

use crate::reason::Reason;
use crate::record::TokenRecord;
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
    /// Inline, not behind another `Arc`: one pointer fewer to chase on every hit.
    pub(crate) record: TokenRecord,
    /// When the lookup that produced this entry began, by the manager's clock.
    loaded_at: SystemTime,
    /// Seconds since the Unix epoch when this token's use was last reported.
    last_reported_use: AtomicU64,
}

impl Cached {
    /// A record looked up at `loaded_at`, whose use was last reported when the store says.
    pub(crate) fn new(record: TokenRecord, loaded_at: SystemTime) -> Self {
        let last_use = record.last_used_at.map_or(0, unix_seconds);
        Self {
            record,
            loaded_at,
            last_reported_use: AtomicU64::new(last_use),
        }
    }

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

/// A cache slot: filled once by the first lookup of its id, awaited by any lookup that
/// arrives while it is being filled. The record is stored inline, not behind another `Arc`.
type Slot = Arc<OnceCell<Cached>>;

/// A filled slot: a cached record as a hit hands it out, and what [`Authenticated`]
/// holds. Cloning it counts one reference, on the slot itself.
///
/// [`Authenticated`]: crate::Authenticated
#[derive(Clone)]
pub(crate) struct CachedRef(Slot);

impl CachedRef {
    /// A record that no cache holds (for `Authenticated::for_record`).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn new(cached: Cached) -> Self {
        Self(Arc::new(OnceCell::new_with(Some(cached))))
    }

    /// The slot, if it is filled.
    fn filled(slot: Slot) -> Option<Self> {
        slot.initialized().then_some(Self(slot))
    }
}

impl Deref for CachedRef {
    type Target = Cached;

    fn deref(&self) -> &Cached {
        match self.0.get() {
            Some(cached) => cached,
            // Made only from filled slots, and a filled slot stays filled.
            None => unreachable!("a CachedRef holds a filled slot"),
        }
    }
}

pub(crate) struct RecordCache {
    /// Bounded by capacity only: freshness is checked on each hit against `ttl`, with the
    /// time the request already reads, which costs far less than moka's own TTL tracking.
    records: Cache<TokenId, Slot>,
    ttl: Duration,
    unknown: Cache<TokenId, ()>,
}

/// What a store lookup can end in, besides a record.
enum LoadError {
    Unknown,
    Store(StoreError),
}

impl RecordCache {
    pub(crate) fn new(settings: CacheSettings) -> Self {
        Self {
            records: Cache::builder().max_capacity(settings.capacity).build(),
            ttl: settings.ttl,
            unknown: Cache::builder()
                .max_capacity(settings.unknown_capacity)
                .time_to_live(settings.unknown_ttl)
                .build(),
        }
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.records.entry_count()
    }

    /// The answer the cache holds for `id` at `now`, without waiting: the record, a known
    /// unknown id, or `None` when the store must be asked. A record older than the TTL is
    /// dropped here and never served.
    pub(crate) fn cached(&self, id: TokenId, now: SystemTime) -> Option<Result<CachedRef, Reason>> {
        if let Some(cached) = self.records.get(&id).and_then(CachedRef::filled) {
            if fresh(cached.loaded_at, now, self.ttl) {
                return Some(Ok(cached));
            }
            self.records.invalidate(&id);
            return None;
        }
        self.unknown
            .contains_key(&id)
            .then_some(Err(Reason::UnknownToken))
    }

    /// The record for `id` from the store, once [`RecordCache::cached`] has said that the
    /// store must be asked. Concurrent misses for one id share one slot and so one store
    /// call; store failures are not cached; unknown ids are, briefly.
    pub(crate) async fn fetch<S: TokenStore>(
        &self,
        store: &S,
        id: TokenId,
        now: SystemTime,
    ) -> Result<CachedRef, Reason> {
        let slot = self.records.get_with(id, Slot::default);
        let filled = slot
            .get_or_try_init(|| load(store, id, now))
            .await
            .map(|_| ());
        match filled {
            Ok(()) => Ok(CachedRef(slot)),
            Err(LoadError::Unknown) => {
                // No empty slot left behind: made-up ids must not crowd out real tokens.
                self.records.invalidate(&id);
                self.unknown.insert(id, ());
                Err(Reason::UnknownToken)
            }
            Err(LoadError::Store(error)) => {
                tracing::warn!(token_id = %id, %error, "token store lookup failed");
                Err(Reason::StoreUnavailable)
            }
        }
    }

    /// Drops `id`, so that the next lookup asks the store.
    ///
    /// A lookup already in flight fills the slot it started with, which this removes from
    /// the cache: its (possibly stale) record reaches only the requests that were already
    /// waiting on it, never a later one.
    pub(crate) fn forget(&self, id: TokenId) {
        self.records.invalidate(&id);
    }

    /// Drops every record and unknown id; lookups in flight fill slots no longer cached.
    pub(crate) fn forget_all(&self) {
        self.records.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// A new token's id may have been remembered as unknown.
    pub(crate) fn forget_unknown(&self, id: TokenId) {
        self.unknown.invalidate(&id);
    }
}

/// Whether an entry loaded at `loaded_at` may still be served at `now`. A clock that went
/// backwards makes entries stale rather than immortal.
fn fresh(loaded_at: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    now.duration_since(loaded_at).is_ok_and(|age| age < ttl)
}

async fn load<S: TokenStore>(
    store: &S,
    id: TokenId,
    started: SystemTime,
) -> Result<Cached, LoadError> {
    match store.get(id).await {
        Ok(Some(record)) if record.id == id => Ok(Cached::new(record, started)),
        Ok(Some(_)) => Err(LoadError::Store(StoreError::Corrupt(format!(
            "asked for token {id}, got another record"
        )))),
        Ok(None) => Err(LoadError::Unknown),
        Err(error) => Err(LoadError::Store(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_table() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let ttl = Duration::from_secs(60);
        let cases = [
            (t0, true),
            (t0 + Duration::from_secs(59), true),
            (t0 + ttl, false),
            (t0 + Duration::from_secs(3600), false),
            (t0 - Duration::from_secs(1), false),
        ];
        for (now, expected) in cases {
            assert_eq!(fresh(t0, now, ttl), expected, "{now:?}");
        }
        assert!(!fresh(t0, t0, Duration::ZERO), "a zero TTL caches nothing");
    }

    #[test]
    fn use_reports_are_throttled() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let minute = Duration::from_secs(60);
        let cached = Cached {
            record: crate::record::tests::sample_record(t0),
            loaded_at: t0,
            last_reported_use: AtomicU64::new(0),
        };
        assert!(cached.claim_use_report(t0, minute));
        assert!(!cached.claim_use_report(t0, minute));
        assert!(!cached.claim_use_report(t0 + Duration::from_secs(59), minute));
        assert!(cached.claim_use_report(t0 + minute, minute));
        assert!(!cached.claim_use_report(t0 + minute, minute));
    }
}
