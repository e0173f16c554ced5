//! `SqliteStore`: the store contract, persistence across restarts, and what is on disk.
#![cfg(feature = "sqlite")]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokengate::store::{Page, RecordPage};
use tokengate::store::{SqliteStore, StoreError, TokenStore};
use tokengate::{NewToken, Reason, TokenId, TokenKind, TokenRecord, Tokens};

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
    async fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        self.store.revoke_all(owner, kind, except, at).await
    }
    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        self.store.record_use(uses).await
    }
    #[cfg(feature = "oidc")]
    async fn id_token_first_use(
        &self,
        key: &tokengate::oidc::ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        self.store.id_token_first_use(key, until, now).await
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

/// A database written by the first release (schema version 1, before grants existed) is
/// migrated when opened, and its tokens keep exactly the access they had.
#[tokio::test]
async fn a_first_release_database_migrates_in_place() {
    use tokengate::{Action, Grants, Permission, SecretToken, TokenKind, TokenPrefix};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let prefix = TokenPrefix::new("npm").unwrap();
    let read_only = SecretToken::generate(&prefix).unwrap();
    let read_write = SecretToken::generate(&prefix).unwrap();
    {
        // The first release's schema, as its code created it.
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "BEGIN;
             CREATE TABLE tokengate_tokens (
                 id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, digest BLOB NOT NULL,
                 access TEXT NOT NULL, cidr TEXT NOT NULL, created_at INTEGER NOT NULL,
                 expires_at INTEGER, revoked_at INTEGER, name TEXT, description TEXT,
                 last_used_at INTEGER
             );
             CREATE INDEX tokengate_tokens_by_owner
                 ON tokengate_tokens (owner, created_at, id) WHERE revoked_at IS NULL;
             PRAGMA user_version = 1;
             COMMIT;",
        )
        .unwrap();
        for (token, access, name) in [
            (&read_only, "read-only", "ci"),
            (&read_write, "read-write", "full"),
        ] {
            old.execute(
                "INSERT INTO tokengate_tokens VALUES (?1, 'alice', ?2, ?3, '10.0.0.0/8', \
                 1700000000000, NULL, NULL, ?4, NULL, NULL)",
                rusqlite::params![
                    token.id().as_str(),
                    token.digest().as_bytes().to_vec(),
                    access,
                    name
                ],
            )
            .unwrap();
        }
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let tokens = Tokens::builder(store).prefix("npm").unwrap().build();
    let inside = Some("10.1.2.3".parse().unwrap());
    struct Case<'a> {
        token: &'a SecretToken,
        permission: Permission,
        writes: bool,
    }
    let cases = [
        Case {
            token: &read_only,
            permission: Permission::ReadOnly,
            writes: false,
        },
        Case {
            token: &read_write,
            permission: Permission::ReadWrite,
            writes: true,
        },
    ];
    for case in cases {
        let secret = case.token.expose_secret();
        let who = tokens
            .authenticate(secret, inside, Action::Read)
            .await
            .unwrap();
        assert_eq!(who.grants(), &Grants::everything(case.permission));
        assert_eq!(who.kind(), TokenKind::Standard);
        let write = tokens.authenticate(secret, inside, Action::Write).await;
        assert_eq!(write.is_ok(), case.writes, "{:?}", case.permission);
        let elsewhere = tokens
            .authenticate(secret, Some("192.0.2.1".parse().unwrap()), Action::Read)
            .await;
        assert_eq!(elsewhere.unwrap_err().reason(), Reason::AddressNotAllowed);
    }
    assert_eq!(
        tokens.list("alice", Page::default()).await.unwrap().total,
        2
    );
    drop(tokens);

    let migrated = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = migrated
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 4);
    let uses: i64 = migrated
        .query_row("SELECT COUNT(*) FROM tokengate_id_token_uses", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(uses, 0, "the table of ID-token uses is made");
}

