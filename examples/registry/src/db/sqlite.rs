//! [`Metadata`] in SQLite: `registry.db` in the data folder (WAL, one writer, a few
//! readers), or a database in memory for `--memory`. The schema is migrated on open.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use super::index::PackageIndex;
use super::search_tiers::{Tier, all_found, common_prefix, prefix_end, text_rank_is_dense};
use super::{
    Access, DbError, DbFuture, Digest, Document, Maintained, Metadata, Org, OrgRemoval,
    OrgStanding, PackageWrite, PublishersAdded, ReadRule, Role, SearchHit, SearchPage, SearchQuery,
    SearchTurn, StageAdded, StageQuery, StoredDocument, StoredPackage, StoredPublisher,
    StoredStage, TarballRow, TeamAccess, User,
};
use crate::controllers::packages::PackageName;

/// Each entry takes the schema from the version before it to its own number.
const MIGRATIONS: &[&str] = &[
    // 1: users, scopes, packages and their index.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE scopes (
        scope TEXT PRIMARY KEY,
        owner TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE revisions (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    );
    INSERT INTO revisions (id, last) VALUES (1, 0);
    CREATE TABLE packages (
        name TEXT NOT NULL UNIQUE,
        revision INTEGER NOT NULL,
        visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
        mfa TEXT NOT NULL CHECK (mfa IN ('none', 'publish', 'automation')),
        description TEXT NOT NULL,
        keywords TEXT NOT NULL,
        latest TEXT NOT NULL,
        modified TEXT NOT NULL,
        summary TEXT NOT NULL,
        packument TEXT NOT NULL,
        abbreviated TEXT NOT NULL
    );
    CREATE TABLE maintainers (
        package TEXT NOT NULL REFERENCES packages (name) ON DELETE CASCADE,
        user TEXT NOT NULL,
        PRIMARY KEY (package, user)
    ) WITHOUT ROWID;
    CREATE INDEX maintainers_by_user ON maintainers (user, package);
    CREATE TABLE stars (
        package TEXT NOT NULL REFERENCES packages (name) ON DELETE CASCADE,
        user TEXT NOT NULL,
        PRIMARY KEY (package, user)
    ) WITHOUT ROWID;
    CREATE INDEX stars_by_user ON stars (user, package);
    CREATE TABLE versions (
        package TEXT NOT NULL REFERENCES packages (name) ON DELETE CASCADE,
        version TEXT NOT NULL,
        tarball TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (package, version)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX versions_by_tarball ON versions (package, tarball);
    CREATE INDEX versions_by_digest ON versions (digest);
    CREATE TABLE dist_tags (
        package TEXT NOT NULL REFERENCES packages (name) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (package, tag)
    ) WITHOUT ROWID;
    -- Substring search over names, descriptions and keywords (as `npm search` matched
    -- before there was an index), rowid = packages.rowid.
    CREATE VIRTUAL TABLE package_text USING fts5 (name, description, keywords, tokenize = 'trigram');",
    // 2: a user's record names the revision it was read at when it is written.
    "ALTER TABLE users ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;",
    // 3: trusted publishers (`npm trust`), gone with their package.
    "CREATE TABLE trusted_publishers (
        id TEXT PRIMARY KEY,
        package TEXT NOT NULL REFERENCES packages (name) ON DELETE CASCADE,
        issuer TEXT NOT NULL,
        policy TEXT NOT NULL,
        pin TEXT,
        created_by TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE INDEX trusted_publishers_by_package ON trusted_publishers (package, created);",
    // 4: the search index kept compact as packages are written again and again (each
    // write replaces the package's row in it). By default FTS5 keeps a deleted row's
    // entries until a merge reaches them, and merges four segments at a time: after a few
    // publishes of each package, a search read several segments and the dead entries in
    // each (with 10,000 packages, a full name took 7 ms instead of 0.1 ms).
    // `secure-delete` removes the entries at once, and `automerge` 2 merges segments
    // sooner. Both are kept in the database and only change how writes maintain the index.
    "INSERT INTO package_text (package_text, rank) VALUES ('secure-delete', 1);
    INSERT INTO package_text (package_text, rank) VALUES ('automerge', 2);",
    // 5: organisations, one record each, and each member's best team access per package,
    // rewritten with the record, for the read rule.
    "CREATE TABLE orgs (
        name TEXT PRIMARY KEY,
        record TEXT NOT NULL,
        revision INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE team_access (
        org TEXT NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
        package TEXT NOT NULL,
        user TEXT NOT NULL,
        access TEXT NOT NULL CHECK (access IN ('read-only', 'read-write')),
        PRIMARY KEY (package, user)
    ) WITHOUT ROWID;
    CREATE INDEX team_access_by_org ON team_access (org);",
    // 6: staged releases (`npm stage`), each reserving its version until approved,
    // rejected or expired; gone with their package.
    "CREATE TABLE stages (
        id TEXT PRIMARY KEY,
        package TEXT NOT NULL REFERENCES packages (name) ON DELETE CASCADE,
        version TEXT NOT NULL,
        tag TEXT NOT NULL,
        document TEXT NOT NULL,
        digest TEXT NOT NULL,
        actor TEXT NOT NULL,
        actor_type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        UNIQUE (package, version)
    ) WITHOUT ROWID;
    CREATE INDEX stages_by_package ON stages (package, created_at);
    CREATE INDEX stages_by_expiry ON stages (expires_at);
    CREATE INDEX stages_by_digest ON stages (digest);
    -- Packages whose every release must be staged (absent: a publish may go live).
    CREATE TABLE staging_required (
        package TEXT PRIMARY KEY REFERENCES packages (name) ON DELETE CASCADE
    ) WITHOUT ROWID;",
    // 7: each organisation's members and roles, rewritten with its record (from which the
    // existing ones are read here), so that a user's organisations are found by index.
    "CREATE TABLE org_members (
        org TEXT NOT NULL REFERENCES orgs (name) ON DELETE CASCADE,
        user TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('developer', 'admin', 'owner')),
        PRIMARY KEY (user, org)
    ) WITHOUT ROWID;
    INSERT INTO org_members (org, user, role)
        SELECT o.name, m.key, m.value FROM orgs o, json_each(o.record, '$.members') m;",
];

/// Whether the package named `$name` (an SQL expression) is in an organisation's scope
/// that `$user` (a placeholder) is not a member of: there, being listed among its
/// maintainers gives them nothing. (A macro, for `concat!`: the statements stay literals.)
macro_rules! outside_its_org {
    ($name:literal, $user:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM orgs o WHERE ",
            $name,
            " LIKE '@%'
                AND o.name = substr(",
            $name,
            ", 2, instr(",
            $name,
            ", '/') - 2)
                AND NOT EXISTS (SELECT 1 FROM org_members om
                    WHERE om.org = o.name AND om.user = ",
            $user,
            "))"
        )
    };
}

/// Whether the reader `?2` maintains the package `p`: listed as a maintainer and not
/// [outside its organisation](outside_its_org). (A macro, for `concat!`.)
macro_rules! reader_maintains {
    () => {
        concat!(
            "(EXISTS (SELECT 1 FROM maintainers m WHERE m.package = p.name AND m.user = ?2) AND NOT ",
            outside_its_org!("p.name", "?2"),
            ")"
        )
    };
}

/// Readers a file database keeps open beside its writer.
const READERS: usize = 4;
/// Quick readers at least (see [`SqliteMetadata::read_now`]); one per core if more.
const QUICK_READERS: usize = 2;
/// How long a call waits for another process's write to end.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The registry's metadata in SQLite.
pub struct SqliteMetadata {
    writer: Arc<Mutex<Connection>>,
    /// Empty for a database in memory, whose one connection does everything.
    readers: Arc<Vec<Mutex<Connection>>>,
    /// Readers that never wait for a lock, for reads made on the caller's thread; empty
    /// in memory.
    quick: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn sql_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> DbError {
    move |error| DbError::new(doing, error)
}

fn configure(connection: &Connection, file: bool) -> Result<(), DbError> {
    let doing = "open the registry's database";
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_error(doing))?;
    if file {
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_error(doing))?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_error(doing))?;
    }
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(sql_error(doing))
}

