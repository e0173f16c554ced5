//! [`Tokens`]: the manager applications call to create, list, revoke and check tokens. It
//! owns the cache, so a revoke made through it is seen by the very next lookup.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};

use crate::cache::{CacheSettings, Cached, RecordCache};

use crate::cidr::{CidrError, CidrList};
use crate::clock::{Clock, SystemClock, whole_millis};
use crate::digest::TokenDigest;
use crate::record::{Access, Expiry, NewToken, Status, TokenListing, TokenRecord};
use crate::reject::{Reason, Rejection};
use crate::store::{Page, StoreChange, StoreError, TokenStore};
use crate::token::{self, PresentedToken, RandomError, SecretToken, TokenId, TokenPrefix};

/// Longest owner name, in bytes.
pub const MAX_OWNER_LEN: usize = 256;
/// Longest token name, in characters.
pub const MAX_NAME_LEN: usize = 256;
/// Longest token description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// Why a token could not be created, listed or revoked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// An allow-list entry is not a CIDR range or address.
    #[error(transparent)]
    InvalidCidr(#[from] CidrError),
    /// A text option (owner, name, description) is empty, too long or has control
    /// characters.
    #[error("invalid {field}: {problem}")]
    InvalidText {
        /// `owner`, `name` or `description`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The expiry is not in the future.
    #[error("invalid expiry: the token would expire {0}")]
    InvalidExpiry(&'static str),
    /// Revoke was given something that is neither a token id nor a token of this
    /// application.
    #[error("not a token id or a token issued here")]
    InvalidReference,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A token just created: the full token, shown once, and its listing.
#[derive(Debug)]
pub struct CreatedToken {
    /// The full token. Give it to its owner and drop it: only its digest is kept.
    pub token: SecretToken,
    /// What listings will show about it.
    pub listing: TokenListing,
}

/// One page of an owner's tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenList {
    /// The tokens on this page, oldest first.
    pub tokens: Vec<TokenListing>,
    /// How many live tokens the owner has in all.
    pub total: u64,
}

/// Who a request was made by: what the inner service learns from an accepted token.
///
/// Shows no digest and no secret (its `Debug` included). Cheap to clone.
#[derive(Clone)]
pub struct Authenticated {
    cached: Arc<Cached>,
}

impl Authenticated {
    /// The token's public id.
    pub fn token_id(&self) -> TokenId {
        self.cached.record.id
    }

    /// Who the token belongs to.
    pub fn owner(&self) -> &str {
        &self.cached.record.owner
    }

    /// Read-only or read-write.
    pub fn access(&self) -> Access {
        self.cached.record.access
    }

    /// The token's name, if it has one.
    pub fn token_name(&self) -> Option<&str> {
        self.cached.record.name.as_deref()
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("token_id", &self.cached.record.id)
            .field("owner", &self.cached.record.owner)
            .field("access", &self.cached.record.access)
            .field("token_name", &self.cached.record.name)
            .finish()
    }
}

/// The token manager: create, list, revoke, authenticate.
///
/// Lookups go through a cache keyed by token id: bounded, each entry served for at most
/// the cache TTL (default 60 s); concurrent misses for one id make one store call; store
/// failures are never cached; unknown ids are remembered briefly and in bounded number.
/// Expiry and revocation are checked on every request, cached or not, so an expired token
/// is refused the moment it expires. Cheap to clone: clones share the store and the cache.
///
/// ```
/// use tokengate::{MemoryStore, NewToken, Reason, Tokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();
/// let created = tokens.create("alice", NewToken::read_only()).await?;
/// let token = created.token.expose_secret();
///
/// let who = tokens.authenticate(token, None, false).await?;
/// assert_eq!(who.owner(), "alice");
///
/// let refused = tokens.authenticate(token, None, true).await.unwrap_err();
/// assert_eq!(refused.reason(), Reason::ReadOnly);
///
/// assert!(tokens.revoke(created.listing.id.as_str()).await?);
/// let refused = tokens.authenticate(token, None, false).await.unwrap_err();
/// assert_eq!(refused.reason(), Reason::Revoked);
/// # Ok(())
/// # }
/// ```
pub struct Tokens<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: S,
    prefix: TokenPrefix,
    clock: Arc<dyn Clock>,
    cache: RecordCache,
    /// The store's change feed, until the background tasks take it.
    changes: Mutex<Option<broadcast::Receiver<StoreChange>>>,
    /// Started on first use, from inside the runtime: where uses are reported.
    use_reports: OnceLock<Option<mpsc::Sender<(TokenId, SystemTime)>>>,
}

/// A token's use is written to the store at most this often.
const USE_REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// Uses waiting to be written; beyond this they are dropped (the next minute brings more).
const USE_REPORT_BACKLOG: usize = 4096;

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
}

