//! [`SqliteStore`]: tokens in one SQLite file (feature `sqlite`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::columns::{self, COLUMNS, Row};
use super::{Order, Page, RecordPage, StoreError, TokenStore};
use crate::record::{TokenKind, TokenRecord};
use crate::token::TokenId;

/// The schema version this code writes; older files are migrated when opened.
const SCHEMA_VERSION: i32 = 4;

const SCHEMA_V1: &str = "
    CREATE TABLE IF NOT EXISTS tokengate_tokens (
        id TEXT PRIMARY KEY NOT NULL,
        owner TEXT NOT NULL,
        digest BLOB NOT NULL,
        access TEXT NOT NULL,
        cidr TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        name TEXT,
        description TEXT,
        last_used_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS tokengate_tokens_by_owner
        ON tokengate_tokens (owner, created_at, id) WHERE revoked_at IS NULL;
";

/// Grants, kinds and the second-factor choice. Rows from version 1 keep `grants` NULL and
/// read as a grant on everything with their `access`: exactly what they allowed before.
const SCHEMA_V2: &str = "
    ALTER TABLE tokengate_tokens ADD COLUMN grants TEXT;
    ALTER TABLE tokengate_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'standard';
    ALTER TABLE tokengate_tokens ADD COLUMN second_factor TEXT NOT NULL DEFAULT 'enforced';
";

/// The OIDC ID tokens used (trusted publishing's single-use `jti`), each remembered until
/// `used_until`; made whatever the features, so that every build reads the same file.
const SCHEMA_V3: &str = "
    CREATE TABLE IF NOT EXISTS tokengate_id_token_uses (
        issuer TEXT NOT NULL,
        jti TEXT NOT NULL,
        used_until INTEGER NOT NULL,
        PRIMARY KEY (issuer, jti)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS tokengate_id_token_uses_by_time
        ON tokengate_id_token_uses (used_until);
";

/// Listings in constant time per page. The index holds an owner's live records of one
/// kind in listing order, so that a page is read from its cursor on (and `revoke_all` finds
/// one kind); it replaces the index on (owner, created_at, id), which held sessions and
/// exchanged tokens among the listed ones. The listed records (live, standard) of each owner
/// are counted in a table of their own, which triggers keep in the transaction of every
/// write, whatever makes it; the count starts from the rows already there.
const SCHEMA_V4: &str = "
    DROP INDEX IF EXISTS tokengate_tokens_by_owner;
    CREATE INDEX IF NOT EXISTS tokengate_tokens_live
        ON tokengate_tokens (owner, kind, created_at, id) WHERE revoked_at IS NULL;
    CREATE TABLE IF NOT EXISTS tokengate_listed_counts (
        owner TEXT PRIMARY KEY NOT NULL,
        listed INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO tokengate_listed_counts (owner, listed)
        SELECT owner, COUNT(*) FROM tokengate_tokens
        WHERE revoked_at IS NULL AND kind = 'standard' GROUP BY owner;
    CREATE TRIGGER tokengate_listed_insert AFTER INSERT ON tokengate_tokens
        WHEN NEW.revoked_at IS NULL AND NEW.kind = 'standard'
    BEGIN
        INSERT INTO tokengate_listed_counts (owner, listed) VALUES (NEW.owner, 1)
            ON CONFLICT (owner) DO UPDATE SET listed = listed + 1;
    END;
    CREATE TRIGGER tokengate_listed_update
        AFTER UPDATE OF owner, kind, revoked_at ON tokengate_tokens
        WHEN OLD.owner IS NOT NEW.owner
            OR (OLD.revoked_at IS NULL AND OLD.kind = 'standard')
                IS NOT (NEW.revoked_at IS NULL AND NEW.kind = 'standard')
    BEGIN
        UPDATE tokengate_listed_counts SET listed = listed - 1
            WHERE owner = OLD.owner AND OLD.revoked_at IS NULL AND OLD.kind = 'standard';
        INSERT INTO tokengate_listed_counts (owner, listed)
            SELECT NEW.owner, 1 WHERE NEW.revoked_at IS NULL AND NEW.kind = 'standard'
            ON CONFLICT (owner) DO UPDATE SET listed = listed + 1;
    END;
    CREATE TRIGGER tokengate_listed_delete AFTER DELETE ON tokengate_tokens
        WHEN OLD.revoked_at IS NULL AND OLD.kind = 'standard'
    BEGIN
        UPDATE tokengate_listed_counts SET listed = listed - 1 WHERE owner = OLD.owner;
    END;
";

/// The statement for a page in `order`, from a cursor (`?4`, `?5`: its creation time and
/// id) or not. Parameters: `?1` owner, `?2` limit, `?3` offset.
fn list_sql(order: Order, after_cursor: bool) -> String {
    let (follows, direction) = match order {
        Order::OldestFirst => (">", "ASC"),
        Order::NewestFirst => ("<", "DESC"),
    };
    let from = if after_cursor {
        format!("AND (created_at, id) {follows} (?4, ?5) ")
    } else {
        String::new()
    };
    format!(
        "SELECT {COLUMNS} FROM tokengate_tokens \
         WHERE owner = ?1 AND kind = 'standard' AND revoked_at IS NULL {from}\
         ORDER BY created_at {direction}, id {direction} LIMIT ?2 OFFSET ?3"
    )
}

/// A [`TokenStore`] in one SQLite file: the embedded, persistent default. Needs no server.
///
/// Opening creates the file and its schema (or migrates an older one) and switches it to
/// WAL mode, so that readers do not block on a write. On Unix a new file is made readable
/// and writable by its owner only (`0600`), whatever the umask, and SQLite gives its `-wal`
/// and `-shm` side files the same mode; an existing file keeps the mode it has. Every call runs on tokio's blocking
/// pool. Writes go through one connection; reads (the cache-miss lookups, listings) through
/// a small pool of read-only connections, so that a flood of lookups is not held to one
/// core and first uses of real tokens do not queue behind it. Cheap to clone; clones share
/// the connections.
///
/// ```
/// use tokengate::store::SqliteStore;
/// use tokengate::{Action, NewToken, Tokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tokengate-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("tokens.db")).await?;
/// let tokens = Tokens::builder(store).prefix("npm")?.build();
/// let created = tokens.create("alice", NewToken::read_write()).await?;
/// let token = created.token.expose_secret();
/// assert!(tokens.authenticate(token, None, Action::Write).await.is_ok());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
    path: Arc<PathBuf>,
}

/// The read connections: one permit per idle connection, so that a read waits (without
/// holding a thread) until one is free.
struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A read connection on loan. Dropping it (after the read, or while unwinding from a panic)
/// puts the connection back before the permit is released, so a permit always finds one.
struct Lease {
    readers: Arc<Readers>,
    connection: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.readers
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(connection);
        }
    }
}