fn migrate(connection: &mut Connection) -> Result<(), DbError> {
    let doing = "migrate the registry's database";
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error(doing))?;
    let version: usize = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error(doing))?;
    if version > MIGRATIONS.len() {
        return Err(DbError::new(
            doing,
            format!(
                "the database is at schema {version}, newer than this registry knows ({}): \
                 run a newer registry",
                MIGRATIONS.len()
            ),
        ));
    }
    for (number, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        transaction
            .execute_batch(migration)
            .map_err(sql_error(doing))?;
        transaction
            .pragma_update(None, "user_version", number + 1)
            .map_err(sql_error(doing))?;
    }
    transaction.commit().map_err(sql_error(doing))
}

impl SqliteMetadata {
    /// The database at `path` (made, readable by its owner only, when missing).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let doing = "open the registry's database";
        let mut writer = Connection::open(path).map_err(sql_error(doing))?;
        crate::storage::make_private(path, crate::storage::PRIVATE_FILE)
            .map_err(|e| DbError::new(doing, e))?;
        configure(&writer, true)?;
        migrate(&mut writer)?;
        let reader = |busy_timeout| {
            let reader = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql_error(doing))?;
            reader
                .busy_timeout(busy_timeout)
                .map_err(sql_error(doing))?;
            Ok::<_, DbError>(Mutex::new(reader))
        };
        let readers = (0..READERS)
            .map(|_| reader(BUSY_TIMEOUT))
            .collect::<Result<_, _>>()?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let quick = (0..cores.max(QUICK_READERS))
            .map(|_| reader(Duration::ZERO))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
            quick,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// A database that lives as long as the process.
    pub fn memory() -> Result<Self, DbError> {
        let mut writer =
            Connection::open_in_memory().map_err(sql_error("open the registry's database"))?;
        configure(&writer, false)?;
        migrate(&mut writer)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Vec::new()),
            quick: Vec::new(),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `work` in a write transaction on tokio's blocking pool; it commits when `work`
    /// returns `Ok`, and rolls back otherwise (or if it panics).
    fn write<T, F>(&self, doing: &'static str, work: F) -> DbFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, DbError> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut connection = writer.lock().unwrap_or_else(|p| p.into_inner());
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_error(doing))?;
                let value = work(&transaction)?;
                transaction.commit().map_err(sql_error(doing))?;
                Ok(value)
            })
            .await
            .map_err(|e| DbError::new(doing, e))?
        })
    }

    /// Runs `work` on a reader (the writer, in memory).
    fn read<T, F>(&self, doing: &'static str, work: F) -> DbFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let writer = Arc::clone(&self.writer);
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let connection = match readers.get(turn % readers.len().max(1)) {
                    Some(reader) => reader.lock(),
                    None => writer.lock(),
                };
                let connection = connection.unwrap_or_else(|p| p.into_inner());
                work(&connection).map_err(sql_error(doing))
            })
            .await
            .map_err(|e| DbError::new(doing, e))?
        })
    }

    /// Runs `work`, a read of a row or two by key, at once on the caller's thread when a
    /// quick reader is free and no lock is in the way, and as [`Self::read`] does
    /// otherwise. Such a read takes microseconds, less than the hop to tokio's blocking
    /// pool and back; a quick reader never waits for a lock (its busy timeout is zero:
    /// it gives up, and the read goes to the pool), so only the pages it reads, nearly
    /// always in the OS's cache, can hold the caller's thread.
    fn read_now<T, F>(&self, doing: &'static str, work: F) -> DbFuture<'_, T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.quick.len() {
            let Ok(connection) = self.quick[(turn + offset) % self.quick.len()].try_lock() else {
                continue;
            };
            match work(&connection) {
                Err(rusqlite::Error::SqliteFailure(failure, _))
                    if matches!(
                        failure.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) =>
                {
                    break;
                }
                done => return Box::pin(std::future::ready(done.map_err(sql_error(doing)))),
            }
        }
        self.read(doing, work)
    }
}

fn access_of(visibility: &str, mfa: &str) -> Result<Access, rusqlite::Error> {
    Access::from_columns(visibility, mfa).map_err(|damaged| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, damaged.into())
    })
}

fn json_error(error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error))
}

/// The next revision, registry-wide.
fn next_revision(transaction: &Transaction<'_>) -> Result<i64, rusqlite::Error> {
    transaction.query_row(
        "UPDATE revisions SET last = last + 1 WHERE id = 1 RETURNING last",
        [],
        |row| row.get(0),
    )
}

/// Writes a package's row and replaces its index, in the caller's transaction.
pub(super) fn put_package_rows(
    transaction: &Transaction<'_>,
    name: &PackageName,
    packument: &Value,
    write: PackageWrite,
) -> Result<(), DbError> {
    let doing = "save the package";
    let index = PackageIndex::of(name, packument).map_err(|e| DbError::new(doing, e))?;
    let json = serde_json::to_string(packument).map_err(|e| DbError::new(doing, e))?;
    let full = name.to_string();
    let revision = next_revision(transaction).map_err(sql_error(doing))?;
    let existing: Option<(i64, i64)> = transaction
        .query_row(
            "SELECT rowid, revision FROM packages WHERE name = ?1",
            [&full],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql_error(doing))?;
    let rowid = match (existing, write) {
        (Some((_, stored)), PackageWrite::Replacing { revision: read }) if stored != read => {
            return Err(DbError::conflict(
                doing,
                format!("{full} changed since it was read"),
            ));
        }
        (
            Some(_),
            PackageWrite::New(_) | PackageWrite::NewInScope { .. } | PackageWrite::NewInOrg(_),
        ) => {
            return Err(DbError::conflict(
                doing,
                format!("{full} was published meanwhile"),
            ));
        }
        (None, PackageWrite::Replacing { .. }) => {
            return Err(DbError::conflict(
                doing,
                format!("{full} was removed meanwhile"),
            ));
        }
        (Some((rowid, _)), PackageWrite::Replacing { .. }) => {
            transaction
                .execute(
                    "UPDATE packages SET revision = ?2, description = ?3, keywords = ?4,
                         latest = ?5, modified = ?6, packument = ?7, abbreviated = ?8,
                         summary = ?9
                     WHERE rowid = ?1",
                    params![
                        rowid,
                        revision,
                        index.description,
                        index.keywords,
                        index.latest,
                        index.modified,
                        json,
                        index.abbreviated,
                        index.summary
                    ],
                )
                .map_err(sql_error(doing))?;
            for table in ["maintainers", "stars", "versions", "dist_tags"] {
                transaction
                    .execute(&format!("DELETE FROM {table} WHERE package = ?1"), [&full])
                    .map_err(sql_error(doing))?;
            }
            transaction
                .execute("DELETE FROM package_text WHERE rowid = ?1", [rowid])
                .map_err(sql_error(doing))?;
            rowid
        }
        (None, PackageWrite::NewInScope { access, publisher }) => {
            let scope = name
                .scope()
                .ok_or_else(|| DbError::new(doing, format!("{full} is not in a scope")))?;
            super::check_org_for(false, scope, org_exists(transaction, scope)?, doing)?;
            claim_scope_row(transaction, scope, &publisher)?;
            let owner: String = transaction
                .query_row(
                    "SELECT owner FROM scopes WHERE scope = ?1",
                    [scope],
                    |row| row.get(0),
                )
                .map_err(sql_error(doing))?;
            if owner != publisher {
                return Err(DbError::conflict(
                    doing,
                    format!("the scope @{scope} was claimed by {owner} meanwhile"),
                ));
            }
            insert_package_row(transaction, &full, revision, access, &index, &json)?
        }
        (None, PackageWrite::New(access)) => {
            insert_package_row(transaction, &full, revision, access, &index, &json)?
        }
        (None, PackageWrite::NewInOrg(access)) => {
            let scope = name
                .scope()
                .ok_or_else(|| DbError::new(doing, format!("{full} is not in a scope")))?;
            super::check_org_for(true, scope, org_exists(transaction, scope)?, doing)?;
            insert_package_row(transaction, &full, revision, access, &index, &json)?
        }
    };
    transaction
        .execute(
            "INSERT INTO package_text (rowid, name, description, keywords) VALUES (?1, ?2, ?3, ?4)",
            params![rowid, full, index.description, index.keywords],
        )
        .map_err(sql_error(doing))?;
    for (table, users) in [("maintainers", &index.maintainers), ("stars", &index.stars)] {
        for user in users {
            transaction
                .execute(
                    &format!("INSERT OR IGNORE INTO {table} (package, user) VALUES (?1, ?2)"),
                    params![full, user],
                )
                .map_err(sql_error(doing))?;
        }
    }
    for version in &index.versions {
        transaction
            .execute(
                "INSERT INTO versions (package, version, tarball, digest) VALUES (?1, ?2, ?3, ?4)",
                params![
                    full,
                    version.version,
                    version.tarball,
                    version.digest.to_hex()
                ],
            )
            .map_err(sql_error(doing))?;
    }
    for (tag, version) in &index.dist_tags {
        transaction
            .execute(
                "INSERT INTO dist_tags (package, tag, version) VALUES (?1, ?2, ?3)",
                params![full, tag, version],
            )
            .map_err(sql_error(doing))?;
    }
    // A staged version stays reserved: a publish of it (from another node, past the
    // handler's own check) is refused here.
    let staged: Option<(String, String)> = transaction
        .query_row(
            "SELECT s.version, s.id FROM stages s JOIN versions v
                 ON v.package = s.package AND v.version = s.version
             WHERE s.package = ?1 LIMIT 1",
            [&full],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql_error(doing))?;
    if let Some((version, id)) = staged {
        return Err(DbError::conflict(
            doing,
            format!("{full}@{version} is staged (stage {id})"),
        ));
    }
    Ok(())
}

