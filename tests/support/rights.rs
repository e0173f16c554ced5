//! An application's idea of its users' current rights, for the tests of
//! [`OwnerRights`](tokengate::OwnerRights): everyone reads; only the owners listed for a
//! resource write it. Counts the checks it answers, and can be switched to fail.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokengate::{Action, OwnerRights, OwnerVerdict, RightsError, RightsQuery};

#[derive(Clone, Default)]
pub struct Writers {
    /// (owner, resource) pairs that may write; `""` is "no resource in particular".
    allowed: Arc<Mutex<HashSet<(String, String)>>>,
    checks: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Writers {
    /// `owner` may write `resource` (`""`: requests that name none).
    pub fn allow(&self, owner: &str, resource: &str) {
        self.allowed
            .lock()
            .unwrap()
            .insert((owner.to_owned(), resource.to_owned()));
    }

    /// `owner` may no longer write `resource`.
    pub fn deny(&self, owner: &str, resource: &str) {
        self.allowed
            .lock()
            .unwrap()
            .remove(&(owner.to_owned(), resource.to_owned()));
    }

    /// How many checks it has answered (or failed).
    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl OwnerRights for Writers {
    async fn check(&self, query: RightsQuery<'_>) -> Result<OwnerVerdict, RightsError> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(RightsError::new("the application's database is down"));
        }
        if query.action == Action::Read {
            return Ok(OwnerVerdict::Allowed);
        }
        let resource = query.resource.map_or("", |resource| resource.as_str());
        let key = (query.owner.to_owned(), resource.to_owned());
        Ok(if self.allowed.lock().unwrap().contains(&key) {
            OwnerVerdict::Allowed
        } else {
            OwnerVerdict::Denied
        })
    }
}
