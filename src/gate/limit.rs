//! [`FailureLimit`]: failed authentications counted per client address, so that a flood of
//! made-up or mistyped tokens costs its sender, not the store or other clients.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::client_bucket::ClientBucket;

/// How many failed authentications one client address may make in a window before the
/// gate answers it with `429 Too Many Requests` instead of asking the store, and instead of
/// each further failure's own refusal.
///
/// Failures are malformed tokens (and `Authorization` headers), unknown tokens and wrong
/// secrets, whether the store or the cache answered; a revoked or expired token is not a
/// guess and does not count. The limit is consulted only on paths that are already
/// failing or about to ask the store: a cached, accepted token never touches it, so valid
/// clients are not slowed, even from a flooding address. Addresses are counted per node
/// (several nodes each allow the full budget), each [`ClientBucket`] (an IPv4 address, an
/// IPv6 client's /64) as one client, and at most `capacity` of them are remembered at
/// once (the oldest go first).
///
/// ```
/// use std::time::Duration;
/// use tokengate::{FailureLimit, TokenAuthLayer, Tokens, store::MemoryStore};
///
/// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new()))
///     .limit_failures(FailureLimit::new(20, Duration::from_secs(60)));
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct FailureLimit {
    max_failures: u32,
    window: Duration,
    counts: Cache<ClientBucket, Arc<AtomicU32>>,
}

impl FailureLimit {
    /// At most `max_failures` per address in each `window`, for up to 100,000 addresses.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, 100_000)
    }

    /// As [`FailureLimit::new`], remembering at most `capacity` addresses.
    pub fn with_capacity(max_failures: u32, window: Duration, capacity: u64) -> Self {
        let window = window.max(Duration::from_secs(1));
        Self {
            max_failures: max_failures.max(1),
            window,
            counts: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(window)
                .build(),
        }
    }

    /// Whether `client` has used up its failures for now. The gate asks this itself; a
    /// route outside the gate that checks a credential of its own (a token in its path,
    /// say) asks it too, and [`record`](Self::record)s its failures, so that one budget
    /// covers both.
    pub fn exhausted(&self, client: Option<IpAddr>) -> bool {
        let Some(client) = client else { return false };
        self.counts
            .get(&ClientBucket::from(client))
            .is_some_and(|count| count.load(Ordering::Relaxed) >= self.max_failures)
    }

    /// Counts one failure of `client` (nothing for an unknown client).
    pub fn record(&self, client: Option<IpAddr>) {
        if let Some(client) = client {
            self.counts
                .get_with(ClientBucket::from(client), || Arc::new(AtomicU32::new(0)))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Seconds a refused client should wait: at most one window (for `Retry-After`).
    pub fn retry_after(&self) -> u32 {
        u32::try_from(self.window.as_secs()).unwrap_or(u32::MAX)
    }
}

impl fmt::Debug for FailureLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureLimit")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("addresses", &self.counts.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_per_ipv6_64() {
        let limit = FailureLimit::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!limit.exhausted(Some(a)));
            limit.record(Some(a));
        }
        assert!(limit.exhausted(Some(a)));
        assert!(
            !limit.exhausted(Some(b)),
            "other addresses keep their budget"
        );
        assert!(
            limit.exhausted(Some("::ffff:192.0.2.1".parse().unwrap())),
            "a mapped address is the same client"
        );
        let v6: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        for _ in 0..3 {
            limit.record(Some(v6));
        }
        assert!(limit.exhausted(Some("2001:db8:1:2::ffff".parse().unwrap())));
        assert!(!limit.exhausted(Some("2001:db8:1:3::1".parse().unwrap())));
        limit.record(None);
        assert!(!limit.exhausted(None), "no address, nothing to count");
    }
}
