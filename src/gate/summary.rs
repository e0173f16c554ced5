//! A periodic summary of refusals: each refusal is logged at DEBUG, so that a flood does
//! not flood the log, and their counts by reason reach INFO (WARN past a threshold) at most
//! once per interval.
//!
//! Counting takes no lock: a flood of refusals from many connections must not queue on
//! the summary. Whichever refusal finds the interval over writes the summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::reason::Reason;

/// Refusals in one interval above which the summary is a warning.
const WARN_ABOVE: u64 = 1_000;

/// The reasons' names without their details, in the order [`kind`] numbers them.
const KINDS: [&str; 20] = [
    "missing_token",
    "malformed_header",
    "malformed_token",
    "unknown_token",
    "wrong_secret",
    "revoked",
    "expired",
    "address_not_allowed",
    "no_client_address",
    "read_only",
    "not_permitted",
    "store_unavailable",
    "second_factor_required",
    "second_factor_rejected",
    "second_factor_unavailable",
    "too_many_failures",
    "cross_site_request",
    "unresolved_write",
    "owner_not_permitted",
    "owner_rights_unavailable",
];

pub(crate) struct RefusalSummary {
    every: Duration,
    started: Instant,
    /// When the last summary was written (or counting began), in nanoseconds after
    /// `started`.
    last: AtomicU64,
    counts: [AtomicU64; KINDS.len()],
}

impl RefusalSummary {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            started: Instant::now(),
            last: AtomicU64::new(0),
            counts: Default::default(),
        }
    }

    /// Counts a refusal, and logs the summary when the interval is over.
    pub(crate) fn count(&self, reason: Reason) {
        self.counts[kind(reason)].fetch_add(1, Ordering::Relaxed);
        let now = nanos(self.started.elapsed());
        let last = self.last.load(Ordering::Relaxed);
        let elapsed = Duration::from_nanos(now.saturating_sub(last));
        if elapsed < self.every {
            return;
        }
        // One refusal writes this summary; the others that found it due count on.
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let counts: Vec<(&str, u64)> = KINDS
            .iter()
            .zip(&self.counts)
            .map(|(name, count)| (*name, count.swap(0, Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        let total: u64 = counts.iter().map(|(_, count)| count).sum();
        if total == 0 {
            return;
        }
        let counts = counts
            .iter()
            .map(|(reason, count)| format!("{reason}={count}"))
            .collect::<Vec<_>>()
            .join(" ");
        let seconds = elapsed.as_secs();
        if total > WARN_ABOVE {
            tracing::warn!(total, seconds, counts, "requests refused lately");
        } else {
            tracing::info!(total, seconds, counts, "requests refused lately");
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The index in [`KINDS`] of the reason's name.
fn kind(reason: Reason) -> usize {
    match reason {
        Reason::MissingToken => 0,
        Reason::MalformedHeader(_) => 1,
        Reason::Malformed(_) => 2,
        Reason::UnknownToken => 3,
        Reason::SecretMismatch => 4,
        Reason::Revoked => 5,
        Reason::Expired => 6,
        Reason::AddressNotAllowed => 7,
        Reason::NoClientAddress => 8,
        Reason::ReadOnly => 9,
        Reason::NotPermitted(_) => 10,
        Reason::StoreUnavailable => 11,
        Reason::SecondFactorRequired => 12,
        Reason::SecondFactorRejected => 13,
        Reason::SecondFactorUnavailable => 14,
        Reason::TooManyFailures => 15,
        Reason::CrossSiteRequest => 16,
        Reason::UnresolvedWrite => 17,
        Reason::OwnerNotPermitted => 18,
        Reason::OwnerRightsUnavailable => 19,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::tests::EVERY_REASON;

    #[test]
    fn every_kind_of_reason_has_a_name_of_its_own() {
        let every = EVERY_REASON.iter().chain(&[Reason::NoClientAddress]);
        let named: std::collections::BTreeSet<usize> = every.map(|reason| kind(*reason)).collect();
        // Twenty kinds of reason in twenty places: none shares another's name.
        assert_eq!(named, (0..KINDS.len()).collect());
    }
}