/// Whether a package of that name exists, in the caller's transaction.
fn package_exists(transaction: &Transaction<'_>, full: &str) -> Result<bool, rusqlite::Error> {
    Ok(transaction
        .query_row("SELECT 1 FROM packages WHERE name = ?1", [full], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The columns of a stage, in the order [`stage_row`] reads them.
const STAGE_COLUMNS: &str =
    "id, package, version, tag, document, digest, actor, actor_type, created_at, expires_at";

fn stage_row(row: &rusqlite::Row<'_>) -> Result<StoredStage, rusqlite::Error> {
    let document: String = row.get(4)?;
    let digest: String = row.get(5)?;
    Ok(StoredStage {
        id: row.get(0)?,
        package: row.get(1)?,
        version: row.get(2)?,
        tag: row.get(3)?,
        document: serde_json::from_str(&document).map_err(json_error)?,
        digest: Digest::from_hex(&digest).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                "a stage's digest is damaged".into(),
            )
        })?,
        actor: row.get(6)?,
        actor_type: row.get(7)?,
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
    })
}

/// Removes the stages expired at `now`, in the caller's transaction; returns them.
fn remove_expired_stage_rows(
    transaction: &Transaction<'_>,
    now: i64,
) -> Result<Vec<StoredStage>, rusqlite::Error> {
    let mut statement = transaction.prepare_cached(&format!(
        "DELETE FROM stages WHERE expires_at <= ?1 RETURNING {STAGE_COLUMNS}"
    ))?;
    let rows = statement.query_map([now], stage_row)?;
    rows.collect()
}

/// Inserts a new package's row; its rowid.
fn insert_package_row(
    transaction: &Transaction<'_>,
    full: &str,
    revision: i64,
    access: Access,
    index: &PackageIndex,
    json: &str,
) -> Result<i64, DbError> {
    transaction
        .query_row(
            "INSERT INTO packages (name, revision, visibility, mfa, description,
                 keywords, latest, modified, packument, abbreviated, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING rowid",
            params![
                full,
                revision,
                access.visibility.as_column(),
                access.mfa.as_column(),
                index.description,
                index.keywords,
                index.latest,
                index.modified,
                json,
                index.abbreviated,
                index.summary
            ],
            |row| row.get(0),
        )
        .map_err(sql_error("save the package"))
}

pub(super) fn put_user_row(transaction: &Transaction<'_>, user: &User) -> Result<i64, DbError> {
    let doing = "save the user";
    let record = serde_json::to_string(user).map_err(|e| DbError::new(doing, e))?;
    let written: Option<i64> = match user.revision {
        // Never an organisation's name.
        None => transaction
            .query_row(
                "INSERT INTO users (name, record, revision)
                 SELECT ?1, ?2, 1 WHERE NOT EXISTS (SELECT 1 FROM orgs WHERE name = ?1)
                 ON CONFLICT (name) DO NOTHING RETURNING revision",
                params![user.name, record],
                |row| row.get(0),
            )
            .optional(),
        Some(read) => transaction
            .query_row(
                "UPDATE users SET record = ?2, revision = revision + 1
                 WHERE name = ?1 AND revision = ?3 RETURNING revision",
                params![user.name, record, read],
                |row| row.get(0),
            )
            .optional(),
    }
    .map_err(sql_error(doing))?;
    written.ok_or_else(|| DbError::conflict(doing, format!("user {} changed meanwhile", user.name)))
}

fn put_org_rows(transaction: &Transaction<'_>, org: &Org) -> Result<i64, DbError> {
    let doing = "save the organisation";
    let record = serde_json::to_string(org).map_err(|e| DbError::new(doing, e))?;
    let written: Option<i64> = match org.revision {
        // Never a user's name, nor a scope someone else has published into.
        None => transaction
            .query_row(
                "INSERT INTO orgs (name, record, revision)
                 SELECT ?1, ?2, 1 WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = ?1)
                     AND NOT EXISTS (SELECT 1 FROM scopes WHERE scope = ?1 AND owner <> ?3)
                 ON CONFLICT (name) DO NOTHING RETURNING revision",
                params![org.name, record, org.first_owner()],
                |row| row.get(0),
            )
            .optional(),
        Some(read) => transaction
            .query_row(
                "UPDATE orgs SET record = ?2, revision = revision + 1
                 WHERE name = ?1 AND revision = ?3 RETURNING revision",
                params![org.name, record, read],
                |row| row.get(0),
            )
            .optional(),
    }
    .map_err(sql_error(doing))?;
    let revision = written.ok_or_else(|| {
        DbError::conflict(
            doing,
            format!(
                "organisation {} changed meanwhile, or its name is taken",
                org.name
            ),
        )
    })?;
    transaction
        .execute("DELETE FROM team_access WHERE org = ?1", [&org.name])
        .map_err(sql_error(doing))?;
    transaction
        .execute("DELETE FROM org_members WHERE org = ?1", [&org.name])
        .map_err(sql_error(doing))?;
    let mut member = transaction
        .prepare_cached("INSERT INTO org_members (org, user, role) VALUES (?1, ?2, ?3)")
        .map_err(sql_error(doing))?;
    for (user, role) in &org.members {
        member
            .execute(params![org.name, user, role.as_str()])
            .map_err(sql_error(doing))?;
    }
    let mut insert = transaction
        .prepare_cached(
            "INSERT INTO team_access (org, package, user, access) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_error(doing))?;
    for (package, user, access) in org.access_rows() {
        insert
            .execute(params![org.name, package, user, access.as_str()])
            .map_err(sql_error(doing))?;
    }
    Ok(revision)
}

fn team_access_of(text: Option<String>) -> Result<Option<TeamAccess>, rusqlite::Error> {
    text.map(|text| {
        TeamAccess::parse(&text).ok_or_else(|| {
            json_error(serde::de::Error::custom(
                "a team's package access is damaged",
            ))
        })
    })
    .transpose()
}

