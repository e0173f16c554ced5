//! Where [`Tokens`](crate::Tokens) reads the time: the system clock, or a clock a test moves.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock: the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to, for testing expiry without waiting.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tokengate::{Clock, ManualClock};
///
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(60));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// `at` without its sub-millisecond part: what every store keeps, so that a record read
/// back equals the one written. `None` past what stores can hold (milliseconds since the
/// Unix epoch in an `i64`, some 292 million years), rather than a time cut short.
pub(crate) fn whole_millis(at: SystemTime) -> Option<SystemTime> {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => {
            let millis = i64::try_from(since.as_millis()).ok()?;
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(millis.unsigned_abs()))
        }
        Err(_) => Some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_the_millisecond_or_refused() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            whole_millis(t),
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
        );
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 1000);
        assert_eq!(whole_millis(far), None, "not silently wrapped");
    }
}
