//! [`Tokens`]: the manager applications call to create, list, revoke and check tokens. It
//! owns the cache, so a revoke made through it is seen by the very next lookup.

mod authenticated;
mod background;
mod check;
mod error;
mod events;
#[cfg(feature = "oidc")]
mod exchange;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

pub use authenticated::Authenticated;
use background::{USE_REPORT_BACKLOG, USE_REPORT_INTERVAL, UseReports};
pub use error::TokensError;
use events::EventHook;
pub use events::TokenEvent;
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub use exchange::{
    DEFAULT_EXCHANGED_TOKEN_LIFETIME, ExchangeRefusal, MAX_EXCHANGED_TOKEN_LIFETIME,
};

use crate::access::{Action, Resource};
use crate::cache::{CacheSettings, CachedRef, RecordCache};
use crate::clock::{Clock, SystemClock, whole_millis};
use crate::new_token::{LifetimePolicy, NewToken};
use crate::owner_rights::{
    ErasedRights, OwnerRights, OwnerVerdict, Rights, RightsCache, RightsError,
};
use crate::reason::{Reason, Rejection};
use crate::record::{TokenKind, TokenListing, TokenRecord};
use crate::store::{Cursor, DynStore, Page, StoreChange, StoreError, TokenStore};
use crate::token::{self, InvalidPrefix, PresentedToken, SecretToken, TokenId, TokenPrefix};

/// A token just created: the full token, shown once, and its listing.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedToken {
    /// The full token. Give it to its owner and drop it: only its digest is kept.
    pub token: SecretToken,
    /// What listings will show about it.
    pub listing: TokenListing,
}

/// One page of an owner's tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenList {
    /// The tokens on this page, in the page's order.
    pub tokens: Vec<TokenListing>,
    /// How many live tokens the owner has in all.
    pub total: u64,
    /// Where the next page starts ([`Page::after`] it, in the same order), when a token
    /// follows the last one of this page; `None` when this page is the last.
    pub next: Option<Cursor>,
}

/// How many times [`Tokens::owner_rights_changed`] asks the store to tell the other nodes
/// before it gives up (the first retry after 50 ms, the next 200 ms later).
pub const OWNER_RIGHTS_BROADCAST_ATTEMPTS: u32 = 3;
const OWNER_RIGHTS_FIRST_RETRY: Duration = Duration::from_millis(50);

/// The token manager: create, list, revoke, authenticate.
///
/// Lookups go through a cache keyed by token id: bounded, each entry served for at most
/// the cache TTL (default 60 s); concurrent misses for one id make one store call; store
/// failures are never cached; unknown ids are remembered briefly and in bounded number.
/// Expiry and revocation are checked on every request, cached or not, so an expired token
/// is refused the moment it expires. Cheap to clone: clones share the store and the cache.
///
/// The store type defaults to [`DynStore`], so an application can name one concrete
/// `Tokens` in its state whatever backend it runs on.
///
/// ```
/// use tokengate::{Action, NewToken, Reason, Tokens, store::MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();
/// let created = tokens.create("alice", NewToken::read_only()).await?;
/// let token = created.token.expose_secret();
///
/// let who = tokens.authenticate(token, None, Action::Read).await?;
/// assert_eq!(who.owner(), "alice");
///
/// let refused = tokens.authenticate(token, None, Action::Write).await.unwrap_err();
/// assert_eq!(refused.reason(), Reason::ReadOnly);
///
/// assert!(tokens.revoke(created.listing.id.as_str()).await?);
/// let refused = tokens.authenticate(token, None, Action::Read).await.unwrap_err();
/// assert_eq!(refused.reason(), Reason::Revoked);
/// # Ok(())
/// # }
/// ```
pub struct Tokens<S = DynStore> {
    inner: Arc<Inner<S>>,
}