fn org_exists(transaction: &Transaction<'_>, name: &str) -> Result<bool, DbError> {
    transaction
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM orgs WHERE name = ?1)",
            [name],
            |row| row.get(0),
        )
        .map_err(sql_error("read the organisation"))
}

pub(super) fn claim_scope_row(
    transaction: &Transaction<'_>,
    scope: &str,
    owner: &str,
) -> Result<(), DbError> {
    transaction
        .execute(
            "INSERT OR IGNORE INTO scopes (scope, owner) VALUES (?1, ?2)",
            params![scope, owner],
        )
        .map_err(sql_error("record the scope's owner"))?;
    Ok(())
}

/// SQL for "the reader may see it": public, or the reader maintains it (listed, and in an
/// organisation's scope its member), or has it through a team.
const READABLE: &str = concat!(
    "(p.visibility = 'public' OR (EXISTS (SELECT 1 FROM maintainers m
     WHERE m.package = p.name AND m.user = :reader) AND NOT ",
    outside_its_org!("p.name", ":reader"),
    ") OR EXISTS (SELECT 1 FROM team_access t
     WHERE t.package = p.name AND t.user = :reader))"
);

/// The values among `named` that `statement` names: a search without words, say, has no
/// `MATCH` value.
fn used_by<'a>(
    statement: &rusqlite::Statement<'_>,
    named: &[(&'a str, &'a dyn rusqlite::ToSql)],
) -> Vec<(&'a str, &'a dyn rusqlite::ToSql)> {
    named
        .iter()
        .filter(|(key, _)| matches!(statement.parameter_index(key), Ok(Some(_))))
        .copied()
        .collect()
}

/// A term quoted for an FTS5 query.
fn fts_phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// What the statements of a search for `terms` share: a package's rank (the worst of its
/// terms: 0 exact name, 1 name prefix, 2 in the name, 3 in the text only), the `LIKE`
/// conditions of its terms, the text index's queries, and their values (besides
/// `:reader`, `:limit`, `:size`, `:from`, `:lo` and `:hi`). Its text depends only on how
/// many terms there are and which are short, so that each statement is prepared once per
/// shape.
struct SearchSql {
    tier: String,
    /// A condition per term shorter than the index's trigrams, matched beside it.
    short: Vec<String>,
    /// A condition per term, for a read that uses no text index.
    every: Vec<String>,
    /// Whether some term is long enough for the text index (`:match` on every column,
    /// `:name_match` on the name).
    indexed: bool,
    values: Vec<(String, String)>,
}

fn search_sql(terms: &[String]) -> SearchSql {
    // Terms of three characters or more are found through the trigram index; a shorter
    // one is matched on the rows that index found (or, alone, by a scan in name order).
    let long: Vec<String> = terms
        .iter()
        .filter(|t| t.chars().count() >= 3)
        .map(|t| fts_phrase(t))
        .collect();
    let mut values: Vec<(String, String)> = Vec::new();
    let (mut short, mut every, mut tiers) = (Vec::new(), Vec::new(), Vec::new());
    for (i, term) in terms.iter().enumerate() {
        let (exact, like) = (format!(":t{i}"), format!(":l{i}"));
        values.push((exact.clone(), term.clone()));
        values.push((like.clone(), format!("%{}%", like_escaped(term))));
        tiers.push(format!(
            "CASE WHEN p.name = {exact} THEN 0
                  WHEN substr(p.name, 1, length({exact})) = {exact} THEN 1
                  WHEN instr(p.name, {exact}) > 0 THEN 2 ELSE 3 END"
        ));
        let condition = format!(
            "(p.name LIKE {like} ESCAPE '\\' OR p.description LIKE {like} ESCAPE '\\'
              OR p.keywords LIKE {like} ESCAPE '\\')"
        );
        if term.chars().count() < 3 {
            short.push(condition.clone());
        }
        every.push(condition);
    }
    if !long.is_empty() {
        values.push((":match".into(), long.join(" AND ")));
        values.push((
            ":name_match".into(),
            format!("{{name}} : ({})", long.join(" AND ")),
        ));
    }
    // Two arguments at least: SQLite's max() of one is the aggregate.
    tiers.extend(["0".to_owned(), "0".to_owned()]);
    SearchSql {
        tier: format!("max({})", tiers.join(", ")),
        short,
        every,
        indexed: !long.is_empty(),
        values,
    }
}

/// The statement that counts a search's matches, at most `:limit` of them (its `counted`,
/// plus one to tell "more"), and gives its page from them. When they are all there is,
/// that page is the answer; otherwise [`tier_statement`]s rank the page over every
/// match.
///
/// The matches are read once, each with its rank, and the count, the order and the page
/// are all taken from those. The exact name is looked up by the name index beside them,
/// so that it is counted however many packages match. Private packages are left out in
/// the query (by [`READABLE`]), before they are counted.
fn search_statement(parts: &SearchSql, terms: &[String]) -> String {
    let tier = &parts.tier;
    let mut conditions = vec![READABLE.to_owned()];
    conditions.extend(parts.short.iter().cloned());
    let matches = if parts.indexed {
        format!(
            "SELECT p.rowid, p.name, {tier} FROM package_text t
             JOIN packages p ON p.rowid = t.rowid
             WHERE package_text MATCH :match AND {} LIMIT :limit",
            conditions.join(" AND ")
        )
    } else {
        // No index to read: the first packages by name (every one, without words).
        format!(
            "SELECT p.rowid, p.name, {tier} FROM packages p
             WHERE {} ORDER BY p.name LIMIT :limit",
            conditions.join(" AND ")
        )
    };
    let exact = if terms.is_empty() {
        String::new()
    } else {
        format!(
            "SELECT id, name, tier FROM (
                 SELECT p.rowid AS id, p.name AS name, {tier} AS tier FROM packages p
                 WHERE p.name = :t0 AND {READABLE}
             ) WHERE tier = 0
             UNION "
        )
    };
    format!(
        "WITH found (id, name, tier) AS MATERIALIZED (
             {exact}SELECT * FROM ({matches})
         ),
         page AS (SELECT id, name, tier FROM found ORDER BY tier, name LIMIT :size OFFSET :from)
         SELECT (SELECT count(*) FROM found), p.name, p.description, p.keywords, p.latest,
             p.visibility, p.summary
         FROM (SELECT 1) LEFT JOIN page ON 1 LEFT JOIN packages p ON p.rowid = page.id
         ORDER BY page.tier, page.name"
    )
}

/// How a rank's packages are read (see [`super::search_tiers`]).
#[derive(Clone, Copy)]
enum TierRead {
    /// Exact name and prefix: the name range from `:lo` (to `:hi`, if `bounded`).
    Prefix { bounded: bool },
    /// Through the text index, at most `:limit`, in the index's order.
    Index(Tier),
    /// Through the name index in name order, the first `:limit`.
    Names(Tier),
}

/// The statement that gives `(rowid, name)` of the readable packages a [`TierRead`] reads.
fn tier_statement(parts: &SearchSql, read: TierRead) -> String {
    let tier = &parts.tier;
    match read {
        TierRead::Prefix { bounded } => format!(
            "SELECT p.rowid, p.name FROM packages p WHERE p.name >= :lo{} AND {READABLE}
             ORDER BY p.name LIMIT :limit",
            if bounded { " AND p.name < :hi" } else { "" }
        ),
        TierRead::Index(rank) => {
            let (column, conditions) = match rank {
                Tier::InName => (":name_match", Vec::new()),
                Tier::InText => (":match", parts.short.clone()),
            };
            let mut conditions = conditions;
            conditions.push(format!("{tier} = {}", rank.rank()));
            format!(
                "SELECT p.rowid, p.name FROM package_text t JOIN packages p ON p.rowid = t.rowid
                 WHERE package_text MATCH {column} AND {READABLE} AND {} LIMIT :limit",
                conditions.join(" AND ")
            )
        }
        TierRead::Names(rank) => {
            let mut conditions = match rank {
                Tier::InName => Vec::new(),
                Tier::InText => parts.every.clone(),
            };
            conditions.push(format!("{tier} = {}", rank.rank()));
            format!(
                "SELECT p.rowid, p.name FROM packages p WHERE {READABLE} AND {}
                 ORDER BY p.name LIMIT :limit",
                conditions.join(" AND ")
            )
        }
    }
}

