//! A periodic summary of refusals: each refusal is logged at DEBUG, so that a flood does
//! not flood the log, and their counts by reason reach INFO (WARN past a threshold) at most
//! once per interval.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::reason::Reason;

/// Refusals in one interval above which the summary is a warning.
const WARN_ABOVE: u64 = 1_000;

pub(crate) struct RefusalSummary {
    every: Duration,
    state: Mutex<Counts>,
}

struct Counts {
    since: Instant,
    by_reason: BTreeMap<&'static str, u64>,
}

impl RefusalSummary {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(Counts {
                since: Instant::now(),
                by_reason: BTreeMap::new(),
            }),
        }
    }

    /// Counts a refusal, and logs the summary when the interval is over.
    pub(crate) fn count(&self, reason: Reason) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state.by_reason.entry(kind(reason)).or_default() += 1;
        let elapsed = state.since.elapsed();
        if elapsed < self.every {
            return;
        }
        let total: u64 = state.by_reason.values().sum();
        let counts = state
            .by_reason
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
        state.by_reason.clear();
        state.since = Instant::now();
    }
}

/// The reason's name without its details.
fn kind(reason: Reason) -> &'static str {
    match reason {
        Reason::MissingToken => "missing_token",
        Reason::MalformedHeader(_) => "malformed_header",
        Reason::Malformed(_) => "malformed_token",
        Reason::UnknownToken => "unknown_token",
        Reason::SecretMismatch => "wrong_secret",
        Reason::Revoked => "revoked",
        Reason::Expired => "expired",
        Reason::AddressNotAllowed => "address_not_allowed",
        Reason::NoClientAddress => "no_client_address",
        Reason::ReadOnly => "read_only",
        Reason::NotPermitted(_) => "not_permitted",
        Reason::StoreUnavailable => "store_unavailable",
        Reason::SecondFactorRequired => "second_factor_required",
        Reason::SecondFactorRejected => "second_factor_rejected",
        Reason::SecondFactorUnavailable => "second_factor_unavailable",
        Reason::TooManyFailures => "too_many_failures",
        Reason::CrossSiteRequest => "cross_site_request",
    }
}