/// Options for [`SqliteStore`]; see [`SqliteStore::builder`].
#[derive(Clone, Debug)]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    busy_timeout: Duration,
    readers: usize,
}

impl SqliteStoreBuilder {
    /// How long a call waits for a lock held by another connection or process before it
    /// fails with [`StoreError::Unavailable`] (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How many connections serve reads at once (default 4, at least 1). Writes always go
    /// through one more connection of their own.
    pub fn read_connections(mut self, count: usize) -> Self {
        self.readers = count.max(1);
        self
    }

    /// Opens (or creates) the file, sets it up and migrates its schema.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        let path = self.path.clone();
        let (connection, readers) = run_blocking(move || {
            // The writer first: it creates the file, switches it to WAL and migrates, so
            // the readers open a finished schema.
            let writer = open_connection(&self.path, self.busy_timeout)?;
            let readers = (0..self.readers)
                .map(|_| open_reader(&self.path, self.busy_timeout))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((writer, readers))
        })
        .await
        .map_err(|error| named(&path, error))?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            readers: Arc::new(Readers {
                permits: Arc::new(Semaphore::new(readers.len())),
                idle: Mutex::new(readers),
            }),
            path: Arc::new(path),
        })
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in this file with the default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).open().await
    }

    /// Options for opening the store in this file.
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.as_ref().to_owned(),
            busy_timeout: Duration::from_secs(5),
            readers: 4,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs read-only `work` on an idle read connection, on tokio's blocking pool; waits
    /// for one when all are busy.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.readers.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::unavailable("SQLite read pool closed"))?;
        let readers = Arc::clone(&self.readers);
        run_blocking(move || {
            let connection = readers.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            // The lease moves into this closure, so a caller that stops waiting cannot hand
            // the connection to another read while this one still uses it.
            let mut lease = Lease {
                readers,
                connection,
                _permit: permit,
            };
            let connection = lease
                .connection
                .as_mut()
                .ok_or_else(|| StoreError::unavailable("SQLite read pool is empty"))?;
            work(connection)
        })
        .await
    }

    /// Runs `work` on the write connection, on tokio's blocking pool.
    async fn with<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        run_blocking(move || {
            // A panic inside `work` cannot leave SQLite half-written: an open transaction
            // is rolled back when dropped. The connection stays usable.
            let mut connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut connection)
        })
        .await
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::unavailable(format!("SQLite call did not finish: {error}")))?
}

fn open_connection(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    create_private(path)?;
    let connection = Connection::open(path).map_err(sqlite_error)?;
    connection
        .busy_timeout(busy_timeout)
        .map_err(sqlite_error)?;
    // WAL lets readers in other processes go on during a write; NORMAL sync is safe in WAL
    // mode (a power cut may lose the last commits, never corrupt the file).
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite_error)?;
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite_error)?;
    migrate(&connection)?;
    Ok(connection)
}

