//! The cache of owners' rights: one slot per owner, holding one answer per question
//! (action and resource), each served for at most the record cache's TTL.
//!
//! The rule that keeps a revoked token from coming back keeps a withdrawn right from
//! coming back: forgetting an owner removes their slot, and a check still in flight fills
//! an answer in the old slot, which no later request can reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use moka::sync::Cache;
use tokio::sync::OnceCell;

use super::{ErasedRights, OwnerVerdict, RightsError, RightsQuery};
use crate::access::{Action, Resource};

/// Most questions remembered per owner; past it, the owner's answers start again from
/// none (a token that touches many resources asks again rather than grow without bound).
const MAX_QUESTIONS_PER_OWNER: usize = 1024;

/// An answer as the application gave it, and when the check that gave it began.
#[derive(Clone, Copy)]
struct Settled {
    verdict: OwnerVerdict,
    asked_at: SystemTime,
}

/// Filled once by the first check of its question; concurrent misses wait on it. A failed
/// check leaves it empty, so errors are never cached.
type Answer = Arc<OnceCell<Settled>>;

/// One owner's answers, by resource (or none) and then by action.
#[derive(Default)]
struct Questions {
    anywhere: Vec<(Action, Answer)>,
    on: HashMap<Box<str>, Vec<(Action, Answer)>>,
    count: usize,
}

impl Questions {
    fn answers(&mut self, resource: Option<&Resource>) -> Option<&mut Vec<(Action, Answer)>> {
        match resource {
            None => Some(&mut self.anywhere),
            Some(resource) => self.on.get_mut(resource.as_str()),
        }
    }

    /// The answer to the question if one is fresh at `now`; a stale one is dropped.
    fn fresh(
        &mut self,
        action: Action,
        resource: Option<&Resource>,
        now: SystemTime,
        ttl: Duration,
    ) -> Option<OwnerVerdict> {
        let answers = self.answers(resource)?;
        let at = answers.iter().position(|(asked, _)| *asked == action)?;
        let settled = *answers[at].1.get()?;
        if fresh(settled.asked_at, now, ttl) {
            return Some(settled.verdict);
        }
        answers.swap_remove(at);
        self.count -= 1;
        None
    }

    /// The cell to fill (or wait on) for the question: a pending one, or a new one.
    fn cell(&mut self, action: Action, resource: Option<&Resource>) -> Answer {
        if let Some((_, cell)) = self
            .answers(resource)
            .and_then(|answers| answers.iter().find(|(asked, _)| *asked == action))
        {
            return Arc::clone(cell);
        }
        if self.count >= MAX_QUESTIONS_PER_OWNER {
            *self = Self::default();
        }
        let cell = Answer::default();
        let answers = match resource {
            None => &mut self.anywhere,
            Some(resource) => self.on.entry(resource.as_str().into()).or_default(),
        };
        answers.push((action, Arc::clone(&cell)));
        self.count += 1;
        cell
    }
}

/// One owner's slot. The lock is held for a map probe, never across an await.
#[derive(Default)]
struct OwnerSlot(Mutex<Questions>);

impl OwnerSlot {
    fn questions(&self) -> std::sync::MutexGuard<'_, Questions> {
        // The maps hold no invariant a panic elsewhere could break half-way.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct RightsCache {
    owners: Cache<Arc<str>, Arc<OwnerSlot>>,
    ttl: Duration,
}

