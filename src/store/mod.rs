//! Where token records live: the [`TokenStore`] trait, its errors, the backends, and
//! (feature `test-util`) the contract every store must keep.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::broadcast;

#[cfg(feature = "oidc")]
use crate::oidc::ReplayKey;
use crate::record::{TokenKind, TokenRecord};
use crate::token::TokenId;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod columns;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod contract;
mod dyn_store;
mod memory;
mod page;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use dyn_store::DynStore;
pub use memory::MemoryStore;
pub use page::{Cursor, InvalidCursor, Order, Page, RecordPage};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteStore, SqliteStoreBuilder};

/// Something that changed in a store, told to every [`Tokens`](crate::Tokens) built on
/// it, in this process or (for stores that broadcast) any other.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreChange {
    /// This token was revoked: drop it from every cache.
    Revoked(TokenId),
    /// What this owner may do has changed
    /// ([`Tokens::owner_rights_changed`](crate::Tokens::owner_rights_changed)): drop every
    /// cached answer about their rights.
    OwnerRightsChanged(Arc<str>),
    /// Changes may have been missed (the broadcast channel dropped): drop everything
    /// cached.
    Resync,
}

/// A boxed error from a store's driver.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed.
///
/// [`StoreError::Unavailable`] is about reaching the store (network, pool, locked file):
/// the request that needed it is answered 503 and nothing is cached. The others say the
/// store answered, but with something that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("token store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The store holds data that cannot be read back as a record.
    #[error("token store holds invalid data: {0}")]
    Corrupt(String),
    /// [`TokenStore::insert`] was given an id that already exists (live or revoked).
    #[error("a token with id {0} already exists")]
    Duplicate(TokenId),
    /// The store does not implement this operation (it keeps the trait's default), so
    /// nothing was changed.
    #[error("token store does not support {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// A store that could not be reached, from any driver error.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// Whether this is [`StoreError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Persistence for token records.