/// Creates the database file, empty and readable by its owner only, unless it exists: SQLite
/// makes its side files (`-wal`, `-shm`) with the main file's mode, and would otherwise
/// make all three with the umask's (often readable by everyone). Paths that SQLite does not
/// take for a file name (`:memory:`, `file:` URIs, the empty path) are left to SQLite.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;

    let name = path.as_os_str().as_encoded_bytes();
    if name.is_empty() || name == b":memory:" || name.starts_with(b"file:") {
        return Ok(());
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::unavailable(format!(
            "cannot create the database file: {error}"
        ))),
    }
}

/// Elsewhere the file is SQLite's to create, with the platform's defaults.
#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// A connection for reads only (`query_only`, so a mistake cannot write through it), opened
/// after the writer has set the file up.
fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(sqlite_error)?;
    connection
        .busy_timeout(busy_timeout)
        .map_err(sqlite_error)?;
    connection
        .pragma_update(None, "query_only", true)
        .map_err(sqlite_error)?;
    Ok(connection)
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let version: i32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this tokengate \
             ({SCHEMA_VERSION}); upgrade tokengate"
        )));
    }
    // Each step and its version bump commit together: a failed migration leaves the
    // file as it was.
    let steps = [
        (1, SCHEMA_V1),
        (2, SCHEMA_V2),
        (3, SCHEMA_V3),
        (4, SCHEMA_V4),
    ];
    for (step, sql) in steps.into_iter().filter(|(step, _)| *step > version) {
        connection
            .execute_batch(&format!(
                "BEGIN; {sql} PRAGMA user_version = {step}; COMMIT;"
            ))
            .map_err(|error| {
                let _ = connection.execute_batch("ROLLBACK;");
                sqlite_error(error)
            })?;
    }
    Ok(())
}

/// Busy, locked or unopenable files are "unavailable" (worth retrying); a file that is
/// not a database, or a damaged one, is corrupt.
fn sqlite_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("SQLite: {error}"))
        }
        _ => StoreError::unavailable(format!("SQLite: {error}")),
    }
}

/// Adds the file name to an error from opening it.
fn named(path: &Path, error: StoreError) -> StoreError {
    match error {
        StoreError::Corrupt(message) => {
            StoreError::Corrupt(format!("{}: {message}", path.display()))
        }
        StoreError::Unavailable(source) => {
            StoreError::unavailable(format!("{}: {source}", path.display()))
        }
        other => other,
    }
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: row.get(0)?,
        owner: row.get(1)?,
        digest: row.get(2)?,
        access: row.get(3)?,
        cidr: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        revoked_at: row.get(7)?,
        name: row.get(8)?,
        description: row.get(9)?,
        last_used_at: row.get(10)?,
        grants: row.get(11)?,
        kind: row.get(12)?,
        second_factor: row.get(13)?,
    })
}