impl<S> fmt::Debug for TokensBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokensBuilder")
            .field("prefix", &self.prefix)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> TokensBuilder<S> {
    /// The prefix of issued tokens (default `tg`; an npm registry wants `npm`).
    pub fn prefix(mut self, prefix: &str) -> Result<Self, token::InvalidPrefix> {
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

    /// Builds the manager, and subscribes to the store's change feed if it has one.
    pub fn build(self) -> Tokens<S> {
        let changes = self.store.changes();
        Tokens {
            inner: Arc::new(Inner {
                cache: RecordCache::new(self.cache),
                store: self.store,
                prefix: self.prefix,
                clock: self.clock,
                changes: Mutex::new(changes),
                use_reports: OnceLock::new(),
            }),
        }
    }
}

impl<S: TokenStore> Tokens<S> {
    /// A builder with the defaults: prefix `tg`, 60 s cache TTL, 100,000 cached records,
    /// unknown ids remembered for 5 s, the system clock.
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
        }
    }

    /// A manager with every default; see [`Tokens::builder`].
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// The prefix of the tokens this manager issues and accepts.
    pub fn prefix(&self) -> &TokenPrefix {
        &self.inner.prefix
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Creates a token for `owner`. The full token is in the result and nowhere else: only
    /// its digest is stored.
    pub async fn create(
        &self,
        owner: &str,
        options: NewToken,
    ) -> Result<CreatedToken, TokensError> {
        check_text("owner", owner, MAX_OWNER_LEN, TextRule::Required)?;
        if let Some(name) = &options.name {
            check_text("name", name, MAX_NAME_LEN, TextRule::SingleLine)?;
        }
        if let Some(description) = &options.description {
            check_text(
                "description",
                description,
                MAX_DESCRIPTION_LEN,
                TextRule::MultiLine,
            )?;
        }
        let cidr = CidrList::parse(&options.cidr)?;
        let now = whole_millis(self.inner.clock.now());
        let expires_at = options
            .expiry
            .map(|expiry| expiry_instant(expiry, now))
            .transpose()?;
        // Ids have 65 random bits; a collision is retried rather than reported.
        let mut attempts_left = 3;
        loop {
            let token = token::generate(&self.inner.prefix)?;
            let record = TokenRecord {
                id: token.id(),
                owner: owner.to_owned(),
                digest: token.digest(),
                access: options.access,
                cidr: cidr.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
                name: options.name.clone(),
                description: options.description.clone(),
                last_used_at: None,
            };
            let listing = TokenListing::from_record(&self.inner.prefix, &record);
            match self.inner.store.insert(record).await {
                Ok(()) => {
                    self.inner.cache.forget_unknown(token.id());
                    return Ok(CreatedToken { token, listing });
                }
                Err(StoreError::Duplicate(_)) if attempts_left > 1 => attempts_left -= 1,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// One page of `owner`'s live tokens, oldest first. Truncated tokens only.
    pub async fn list(&self, owner: &str, page: Page) -> Result<TokenList, TokensError> {
        let page = self.inner.store.list(owner, page).await?;
        Ok(TokenList {
            tokens: page
                .records
                .iter()
                .map(|record| TokenListing::from_record(&self.inner.prefix, record))
                .collect(),
            total: page.total,
        })
    }

    /// Revokes a token given its id or the full token (npm's CLI sends either). Returns
    /// whether something was revoked: `false` for an unknown or already revoked token.
    ///
    /// The very next lookup through this `Tokens` refuses the token, including a lookup
    /// that was already waiting on the store when the revoke began.
    pub async fn revoke(&self, id_or_token: &str) -> Result<bool, TokensError> {
        let id = self.reference(id_or_token)?;
        self.revoke_id(id).await
    }

    /// Like [`Tokens::revoke`], but only revokes a token that belongs to `owner`; another
    /// owner's token is treated as unknown (`false`), so its existence is not revealed.
    pub async fn revoke_owned(&self, owner: &str, id_or_token: &str) -> Result<bool, TokensError> {
        let id = self.reference(id_or_token)?;
        match self.inner.store.get(id).await? {
            Some(record) if record.owner == owner => self.revoke_id(id).await,
            _ => Ok(false),
        }
    }

    /// Checks a presented token for a request from `client` (when known) that is a write
    /// or not.
    ///
    /// Steps, in order, each refusing with its own [`Reason`]: the offline format check
    /// (no store call for junk), the lookup by id (cache, then store), the constant-time
    /// digest comparison, revocation and expiry, the client address against the allow-list,
    /// and finally read-only against the request.
    pub async fn authenticate(
        &self,
        token: &str,
        client: Option<IpAddr>,
        is_write: bool,
    ) -> Result<Authenticated, Rejection> {
        let presented = self.parse(token)?;
        self.authorize(presented, client, is_write).await
    }

    /// The offline half of [`Tokens::authenticate`]: format, checksum, then the SHA-256.
    /// Needs no store and no `.await`.
    pub fn parse(&self, token: &str) -> Result<PresentedToken, Rejection> {
        token::parse(&self.inner.prefix, token)
            .map(|parsed| parsed.presented())
            .map_err(|error| Rejection::new(Reason::Malformed(error), None))
    }

    /// The online half of [`Tokens::authenticate`]: lookup, digest, status, address and
    /// access checks for a token that [`Tokens::parse`] accepted.
    pub async fn authorize(
        &self,
        presented: PresentedToken,
        client: Option<IpAddr>,
        is_write: bool,
    ) -> Result<Authenticated, Rejection> {
        if let Some(answer) = self.authorize_cached(presented, || client, is_write) {
            return answer;
        }
        self.authorize_from_store(presented, client, is_write).await
    }

    /// [`Tokens::authorize`] once [`Tokens::authorize_cached`] has said that the store
    /// must be asked; the layer calls it directly rather than probing the cache twice.
    pub(crate) async fn authorize_from_store(
        &self,
        presented: PresentedToken,
        client: Option<IpAddr>,
        is_write: bool,
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
        self.admit(cached, presented, now, || client, is_write)
    }

    /// [`Tokens::authorize`] answered from the cache alone, without awaiting: `None` when
    /// the store must be asked. The client address is only worked out for a token with an
    /// allow-list.
    pub(crate) fn authorize_cached(
        &self,
        presented: PresentedToken,
        client: impl FnOnce() -> Option<IpAddr>,
        is_write: bool,
    ) -> Option<Result<Authenticated, Rejection>> {
        let now = self.inner.clock.now();
        let answer = match self.inner.cache.cached(presented.id, now)? {
            Ok(cached) => self.admit(cached, presented, now, client, is_write),
            Err(reason) => Err(Rejection::new(reason, Some(presented.id))),
        };
        Some(answer)
    }

    /// The checks after the lookup, and the use report for an accepted token.
    fn admit(
        &self,
        cached: Arc<Cached>,
        presented: PresentedToken,
        now: SystemTime,
        client: impl FnOnce() -> Option<IpAddr>,
        is_write: bool,
    ) -> Result<Authenticated, Rejection> {
        check(&cached.record, presented.digest, now, client, is_write)
            .map_err(|reason| Rejection::new(reason, Some(presented.id)))?;
        if let Some(reports) = self.background() {
            if cached.claim_use_report(now, USE_REPORT_INTERVAL) {
                // Never waits: when the writer is behind, this use goes unrecorded.
                let _ = reports.try_send((presented.id, now));
            }
        }
        // The lookup's own reference becomes the caller's: no extra reference count.
        Ok(Authenticated { cached })
    }

    /// Drops one id from this node's cache: for a revocation learnt from elsewhere.
    pub fn invalidate(&self, id: TokenId) {
        self.inner.cache.forget(id);
    }

    /// Drops every cached record and unknown id, including lookups still in flight: for
    /// when revocations may have been missed.
    pub fn invalidate_all(&self) {
        self.inner.cache.forget_all();
    }

    fn reference(&self, id_or_token: &str) -> Result<TokenId, TokensError> {
        token::id_from_id_or_token(&self.inner.prefix, id_or_token.trim())
            .ok_or(TokensError::InvalidReference)
    }

    async fn revoke_id(&self, id: TokenId) -> Result<bool, TokensError> {
        let revoked = self.inner.store.revoke(id, self.inner.clock.now()).await?;
        self.inner.cache.forget(id);
        Ok(revoked)
    }

    /// Starts, once and from inside the runtime, the tasks that write uses to the store and
    /// follow its change feed. Without a tokio runtime neither runs: uses go unrecorded and
    /// the cache TTL alone bounds revocations made elsewhere.
    fn background(&self) -> Option<&mpsc::Sender<(TokenId, SystemTime)>> {
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
                    runtime.spawn(follow_changes(Arc::downgrade(&self.inner), feed));
                }
                let (sender, receiver) = mpsc::channel(USE_REPORT_BACKLOG);
                runtime.spawn(write_uses(Arc::downgrade(&self.inner), receiver));
                Some(sender)
            })
            .as_ref()
    }
}