///
/// Implement it for your own database; [`Tokens`](crate::Tokens) adds the cache and the
/// checks on top. Every method is `async` and its future is `Send`. The contract, which
/// every backend in this crate is tested against:
///
/// - Records are keyed by [`TokenId`], which is never secret. A store keeps the digest it
///   is given and never sees a token.
/// - A revoked record is kept (with `revoked_at` set) so that its id can never be issued or
///   accepted again; [`get`](TokenStore::get) returns it, [`list`](TokenStore::list) does
///   not.
/// - [`StoreError::Unavailable`] for a store that cannot be reached; never a panic.
///
/// With the `test-util` feature, [`contract`] runs every clause against your store.
///
/// A complete store, keeping records in a map (the shape of any key-value backend):
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use std::time::SystemTime;
///
/// use tokengate::store::{Cursor, Order, Page, RecordPage, StoreError, TokenStore};
/// use tokengate::{NewToken, TokenId, TokenKind, TokenRecord, Tokens};
///
/// #[derive(Clone, Default)]
/// struct MapStore(Arc<Mutex<HashMap<TokenId, TokenRecord>>>);
///
/// impl MapStore {
///     fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TokenId, TokenRecord>> {
///         self.0.lock().unwrap_or_else(|poison| poison.into_inner())
///     }
/// }
///
/// impl TokenStore for MapStore {
///     async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
///         Ok(self.map().get(&id).cloned())
///     }
///
///     async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
///         let mut map = self.map();
///         if map.contains_key(&record.id) {
///             return Err(StoreError::Duplicate(record.id));
///         }
///         map.insert(record.id, record);
///         Ok(())
///     }
///
///     async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
///         // A scan of every record: fine for a sketch, where a database would read an
///         // index on (owner, created_at, id) from the cursor on.
///         let mut live: Vec<TokenRecord> = self
///             .map()
///             .values()
///             .filter(|r| r.owner == owner && r.revoked_at.is_none())
///             .filter(|r| r.kind == TokenKind::Standard)
///             .cloned()
///             .collect();
///         live.sort_by_key(|r| Cursor::from(r));
///         if page.order() == Order::NewestFirst {
///             live.reverse();
///         }
///         let total = live.len() as u64;
///         let follows = |r: &TokenRecord| match (page.cursor(), page.order()) {
///             (None, _) => true,
///             (Some(c), Order::OldestFirst) => Cursor::from(r) > c,
///             (Some(c), Order::NewestFirst) => Cursor::from(r) < c,
///         };
///         let records = live
///             .into_iter()
///             .filter(follows)
///             .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
///             .take(page.effective_limit() + 1)
///             .collect();
///         Ok(RecordPage::from_lookahead(&page, records, total))
///     }
///
///     async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
///         match self.map().get_mut(&id) {
///             Some(record) if record.revoked_at.is_none() => {
///                 record.revoked_at = Some(at);
///                 Ok(true)
///             }
///             _ => Ok(false),
///         }
///     }
///
///     async fn revoke_all(
///         &self,
///         owner: &str,
///         kind: TokenKind,
///         except: Option<TokenId>,
///         at: SystemTime,
///     ) -> Result<Vec<TokenId>, StoreError> {
///         let mut revoked = Vec::new();
///         for record in self.map().values_mut() {
///             if record.owner == owner
///                 && record.kind == kind
///                 && record.revoked_at.is_none()
///                 && Some(record.id) != except
///             {
///                 record.revoked_at = Some(at);
///                 revoked.push(record.id);
///             }
///         }
///         Ok(revoked)
///     }
///     // `record_use` and `changes` keep their defaults: no last-used times, no feed.
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = Tokens::new(MapStore::default());
/// let created = tokens.create("alice", NewToken::read_only()).await?;
/// assert_eq!(tokens.list("alice", Page::default()).await?.total, 1);
/// assert!(tokens.revoke(created.listing.id.as_str()).await?);
/// # Ok(())
/// # }
/// ```
pub trait TokenStore: Send + Sync + 'static {
    /// The record with this id, revoked or not; `Ok(None)` when there is none.
    fn get(
        &self,
        id: TokenId,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;

    /// Stores a new record. Fails with [`StoreError::Duplicate`] when the id exists,
    /// whether live or revoked; nothing is overwritten.
    fn insert(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The owner's records that are not revoked and are of [`TokenKind::Standard`] (never
    /// sessions nor exchanged tokens; expired ones included, so that the owner sees and can
    /// remove them), ordered by creation time and then by id, so that pages are stable, or
    /// in exactly the reverse order when the page is [`Order::NewestFirst`]. An owner with
    /// no records gets an empty page with `total` 0, not an error.
    ///
    /// The page holds, in its order, the records that follow its [`cursor`](Page::cursor)
    /// (compared by creation time, then id: strictly later, or strictly earlier newest
    /// first; the record the cursor came from need not exist any more), past its
    /// [`offset`](Page::offset), at most [`effective_limit`](Page::effective_limit) of
    /// them. [`RecordPage::next`] is the cursor of the last one when at least one more
    /// follows, `None` otherwise ([`RecordPage::from_lookahead`] does this from one record
    /// too many). `total` counts every listed record of the owner's, wherever the page is.
    ///
    /// What it costs is the store's to choose, but the stores of this crate answer a page
    /// that starts at a cursor in the same time however many records the owner has (an
    /// index on owner, kind, creation time and id among the live records, and a count
    /// kept with every write, in the same transaction); an offset costs the records it
    /// skips.
    fn list(
        &self,
        owner: &str,
        page: Page,
    ) -> impl Future<Output = Result<RecordPage, StoreError>> + Send;

    /// Marks the record revoked at `at`. Returns `true` when this call revoked it, `false`
    /// when there is no such record or it was already revoked (idempotent: the first
    /// revocation time is kept).
    fn revoke(
        &self,
        id: TokenId,
        at: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks every record of `owner` of this `kind` that is not yet revoked as revoked at
    /// `at`, whatever their number, and returns the ids this call revoked, in no particular
    /// order. Records already revoked keep their first revocation time and are not
    /// returned; other owners (compared exactly) and other kinds are untouched. Best made
    /// one atomic step (the SQL stores use one transaction); after an error the caller
    /// cannot tell which were revoked, and [`Tokens`](crate::Tokens) drops its whole cache.
    /// A store that broadcasts
    /// ([`changes`](TokenStore::changes)) tells every other handle of each id, as
    /// [`StoreChange::Revoked`].
    ///
    /// The default changes nothing and fails with [`StoreError::Unsupported`], so that a
    /// store written before this method existed refuses rather than pretends: implement it
    /// (the [`contract`] checks it).
    fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> impl Future<Output = Result<Vec<TokenId>, StoreError>> + Send {
        let _ = (owner, kind, except, at);
        std::future::ready(Err(StoreError::Unsupported("revoke_all")))
    }

    /// Records that the OIDC ID token `key` names was used, and says whether this is its
    /// first use (feature `oidc`): the single use of an ID token's `jti`, across every
    /// node that shares the store. The stores of this crate also implement
    /// [`ReplayGuard`](crate::oidc::ReplayGuard) with it, so that the store itself can be
    /// given to [`IdTokenVerifier`](crate::oidc::IdTokenVerifier) as its guard.
    ///
    /// `Ok(true)` the first time a key is seen, `Ok(false)` when it was recorded before
    /// and its `until` is still after `now`. Keys are compared exactly, issuer and `jti`
    /// together: the same `jti` from another issuer is a first use. The check and the
    /// record must be one atomic step (a primary key on issuer and `jti` and an insert that
    /// fails on a duplicate): of concurrent calls with one key, on any node, exactly one
    /// gets `true`. Once `now` reaches `until` the key may be forgotten: a later call may
    /// answer either way (ID tokens are refused after their `exp` anyway), and stores
    /// delete such records when it suits them.
    ///
    /// The default records nothing and fails with [`StoreError::Unsupported`], so that a
    /// store that does not implement it refuses every exchange (the verifier fails closed)
    /// rather than let an ID token be replayed: implement it (the [`contract`] checks it).
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    fn id_token_first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (key, until, now);
        std::future::ready(Err(StoreError::Unsupported("id_token_first_use")))
    }

    /// Tells every other handle of this store that `owner`'s rights changed, as
    /// [`StoreChange::OwnerRightsChanged`] in their [`changes`](TokenStore::changes), so
    /// that each [`Tokens`](crate::Tokens) drops its cached answers about them
    /// ([`Tokens::owner_rights_changed`](crate::Tokens::owner_rights_changed) calls it after
    /// dropping its own). A store that broadcasts revocations broadcasts this too, on the
    /// same channel.
    ///
    /// The default tells no one: a store without a change feed has no other handle to tell,
    /// and the cache TTL bounds how long another node's answers live.
    fn owner_rights_changed(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = owner;
        std::future::ready(Ok(()))
    }

    /// Records when tokens were last accepted: sets each record's `last_used_at` to the
    /// given time unless it already holds a later one. Unknown ids are ignored. Called off
    /// the request path, in batches, at most about once a minute per token. The default
    /// records nothing.
    fn record_use(
        &self,
        uses: Vec<(TokenId, SystemTime)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        drop(uses);
        std::future::ready(Ok(()))
    }

    /// A feed of changes made through other handles, for stores that can broadcast them
    /// (PostgreSQL's `LISTEN/NOTIFY`). [`Tokens`](crate::Tokens) subscribes once when it is
    /// built, drops revoked ids from its cache as they arrive, and drops its whole cache on
    /// [`StoreChange::Resync`] or when it falls behind. The default, `None`, means the
    /// cache TTL bounds how long a revocation made elsewhere goes unseen.
    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        None
    }
}

impl<S: TokenStore> TokenStore for Arc<S> {
    fn get(
        &self,
        id: TokenId,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send {
        (**self).get(id)
    }

    fn insert(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert(record)
    }

    fn list(
        &self,
        owner: &str,
        page: Page,
    ) -> impl Future<Output = Result<RecordPage, StoreError>> + Send {
        (**self).list(owner, page)
    }

    fn revoke(
        &self,
        id: TokenId,
        at: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke(id, at)
    }

    fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> impl Future<Output = Result<Vec<TokenId>, StoreError>> + Send {
        (**self).revoke_all(owner, kind, except, at)
    }

    #[cfg(feature = "oidc")]
    fn id_token_first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).id_token_first_use(key, until, now)
    }

    fn owner_rights_changed(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).owner_rights_changed(owner)
    }

    fn record_use(
        &self,
        uses: Vec<(TokenId, SystemTime)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_use(uses)
    }

    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        (**self).changes()
    }
}
