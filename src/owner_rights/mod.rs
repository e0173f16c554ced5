//! The owner's current rights: what the application says a token's owner may do now, asked
//! after the token's own grants, so that no token does more than its owner may.
//!
//! A token's grants are what its owner asked for when it was made; what the owner may do
//! can shrink later (removed from a team, say). An application that knows this implements
//! [`OwnerRights`] and installs it with
//! [`TokensBuilder::owner_rights`](crate::TokensBuilder::owner_rights). Answers are cached
//! per owner for no longer than token records are, and dropped at once by
//! [`Tokens::owner_rights_changed`](crate::Tokens::owner_rights_changed) (on every node,
//! with a store that broadcasts its changes).

mod cache;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub(crate) use cache::RightsCache;

use crate::access::{Action, Resource};
use crate::store::BoxError;

/// One question to [`OwnerRights`]: may `owner` perform `action` on `resource` now?
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RightsQuery<'a> {
    /// Who the token belongs to.
    pub owner: &'a str,
    /// What the request does.
    pub action: Action,
    /// What it does it to, when the gate's resolver (or the caller) said; `None` for a
    /// request that names nothing in particular.
    pub resource: Option<&'a Resource>,
}

/// The application's answer to a [`RightsQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnerVerdict {
    /// The owner may do this now: the token's grants decide alone.
    Allowed,
    /// The owner may not (any longer): the token is refused with
    /// [`Reason::OwnerNotPermitted`](crate::Reason::OwnerNotPermitted), whatever its grants.
    Denied,
}

/// Why an owner's rights could not be checked. The request is refused with
/// [`Reason::OwnerRightsUnavailable`](crate::Reason::OwnerRightsUnavailable) (a 503) and
/// nothing is cached: the check fails closed.
#[derive(Debug, thiserror::Error)]
#[error("the token owner's rights could not be checked: {0}")]
pub struct RightsError(#[source] BoxError);

impl RightsError {
    /// An error from the application's own data layer.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

/// What a token's owner may do now, as the application knows it: asked after the token's
/// own grants allowed a request, and only then.
///
/// Answers are cached per owner and question (action and resource) for at most the
/// record cache's TTL ([`TokensBuilder::cache_ttl`](crate::TokensBuilder::cache_ttl)),
/// errors never; call [`Tokens::owner_rights_changed`](crate::Tokens::owner_rights_changed)
/// whenever an owner's rights change, and every cached answer about them is dropped before
/// the next request.
///
/// ```
/// use std::collections::HashSet;
/// use std::sync::{Arc, Mutex};
/// use tokengate::{
///     Action, NewToken, OwnerRights, OwnerVerdict, Reason, Resource, RightsError,
///     RightsQuery, Tokens, store::MemoryStore,
/// };
///
/// /// Who may publish: everyone in the set.
/// struct Publishers(Arc<Mutex<HashSet<String>>>);
///
/// impl OwnerRights for Publishers {
///     async fn check(&self, query: RightsQuery<'_>) -> Result<OwnerVerdict, RightsError> {
///         let publishers = self.0.lock().map_err(|_| RightsError::new("poisoned"))?;
///         Ok(match query.action {
///             Action::Write if !publishers.contains(query.owner) => OwnerVerdict::Denied,
///             _ => OwnerVerdict::Allowed,
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let publishers = Arc::new(Mutex::new(HashSet::from(["alice".to_owned()])));
/// let tokens = Tokens::builder(MemoryStore::new())
///     .owner_rights(Publishers(Arc::clone(&publishers)))
///     .build();
/// let token = tokens.create("alice", NewToken::read_write()).await?.token;
/// let tool = Resource::new("tool");
/// assert!(tokens.authenticate_on(token.expose_secret(), None, Action::Write, &tool).await.is_ok());
///
/// // alice loses the right: her token loses it on the next request, and is not revoked.
/// publishers.lock().unwrap().remove("alice");
/// tokens.owner_rights_changed("alice").await?;
/// let refused = tokens
///     .authenticate_on(token.expose_secret(), None, Action::Write, &tool)
///     .await
///     .unwrap_err();
/// assert_eq!(refused.reason(), Reason::OwnerNotPermitted);
/// assert!(tokens.authenticate_on(token.expose_secret(), None, Action::Read, &tool).await.is_ok());
/// # Ok(())
/// # }
/// ```
pub trait OwnerRights: Send + Sync + 'static {
    /// Whether `query.owner` may perform `query.action` on `query.resource` now.
    ///
    /// # Errors
    ///
    /// A [`RightsError`] when the answer cannot be known (the application's database is
    /// down): the request is refused, and nothing is cached.
    fn check(
        &self,
        query: RightsQuery<'_>,
    ) -> impl Future<Output = Result<OwnerVerdict, RightsError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`OwnerRights`], as [`Tokens`](crate::Tokens) holds it.
pub(crate) trait ErasedRights: Send + Sync + 'static {
    fn check<'a>(
        &'a self,
        query: RightsQuery<'a>,
    ) -> BoxFuture<'a, Result<OwnerVerdict, RightsError>>;
}

impl<T: OwnerRights> ErasedRights for T {
    fn check<'a>(
        &'a self,
        query: RightsQuery<'a>,
    ) -> BoxFuture<'a, Result<OwnerVerdict, RightsError>> {
        Box::pin(OwnerRights::check(self, query))
    }
}

/// The installed check and its cache.
pub(crate) struct Rights {
    pub(crate) check: Box<dyn ErasedRights>,
    pub(crate) cache: RightsCache,
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rights")
            .field("owners_cached", &self.cache.owner_count())
            .finish_non_exhaustive()
    }
}
