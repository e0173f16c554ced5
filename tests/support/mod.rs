//! Shared by the integration tests: store wrappers that count, fail or pause on demand,
//! and a TCP proxy that can be cut.
#![allow(dead_code)]

pub mod proxy;
pub mod rights;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

use tokengate::store::{MemoryStore, StoreError, TokenStore};
use tokengate::store::{Page, RecordPage};
use tokengate::{TokenId, TokenKind, TokenRecord};
use tokio::sync::{Notify, Semaphore};

/// A memory store that counts calls, can be switched to fail, and can hold `get` calls
/// after they have read the record (to reproduce a lookup racing a revoke).
#[derive(Clone, Default)]
pub struct TestStore {
    pub inner: MemoryStore,
    pub gets: Arc<AtomicUsize>,
    pub lists: Arc<AtomicUsize>,
    pub uses: Arc<AtomicUsize>,
    pub failing: Arc<AtomicBool>,
    /// Broadcasts of an owner's rights change asked for, and how many of the next ones
    /// fail as an unreachable store's would.
    pub broadcasts: Arc<AtomicUsize>,
    pub failing_broadcasts: Arc<AtomicUsize>,
    gate: Arc<Gate>,
}

struct Gate {
    armed: AtomicBool,
    held: Notify,
    release: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            armed: AtomicBool::new(false),
            held: Notify::new(),
            release: Semaphore::new(0),
        }
    }
}

impl TestStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// The next `get` reads its record, then waits for [`TestStore::release`].
    pub fn hold_next_get(&self) {
        self.gate.armed.store(true, Ordering::SeqCst);
    }

    /// Resolves once a held `get` has read its record and is waiting.
    pub async fn get_is_held(&self) {
        self.gate.held.notified().await;
    }

    pub fn release(&self) {
        self.gate.release.add_permits(1);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("test store switched off"))
        } else {
            Ok(())
        }
    }
}

impl TokenStore for TestStore {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let record = self.inner.get(id).await?;
        if self.gate.armed.swap(false, Ordering::SeqCst) {
            self.gate.held.notify_one();
            let permit = self.gate.release.acquire().await;
            permit.expect("gate semaphore is never closed").forget();
        }
        Ok(record)
    }

    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert(record).await
    }

    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.list(owner, page).await
    }

    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.revoke(id, at).await
    }

    async fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        self.check()?;
        self.inner.revoke_all(owner, kind, except, at).await
    }

    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        self.uses.fetch_add(uses.len(), Ordering::SeqCst);
        self.check()?;
        self.inner.record_use(uses).await
    }

    async fn owner_rights_changed(&self, _owner: &str) -> Result<(), StoreError> {
        self.broadcasts.fetch_add(1, Ordering::SeqCst);
        let failed =
            self.failing_broadcasts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                });
        match failed {
            Ok(_) => Err(StoreError::unavailable("test store dropped the broadcast")),
            Err(_) => Ok(()),
        }
    }
}

/// Creates `count` tokens named `token 0`…, uses each once and revokes every other one:
/// a store that has seen all of it. Returns the full tokens.
pub async fn issue_use_and_revoke<S: TokenStore>(
    tokens: &tokengate::Tokens<S>,
    count: usize,
) -> Vec<String> {
    let mut issued = Vec::new();
    for i in 0..count {
        let created = tokens
            .create(
                "alice",
                tokengate::NewToken::read_write().name(format!("token {i}")),
            )
            .await
            .unwrap();
        let token = created.token.expose_secret().to_owned();
        tokens
            .authenticate(&token, None, tokengate::Action::Write)
            .await
            .unwrap();
        if i % 2 == 0 {
            tokens.revoke(&token).await.unwrap();
        }
        issued.push(token);
    }
    issued
}

/// Fails if `at_rest` holds any of these tokens, or the secret part of any.
pub fn assert_no_token_in(at_rest: &[u8], tokens: &[String]) {
    let contains = |needle: &str| {
        at_rest
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(contains("token 1"), "the test reads the real data");
    for token in tokens {
        let secret = &token[token.len() - 28..token.len() - 6];
        assert!(!contains(token), "a full token is stored");
        assert!(!contains(secret), "a token's secret is stored");
    }
}

/// The tokens most refusal tests need, all owned by `alice`.
pub struct Kinds {
    /// Read-only, usable from anywhere.
    pub read_only: tokengate::CreatedToken,
    /// Read-write, bound to the allow-list given to [`issue_kinds`].
    pub restricted: tokengate::CreatedToken,
    /// Read-write, already revoked.
    pub revoked: tokengate::CreatedToken,
}

pub async fn issue_kinds<S: TokenStore>(tokens: &tokengate::Tokens<S>, allowed: &str) -> Kinds {
    use tokengate::NewToken;
    let read_only = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let restricted = tokens
        .create("alice", NewToken::read_write().allow_cidrs([allowed]))
        .await
        .unwrap();
    let revoked = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    assert!(tokens.revoke(revoked.listing.id.as_str()).await.unwrap());
    Kinds {
        read_only,
        restricted,
        revoked,
    }
}

/// Everything `tracing` writes in this test binary, at TRACE.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs, once per test binary, a global TRACE subscriber that writes into one buffer,
/// and returns it. Global rather than per-thread: a thread-local default can miss events
/// whose callsites another test thread registered first.
pub fn captured_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the test binaries");
        logs
    })
    .clone()
}

/// A resolver for tests: the first segment of the path is the resource (`/app-web/…` is
/// `app-web`); `/` and `/-/…` touch none.
pub fn first_segment(request: &tokengate::RequestHead<'_>) -> Option<tokengate::Resource> {
    let first = request
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()?;
    (!first.is_empty() && first != "-").then(|| tokengate::Resource::new(first))
}