/// A file of the previous schema (version 3) gets the listing's index and the count of
/// each owner's listed tokens when opened: its tokens are all there, counted and paged,
/// and the count goes on with every write, without counting twice on the next open.
#[tokio::test]
async fn a_version_3_database_counts_its_tokens_when_migrated() {
    use tokengate::store::{Cursor, Order};
    use tokengate::{SecretToken, TokenPrefix};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let prefix = TokenPrefix::new("npm").unwrap();
    // (owner, kind, revoked, created second)
    let rows = [
        ("alice", "standard", false, 3),
        ("alice", "standard", false, 1),
        ("alice", "standard", false, 1),
        ("alice", "standard", true, 2),
        ("alice", "session", false, 2),
        ("alice", "exchanged", false, 2),
        ("bob", "standard", false, 5),
        ("carol", "standard", true, 5),
    ];
    let mut alice = Vec::new();
    {
        // Version 3, as the previous release created it.
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "BEGIN;
             CREATE TABLE tokengate_tokens (
                 id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, digest BLOB NOT NULL,
                 access TEXT NOT NULL, cidr TEXT NOT NULL, created_at INTEGER NOT NULL,
                 expires_at INTEGER, revoked_at INTEGER, name TEXT, description TEXT,
                 last_used_at INTEGER
             );
             CREATE INDEX tokengate_tokens_by_owner
                 ON tokengate_tokens (owner, created_at, id) WHERE revoked_at IS NULL;
             ALTER TABLE tokengate_tokens ADD COLUMN grants TEXT;
             ALTER TABLE tokengate_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'standard';
             ALTER TABLE tokengate_tokens ADD COLUMN second_factor TEXT NOT NULL
                 DEFAULT 'enforced';
             CREATE TABLE tokengate_id_token_uses (
                 issuer TEXT NOT NULL, jti TEXT NOT NULL, used_until INTEGER NOT NULL,
                 PRIMARY KEY (issuer, jti)
             ) WITHOUT ROWID;
             CREATE INDEX tokengate_id_token_uses_by_time
                 ON tokengate_id_token_uses (used_until);
             PRAGMA user_version = 3;
             COMMIT;",
        )
        .unwrap();
        for (owner, kind, revoked, second) in rows {
            let token = SecretToken::generate(&prefix).unwrap();
            let created = 1_700_000_000_000_i64 + second * 1_000;
            old.execute(
                "INSERT INTO tokengate_tokens VALUES (?1, ?2, ?3, 'read-write', '', ?4, NULL, \
                 ?5, NULL, NULL, NULL, NULL, ?6, 'enforced')",
                rusqlite::params![
                    token.id().as_str(),
                    owner,
                    token.digest().as_bytes().to_vec(),
                    created,
                    revoked.then_some(created + 1),
                    kind,
                ],
            )
            .unwrap();
            if owner == "alice" && kind == "standard" && !revoked {
                alice.push(Cursor::new(
                    SystemTime::UNIX_EPOCH + Duration::from_millis(created as u64),
                    token.id(),
                ));
            }
        }
    }
    alice.sort();

    let store = SqliteStore::open(&path).await.unwrap();
    let total = async |owner: &str| store.list(owner, Page::default()).await.unwrap().total;
    assert_eq!(
        (
            total("alice").await,
            total("bob").await,
            total("carol").await
        ),
        (3, 1, 0)
    );
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let mut seen = Vec::new();
        let mut page = Page::first(2).in_order(order);
        loop {
            let listed = store.list("alice", page).await.unwrap();
            seen.extend(listed.records.iter().map(Cursor::from));
            match listed.next {
                Some(next) => page = Page::after(next, 2).in_order(order),
                None => break,
            }
        }
        if order == Order::NewestFirst {
            seen.reverse();
        }
        assert_eq!(seen, alice, "{order:?}");
    }

    // Every write counts from here on, and opening again counts nothing twice.
    let tokens = manager(store.clone());
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    tokens.create("carol", NewToken::read_only()).await.unwrap();
    tokens.create("alice", NewToken::session()).await.unwrap();
    assert!(
        store
            .revoke(alice[0].id(), SystemTime::now())
            .await
            .unwrap()
    );
    drop((tokens, store));
    let store = SqliteStore::open(&path).await.unwrap();
    let total = async |owner: &str| store.list(owner, Page::default()).await.unwrap().total;
    assert_eq!(
        (
            total("alice").await,
            total("bob").await,
            total("carol").await
        ),
        (3, 1, 1)
    );
    let revoked = store.revoke_all(
        "alice",
        TokenKind::Standard,
        Some(created.listing.id),
        SystemTime::now(),
    );
    assert_eq!(revoked.await.unwrap().len(), 2);
    assert_eq!(total("alice").await, 1);

    let migrated = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = migrated
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tokengate_tokens' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        ["tokengate_tokens_live"],
        "the old index is replaced"
    );
}