/// A search hit from `name, description, keywords, latest, visibility, summary` at
/// `first` on in `row`.
fn search_hit(row: &rusqlite::Row<'_>, first: usize, name: String) -> rusqlite::Result<SearchHit> {
    let keywords: String = row.get(first + 2)?;
    let visibility: String = row.get(first + 4)?;
    let summary: String = row.get(first + 5)?;
    Ok(SearchHit {
        name,
        description: row.get(first + 1)?,
        keywords: keywords.split_whitespace().map(str::to_owned).collect(),
        version: row.get(first + 3)?,
        visibility: access_of(&visibility, "none")?.visibility,
        summary: serde_json::from_str(&summary).map_err(json_error)?,
    })
}

/// The page of a search that matches more than it counts: each rank read by its own
/// bounded query, best first, until `from + size` packages are known.
fn ranked_page(
    connection: &Connection,
    terms: &[String],
    parts: &SearchSql,
    named: &[(&str, &dyn rusqlite::ToSql)],
    (from, size, counted): (usize, usize, usize),
) -> rusqlite::Result<Vec<SearchHit>> {
    let need = from + size;
    let read = |read: TierRead, limit: usize, extra: &[(&str, &dyn rusqlite::ToSql)]| {
        let mut statement = connection.prepare_cached(&tier_statement(parts, read))?;
        let limit = limit as i64;
        let mut all: Vec<(&str, &dyn rusqlite::ToSql)> = named.to_vec();
        all.extend_from_slice(extra);
        all.push((":limit", &limit));
        let used = used_by(&statement, &all);
        let rows = statement.query_map(used.as_slice(), |row| {
            Ok((row.get::<_, String>(1)?, row.get::<_, i64>(0)?))
        })?;
        rows.collect::<rusqlite::Result<Vec<(String, i64)>>>()
    };
    let mut ids: Vec<(String, i64)> = Vec::new();
    if let Some(prefix) = common_prefix(terms) {
        let end = prefix_end(prefix);
        let read_prefix = TierRead::Prefix {
            bounded: end.is_some(),
        };
        ids.extend(read(read_prefix, need, &[(":lo", &prefix), (":hi", &end)])?);
    }
    for tier in Tier::ALL {
        if ids.len() >= need || terms.is_empty() {
            break;
        }
        let left = need - ids.len();
        let dense = tier == Tier::InText && text_rank_is_dense(ids.len(), counted);
        let found = if parts.indexed && !dense {
            all_found(
                read(TierRead::Index(tier), counted + 1, &[])?,
                counted,
                left,
            )
        } else {
            None
        };
        match found {
            Some(found) => ids.extend(found),
            None => ids.extend(read(TierRead::Names(tier), left, &[])?),
        }
    }
    let mut statement = connection.prepare_cached(
        "SELECT name, description, keywords, latest, visibility, summary FROM packages
         WHERE rowid = ?1",
    )?;
    ids.into_iter()
        .skip(from)
        .take(size)
        .filter_map(|(name, id)| {
            statement
                .query_row([id], |row| search_hit(row, 0, name))
                .optional()
                .transpose()
        })
        .collect()
}

/// A term escaped for `LIKE … ESCAPE '\'`.
fn like_escaped(term: &str) -> String {
    term.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl SqliteMetadata {
    /// Whether the database has neither users nor packages.
    pub fn is_empty(&self) -> DbFuture<'_, bool> {
        self.read("read the registry's database", |connection| {
            connection.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM packages)",
                [],
                |row| row.get(0),
            )
        })
    }

    /// Imports into an empty database, in one transaction (see [`super::import`]).
    pub(super) fn transaction<T, F>(&self, doing: &'static str, work: F) -> DbFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, DbError> + Send + 'static,
    {
        self.write(doing, work)
    }
}

impl Metadata for SqliteMetadata {
    fn user(&self, name: &str) -> DbFuture<'_, Option<User>> {
        let name = name.to_owned();
        self.read("read the user", move |connection| {
            let row: Option<(String, i64)> = connection
                .query_row(
                    "SELECT record, revision FROM users WHERE name = ?1",
                    [&name],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            row.map(|(record, revision)| {
                let mut user: User = serde_json::from_str(&record).map_err(json_error)?;
                user.revision = Some(revision);
                Ok(user)
            })
            .transpose()
        })
    }