/// Applies the store's change feed to the cache until the feed or the manager ends.
async fn follow_changes<S: TokenStore>(
    inner: Weak<Inner<S>>,
    mut feed: broadcast::Receiver<StoreChange>,
) {
    loop {
        let change = feed.recv().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match change {
            Ok(StoreChange::Revoked(id)) => inner.cache.forget(id),
            Ok(StoreChange::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                inner.cache.forget_all();
            }
            Err(broadcast::error::RecvError::Closed) => {
                inner.cache.forget_all();
                return;
            }
        }
    }
}

/// Writes reported uses to the store in batches until the manager is dropped.
async fn write_uses<S: TokenStore>(
    inner: Weak<Inner<S>>,
    mut reports: mpsc::Receiver<(TokenId, SystemTime)>,
) {
    let mut batch = Vec::new();
    while reports.recv_many(&mut batch, 256).await > 0 {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = inner.store.record_use(std::mem::take(&mut batch)).await {
            tracing::warn!(%error, "could not record token uses");
        }
    }
}

/// Every check after the lookup, in order. The secret comes first, so that nothing about
/// a token (revoked, expired, restricted) is told to someone who lacks it.
fn check(
    record: &TokenRecord,
    digest: TokenDigest,
    now: SystemTime,
    client: impl FnOnce() -> Option<IpAddr>,
    is_write: bool,
) -> Result<(), Reason> {
    if !record.digest.verify(&digest) {
        return Err(Reason::SecretMismatch);
    }
    match record.status(now) {
        Status::Active => {}
        Status::Revoked => return Err(Reason::Revoked),
        Status::Expired => return Err(Reason::Expired),
    }
    if !record.cidr.is_empty() {
        let client = client().ok_or(Reason::NoClientAddress)?;
        if !record.cidr.contains(client) {
            return Err(Reason::AddressNotAllowed);
        }
    }
    if !record.access.allows(is_write) {
        return Err(Reason::ReadOnly);
    }
    Ok(())
}