pub(crate) struct Inner<S> {
    store: S,
    prefix: TokenPrefix,
    clock: Arc<dyn Clock>,
    cache: RecordCache,
    lifetimes: LifetimePolicy,
    events: Option<EventHook>,
    /// The application's check of the owner's current rights, when it installed one.
    rights: Option<Rights>,
    /// The store's change feed, until the background tasks take it.
    changes: Mutex<Option<broadcast::Receiver<StoreChange>>>,
    /// Started on first use, from inside the runtime: where uses are reported.
    use_reports: OnceLock<Option<UseReports>>,
}

impl<S> Clone for Tokens<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for Tokens<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("prefix", &self.inner.prefix)
            .field("cached", &self.inner.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Tokens`]; see [`Tokens::builder`].
pub struct TokensBuilder<S> {
    store: S,
    prefix: TokenPrefix,
    clock: Arc<dyn Clock>,
    cache: CacheSettings,
    lifetimes: LifetimePolicy,
    events: Option<EventHook>,
    rights: Option<Box<dyn ErasedRights>>,
}

impl<S> fmt::Debug for TokensBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokensBuilder")
            .field("prefix", &self.prefix)
            .field("cache", &self.cache)
            .field("lifetimes", &self.lifetimes)
            .field("owner_rights", &self.rights.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> TokensBuilder<S> {
    /// The prefix of issued tokens (default `tg`; an npm registry wants `npm`).
    ///
    /// # Errors
    ///
    /// [`InvalidPrefix`] unless the prefix is 1 to 16 lower-case ASCII letters or digits.
    pub fn prefix(mut self, prefix: &str) -> Result<Self, InvalidPrefix> {
        self.prefix = TokenPrefix::new(prefix)?;
        Ok(self)
    }

    /// How long a looked-up record is trusted without asking the store again (default
    /// 60 s). Revocations made through this `Tokens` apply at once regardless; this bounds
    /// how long a revocation made elsewhere (another node, without a broadcasting store)
    /// can go unseen.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache.ttl = ttl;
        self
    }

    /// Most records cached at once (default 100,000).
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache.capacity = capacity;
        self
    }

    /// How long an id the store does not know is remembered as unknown (default 5 s), so
    /// that a client retrying a bad token does not reach the store each time.
    pub fn unknown_ttl(mut self, ttl: Duration) -> Self {
        self.cache.unknown_ttl = ttl;
        self
    }

    /// Most unknown ids remembered at once (default 10,000); kept apart from the record
    /// cache so that a flood of made-up ids cannot push real tokens out.
    pub fn unknown_capacity(mut self, capacity: u64) -> Self {
        self.cache.unknown_capacity = capacity;
        self
    }

    /// The clock used for creation times and expiry (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long a token that can write (or stage) lives when its creator gives no expiry
    /// (default: forever). npm's registry uses seven days.
    pub fn write_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.write_default = Some(lifetime);
        self
    }

    /// The longest a token that can write (or stage) may live (default: no limit); creating one with
    /// a later expiry, or with none and no [`write_token_lifetime`](Self::write_token_lifetime),
    /// fails with [`ExpiryProblem::PastMaximum`](crate::ExpiryProblem::PastMaximum), whose
    /// message gives the limit. npm's registry allows 90 days. Read-only tokens and
    /// sessions are not bound by it.
    pub fn max_write_token_lifetime(mut self, max: Duration) -> Self {
        self.lifetimes.write_max = Some(max);
        self
    }

    /// How long a session ([`NewToken::session`]) lives when it is given no expiry
    /// (default two hours, as npm's `npm login`).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.session = lifetime;
        self
    }

    /// How long a token minted by [`Tokens::exchange`] lives (feature `oidc`; default
    /// [`DEFAULT_EXCHANGED_TOKEN_LIFETIME`], 15 minutes), cut to
    /// [`MAX_EXCHANGED_TOKEN_LIFETIME`] (30 minutes) when longer and raised to one second
    /// when shorter. A publish takes seconds to minutes; the token outlives it by little.
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    pub fn exchanged_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.exchanged =
            lifetime.clamp(Duration::from_secs(1), MAX_EXCHANGED_TOKEN_LIFETIME);
        self
    }

    /// A hook that hears every [`TokenEvent`]: created, revoked, used, refused. It runs
    /// on the request path, so it should only count or hand the event on.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use tokengate::{TokenEvent, Tokens, store::MemoryStore};
    ///
    /// let refused = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&refused);
    /// let tokens = Tokens::builder(MemoryStore::new())
    ///     .on_event(move |event| {
    ///         if let TokenEvent::Refused { .. } = event {
    ///             counter.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build();
    /// # let _ = tokens;
    /// ```
    pub fn on_event(mut self, hook: impl Fn(&TokenEvent<'_>) + Send + Sync + 'static) -> Self {
        self.events = Some(Arc::new(hook));
        self
    }

    /// The application's check of what a token's owner may do now, asked after the
    /// token's own grants allowed a request (see [`OwnerRights`]), so that no token does
    /// more than its owner may. Answers are cached per owner and question for no longer
    /// than [`cache_ttl`](Self::cache_ttl), for as many owners as
    /// [`cache_capacity`](Self::cache_capacity); call [`Tokens::owner_rights_changed`]
    /// when an owner's rights change. An error from the check refuses the request.
    ///
    /// Without one (the default), the token's grants decide alone, at no extra cost.
    pub fn owner_rights(mut self, rights: impl OwnerRights) -> Self {
        self.rights = Some(Box::new(rights));
        self
    }

    /// Builds the manager, and subscribes to the store's change feed if it has one.
    ///
    /// Inside a tokio runtime, the tasks that follow the store's change feed and record
    /// uses start here, so that revocations made elsewhere are applied from the start, not
    /// from the first accepted token; outside one they start on first use in a runtime.
    pub fn build(self) -> Tokens<S> {
        let changes = self.store.changes();
        let tokens = Tokens {
            inner: Arc::new(Inner {
                rights: self.rights.map(|check| Rights {
                    check,
                    cache: RightsCache::new(self.cache.ttl, self.cache.capacity),
                }),
                cache: RecordCache::new(self.cache),
                lifetimes: self.lifetimes,
                store: self.store,
                prefix: self.prefix,
                clock: self.clock,
                events: self.events,
                changes: Mutex::new(changes),
                use_reports: OnceLock::new(),
            }),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokens.background();
        }
        tokens
    }
}

impl<S: TokenStore> Tokens<S> {
    /// A builder with the defaults: prefix `tg`, 60 s cache TTL, 100,000 cached records,
    /// unknown ids remembered for 5 s, the system clock, no limit on token lifetimes but
    /// two-hour sessions, no event hook.
    pub fn builder(store: S) -> TokensBuilder<S> {
        TokensBuilder {
            store,
            prefix: TokenPrefix::default(),
            clock: Arc::new(SystemClock),
            cache: CacheSettings {
                ttl: Duration::from_secs(60),
                capacity: 100_000,
                unknown_ttl: Duration::from_secs(5),
                unknown_capacity: 10_000,
            },
            lifetimes: LifetimePolicy::default(),
            events: None,
            rights: None,
        }
    }

    /// A manager with every default; see [`Tokens::builder`].
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Creates a token for `owner`. The full token is in the result and nowhere else: only
    /// its digest is stored.
    ///
    /// # Errors
    ///
    /// [`TokensError::InvalidNewToken`] naming the option that is wrong (nothing is
    /// stored), [`TokensError::Store`] when the store fails, [`TokensError::Random`] when
    /// the operating system's generator does.
    pub async fn create(
        &self,
        owner: &str,
        options: NewToken,
    ) -> Result<CreatedToken, TokensError> {
        let clock_now = self.inner.clock.now();
        let now = whole_millis(clock_now).unwrap_or(clock_now);
        let valid = options.validate(owner, now, &self.inner.lifetimes)?;
        // Ids have 65 random bits; a collision is retried rather than reported.
        let mut attempts_left = 3;
        loop {
            let token = SecretToken::generate(&self.inner.prefix)?;
            let mut record = TokenRecord::new(token.id(), owner, token.digest(), now);
            record.grants = valid.grants.clone();
            record.kind = valid.kind;
            record.second_factor = valid.second_factor;
            record.cidr = valid.cidr.clone();
            record.expires_at = valid.expires_at;
            record.name = valid.name.clone();
            record.description = valid.description.clone();
            let listing = TokenListing::from_record(&self.inner.prefix, &record);
            match self.inner.store.insert(record).await {
                Ok(()) => {
                    self.inner.cache.forget_unknown(token.id());
                    self.emit(|| TokenEvent::Created { listing: &listing });
                    return Ok(CreatedToken { token, listing });
                }
                Err(StoreError::Duplicate(_)) if attempts_left > 1 => attempts_left -= 1,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// One page of `owner`'s live tokens, oldest first or (with
    /// [`Page::newest_first`]) newest first. Truncated tokens only. Page through them with
    /// [`TokenList::next`] and [`Page::after`]: every page then costs the same, and tokens
    /// created or revoked meanwhile move no other token between pages.
    ///
    /// ```
    /// use tokengate::store::{MemoryStore, Page};
    /// use tokengate::{NewToken, Tokens};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let tokens = Tokens::new(MemoryStore::new());
    /// for _ in 0..5 {
    ///     tokens.create("alice", NewToken::read_only()).await?;
    /// }
    /// let mut page = Page::first(2).newest_first();
    /// let mut seen = 0;
    /// loop {
    ///     let list = tokens.list("alice", page).await?;
    ///     seen += list.tokens.len();
    ///     match list.next {
    ///         Some(cursor) => page = Page::after(cursor, 2).newest_first(),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(seen, 5);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`TokensError::Store`] when the store fails.
    pub async fn list(&self, owner: &str, page: Page) -> Result<TokenList, TokensError> {
        let page = self.inner.store.list(owner, page).await?;
        Ok(TokenList {
            tokens: page
                .records
                .iter()
                .map(|record| TokenListing::from_record(&self.inner.prefix, record))
                .collect(),
            total: page.total,
            next: page.next,
        })
    }

    /// Revokes a token given its id or the full token (npm's CLI sends either). Returns
    /// whether something was revoked: `false` for an unknown or already revoked token.
    ///
    /// The very next lookup through this `Tokens` refuses the token, including a lookup
    /// that was already waiting on the store when the revoke began.
    ///
    /// # Errors
    ///
    /// [`TokensError::InvalidReference`] for text that is neither an id nor a token with
    /// this manager's prefix; [`TokensError::Store`] when the store fails.
    pub async fn revoke(&self, id_or_token: &str) -> Result<bool, TokensError> {
        let id = self.reference(id_or_token)?;
        self.revoke_id(id, None).await
    }

    /// Like [`Tokens::revoke`], but only revokes a token that belongs to `owner`; another
    /// owner's token is treated as unknown (`false`), so its existence is not revealed.
    ///
    /// # Errors
    ///
    /// As [`Tokens::revoke`].
    pub async fn revoke_owned(&self, owner: &str, id_or_token: &str) -> Result<bool, TokensError> {
        let id = self.reference(id_or_token)?;
        match self.inner.store.get(id).await? {
            Some(record) if record.owner == owner => self.revoke_id(id, Some(owner)).await,
            _ => Ok(false),
        }
    }

    /// Revokes every token of `kind` that `owner` holds, whatever their number (all of a
    /// user's sessions when their password changes, say), and returns how many this call
    /// revoked. Other owners' tokens and `owner`'s tokens of other kinds are untouched.
    ///
    /// Each revoked token is refused from the very next lookup through this `Tokens`,
    /// cached or not, and each is reported to the event hook as [`TokenEvent::Revoked`].
    /// With a store that broadcasts its [`changes`](TokenStore::changes) (PostgreSQL's),
    /// every other node forgets them as the notices arrive.
    ///
    /// ```
    /// use tokengate::{Action, NewToken, Reason, TokenKind, Tokens, store::MemoryStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let tokens = Tokens::new(MemoryStore::new());
    /// let laptop = tokens.create("alice", NewToken::session()).await?;
    /// let phone = tokens.create("alice", NewToken::session()).await?;
    /// let ci = tokens.create("alice", NewToken::read_only()).await?;
    ///
    /// assert_eq!(tokens.revoke_all("alice", TokenKind::Session).await?, 2);
    /// for session in [&laptop, &phone] {
    ///     let refused = tokens
    ///         .authenticate(session.token.expose_secret(), None, Action::Read)
    ///         .await
    ///         .unwrap_err();
    ///     assert_eq!(refused.reason(), Reason::Revoked);
    /// }
    /// assert!(tokens.authenticate(ci.token.expose_secret(), None, Action::Read).await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`TokensError::Store`] when the store does not implement
    /// [`TokenStore::revoke_all`] ([`StoreError::Unsupported`]: nothing was revoked), or
    /// fails. A store that failed may still have revoked them without saying which (a
    /// connection lost before its answer), so this `Tokens` then drops its whole cache, and
    /// none of them is served from it.
    pub async fn revoke_all(&self, owner: &str, kind: TokenKind) -> Result<u64, TokensError> {
        self.revoke_every(owner, kind, None).await
    }

    /// [`Tokens::revoke_all`], but for `keep`: a new password ends every session of its
    /// owner except the one that changed it.
    ///
    /// # Errors
    ///
    /// As [`Tokens::revoke_all`].
    pub async fn revoke_all_except(
        &self,
        owner: &str,
        kind: TokenKind,
        keep: TokenId,
    ) -> Result<u64, TokensError> {
        self.revoke_every(owner, kind, Some(keep)).await
    }

    async fn revoke_every(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
    ) -> Result<u64, TokensError> {
        let revoked = match self
            .inner
            .store
            .revoke_all(owner, kind, except, self.inner.clock.now())
            .await
        {
            Ok(revoked) => revoked,
            Err(error) => {
                if !matches!(error, StoreError::Unsupported(_)) {
                    self.inner.forget_all();
                }
                return Err(error.into());
            }
        };
        for &id in &revoked {
            self.inner.cache.forget(id);
            self.emit(|| TokenEvent::Revoked {
                id,
                owner: Some(owner),
            });
        }
        Ok(revoked.len() as u64)
    }

    /// Checks a presented token for a request from `client` (when known) that performs
    /// `action`.
    ///
    /// Steps, in order, each refusing with its own [`Reason`]: the offline format check
    /// (no store call for junk), the lookup by id (cache, then store), the constant-time
    /// digest comparison, revocation and expiry, the client address against the allow-list,
    /// and finally the token's access against the action.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] saying why the token was refused.
    pub async fn authenticate(
        &self,
        token: &str,
        client: Option<IpAddr>,
        action: Action,
    ) -> Result<Authenticated, Rejection> {
        self.authenticate_for(token, client, action, None).await
    }

    /// [`Tokens::authenticate`] for a request that performs `action` on `resource`: the
    /// token's grant on that resource decides, and a refusal names it.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] saying why the token was refused.
    pub async fn authenticate_on(
        &self,
        token: &str,
        client: Option<IpAddr>,
        action: Action,
        resource: &Resource,
    ) -> Result<Authenticated, Rejection> {
        self.authenticate_for(token, client, action, Some(resource))
            .await
    }

    async fn authenticate_for(
        &self,
        token: &str,
        client: Option<IpAddr>,
        action: Action,
        resource: Option<&Resource>,
    ) -> Result<Authenticated, Rejection> {
        let answer = match self.parse(token) {
            Ok(presented) => self.authorize(presented, client, action, resource).await,
            Err(rejection) => Err(rejection),
        };
        if let Err(rejection) = &answer {
            self.emit(|| TokenEvent::Refused {
                rejection,
                client,
                method: None,
                path: None,
            });
        }
        answer
    }

    /// The offline half of [`Tokens::authenticate`]: format, checksum, then the SHA-256.
    /// Needs no store and no `.await`.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] with [`Reason::Malformed`] for anything that cannot be a token of
    /// this manager.
    pub fn parse(&self, token: &str) -> Result<PresentedToken, Rejection> {
        token::ParsedToken::parse(&self.inner.prefix, token)
            .map(|parsed| parsed.presented())
            .map_err(|error| Rejection::new(Reason::Malformed(error), None))
    }

    /// The online half of [`Tokens::authenticate`]: lookup, digest, status, address and
    /// grant checks for a token that [`Tokens::parse`] accepted, for a request that
    /// performs `action` on `resource` (or on nothing in particular).
    ///
    /// # Errors
    ///
    /// A [`Rejection`] saying why the token was refused.
    pub async fn authorize(
        &self,
        presented: PresentedToken,
        client: Option<IpAddr>,
        action: Action,
        resource: Option<&Resource>,
    ) -> Result<Authenticated, Rejection> {
        if let Some(answer) = self.authorize_cached(presented, || client, action, resource) {
            return answer;
        }
        self.authorize_from_store(presented, client, action, resource)
            .await
    }

    /// [`Tokens::authorize`] once [`Tokens::authorize_cached`] has said that the store
    /// must be asked; the layer calls it directly rather than probing the cache twice.
    pub(crate) async fn authorize_from_store(
        &self,
        presented: PresentedToken,
        client: Option<IpAddr>,
        action: Action,
        resource: Option<&Resource>,
    ) -> Result<Authenticated, Rejection> {
        let refuse = |reason| Rejection::new(reason, Some(presented.id));
        let cached = self
            .inner
            .cache
            .fetch(&self.inner.store, presented.id, self.inner.clock.now())
            .await
            .map_err(refuse)?;
        // The store may have taken a while: expiry is judged at the time of the answer.
        let now = self.inner.clock.now();
        check_record(&cached, presented, now, || client, action, resource)?;
        if let Some(rights) = &self.inner.rights {
            let verdict = rights
                .cache
                .answer(&*rights.check, &cached.record.owner, action, resource, now)
                .await;
            owner_allows(verdict, presented.id, resource)?;
        }
        Ok(self.accept(cached, presented.id, now, action, resource))
    }

    /// [`Tokens::authorize`] answered from the cache alone, without awaiting: `None` when
    /// the store (or the owner's rights check) must be asked. The client address is only
    /// worked out for a token with an allow-list.
    pub(crate) fn authorize_cached(
        &self,
        presented: PresentedToken,
        client: impl FnOnce() -> Option<IpAddr>,
        action: Action,
        resource: Option<&Resource>,
    ) -> Option<Result<Authenticated, Rejection>> {
        let now = self.inner.clock.now();
        let cached = match self.inner.cache.cached(presented.id, now)? {
            Ok(cached) => cached,
            Err(reason) => return Some(Err(Rejection::new(reason, Some(presented.id)))),
        };
        if let Err(rejection) = check_record(&cached, presented, now, client, action, resource) {
            return Some(Err(rejection));
        }
        if let Some(rights) = &self.inner.rights {
            let verdict = rights
                .cache
                .cached(&cached.record.owner, action, resource, now)?;
            if let Err(rejection) = owner_allows(Ok(verdict), presented.id, resource) {
                return Some(Err(rejection));
            }
        }
        Some(Ok(self.accept(cached, presented.id, now, action, resource)))
    }

    /// Whether the owner of an accepted token may perform `action` on `resource` now: the
    /// token's grants ([`Authenticated::check`]), then the owner's rights, from the cache
    /// or the application's [`OwnerRights`]. For a handler that learns what a request
    /// touches only from its body, after the gate ran.
    ///
    /// # Errors
    ///
    /// A [`Rejection`]: [`Reason::NotPermitted`] or [`Reason::ReadOnly`] from the grants,
    /// [`Reason::OwnerNotPermitted`] or [`Reason::OwnerRightsUnavailable`] from the owner's
    /// rights.
    pub async fn owner_may(
        &self,
        who: &Authenticated,
        action: Action,
        resource: &Resource,
    ) -> Result<(), Rejection> {
        who.check(action, resource)?;
        let Some(rights) = &self.inner.rights else {
            return Ok(());
        };
        let verdict = rights
            .cache
            .answer(
                &*rights.check,
                who.owner(),
                action,
                Some(resource),
                self.inner.clock.now(),
            )
            .await;
        owner_allows(verdict, who.token_id(), Some(resource))
    }

    /// Says that what `owner` may do has changed (removed from a team, say): every cached
    /// answer of the [`OwnerRights`] check about them is dropped, so the very next request
    /// with any of their tokens asks again; their tokens themselves are untouched. With a
    /// store that broadcasts its [`changes`](TokenStore::changes) (PostgreSQL's), every
    /// other node drops its answers too, as the notice arrives.
    ///
    /// Call it after the change is committed: a check that read the old rights and is
    /// still in flight answers only the requests already waiting on it.
    ///
    /// # Errors
    ///
    /// [`TokensError::Store`] when the store could not tell the other nodes, after
    /// [`OWNER_RIGHTS_BROADCAST_ATTEMPTS`] tries a short back-off apart (one only when it
    /// does not support telling them, or the owner's name cannot be sent); this node's
    /// answers are dropped all the same, and the other nodes' live until their cache TTL.
    pub async fn owner_rights_changed(&self, owner: &str) -> Result<(), TokensError> {
        self.invalidate_owner_rights(owner);
        let mut wait = OWNER_RIGHTS_FIRST_RETRY;
        let mut attempt = 1;
        loop {
            match self.inner.store.owner_rights_changed(owner).await {
                Ok(()) => return Ok(()),
                // A dropped connection or a busy pool passes; nothing else would.
                Err(error)
                    if error.is_unavailable() && attempt < OWNER_RIGHTS_BROADCAST_ATTEMPTS =>
                {
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Drops this node's cached answers about `owner`'s rights: for a change learnt from
    /// elsewhere. [`Tokens::owner_rights_changed`] does this and tells the other nodes.
    pub fn invalidate_owner_rights(&self, owner: &str) {
        self.inner.forget_owner_rights(owner);
    }

    /// The use report and the event for a token that passed every check.
    fn accept(
        &self,
        cached: CachedRef,
        id: TokenId,
        now: SystemTime,
        action: Action,
        resource: Option<&Resource>,
    ) -> Authenticated {
        if let Some(reports) = self.background() {
            if cached.claim_use_report(now, USE_REPORT_INTERVAL) {
                // Never waits: when the writer is behind, this use goes unrecorded.
                let _ = reports.try_send((id, now));
            }
        }
        // The lookup's own reference becomes the caller's: no extra reference count.
        let authenticated = Authenticated { cached };
        self.emit(|| TokenEvent::Used {
            by: &authenticated,
            action,
            resource,
        });
        authenticated
    }

    /// Drops one id from this node's cache: for a revocation learnt from elsewhere.
    pub fn invalidate(&self, id: TokenId) {
        self.inner.cache.forget(id);
    }

    /// Drops every cached record, unknown id and owner's rights, including lookups still
    /// in flight: for when revocations may have been missed.
    pub fn invalidate_all(&self) {
        self.inner.forget_all();
    }

    fn reference(&self, id_or_token: &str) -> Result<TokenId, TokensError> {
        token::id_from_id_or_token(&self.inner.prefix, id_or_token.trim())
            .ok_or(TokensError::InvalidReference)
    }

    async fn revoke_id(&self, id: TokenId, owner: Option<&str>) -> Result<bool, TokensError> {
        let revoked = self.inner.store.revoke(id, self.inner.clock.now()).await?;
        self.inner.cache.forget(id);
        if revoked {
            self.emit(|| TokenEvent::Revoked { id, owner });
        }
        Ok(revoked)
    }

    /// Starts, once and from inside the runtime, the tasks that write uses to the store and
    /// follow its change feed. Without a tokio runtime neither runs: uses go unrecorded and
    /// the cache TTL alone bounds revocations made elsewhere.
    fn background(&self) -> Option<&UseReports> {
        self.inner
            .use_reports
            .get_or_init(|| {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    tracing::warn!("tokengate: no tokio runtime; last-used times and store change feeds are off");
                    return None;
                };
                let feed = self
                    .inner
                    .changes
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .take();
                if let Some(feed) = feed {
                    runtime.spawn(background::follow_changes(Arc::downgrade(&self.inner), feed));
                }
                let (sender, receiver) = tokio::sync::mpsc::channel(USE_REPORT_BACKLOG);
                runtime.spawn(background::write_uses(Arc::downgrade(&self.inner), receiver));
                Some(sender)
            })
            .as_ref()
    }
}

/// The checks of the record itself, after the lookup: secret, status, address, grants.
fn check_record(
    cached: &CachedRef,
    presented: PresentedToken,
    now: SystemTime,
    client: impl FnOnce() -> Option<IpAddr>,
    action: Action,
    resource: Option<&Resource>,
) -> Result<(), Rejection> {
    check::check(
        &cached.record,
        presented.digest,
        now,
        client,
        action,
        resource,
    )
    .map_err(|reason| {
        let rejection = Rejection::new(reason, Some(presented.id));
        match (reason, resource) {
            (Reason::NotPermitted(_), Some(resource)) => rejection.on(resource.clone()),
            _ => rejection,
        }
    })
}

/// The refusal for an owner's rights that do not allow the request, or could not be
/// checked; failing closed.
fn owner_allows(
    verdict: Result<OwnerVerdict, RightsError>,
    id: TokenId,
    resource: Option<&Resource>,
) -> Result<(), Rejection> {
    let reason = match verdict {
        Ok(OwnerVerdict::Allowed) => return Ok(()),
        Ok(_) => Reason::OwnerNotPermitted,
        Err(error) => {
            tracing::warn!(token_id = %id, %error, "owner rights check failed");
            Reason::OwnerRightsUnavailable
        }
    };
    let rejection = Rejection::new(reason, Some(id));
    Err(match resource {
        Some(resource) if reason == Reason::OwnerNotPermitted => rejection.on(resource.clone()),
        _ => rejection,
    })
}

impl<S> Inner<S> {
    /// Drops every cached record, unknown id and answer about owners' rights.
    pub(crate) fn forget_all(&self) {
        self.cache.forget_all();
        if let Some(rights) = &self.rights {
            rights.cache.forget_all();
        }
    }

    /// Drops every cached answer about `owner`'s rights.
    pub(crate) fn forget_owner_rights(&self, owner: &str) {
        if let Some(rights) = &self.rights {
            rights.cache.forget(owner);
        }
    }
}

impl<S> Tokens<S> {
    /// The prefix of the tokens this manager issues and accepts.
    pub fn prefix(&self) -> &TokenPrefix {
        &self.inner.prefix
    }

    /// How long a token that can write lives when its creator gives no expiry
    /// ([`TokensBuilder::write_token_lifetime`]; `None`: until revoked), so that a form can
    /// say what an empty expiry means.
    pub fn write_token_lifetime(&self) -> Option<Duration> {
        self.inner.lifetimes.write_default
    }

    /// Tells the event hook, if there is one; `event` is only built when there is.
    pub(crate) fn emit<'a>(&self, event: impl FnOnce() -> TokenEvent<'a>) {
        if let Some(hook) = &self.inner.events {
            hook(&event());
        }
    }
}