    fn put_user(&self, user: &User) -> DbFuture<'_, i64> {
        let user = user.clone();
        self.write("save the user", move |transaction| {
            put_user_row(transaction, &user)
        })
    }

    fn org(&self, name: &str) -> DbFuture<'_, Option<Org>> {
        let name = name.to_owned();
        self.read("read the organisation", move |connection| {
            let row: Option<(String, i64)> = connection
                .query_row(
                    "SELECT record, revision FROM orgs WHERE name = ?1",
                    [&name],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            row.map(|(record, revision)| {
                let mut org: Org = serde_json::from_str(&record).map_err(json_error)?;
                org.revision = Some(revision);
                Ok(org)
            })
            .transpose()
        })
    }

    fn put_org(&self, org: &Org) -> DbFuture<'_, i64> {
        let org = org.clone();
        self.write("save the organisation", move |transaction| {
            put_org_rows(transaction, &org)
        })
    }

    fn orgs_of(&self, user: &str) -> DbFuture<'_, Vec<(String, Role)>> {
        let user = user.to_owned();
        self.read("read the user's organisations", move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT org, role FROM org_members WHERE user = ?1 ORDER BY org LIMIT 1000",
            )?;
            let rows = statement.query_map([&user], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            rows.map(|row| {
                let (org, role) = row?;
                let role = Role::parse(&role).ok_or_else(|| {
                    json_error(serde::de::Error::custom("a member's role is damaged"))
                })?;
                Ok((org, role))
            })
            .collect()
        })
    }

    fn remove_org(&self, org: &Org) -> DbFuture<'_, OrgRemoval> {
        let (name, read) = (org.name.clone(), org.revision);
        self.write("remove the organisation", move |transaction| {
            let doing = "remove the organisation";
            // Names in the scope sort between "@org/" and "@org0" ('0' follows '/').
            let packages: i64 = transaction
                .query_row(
                    "SELECT count(*) FROM packages WHERE name >= ?1 AND name < ?2",
                    params![format!("@{name}/"), format!("@{name}0")],
                    |row| row.get(0),
                )
                .map_err(sql_error(doing))?;
            if packages > 0 {
                return Ok(OrgRemoval::HasPackages(packages.unsigned_abs()));
            }
            let removed = transaction
                .execute(
                    "DELETE FROM orgs WHERE name = ?1 AND revision = ?2",
                    params![name, read],
                )
                .map_err(sql_error(doing))?;
            if removed == 0 {
                return Err(DbError::conflict(
                    doing,
                    format!("organisation {name} changed meanwhile, or is gone"),
                ));
            }
            // Its team access goes with it (ON DELETE CASCADE); so does the scope's first
            // publisher, who would otherwise keep the freed name's scope.
            transaction
                .execute("DELETE FROM scopes WHERE scope = ?1", [&name])
                .map_err(sql_error(doing))?;
            Ok(OrgRemoval::Removed)
        })
    }

    fn org_standing(&self, name: &PackageName, user: &str) -> DbFuture<'_, OrgStanding> {
        let (full, user) = (name.to_string(), user.to_owned());
        let scope = name.scope().map(str::to_owned);
        self.read("read the organisation's member", move |connection| {
            let (org_exists, member, access): (bool, bool, Option<String>) = connection
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM orgs WHERE name = ?1),
                         EXISTS (SELECT 1 FROM org_members WHERE org = ?1 AND user = ?2),
                         (SELECT access FROM team_access WHERE package = ?3 AND user = ?2)",
                )?
                .query_row(params![scope, user, full], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            Ok(OrgStanding::of(org_exists, member, team_access_of(access)?))
        })
    }

    fn scope_owner(&self, scope: &str) -> DbFuture<'_, Option<String>> {
        let scope = scope.to_owned();
        self.read("read the scope's owner", move |connection| {
            connection
                .query_row(
                    "SELECT owner FROM scopes WHERE scope = ?1",
                    [&scope],
                    |row| row.get(0),
                )
                .optional()
        })
    }

    fn package(&self, name: &PackageName) -> DbFuture<'_, Option<StoredPackage>> {
        let full = name.to_string();
        self.read("read the package", move |connection| {
            connection
                .query_row(
                    "SELECT packument, visibility, mfa, revision FROM packages WHERE name = ?1",
                    [&full],
                    |row| {
                        let packument: String = row.get(0)?;
                        let visibility: String = row.get(1)?;
                        let mfa: String = row.get(2)?;
                        Ok(StoredPackage {
                            packument: serde_json::from_str(&packument).map_err(json_error)?,
                            access: access_of(&visibility, &mfa)?,
                            revision: row.get(3)?,
                        })
                    },
                )
                .optional()
        })
    }

    fn document(
        &self,
        name: &PackageName,
        which: Document,
    ) -> DbFuture<'_, Option<StoredDocument>> {
        let full = name.to_string();
        let column = match which {
            Document::Full => "packument",
            Document::Abbreviated => "abbreviated",
        };
        self.read_now("read the package", move |connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {column}, revision FROM packages WHERE name = ?1"
                ))?
                .query_row([&full], |row| {
                    Ok(StoredDocument {
                        json: row.get(0)?,
                        revision: row.get(1)?,
                    })
                })
                .optional()
        })
    }

    fn put_packument(
        &self,
        name: &PackageName,
        packument: &Value,
        write: PackageWrite,
    ) -> DbFuture<'_, ()> {
        let (name, packument) = (name.clone(), packument.clone());
        self.write("save the package", move |transaction| {
            put_package_rows(transaction, &name, &packument, write)
        })
    }

    fn set_access(&self, name: &PackageName, access: Access, read: i64) -> DbFuture<'_, ()> {
        let full = name.to_string();
        self.write("save the package's access", move |transaction| {
            let doing = "save the package's access";
            let revision = next_revision(transaction).map_err(sql_error(doing))?;
            let changed = transaction
                .execute(
                    "UPDATE packages SET visibility = ?2, mfa = ?3, revision = ?4
                     WHERE name = ?1 AND revision = ?5",
                    params![
                        full,
                        access.visibility.as_column(),
                        access.mfa.as_column(),
                        revision,
                        read
                    ],
                )
                .map_err(sql_error(doing))?;
            if changed == 0 {
                return Err(DbError::conflict(
                    doing,
                    format!("{full} changed since it was read"),
                ));
            }
            Ok(())
        })
    }

    fn delete_package(&self, name: &PackageName, read: i64) -> DbFuture<'_, ()> {
        let full = name.to_string();
        self.write("remove the package", move |transaction| {
            let doing = "remove the package";
            transaction
                .execute(
                    "DELETE FROM package_text WHERE rowid =
                         (SELECT rowid FROM packages WHERE name = ?1 AND revision = ?2)",
                    params![full, read],
                )
                .map_err(sql_error(doing))?;
            let removed = transaction
                .execute(
                    "DELETE FROM packages WHERE name = ?1 AND revision = ?2",
                    params![full, read],
                )
                .map_err(sql_error(doing))?;
            if removed == 0 {
                return Err(DbError::conflict(
                    doing,
                    format!("{full} changed since it was read"),
                ));
            }
            Ok(())
        })
    }

    fn read_rule(
        &self,
        name: &PackageName,
        reader: Option<&str>,
    ) -> DbFuture<'_, Option<ReadRule>> {
        let full = name.to_string();
        let reader = reader.map(str::to_owned);
        self.read_now("read the package", move |connection| {
            connection
                .prepare_cached(concat!(
                    "SELECT p.visibility, p.mfa, ",
                    reader_maintains!(),
                    ", p.revision,
                         (SELECT t.access FROM team_access t
                             WHERE t.package = p.name AND t.user = ?2)
                     FROM packages p WHERE p.name = ?1"
                ))?
                .query_row(params![full, reader], |row| {
                    let visibility: String = row.get(0)?;
                    let mfa: String = row.get(1)?;
                    Ok(ReadRule {
                        visibility: access_of(&visibility, &mfa)?.visibility,
                        reader_maintains: row.get(2)?,
                        revision: row.get(3)?,
                        reader_team: team_access_of(row.get(4)?)?,
                    })
                })
                .optional()
        })
    }

    fn tarball(
        &self,
        name: &PackageName,
        file: &str,
        reader: Option<&str>,
    ) -> DbFuture<'_, Option<TarballRow>> {
        let full = name.to_string();
        let file = file.to_owned();
        let reader = reader.map(str::to_owned);
        self.read_now("read the tarball's record", move |connection| {
            connection
                .prepare_cached(concat!(
                    "SELECT v.digest, p.visibility, p.mfa, ",
                    reader_maintains!(),
                    ", p.revision,
                         (SELECT t.access FROM team_access t
                             WHERE t.package = p.name AND t.user = ?2)
                     FROM versions v JOIN packages p ON p.name = v.package
                     WHERE v.package = ?1 AND v.tarball = ?3"
                ))?
                .query_row(params![full, reader, file], |row| {
                    let digest: String = row.get(0)?;
                    let visibility: String = row.get(1)?;
                    let mfa: String = row.get(2)?;
                    Ok(TarballRow {
                        digest: Digest::from_hex(&digest).ok_or_else(|| {
                            json_error(serde::de::Error::custom("a tarball digest is damaged"))
                        })?,
                        rule: ReadRule {
                            visibility: access_of(&visibility, &mfa)?.visibility,
                            reader_maintains: row.get(3)?,
                            revision: row.get(4)?,
                            reader_team: team_access_of(row.get(5)?)?,
                        },
                    })
                })
                .optional()
        })
    }

    fn tarball_in_use(&self, digest: &Digest) -> DbFuture<'_, bool> {
        let hex = digest.to_hex();
        self.read("read the tarball's record", move |connection| {
            connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE digest = ?1)
                     OR EXISTS (SELECT 1 FROM stages WHERE digest = ?1)",
                [&hex],
                |row| row.get(0),
            )
        })
    }

    fn search(
        &self,
        query: &SearchQuery<'_>,
        turn: Option<SearchTurn>,
    ) -> DbFuture<'_, SearchPage> {
        let terms = query.terms.to_vec();
        let (from, size, counted) = (query.from, query.size, query.counted);
        let reader = query.reader.map(str::to_owned);
        self.read("search", move |connection| {
            // The turn ends when this closure does: with the query, not with the request.
            let _turn = turn;
            let parts = search_sql(&terms);
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = parts
                .values
                .iter()
                .map(|(key, value)| (key.as_str(), value as &dyn rusqlite::ToSql))
                .collect();
            named.push((":reader", &reader as &dyn rusqlite::ToSql));
            let mut statement = connection.prepare_cached(&search_statement(&parts, &terms))?;
            let (limit, page_size, page_from) = (counted as i64 + 1, size as i64, from as i64);
            let mut counting = named.clone();
            counting.extend([
                (":limit", &limit as &dyn rusqlite::ToSql),
                (":size", &page_size),
                (":from", &page_from),
            ]);
            let mut found = 0;
            let mut hits = Vec::new();
            let used = used_by(&statement, &counting);
            let mut rows = statement.query(used.as_slice())?;
            while let Some(row) = rows.next()? {
                found = row.get::<_, i64>(0)? as usize;
                // The one row of a search that found nothing has no package.
                let Some(name) = row.get::<_, Option<String>>(1)? else {
                    continue;
                };
                hits.push(search_hit(row, 1, name)?);
            }
            if found > counted {
                hits = ranked_page(connection, &terms, &parts, &named, (from, size, counted))?;
            }
            Ok(SearchPage {
                hits,
                total: found.min(counted) as u64,
            })
        })
    }

    fn starred_by(&self, user: &str) -> DbFuture<'_, Vec<String>> {
        let user = user.to_owned();
        self.read("read the user's stars", move |connection| {
            let mut statement =
                connection.prepare("SELECT package FROM stars WHERE user = ?1 ORDER BY package")?;
            let rows = statement.query_map([&user], |row| row.get(0))?;
            rows.collect()
        })
    }

    fn maintained_by(&self, user: &str) -> DbFuture<'_, Vec<Maintained>> {
        let user = user.to_owned();
        self.read("read the user's packages", move |connection| {
            let mut statement = connection.prepare(concat!(
                "SELECT p.name, p.visibility, p.mfa FROM maintainers m
                 JOIN packages p ON p.name = m.package WHERE m.user = ?1 AND NOT ",
                outside_its_org!("p.name", "?1"),
                " ORDER BY p.name"
            ))?;
            let rows = statement.query_map([&user], |row| {
                let visibility: String = row.get(1)?;
                let mfa: String = row.get(2)?;
                Ok(Maintained {
                    name: row.get(0)?,
                    visibility: access_of(&visibility, &mfa)?.visibility,
                })
            })?;
            rows.collect()
        })
    }

    fn trusted_publishers(&self, name: &PackageName) -> DbFuture<'_, Vec<StoredPublisher>> {
        let full = name.to_string();
        self.read("read the package's trusted publishers", move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, issuer, policy, pin, created_by, created FROM trusted_publishers
                 WHERE package = ?1 ORDER BY created, rowid",
            )?;
            let rows = statement.query_map([&full], |row| {
                let policy: String = row.get(2)?;
                let pin: Option<String> = row.get(3)?;
                Ok(StoredPublisher {
                    id: row.get(0)?,
                    issuer: row.get(1)?,
                    policy: serde_json::from_str(&policy).map_err(json_error)?,
                    pin: pin
                        .map(|pin| serde_json::from_str(&pin))
                        .transpose()
                        .map_err(json_error)?,
                    created_by: row.get(4)?,
                    created: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    fn add_trusted_publishers(
        &self,
        name: &PackageName,
        publishers: &[StoredPublisher],
        max: usize,
    ) -> DbFuture<'_, PublishersAdded> {
        let full = name.to_string();
        let publishers = publishers.to_vec();
        let doing = "save the package's trusted publishers";
        self.write(doing, move |transaction| {
            let exists = package_exists(transaction, &full).map_err(sql_error(doing))?;
            if !exists {
                return Ok(PublishersAdded::NoPackage);
            }
            let existing: i64 = transaction
                .query_row(
                    "SELECT count(*) FROM trusted_publishers WHERE package = ?1",
                    [&full],
                    |row| row.get(0),
                )
                .map_err(sql_error(doing))?;
            let existing = existing as usize;
            if existing + publishers.len() > max {
                return Ok(PublishersAdded::TooMany { existing });
            }
            for publisher in &publishers {
                let policy =
                    serde_json::to_string(&publisher.policy).map_err(|e| DbError::new(doing, e))?;
                let pin = publisher
                    .pin
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| DbError::new(doing, e))?;
                transaction
                    .execute(
                        "INSERT INTO trusted_publishers
                             (id, package, issuer, policy, pin, created_by, created)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            publisher.id,
                            full,
                            publisher.issuer,
                            policy,
                            pin,
                            publisher.created_by,
                            publisher.created
                        ],
                    )
                    .map_err(sql_error(doing))?;
            }
            Ok(PublishersAdded::Added)
        })
    }

    fn remove_trusted_publisher(&self, name: &PackageName, id: &str) -> DbFuture<'_, bool> {
        let (full, id) = (name.to_string(), id.to_owned());
        let doing = "remove the trusted publisher";
        self.write(doing, move |transaction| {
            let removed = transaction
                .execute(
                    "DELETE FROM trusted_publishers WHERE package = ?1 AND id = ?2",
                    [&full, &id],
                )
                .map_err(sql_error(doing))?;
            Ok(removed > 0)
        })
    }

    fn pin_trusted_publisher(
        &self,
        name: &PackageName,
        id: &str,
        pin: &Value,
    ) -> DbFuture<'_, bool> {
        let (full, id) = (name.to_string(), id.to_owned());
        let pin = pin.to_string();
        let doing = "pin the trusted publisher";
        self.write(doing, move |transaction| {
            let pinned = transaction
                .execute(
                    "UPDATE trusted_publishers SET pin = ?3
                     WHERE package = ?1 AND id = ?2 AND pin IS NULL",
                    [&full, &id, &pin],
                )
                .map_err(sql_error(doing))?;
            Ok(pinned > 0)
        })
    }

    fn add_stage(&self, stage: &StoredStage) -> DbFuture<'_, StageAdded> {
        let stage = stage.clone();
        let doing = "stage the release";
        self.write(doing, move |transaction| {
            remove_expired_stage_rows(transaction, stage.created_at).map_err(sql_error(doing))?;
            let exists = package_exists(transaction, &stage.package).map_err(sql_error(doing))?;
            if !exists {
                return Ok(StageAdded::NoPackage);
            }
            let published = transaction
                .query_row(
                    "SELECT 1 FROM versions WHERE package = ?1 AND version = ?2",
                    [&stage.package, &stage.version],
                    |_| Ok(()),
                )
                .optional()
                .map_err(sql_error(doing))?
                .is_some();
            if published {
                return Ok(StageAdded::Published);
            }
            let taken: Option<String> = transaction
                .query_row(
                    "SELECT id FROM stages WHERE package = ?1 AND version = ?2",
                    [&stage.package, &stage.version],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql_error(doing))?;
            if let Some(id) = taken {
                return Ok(StageAdded::Taken { id });
            }
            let document = stage.document.to_string();
            transaction
                .execute(
                    &format!(
                        "INSERT INTO stages ({STAGE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        stage.id,
                        stage.package,
                        stage.version,
                        stage.tag,
                        document,
                        stage.digest.to_hex(),
                        stage.actor,
                        stage.actor_type,
                        stage.created_at,
                        stage.expires_at
                    ],
                )
                .map_err(sql_error(doing))?;
            Ok(StageAdded::Added)
        })
    }

    fn stage(&self, id: &str) -> DbFuture<'_, Option<StoredStage>> {
        let id = id.to_owned();
        self.read("read the staged release", move |connection| {
            connection
                .query_row(
                    &format!("SELECT {STAGE_COLUMNS} FROM stages WHERE id = ?1"),
                    [&id],
                    stage_row,
                )
                .optional()
        })
    }

    fn stages(&self, query: &StageQuery<'_>) -> DbFuture<'_, (Vec<StoredStage>, u64)> {
        let (maintainer, package) = (
            query.maintainer.to_owned(),
            query.package.map(str::to_owned),
        );
        let (now, offset, limit) = (query.now, query.offset, query.limit);
        self.read("list the staged releases", move |connection| {
            // The packages the maintainer maintains: in an organisation's scope, only while
            // a member of it.
            let filter = concat!(
                "FROM stages s JOIN maintainers m ON m.package = s.package AND m.user = ?1
                 WHERE s.expires_at > ?2 AND (?3 IS NULL OR s.package = ?3) AND NOT ",
                outside_its_org!("s.package", "?1")
            );
            let total: i64 = connection.query_row(
                &format!("SELECT count(*) {filter}"),
                params![maintainer, now, package],
                |row| row.get(0),
            )?;
            let columns = STAGE_COLUMNS
                .split(", ")
                .map(|column| format!("s.{column}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {columns} {filter} ORDER BY s.created_at, s.id LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = statement.query_map(
                params![
                    maintainer,
                    now,
                    package,
                    sql_count(limit),
                    sql_count(offset)
                ],
                stage_row,
            )?;
            Ok((rows.collect::<Result<Vec<_>, _>>()?, total.max(0) as u64))
        })
    }

    fn stage_of(&self, name: &PackageName, version: &str) -> DbFuture<'_, Option<String>> {
        let (full, version) = (name.to_string(), version.to_owned());
        self.read("read the staged releases", move |connection| {
            connection
                .query_row(
                    "SELECT id FROM stages WHERE package = ?1 AND version = ?2",
                    [&full, &version],
                    |row| row.get(0),
                )
                .optional()
        })
    }

    fn approve_stage(
        &self,
        id: &str,
        name: &PackageName,
        packument: &Value,
        read: i64,
    ) -> DbFuture<'_, bool> {
        let (id, name, packument) = (id.to_owned(), name.clone(), packument.clone());
        let doing = "publish the staged release";
        self.write(doing, move |transaction| {
            let removed = transaction
                .execute(
                    "DELETE FROM stages WHERE id = ?1 AND package = ?2",
                    [&id, &name.to_string()],
                )
                .map_err(sql_error(doing))?;
            if removed == 0 {
                return Ok(false);
            }
            put_package_rows(
                transaction,
                &name,
                &packument,
                PackageWrite::Replacing { revision: read },
            )?;
            Ok(true)
        })
    }

    fn remove_stage(&self, id: &str) -> DbFuture<'_, Option<StoredStage>> {
        let id = id.to_owned();
        let doing = "remove the staged release";
        self.write(doing, move |transaction| {
            transaction
                .query_row(
                    &format!("DELETE FROM stages WHERE id = ?1 RETURNING {STAGE_COLUMNS}"),
                    [&id],
                    stage_row,
                )
                .optional()
                .map_err(sql_error(doing))
        })
    }

    fn remove_expired_stages(&self, now: i64) -> DbFuture<'_, Vec<StoredStage>> {
        let doing = "remove the expired staged releases";
        self.write(doing, move |transaction| {
            remove_expired_stage_rows(transaction, now).map_err(sql_error(doing))
        })
    }

    fn requires_staging(&self, name: &PackageName) -> DbFuture<'_, bool> {
        let full = name.to_string();
        self.read("read the package's staging rule", move |connection| {
            connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM staging_required WHERE package = ?1)",
                [&full],
                |row| row.get(0),
            )
        })
    }

    fn set_requires_staging(&self, name: &PackageName, required: bool) -> DbFuture<'_, bool> {
        let full = name.to_string();
        let doing = "save the package's staging rule";
        self.write(doing, move |transaction| {
            let exists = package_exists(transaction, &full).map_err(sql_error(doing))?;
            if !exists {
                return Ok(false);
            }
            let sql = if required {
                "INSERT OR IGNORE INTO staging_required (package) VALUES (?1)"
            } else {
                "DELETE FROM staging_required WHERE package = ?1"
            };
            transaction
                .execute(sql, [&full])
                .map_err(sql_error(doing))?;
            Ok(true)
        })
    }
}