impl TokenStore for SqliteStore {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        self.read(move |connection| {
            let sql = format!("SELECT {COLUMNS} FROM tokengate_tokens WHERE id = ?1");
            let row = connection
                .prepare_cached(&sql)
                .and_then(|mut statement| {
                    statement
                        .query_row(params![id.as_str()], read_row)
                        .optional()
                })
                .map_err(sqlite_error)?;
            row.map(Row::into_record).transpose()
        })
        .await
    }

    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        self.with(move |connection| {
            let row = Row::from_record(&record);
            let sql = format!(
                "INSERT INTO tokengate_tokens ({COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            );
            let inserted = connection.prepare_cached(&sql).and_then(|mut statement| {
                statement.execute(params![
                    row.id,
                    row.owner,
                    row.digest,
                    row.access,
                    row.cidr,
                    row.created_at,
                    row.expires_at,
                    row.revoked_at,
                    row.name,
                    row.description,
                    row.last_used_at,
                    row.grants,
                    row.kind,
                    row.second_factor,
                ])
            });
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    Err(StoreError::Duplicate(record.id))
                }
                Err(error) => Err(sqlite_error(error)),
            }
        })
        .await
    }

    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        let owner = owner.to_owned();
        self.read(move |connection| {
            // One snapshot for the count and the page.
            let transaction = connection.transaction().map_err(sqlite_error)?;
            let total: i64 = transaction
                .prepare_cached("SELECT listed FROM tokengate_listed_counts WHERE owner = ?1")
                .and_then(|mut s| s.query_row(params![owner], |row| row.get(0)).optional())
                .map_err(sqlite_error)?
                .unwrap_or(0);
            // One more than the page holds, to tell whether another follows.
            let limit = page.effective_limit() as i64 + 1;
            let offset = columns::sql_offset(page.offset());
            let rows = transaction
                .prepare_cached(&list_sql(page.order(), page.cursor().is_some()))
                .and_then(|mut statement| {
                    let rows = match page.cursor() {
                        Some(cursor) => statement.query_map(
                            params![
                                owner,
                                limit,
                                offset,
                                columns::millis(cursor.created_at()),
                                cursor.id().as_str(),
                            ],
                            read_row,
                        )?,
                        None => statement.query_map(params![owner, limit, offset], read_row)?,
                    };
                    rows.collect::<rusqlite::Result<Vec<Row>>>()
                })
                .map_err(sqlite_error)?;
            let records = rows
                .into_iter()
                .map(Row::into_record)
                .collect::<Result<_, _>>()?;
            Ok(RecordPage::from_lookahead(
                &page,
                records,
                total.max(0) as u64,
            ))
        })
        .await
    }

    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        self.with(move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE tokengate_tokens SET revoked_at = ?2 \
                     WHERE id = ?1 AND revoked_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), columns::millis(at)]))
                .map_err(sqlite_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        let owner = owner.to_owned();
        let except = except.map(|id| id.to_string());
        self.with(move |connection| {
            // One transaction: should an id not read back, nothing is revoked.
            let transaction = connection.transaction().map_err(sqlite_error)?;
            let ids = transaction
                .prepare_cached(
                    "UPDATE tokengate_tokens SET revoked_at = ?3 \
                     WHERE owner = ?1 AND kind = ?2 AND revoked_at IS NULL \
                     AND (?4 IS NULL OR id <> ?4) RETURNING id",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map(
                            params![owner, kind.as_str(), columns::millis(at), except],
                            |row| row.get::<_, String>(0),
                        )?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(sqlite_error)?;
            let ids = columns::token_ids(ids)?;
            transaction.commit().map_err(sqlite_error)?;
            Ok(ids)
        })
        .await
    }

    #[cfg(feature = "oidc")]
    async fn id_token_first_use(
        &self,
        key: &crate::oidc::ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let (issuer, jti) = (key.issuer().to_owned(), key.jti().to_owned());
        let (until, now) = (columns::millis(until), columns::millis(now));
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(sqlite_error)?;
            // Expired uses go first (the index finds them), so the table holds only the
            // tokens still valid.
            transaction
                .prepare_cached("DELETE FROM tokengate_id_token_uses WHERE used_until <= ?1")
                .and_then(|mut s| s.execute(params![now]))
                .map_err(sqlite_error)?;
            // A key already there and still remembered changes no row.
            let recorded = transaction
                .prepare_cached(
                    "INSERT INTO tokengate_id_token_uses (issuer, jti, used_until) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (issuer, jti) DO UPDATE \
                     SET used_until = excluded.used_until WHERE used_until <= ?4",
                )
                .and_then(|mut s| s.execute(params![issuer, jti, until, now]))
                .map_err(sqlite_error)?;
            transaction.commit().map_err(sqlite_error)?;
            Ok(recorded == 1)
        })
        .await
    }

    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction().map_err(sqlite_error)?;
            {
                let mut statement = transaction
                    .prepare_cached(
                        "UPDATE tokengate_tokens \
                         SET last_used_at = MAX(COALESCE(last_used_at, ?2), ?2) WHERE id = ?1",
                    )
                    .map_err(sqlite_error)?;
                for (id, at) in &uses {
                    statement
                        .execute(params![id.as_str(), columns::millis(*at)])
                        .map_err(sqlite_error)?;
                }
            }
            transaction.commit().map_err(sqlite_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More concurrent reads than read connections: each waits for a free connection, none
    /// fails, and every connection is back in the pool afterwards, including after a read
    /// whose caller stopped waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_share_a_small_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::builder(dir.path().join("tokens.db"))
            .read_connections(2)
            .open()
            .await
            .unwrap();
        let record = crate::record::tests::sample_record(SystemTime::UNIX_EPOCH);
        store.insert(record.clone()).await.unwrap();
        let reads: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get(record.id).await })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap().unwrap().unwrap().id, record.id);
        }
        // A read abandoned mid-flight still returns its connection.
        drop(tokio::time::timeout(Duration::ZERO, store.get(record.id)).await);
        // The lease puts its connection back before its permit is released, so wait for
        // both.
        let returned = || {
            store.readers.idle.lock().unwrap().len() == 2
                && store.readers.permits.available_permits() == 2
        };
        for _ in 0..100 {
            if returned() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.readers.idle.lock().unwrap().len(), 2);
        assert_eq!(store.readers.permits.available_permits(), 2);
    }

    /// A read connection refuses to write.
    #[tokio::test]
    async fn read_connections_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("tokens.db"))
            .await
            .unwrap();
        let refused = store
            .read(|connection| {
                connection
                    .execute("DELETE FROM tokengate_tokens", [])
                    .map_err(sqlite_error)
            })
            .await;
        assert!(refused.is_err());
    }
}