impl RightsCache {
    /// Answers served for at most `ttl`, for at most `capacity` owners.
    pub(crate) fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            owners: Cache::builder().max_capacity(capacity).build(),
            ttl,
        }
    }

    pub(crate) fn owner_count(&self) -> u64 {
        self.owners.entry_count()
    }

    /// The cached answer to the question at `now`, without waiting; `None` when the
    /// application must be asked.
    pub(crate) fn cached(
        &self,
        owner: &str,
        action: Action,
        resource: Option<&Resource>,
        now: SystemTime,
    ) -> Option<OwnerVerdict> {
        let slot = self.owners.get(owner)?;
        let mut questions = slot.questions();
        questions.fresh(action, resource, now, self.ttl)
    }

    /// The answer to the question, from the cache or from `check` (asked at `now`).
    /// Concurrent misses for one question share one check.
    pub(crate) async fn answer(
        &self,
        check: &dyn ErasedRights,
        owner: &str,
        action: Action,
        resource: Option<&Resource>,
        now: SystemTime,
    ) -> Result<OwnerVerdict, RightsError> {
        let slot = self.owners.get_with(Arc::from(owner), Arc::default);
        let cell = {
            let mut questions = slot.questions();
            if let Some(verdict) = questions.fresh(action, resource, now, self.ttl) {
                return Ok(verdict);
            }
            questions.cell(action, resource)
        };
        let query = RightsQuery {
            owner,
            action,
            resource,
        };
        let settled = cell
            .get_or_try_init(|| async {
                let verdict = check.check(query).await?;
                Ok::<_, RightsError>(Settled {
                    verdict,
                    asked_at: now,
                })
            })
            .await?;
        Ok(settled.verdict)
    }

    /// Drops every answer about `owner`, including checks in flight: their answers reach
    /// only the requests already waiting on them.
    pub(crate) fn forget(&self, owner: &str) {
        self.owners.invalidate(owner);
    }

    /// Drops every answer about everyone.
    pub(crate) fn forget_all(&self) {
        self.owners.invalidate_all();
    }
}

