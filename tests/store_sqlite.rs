//! `SqliteStore`: the store contract, persistence across restarts, and what is on disk.
#![cfg(feature = "sqlite")]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokengate::store::{Page, RecordPage};
use tokengate::store::{SqliteStore, StoreError, TokenStore};
use tokengate::{NewToken, Reason, TokenId, TokenRecord, Tokens};

/// A fresh database in a temporary directory that goes when the last clone does.
#[derive(Clone)]
struct Fresh {
    store: SqliteStore,
    _dir: Arc<tempfile::TempDir>,
}

impl TokenStore for Fresh {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.store.get(id).await
    }
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.store.insert(record).await
    }
    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        self.store.list(owner, page).await
    }
    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        self.store.revoke(id, at).await
    }
    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        self.store.record_use(uses).await
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db"))
        .await
        .unwrap();
    Fresh {
        store,
        _dir: Arc::new(dir),
    }
}

tokengate::store_contract_tests!(fresh().await);

fn manager(store: SqliteStore) -> Tokens<SqliteStore> {
    Tokens::builder(store).prefix("npm").unwrap().build()
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let (kept, revoked) = {
        let tokens = manager(SqliteStore::open(&path).await.unwrap());
        let kept = tokens
            .create(
                "alice",
                NewToken::read_only().allow_cidrs(["10.0.0.0/8"]).name("ci"),
            )
            .await
            .unwrap();
        let revoked = tokens
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        tokens.revoke(revoked.listing.id.as_str()).await.unwrap();
        (kept, revoked)
    };

    let tokens = manager(SqliteStore::open(&path).await.unwrap());
    let client = Some("10.1.2.3".parse().unwrap());
    let who = tokens
        .authenticate(kept.token.expose_secret(), client, tokengate::Action::Read)
        .await
        .unwrap();
    assert_eq!(who.token_name(), Some("ci"));
    let refused = tokens
        .authenticate(kept.token.expose_secret(), client, tokengate::Action::Write)
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::ReadOnly);
    let refused = tokens
        .authenticate(
            revoked.token.expose_secret(),
            client,
            tokengate::Action::Read,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.reason(), Reason::Revoked);
    let listed = tokens.list("alice", Default::default()).await.unwrap();
    assert_eq!(listed.tokens.len(), 1);
    // The use above may or may not have been written yet.
    let mut listing = listed.tokens[0].clone();
    listing.last_used_at = None;
    assert_eq!(listing, kept.listing);
}

fn bytes_of_every_file(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_file_holds_digests_never_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db"))
        .await
        .unwrap();
    let tokens = manager(store.clone());
    let secrets = support::issue_use_and_revoke(&tokens, 20).await;
    drop(tokens);
    let on_disk = bytes_of_every_file(dir.path());
    assert!(
        contains(&on_disk, "token 7"),
        "the test reads the real data"
    );
    for token in &secrets {
        let secret = &token[4 + 11..4 + 11 + 22];
        assert!(!contains(&on_disk, token), "a full token is on disk");
        assert!(!contains(&on_disk, secret), "a secret is on disk");
    }
}

#[tokio::test]
async fn uses_are_recorded_off_the_request_path() {
    let Fresh { store, _dir } = fresh().await;
    let tokens = manager(store.clone());
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    assert_eq!(created.listing.last_used_at, None);
    tokens
        .authenticate(created.token.expose_secret(), None, tokengate::Action::Read)
        .await
        .unwrap();
    // Written by a background task: wait for it, boundedly.
    let mut last_used = None;
    for _ in 0..100 {
        last_used = store
            .get(created.token.id())
            .await
            .unwrap()
            .unwrap()
            .last_used_at;
        if last_used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last_used.is_some(), "the use was recorded");
    let listed = tokens.list("alice", Default::default()).await.unwrap();
    assert_eq!(listed.tokens[0].last_used_at, last_used);
}

#[tokio::test]
async fn a_locked_file_is_unavailable_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_millis(100))
        .open()
        .await
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let record = tokengate::store::contract::record("alice", tokengate::store::contract::at(0));
    let error = store.insert(record.clone()).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(error.to_string().contains("locked"), "{error}");
    other.execute_batch("ROLLBACK").unwrap();
    store.insert(record).await.unwrap();
}

#[tokio::test]
async fn unreadable_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let error = SqliteStore::open(&junk).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
    assert!(error.to_string().contains("junk.db"), "{error}");
    assert!(error.to_string().contains("not a database"), "{error}");

    let error = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(error.to_string().contains("unable to open"), "{error}");

    let missing_dir = dir.path().join("no/such/dir/tokens.db");
    let error = SqliteStore::open(&missing_dir).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let fresh = fresh().await;
    let connection = rusqlite::Connection::open(fresh.store.path()).unwrap();
    let mode: String = connection
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