/// A count or offset as SQLite wants it.
fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn search_ranks_exact_name_then_prefix_then_name_then_text() {
        super::super::behaviour::search_ranks(&SqliteMetadata::memory().unwrap()).await;
    }

    #[tokio::test]
    async fn a_search_keeps_its_turn_until_its_query_ends_though_nobody_waits() {
        let db = SqliteMetadata::memory().unwrap();
        let turns = Arc::new(tokio::sync::Semaphore::new(1));
        let turn = Arc::clone(&turns).acquire_owned().await.unwrap();
        // The query cannot run while the connection is held here.
        let connection = db.writer.lock().unwrap();
        let terms = vec!["pad".to_owned()];
        let query = SearchQuery {
            terms: &terms,
            from: 0,
            size: 20,
            reader: None,
            counted: 100,
        };
        let mut search = db.search(&query, Some(turn));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(search.as_mut().poll(&mut context).is_pending());
        // The client went away: its request's future is dropped, the query is not.
        drop(search);
        assert_eq!(
            turns.available_permits(),
            0,
            "the query still holds its turn"
        );
        drop(connection);
        // The query runs and ends, and its turn with it.
        let _next = turns.acquire().await.unwrap();
    }

    #[test]
    fn a_read_waits_on_the_pool_when_every_quick_reader_is_taken() {
        let folder = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteMetadata::open(&folder.path().join("registry.db")).unwrap());
        let taken: Vec<_> = db.quick.iter().map(|quick| quick.lock().unwrap()).collect();
        let (done, answer) = std::sync::mpsc::channel();
        let reader = Arc::clone(&db);
        // On a thread of its own: one that waited for a quick reader would wait forever.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let name = PackageName::parse("tool").unwrap();
            let _ = done.send(runtime.block_on(reader.read_rule(&name, None)));
        });
        let rule = answer
            .recv_timeout(Duration::from_secs(10))
            .expect("the read went to the pool instead of waiting for a quick reader");
        assert!(matches!(rule, Ok(None)));
        drop(taken);
    }

    #[tokio::test]
    async fn quick_reads_of_a_file_see_every_write() {
        let folder = tempfile::tempdir().unwrap();
        let db = SqliteMetadata::open(&folder.path().join("registry.db")).unwrap();
        super::super::behaviour::writes_replace_the_index(&db).await;
    }

    #[tokio::test]
    async fn search_is_bounded() {
        super::super::behaviour::search_is_bounded(&SqliteMetadata::memory().unwrap()).await;
    }

    #[tokio::test]
    async fn a_first_publish_claims_its_scope() {
        super::super::behaviour::a_first_publish_claims_its_scope(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn organisations_written_before_schema_7_list_their_members() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("registry.db");
        {
            let connection = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..6] {
                connection.execute_batch(migration).unwrap();
            }
            connection.pragma_update(None, "user_version", 6).unwrap();
            let org = Org::new("acme", "alice", "2026-12-01T00:00:00Z".into());
            connection
                .execute(
                    "INSERT INTO orgs (name, record, revision) VALUES ('acme', ?1, 1)",
                    [serde_json::to_string(&org).unwrap()],
                )
                .unwrap();
        }
        let db = SqliteMetadata::open(&path).unwrap();
        assert_eq!(
            db.orgs_of("alice").await.unwrap(),
            [("acme".to_owned(), Role::Owner)]
        );
    }

    #[tokio::test]
    async fn a_first_publish_into_a_scope_finds_its_organisation_as_it_is_then() {
        super::super::behaviour::a_first_publish_into_a_scope_finds_its_organisation_as_it_is_then(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn a_users_organisations_follow_their_membership() {
        super::super::behaviour::a_users_organisations_follow_their_membership(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn an_organisation_is_removed_only_when_its_scope_is_empty() {
        super::super::behaviour::an_organisation_is_removed_only_when_its_scope_is_empty(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn only_members_maintain_an_organisations_packages() {
        super::super::behaviour::only_members_maintain_an_organisations_packages(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn organisations_hold_their_teams_access() {
        super::super::behaviour::organisations_hold_their_teams_access(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn user_writes_name_what_they_read() {
        super::super::behaviour::user_writes_name_what_they_read(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn a_package_write_replaces_its_index_and_a_delete_removes_it() {
        super::super::behaviour::writes_replace_the_index(&SqliteMetadata::memory().unwrap()).await;
    }

    #[tokio::test]
    async fn trusted_publishers_belong_to_their_package() {
        super::super::behaviour::trusted_publishers_belong_to_their_package(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn stages_reserve_their_version_and_are_decided_once() {
        super::super::behaviour::stages_reserve_their_version_and_are_decided_once(
            &SqliteMetadata::memory().unwrap(),
        )
        .await;
    }
}