/// Whether an answer from a check begun at `asked_at` may still be served at `now`; a
/// clock that went backwards makes it stale.
fn fresh(asked_at: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    now.duration_since(asked_at).is_ok_and(|age| age < ttl)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::owner_rights::OwnerRights;

    /// Answers `verdict`, counting how often it was asked; fails while `failing` is set.
    struct Counting {
        verdict: Mutex<OwnerVerdict>,
        asked: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Counting {
        fn new(verdict: OwnerVerdict) -> Self {
            Self {
                verdict: Mutex::new(verdict),
                asked: AtomicUsize::new(0),
                failing: false.into(),
            }
        }

        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    impl OwnerRights for Counting {
        async fn check(&self, _query: RightsQuery<'_>) -> Result<OwnerVerdict, RightsError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(RightsError::new("database down"));
            }
            Ok(*self.verdict.lock().unwrap())
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(10_000)
    }

    #[tokio::test]
    async fn an_answer_is_asked_once_and_served_until_its_ttl() {
        let cache = RightsCache::new(MINUTE, 100);
        let check = Counting::new(OwnerVerdict::Allowed);
        let tool = Resource::new("tool");
        assert_eq!(
            cache.cached("alice", Action::Write, Some(&tool), t0()),
            None
        );
        let verdict = cache
            .answer(&check, "alice", Action::Write, Some(&tool), t0())
            .await;
        assert_eq!(verdict.unwrap(), OwnerVerdict::Allowed);
        let later = t0() + Duration::from_secs(59);
        assert_eq!(
            cache.cached("alice", Action::Write, Some(&tool), later),
            Some(OwnerVerdict::Allowed)
        );
        assert_eq!(check.asked(), 1);
        assert_eq!(
            cache.cached("alice", Action::Write, Some(&tool), t0() + MINUTE),
            None
        );
        assert_eq!(
            cache.cached(
                "alice",
                Action::Write,
                Some(&tool),
                t0() - Duration::from_secs(1)
            ),
            None,
            "a clock that went backwards makes an answer stale"
        );
    }

    #[tokio::test]
    async fn questions_are_told_apart_by_owner_action_and_resource() {
        struct Case {
            name: &'static str,
            owner: &'static str,
            action: Action,
            resource: Option<&'static str>,
        }
        let cache = RightsCache::new(MINUTE, 100);
        let check = Counting::new(OwnerVerdict::Denied);
        let tool = Resource::new("tool");
        cache
            .answer(&check, "alice", Action::Write, Some(&tool), t0())
            .await
            .unwrap();
        let cases = [
            Case {
                name: "another owner",
                owner: "bob",
                action: Action::Write,
                resource: Some("tool"),
            },
            Case {
                name: "another action",
                owner: "alice",
                action: Action::Read,
                resource: Some("tool"),
            },
            Case {
                name: "another resource",
                owner: "alice",
                action: Action::Write,
                resource: Some("other"),
            },
            Case {
                name: "no resource",
                owner: "alice",
                action: Action::Write,
                resource: None,
            },
        ];
        for case in cases {
            let resource = case.resource.map(Resource::new);
            assert_eq!(
                cache.cached(case.owner, case.action, resource.as_ref(), t0()),
                None,
                "{}",
                case.name
            );
        }
    }

    #[tokio::test]
    async fn forgetting_an_owner_drops_their_answers_only() {
        let cache = RightsCache::new(MINUTE, 100);
        let check = Counting::new(OwnerVerdict::Allowed);
        for owner in ["alice", "bob"] {
            cache
                .answer(&check, owner, Action::Write, None, t0())
                .await
                .unwrap();
        }
        cache.forget("alice");
        assert_eq!(cache.cached("alice", Action::Write, None, t0()), None);
        assert_eq!(
            cache.cached("bob", Action::Write, None, t0()),
            Some(OwnerVerdict::Allowed)
        );
        cache.forget_all();
        assert_eq!(cache.cached("bob", Action::Write, None, t0()), None);
    }

    #[tokio::test]
    async fn errors_are_never_cached() {
        let cache = RightsCache::new(MINUTE, 100);
        let check = Counting::new(OwnerVerdict::Allowed);
        check.failing.store(true, Ordering::SeqCst);
        assert!(
            cache
                .answer(&check, "alice", Action::Write, None, t0())
                .await
                .is_err()
        );
        assert_eq!(cache.cached("alice", Action::Write, None, t0()), None);
        check.failing.store(false, Ordering::SeqCst);
        let verdict = cache
            .answer(&check, "alice", Action::Write, None, t0())
            .await;
        assert_eq!(verdict.unwrap(), OwnerVerdict::Allowed);
        assert_eq!(check.asked(), 2);
    }

    #[tokio::test]
    async fn a_check_in_flight_when_the_owner_is_forgotten_caches_nothing() {
        /// Holds its answer until told to go on.
        struct Held {
            started: tokio::sync::Notify,
            go: tokio::sync::Notify,
        }
        impl OwnerRights for Held {
            async fn check(&self, _query: RightsQuery<'_>) -> Result<OwnerVerdict, RightsError> {
                self.started.notify_one();
                self.go.notified().await;
                Ok(OwnerVerdict::Allowed)
            }
        }
        let cache = Arc::new(RightsCache::new(MINUTE, 100));
        let held = Arc::new(Held {
            started: tokio::sync::Notify::new(),
            go: tokio::sync::Notify::new(),
        });
        let in_flight = tokio::spawn({
            let (cache, held) = (Arc::clone(&cache), Arc::clone(&held));
            async move {
                cache
                    .answer(held.as_ref(), "alice", Action::Write, None, t0())
                    .await
            }
        });
        held.started.notified().await;
        cache.forget("alice");
        held.go.notify_one();
        assert_eq!(in_flight.await.unwrap().unwrap(), OwnerVerdict::Allowed);
        assert_eq!(
            cache.cached("alice", Action::Write, None, t0()),
            None,
            "the old answer reached only the request that was waiting on it"
        );
    }

    #[tokio::test]
    async fn an_owner_with_too_many_questions_starts_again() {
        let cache = RightsCache::new(MINUTE, 100);
        let check = Counting::new(OwnerVerdict::Allowed);
        for n in 0..=MAX_QUESTIONS_PER_OWNER {
            let resource = Resource::new(format!("package-{n}"));
            cache
                .answer(&check, "alice", Action::Read, Some(&resource), t0())
                .await
                .unwrap();
        }
        let first = Resource::new("package-0");
        assert_eq!(
            cache.cached("alice", Action::Read, Some(&first), t0()),
            None
        );
        let last = Resource::new(format!("package-{MAX_QUESTIONS_PER_OWNER}"));
        assert_eq!(
            cache.cached("alice", Action::Read, Some(&last), t0()),
            Some(OwnerVerdict::Allowed)
        );
    }
}
