//! [`MemoryStore`]: records in process memory.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use super::{Order, Page, RecordPage, StoreError, TokenStore};
#[cfg(feature = "oidc")]
use crate::oidc::ReplayKey;
use crate::record::{TokenKind, TokenRecord};
use crate::token::TokenId;

/// A [`TokenStore`] in process memory: for tests, examples and single-process tools.
/// Everything is lost when the process ends.
///
/// Cheap to clone; clones share the same records. Safe to use from many tasks at once.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<RwLock<State>>,
}

#[derive(Default)]
struct State {
    records: HashMap<TokenId, TokenRecord>,
    /// Live (unrevoked) ids per owner and kind, in listing order: listings read the
    /// standard ones, [`TokenStore::revoke_all`] any kind.
    by_owner: HashMap<String, HashMap<TokenKind, BTreeSet<(SystemTime, TokenId)>>>,
    /// ID tokens used, each until when it is remembered.
    #[cfg(feature = "oidc")]
    id_token_uses: IdTokenUses,
}

/// The ID tokens used, swept of expired ones whenever their number has doubled since the
/// last sweep, so that a sweep costs a constant per use on average.
#[cfg(feature = "oidc")]
#[derive(Default)]
struct IdTokenUses {
    until: HashMap<ReplayKey, SystemTime>,
    sweep_at: usize,
}

#[cfg(feature = "oidc")]
impl IdTokenUses {
    const FIRST_SWEEP: usize = 1_024;

    fn first_use(&mut self, key: &ReplayKey, until: SystemTime, now: SystemTime) -> bool {
        if self
            .until
            .get(key)
            .is_some_and(|remembered| *remembered > now)
        {
            return false;
        }
        if self.until.len() >= self.sweep_at.max(Self::FIRST_SWEEP) {
            self.until.retain(|_, until| *until > now);
            self.sweep_at = self.until.len().saturating_mul(2);
        }
        self.until.insert(key.clone(), until);
        true
    }
}

impl State {
    /// Takes one record out of its owner's live index.
    fn unindex(&mut self, owner: &str, kind: TokenKind, key: (SystemTime, TokenId)) {
        let Some(kinds) = self.by_owner.get_mut(owner) else {
            return;
        };
        if let Some(ids) = kinds.get_mut(&kind) {
            ids.remove(&key);
            if ids.is_empty() {
                kinds.remove(&kind);
            }
        }
        if kinds.is_empty() {
            self.by_owner.remove(owner);
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records, revoked ones included.
    pub fn len(&self) -> usize {
        self.read().records.len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while the lock was held cannot leave the maps half-updated (each write is a
    // single insert or remove), so a poisoned lock is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.read().records.get(&id).cloned())
    }

    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let mut state = self.write();
        if state.records.contains_key(&record.id) {
            return Err(StoreError::Duplicate(record.id));
        }
        if record.revoked_at.is_none() {
            state
                .by_owner
                .entry(record.owner.clone())
                .or_default()
                .entry(record.kind)
                .or_default()
                .insert((record.created_at, record.id));
        }
        state.records.insert(record.id, record);
        Ok(())
    }

    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        let state = self.read();
        let Some(ids) = state
            .by_owner
            .get(owner)
            .and_then(|kinds| kinds.get(&TokenKind::Standard))
        else {
            return Ok(RecordPage::default());
        };
        // From the cursor on (a range of the ordered index), past the offset, and one
        // more than the page holds, to tell whether another follows.
        let (older, newer) = match page.cursor() {
            Some(cursor) => {
                let key = (cursor.created_at(), cursor.id());
                (
                    ids.range(..key),
                    ids.range((Bound::Excluded(key), Bound::Unbounded)),
                )
            }
            None => (ids.range(..), ids.range(..)),
        };
        let keys: Box<dyn Iterator<Item = &(SystemTime, TokenId)>> = match page.order() {
            Order::OldestFirst => Box::new(newer),
            Order::NewestFirst => Box::new(older.rev()),
        };
        let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let records = keys
            .skip(skip)
            .take(page.effective_limit() + 1)
            .filter_map(|(_, id)| state.records.get(id).cloned())
            .collect();
        Ok(RecordPage::from_lookahead(&page, records, ids.len() as u64))
    }

    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        let mut state = self.write();
        let Some(record) = state.records.get_mut(&id) else {
            return Ok(false);
        };
        if record.revoked_at.is_some() {
            return Ok(false);
        }
        record.revoked_at = Some(at);
        let (owner, kind, key) = (record.owner.clone(), record.kind, (record.created_at, id));
        state.unindex(&owner, kind, key);
        Ok(true)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        let mut state = self.write();
        let State {
            records, by_owner, ..
        } = &mut *state;
        let Some(kinds) = by_owner.get_mut(owner) else {
            return Ok(Vec::new());
        };
        let Some(mut live) = kinds.remove(&kind) else {
            return Ok(Vec::new());
        };
        // The one kept stays live, and so stays indexed.
        let kept = except.and_then(|keep| {
            let entry = live.iter().find(|(_, id)| *id == keep).cloned()?;
            live.remove(&entry);
            Some(entry)
        });
        if let Some(entry) = kept {
            kinds.entry(kind).or_default().insert(entry);
        }
        if kinds.is_empty() {
            by_owner.remove(owner);
        }
        let mut revoked = Vec::with_capacity(live.len());
        for (_, id) in live {
            // The index holds live records only; the check keeps a first revocation time.
            if let Some(record) = records.get_mut(&id).filter(|r| r.revoked_at.is_none()) {
                record.revoked_at = Some(at);
                revoked.push(id);
            }
        }
        Ok(revoked)
    }

    #[cfg(feature = "oidc")]
    async fn id_token_first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        Ok(self.write().id_token_uses.first_use(key, until, now))
    }

    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        let mut state = self.write();
        for (id, at) in uses {
            if let Some(record) = state.records.get_mut(&id) {
                record.last_used_at = record.last_used_at.max(Some(at));
            }
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "oidc"))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Past the first sweep's size, expired uses are dropped and unexpired ones kept.
    #[test]
    fn sweeps_drop_expired_uses_only() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut uses = IdTokenUses::default();
        let key = |n: usize| ReplayKey::new("https://issuer", format!("jti-{n}"));
        let count = IdTokenUses::FIRST_SWEEP;
        for n in 0..count {
            // Every other use expires at t0 + 10 s, the rest at t0 + 100 s.
            let until = t0 + Duration::from_secs(if n % 2 == 0 { 10 } else { 100 });
            assert!(uses.first_use(&key(n), until, t0));
        }
        let later = t0 + Duration::from_secs(50);
        assert!(uses.first_use(&key(count), later + Duration::from_secs(60), later));
        assert_eq!(
            uses.until.len(),
            count / 2 + 1,
            "the expired half was swept"
        );
        for n in (1..count).step_by(2) {
            assert!(
                !uses.first_use(&key(n), later, later),
                "jti-{n} was forgotten"
            );
        }
        assert_eq!(uses.sweep_at, count);
    }
}