/// A page is read from the listing's index, from its cursor on, in either order: no
/// table scan and no sort, so that its cost does not grow with the owner's tokens.
#[test]
fn pages_are_read_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    drop(rt.block_on(SqliteStore::open(&path)).unwrap());
    let connection = rusqlite::Connection::open(&path).unwrap();
    for (follows, direction) in [(">", "ASC"), ("<", "DESC")] {
        let cursor = format!("AND (created_at, id) {follows} (?4, ?5) ");
        for (from, parameters) in [(String::new(), 3), (cursor, 5)] {
            // The statement the store runs (src/store/sqlite.rs, `list_sql`).
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT * FROM tokengate_tokens \
                 WHERE owner = ?1 AND kind = 'standard' AND revoked_at IS NULL {from}\
                 ORDER BY created_at {direction}, id {direction} LIMIT ?2 OFFSET ?3"
            );
            let plan: Vec<String> = connection
                .prepare(&sql)
                .unwrap()
                .query_map(
                    rusqlite::params_from_iter(std::iter::repeat_n(0, parameters)),
                    |row| row.get(3),
                )
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                plan.contains("USING INDEX tokengate_tokens_live"),
                "{sql}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts: {plan}");
            if !from.is_empty() {
                assert!(
                    plan.contains("(created_at,id)"),
                    "{sql} scans from the start: {plan}"
                );
            }
        }
    }
}

/// An ID token's use is on disk: a replay after a restart, or through another process on
/// the same file, is still refused.
#[cfg(feature = "oidc")]
#[tokio::test]
async fn id_token_uses_survive_a_restart_and_are_shared() {
    use tokengate::oidc::{ReplayGuard, ReplayKey};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let now = SystemTime::now();
    let until = now + Duration::from_secs(300);
    let key = ReplayKey::new("https://token.actions.githubusercontent.com", "jti-7");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.first_use(&key, until, now).await.unwrap());
    }
    let (one, other) = (
        SqliteStore::open(&path).await.unwrap(),
        SqliteStore::open(&path).await.unwrap(),
    );
    assert!(
        !one.first_use(&key, until, now).await.unwrap(),
        "after a restart"
    );
    assert!(
        !other.first_use(&key, until, now).await.unwrap(),
        "through another handle"
    );
}

/// Set in the child process of [`a_new_database_and_its_side_files_are_private`]: the
/// directory it opens a store in.
#[cfg(unix)]
const PRIVATE_FILES_DIR: &str = "TOKENGATE_TEST_PRIVATE_FILES_DIR";

/// A new database, its `-wal` and its `-shm` are readable and writable by their owner only,
/// although the process runs with the common umask 022 (which would leave them readable by
/// everyone). The umask is set by a shell that runs this test again as a child process.
#[cfg(unix)]
#[test]
fn a_new_database_and_its_side_files_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let Some(dir) = std::env::var_os(PRIVATE_FILES_DIR) else {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"umask 022 && exec "$0" --exact "$1" --nocapture"#)
            .arg(std::env::current_exe().unwrap())
            .arg("a_new_database_and_its_side_files_are_private")
            .env(PRIVATE_FILES_DIR, dir.path())
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&child.stdout);
        let errors = String::from_utf8_lossy(&child.stderr);
        assert!(child.status.success(), "{output}{errors}");
        assert!(
            output.contains("1 passed"),
            "the child ran no test: {output}"
        );
        return;
    };
    let umask = std::process::Command::new("sh")
        .args(["-c", "umask"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&umask.stdout).trim(), "0022");
    let path = Path::new(&dir).join("tokens.db");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            // Written to, and still open: all three files exist.
            let tokens = manager(SqliteStore::open(&path).await.unwrap());
            tokens.create("alice", NewToken::session()).await.unwrap();
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
            }
        });
}
