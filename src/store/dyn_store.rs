//! [`DynStore`]: any [`TokenStore`] behind one concrete type.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::{Page, RecordPage, StoreChange, StoreError, TokenStore};
#[cfg(feature = "oidc")]
use crate::oidc::ReplayKey;
use crate::record::{TokenKind, TokenRecord};
use crate::token::TokenId;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`TokenStore`], implemented for every store.
trait ErasedStore: Send + Sync + 'static {
    fn get(&self, id: TokenId) -> BoxFuture<'_, Result<Option<TokenRecord>, StoreError>>;
    fn insert(&self, record: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The owner is owned: the boxed future then borrows only the store.
    fn list(&self, owner: String, page: Page) -> BoxFuture<'_, Result<RecordPage, StoreError>>;
    fn revoke(&self, id: TokenId, at: SystemTime) -> BoxFuture<'_, Result<bool, StoreError>>;
    fn revoke_all(
        &self,
        owner: String,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> BoxFuture<'_, Result<Vec<TokenId>, StoreError>>;
    /// The key is owned, as the owner of `list` is.
    #[cfg(feature = "oidc")]
    fn id_token_first_use(
        &self,
        key: ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// The owner is owned, as the owner of `list` is.
    fn owner_rights_changed(&self, owner: String) -> BoxFuture<'_, Result<(), StoreError>>;
    fn record_use(&self, uses: Vec<(TokenId, SystemTime)>)
    -> BoxFuture<'_, Result<(), StoreError>>;
    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>>;
}

impl<S: TokenStore> ErasedStore for S {
    fn get(&self, id: TokenId) -> BoxFuture<'_, Result<Option<TokenRecord>, StoreError>> {
        Box::pin(TokenStore::get(self, id))
    }

    fn insert(&self, record: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::insert(self, record))
    }

    fn list(&self, owner: String, page: Page) -> BoxFuture<'_, Result<RecordPage, StoreError>> {
        Box::pin(async move { TokenStore::list(self, &owner, page).await })
    }

    fn revoke(&self, id: TokenId, at: SystemTime) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(TokenStore::revoke(self, id, at))
    }

    fn revoke_all(
        &self,
        owner: String,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> BoxFuture<'_, Result<Vec<TokenId>, StoreError>> {
        Box::pin(async move { TokenStore::revoke_all(self, &owner, kind, except, at).await })
    }

    #[cfg(feature = "oidc")]
    fn id_token_first_use(
        &self,
        key: ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { TokenStore::id_token_first_use(self, &key, until, now).await })
    }

    fn owner_rights_changed(&self, owner: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { TokenStore::owner_rights_changed(self, &owner).await })
    }

    fn record_use(
        &self,
        uses: Vec<(TokenId, SystemTime)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::record_use(self, uses))
    }

    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        TokenStore::changes(self)
    }
}

/// Any [`TokenStore`] behind one type, so that an application names one concrete
/// [`Tokens`](crate::Tokens) (the default type parameter) whichever backend it runs on.
/// Each store call costs one allocation for its boxed future; cached lookups make no store
/// call. Cheap to clone.
///
/// ```
/// use tokengate::{Tokens, store::{DynStore, MemoryStore}};
///
/// fn tokens(persistent: bool) -> Tokens {
///     let store = if persistent {
///         // DynStore::new(SqliteStore::open(path).await?) with the `sqlite` feature
///         DynStore::new(MemoryStore::new())
///     } else {
///         DynStore::new(MemoryStore::new())
///     };
///     Tokens::new(store)
/// }
/// # let _ = tokens(false);
/// ```
#[derive(Clone)]
pub struct DynStore(Arc<dyn ErasedStore>);

impl DynStore {
    /// Erases `store`'s type.
    pub fn new(store: impl TokenStore) -> Self {
        Self(Arc::new(store))
    }
}

impl fmt::Debug for DynStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynStore").finish_non_exhaustive()
    }
}

impl TokenStore for DynStore {
    fn get(
        &self,
        id: TokenId,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send {
        self.0.get(id)
    }

    fn insert(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.insert(record)
    }

    fn list(
        &self,
        owner: &str,
        page: Page,
    ) -> impl Future<Output = Result<RecordPage, StoreError>> + Send {
        self.0.list(owner.to_owned(), page)
    }

    fn revoke(
        &self,
        id: TokenId,
        at: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.0.revoke(id, at)
    }

    fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> impl Future<Output = Result<Vec<TokenId>, StoreError>> + Send {
        self.0.revoke_all(owner.to_owned(), kind, except, at)
    }

    #[cfg(feature = "oidc")]
    fn id_token_first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.0.id_token_first_use(key.clone(), until, now)
    }

    fn owner_rights_changed(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.owner_rights_changed(owner.to_owned())
    }

    fn record_use(
        &self,
        uses: Vec<(TokenId, SystemTime)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.record_use(uses)
    }

    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        self.0.changes()
    }
}