/// The instant a new token expires, which must be after `now`.
fn expiry_instant(expiry: Expiry, now: SystemTime) -> Result<SystemTime, TokensError> {
    let at = match expiry {
        Expiry::In(lifetime) => now
            .checked_add(lifetime)
            .ok_or(TokensError::InvalidExpiry("too far in the future"))?,
        Expiry::At(at) => at,
    };
    let at = whole_millis(at);
    if at <= now {
        return Err(TokensError::InvalidExpiry("immediately or in the past"));
    }
    Ok(at)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextRule {
    Required,
    SingleLine,
    MultiLine,
}

/// Owner, name and description: bounded, and free of control characters that would
/// garble a listing or a log line.
fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    rule: TextRule,
) -> Result<(), TokensError> {
    let invalid = |problem| Err(TokensError::InvalidText { field, problem });
    if rule == TextRule::Required && value.trim().is_empty() {
        return invalid("must not be empty");
    }
    let too_long = match rule {
        TextRule::Required => value.len() > max,
        _ => value.chars().count() > max,
    };
    if too_long {
        return invalid("too long");
    }
    let allowed_control = |c: char| rule == TextRule::MultiLine && (c == '\n' || c == '\t');
    if value.chars().any(|c| c.is_control() && !allowed_control(c)) {
        return invalid("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let day = Duration::from_secs(86_400);
        assert_eq!(expiry_instant(Expiry::In(day), now).unwrap(), now + day);
        assert_eq!(
            expiry_instant(Expiry::At(now + day), now).unwrap(),
            now + day
        );
        for bad in [
            Expiry::In(Duration::ZERO),
            Expiry::At(now),
            Expiry::At(SystemTime::UNIX_EPOCH),
            Expiry::In(Duration::MAX),
        ] {
            assert!(matches!(
                expiry_instant(bad, now),
                Err(TokensError::InvalidExpiry(_))
            ));
        }
    }

    #[test]
    fn text_table() {
        use TextRule::*;
        let cases: &[(&str, usize, TextRule, bool)] = &[
            ("alice", 256, Required, true),
            ("", 256, Required, false),
            ("   ", 256, Required, false),
            ("al\u{0}ice", 256, Required, false),
            ("Zoë \"the\" O'Brien", 256, Required, true),
            ("abc", 2, Required, false),
            ("", 256, SingleLine, true),
            ("a\nb", 256, SingleLine, false),
            ("a\nb\tc", 256, MultiLine, true),
            ("a\rb", 256, MultiLine, false),
            ("ééé", 3, SingleLine, true),
            ("éééé", 3, SingleLine, false),
        ];
        for (value, max, rule, ok) in cases {
            assert_eq!(
                check_text("f", value, *max, *rule).is_ok(),
                *ok,
                "{value:?}"
            );
        }
    }
}
