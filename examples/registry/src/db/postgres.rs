//! [`Metadata`] in PostgreSQL (`--database postgres://…`), for several registry processes
//! on one database: the same tables as [`super::sqlite`] (prefixed `registry_`), migrated
//! on connect under an advisory lock so that nodes starting together take turns.
//!
//! Search matches substrings, as the SQLite trigram index does; when the `pg_trgm`
//! extension can be made, a trigram index serves it, and otherwise it is a scan.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

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
    "
    CREATE TABLE registry_users (
        name TEXT PRIMARY KEY,
        record TEXT NOT NULL
    );
    CREATE TABLE registry_scopes (
        scope TEXT PRIMARY KEY,
        owner TEXT NOT NULL
    );
    CREATE SEQUENCE registry_revisions;
    CREATE TABLE registry_packages (
        name TEXT PRIMARY KEY,
        revision BIGINT NOT NULL,
        visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
        mfa TEXT NOT NULL CHECK (mfa IN ('none', 'publish', 'automation')),
        description TEXT NOT NULL,
        keywords TEXT NOT NULL,
        latest TEXT NOT NULL,
        modified TEXT NOT NULL,
        summary TEXT NOT NULL,
        packument TEXT NOT NULL,
        abbreviated TEXT NOT NULL,
        -- Name, description and keywords, lower-cased: what search matches.
        search_text TEXT NOT NULL
    );
    CREATE TABLE registry_maintainers (
        package TEXT NOT NULL REFERENCES registry_packages (name) ON DELETE CASCADE,
        username TEXT NOT NULL,
        PRIMARY KEY (package, username)
    );
    CREATE INDEX registry_maintainers_by_user ON registry_maintainers (username, package);
    CREATE TABLE registry_stars (
        package TEXT NOT NULL REFERENCES registry_packages (name) ON DELETE CASCADE,
        username TEXT NOT NULL,
        PRIMARY KEY (package, username)
    );
    CREATE INDEX registry_stars_by_user ON registry_stars (username, package);
    CREATE TABLE registry_versions (
        package TEXT NOT NULL REFERENCES registry_packages (name) ON DELETE CASCADE,
        version TEXT NOT NULL,
        tarball TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (package, version),
        UNIQUE (package, tarball)
    );
    CREATE INDEX registry_versions_by_digest ON registry_versions (digest);
    CREATE TABLE registry_dist_tags (
        package TEXT NOT NULL REFERENCES registry_packages (name) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (package, tag)
    );",
    // 2: a user's record names the revision it was read at when it is written.
    "ALTER TABLE registry_users ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;",
    "
    CREATE TABLE registry_trusted_publishers (
        id TEXT PRIMARY KEY,
        package TEXT NOT NULL REFERENCES registry_packages (name) ON DELETE CASCADE,
        issuer TEXT NOT NULL,
        policy TEXT NOT NULL,
        pin TEXT,
        created_by TEXT NOT NULL,
        created TEXT NOT NULL,
        seq BIGSERIAL NOT NULL
    );
    CREATE INDEX registry_trusted_publishers_by_package
        ON registry_trusted_publishers (package, created, seq);",
    // 4: organisations, one record each, and each member's best team access per package,
    // rewritten with the record, for the read rule.
    "
    CREATE TABLE registry_orgs (
        name TEXT PRIMARY KEY,
        record TEXT NOT NULL,
        revision BIGINT NOT NULL
    );
    CREATE TABLE registry_team_access (
        org TEXT NOT NULL REFERENCES registry_orgs (name) ON DELETE CASCADE,
        package TEXT NOT NULL,
        username TEXT NOT NULL,
        access TEXT NOT NULL CHECK (access IN ('read-only', 'read-write')),
        PRIMARY KEY (package, username)
    );
    CREATE INDEX registry_team_access_by_org ON registry_team_access (org);",
    // 5: staged releases (`npm stage`), each reserving its version until approved,
    // rejected or expired; gone with their package.
    "
    CREATE TABLE registry_stages (
        id TEXT PRIMARY KEY,
        package TEXT NOT NULL REFERENCES registry_packages (name) ON DELETE CASCADE,
        version TEXT NOT NULL,
        tag TEXT NOT NULL,
        document TEXT NOT NULL,
        digest TEXT NOT NULL,
        actor TEXT NOT NULL,
        actor_type TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        UNIQUE (package, version)
    );
    CREATE INDEX registry_stages_by_package ON registry_stages (package, created_at);
    CREATE INDEX registry_stages_by_expiry ON registry_stages (expires_at);
    CREATE INDEX registry_stages_by_digest ON registry_stages (digest);
    CREATE TABLE registry_staging_required (
        package TEXT PRIMARY KEY REFERENCES registry_packages (name) ON DELETE CASCADE
    );",
    // 6: each organisation's members and roles, rewritten with its record (from which the
    // existing ones are read here), so that a user's organisations are found by index.
    "
    CREATE TABLE registry_org_members (
        org TEXT NOT NULL REFERENCES registry_orgs (name) ON DELETE CASCADE,
        username TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('developer', 'admin', 'owner')),
        PRIMARY KEY (username, org)
    );
    INSERT INTO registry_org_members (org, username, role)
        SELECT o.name, m.key, m.value
        FROM registry_orgs o, jsonb_each_text(o.record::jsonb -> 'members') m;",
    // 7: names in byte order (as SQLite's), whatever the database's collation: search
    // reads name prefixes as a range of it, and its pages in its order.
    "CREATE INDEX registry_packages_by_name ON registry_packages (name COLLATE \"C\");",
];

/// Held by a transaction that gives out a name (a new user's, a new organisation's), so
/// that two nodes cannot give one name to a user and an organisation at once.
const NAMES_LOCK: &str = "SELECT pg_advisory_xact_lock(7262837)";

/// How long a call waits for a connection, and a connection to be made.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections one registry process keeps.
const POOL_SIZE: usize = 16;

/// The registry's metadata in PostgreSQL.
pub struct PostgresMetadata {
    pool: Pool,
    /// How long a search may run on the server before it is cut off (answered 503).
    search_timeout: Duration,
}

/// How long a search may run on the server: long past any search the indexes serve, short
/// enough that a pathological one (many short words, on a server without `pg_trgm`) does
/// not hold its turn and a connection for long.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(5);

fn pg_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> DbError {
    // The server's own message says what was wrong; the error's Display only "db error".
    move |error| match error.as_db_error() {
        Some(server) => DbError::new(
            doing,
            format!("{}: {}", server.code().code(), server.message()),
        ),
        None => DbError::new(doing, error),
    }
}

/// Whether the package named `$name` (an SQL expression) is in an organisation's scope
/// that `$user` (a placeholder) is not a member of: there, being listed among its
/// maintainers gives them nothing. (A macro, for `concat!`: the statements stay literals.)
macro_rules! outside_its_org {
    ($name:literal, $user:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM registry_orgs o WHERE ",
            $name,
            " LIKE '@%'
                AND o.name = split_part(substr(",
            $name,
            ", 2), '/', 1)
                AND NOT EXISTS (SELECT 1 FROM registry_org_members om
                    WHERE om.org = o.name AND om.username = ",
            $user,
            "))"
        )
    };
}

/// Whether the reader `$2` maintains the package `p`: listed as a maintainer and not
/// [outside its organisation](outside_its_org). (A macro, for `concat!`.)
macro_rules! reader_maintains {
    () => {
        concat!(
            "(EXISTS (SELECT 1 FROM registry_maintainers m WHERE m.package = p.name AND m.username = $2) AND NOT ",
            outside_its_org!("p.name", "$2"),
            ")"
        )
    };
}

fn team_access_of(doing: &'static str, text: &str) -> Result<TeamAccess, DbError> {
    TeamAccess::parse(text).ok_or_else(|| DbError::new(doing, "a team's package access is damaged"))
}

fn access_of(doing: &'static str, visibility: &str, mfa: &str) -> Result<Access, DbError> {
    Access::from_columns(visibility, mfa).map_err(|damaged| DbError::new(doing, damaged))
}

/// A term escaped for `LIKE … ESCAPE '\'`, inside `%…%`.
fn contains_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl PostgresMetadata {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let doing = "connect to the registry's PostgreSQL database";
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| DbError::new(doing, format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(TIMEOUT);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .recycle_timeout(Some(TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::new(doing, e))?;
        let metadata = Self {
            pool,
            search_timeout: SEARCH_TIMEOUT,
        };
        metadata.migrate().await?;
        Ok(metadata)
    }

    /// The stage `sql` (taking the id as `$1`) answers with, if any.
    async fn one_stage(
        &self,
        doing: &'static str,
        sql: &str,
        id: &str,
    ) -> Result<Option<StoredStage>, DbError> {
        let client = self.client(doing).await?;
        client
            .query_opt(sql, &[&id])
            .await
            .map_err(pg_error(doing))?
            .as_ref()
            .map(stage_row)
            .transpose()
    }

    async fn client(&self, doing: &'static str) -> Result<deadpool_postgres::Object, DbError> {
        self.pool.get().await.map_err(|e| DbError::new(doing, e))
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let doing = "migrate the registry's PostgreSQL database";
        let mut client = self.client(doing).await?;
        let transaction = client.transaction().await.map_err(pg_error(doing))?;
        transaction
            .batch_execute(
                "SELECT pg_advisory_xact_lock(hashtext('tokengate registry schema'));
                 CREATE TABLE IF NOT EXISTS registry_schema (version INTEGER NOT NULL);",
            )
            .await
            .map_err(pg_error(doing))?;
        let version: Option<i32> = transaction
            .query_opt("SELECT version FROM registry_schema", &[])
            .await
            .map_err(pg_error(doing))?
            .map(|row| row.get(0));
        let version = version.unwrap_or(0) as usize;
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
        for migration in &MIGRATIONS[version..] {
            transaction
                .batch_execute(migration)
                .await
                .map_err(pg_error(doing))?;
        }
        transaction
            .execute("DELETE FROM registry_schema", &[])
            .await
            .map_err(pg_error(doing))?;
        transaction
            .execute(
                "INSERT INTO registry_schema (version) VALUES ($1)",
                &[&(MIGRATIONS.len() as i32)],
            )
            .await
            .map_err(pg_error(doing))?;
        transaction.commit().await.map_err(pg_error(doing))?;
        self.trigram_index().await;
        Ok(())
    }

    /// A trigram index for search, if the server lets this user make `pg_trgm`; search
    /// works without it, by a scan.
    async fn trigram_index(&self) {
        let Ok(client) = self.client("index search").await else {
            return;
        };
        let made = client
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS pg_trgm;
                 CREATE INDEX IF NOT EXISTS registry_packages_search
                     ON registry_packages USING gin (search_text gin_trgm_ops);
                 CREATE INDEX IF NOT EXISTS registry_packages_name_search
                     ON registry_packages USING gin (name gin_trgm_ops);",
            )
            .await;
        if let Err(error) = made {
            tracing::warn!(%error, "no trigram index for search (pg_trgm): searches scan the packages");
        }
    }
}

/// Writes a package's row and replaces its index, in `transaction`.
async fn put_package_rows(
    transaction: &deadpool_postgres::Transaction<'_>,
    name: &PackageName,
    packument: &Value,
    write: PackageWrite,
) -> Result<(), DbError> {
    let doing = "save the package";
    let index = PackageIndex::of(name, packument).map_err(|e| DbError::new(doing, e))?;
    let json = serde_json::to_string(packument).map_err(|e| DbError::new(doing, e))?;
    let full = name.to_string();
    let search_text = format!("{full} {} {}", index.description, index.keywords).to_lowercase();
    match write {
        PackageWrite::Replacing { revision } => {
            let changed = transaction
                .execute(
                    "UPDATE registry_packages SET revision = nextval('registry_revisions'),
                         description = $3, keywords = $4, latest = $5, modified = $6,
                         packument = $7, abbreviated = $8, summary = $9, search_text = $10
                     WHERE name = $1 AND revision = $2",
                    &[
                        &full,
                        &revision,
                        &index.description,
                        &index.keywords,
                        &index.latest,
                        &index.modified,
                        &json,
                        &index.abbreviated,
                        &index.summary,
                        &search_text,
                    ],
                )
                .await
                .map_err(pg_error(doing))?;
            if changed == 0 {
                return Err(DbError::conflict(
                    doing,
                    format!("{full} changed or was removed since it was read"),
                ));
            }
            for table in [
                "registry_maintainers",
                "registry_stars",
                "registry_versions",
                "registry_dist_tags",
            ] {
                transaction
                    .execute(&format!("DELETE FROM {table} WHERE package = $1"), &[&full])
                    .await
                    .map_err(pg_error(doing))?;
            }
        }
        PackageWrite::New(access)
        | PackageWrite::NewInScope { access, .. }
        | PackageWrite::NewInOrg(access) => {
            if let Some(scope) = name.scope()
                && matches!(
                    write,
                    PackageWrite::NewInScope { .. } | PackageWrite::NewInOrg(_)
                )
            {
                // In turn with organisations being made and removed (on any node): the
                // organisation is there for its first publish, and never for a claim.
                transaction
                    .batch_execute(NAMES_LOCK)
                    .await
                    .map_err(pg_error(doing))?;
                let org = transaction
                    .query_opt("SELECT 1 FROM registry_orgs WHERE name = $1", &[&scope])
                    .await
                    .map_err(pg_error(doing))?
                    .is_some();
                let for_org = matches!(write, PackageWrite::NewInOrg(_));
                super::check_org_for(for_org, scope, org, doing)?;
            }
            if let PackageWrite::NewInScope { publisher, .. } = &write {
                let scope = name
                    .scope()
                    .ok_or_else(|| DbError::new(doing, format!("{full} is not in a scope")))?;
                transaction
                    .execute(
                        "INSERT INTO registry_scopes (scope, owner) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[&scope, publisher],
                    )
                    .await
                    .map_err(pg_error(doing))?;
                // The row as it is now, locked until this transaction ends.
                let owner: String = transaction
                    .query_one(
                        "SELECT owner FROM registry_scopes WHERE scope = $1 FOR UPDATE",
                        &[&scope],
                    )
                    .await
                    .map_err(pg_error(doing))?
                    .get(0);
                if &owner != publisher {
                    return Err(DbError::conflict(
                        doing,
                        format!("the scope @{scope} was claimed by {owner} meanwhile"),
                    ));
                }
            }
            let inserted = transaction
                .execute(
                    "INSERT INTO registry_packages (name, revision, visibility, mfa, description,
                         keywords, latest, modified, packument, abbreviated, summary, search_text)
                     VALUES ($1, nextval('registry_revisions'), $2, $3, $4, $5, $6, $7, $8, $9,
                         $10, $11)
                     ON CONFLICT (name) DO NOTHING",
                    &[
                        &full,
                        &access.visibility.as_column(),
                        &access.mfa.as_column(),
                        &index.description,
                        &index.keywords,
                        &index.latest,
                        &index.modified,
                        &json,
                        &index.abbreviated,
                        &index.summary,
                        &search_text,
                    ],
                )
                .await
                .map_err(pg_error(doing))?;
            if inserted == 0 {
                return Err(DbError::conflict(
                    doing,
                    format!("{full} was published meanwhile"),
                ));
            }
        }
    }
    for (table, users) in [
        ("registry_maintainers", &index.maintainers),
        ("registry_stars", &index.stars),
    ] {
        for user in users {
            transaction
                .execute(
                    &format!(
                        "INSERT INTO {table} (package, username) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&full, user],
                )
                .await
                .map_err(pg_error(doing))?;
        }
    }
    for version in &index.versions {
        transaction
            .execute(
                "INSERT INTO registry_versions (package, version, tarball, digest)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &full,
                    &version.version,
                    &version.tarball,
                    &version.digest.to_hex(),
                ],
            )
            .await
            .map_err(pg_error(doing))?;
    }
    for (tag, version) in &index.dist_tags {
        transaction
            .execute(
                "INSERT INTO registry_dist_tags (package, tag, version) VALUES ($1, $2, $3)",
                &[&full, tag, version],
            )
            .await
            .map_err(pg_error(doing))?;
    }
    // A staged version stays reserved: a publish of it (from another node, past the
    // handler's own check) is refused here.
    let staged = transaction
        .query_opt(
            "SELECT s.version, s.id FROM registry_stages s JOIN registry_versions v
                 ON v.package = s.package AND v.version = s.version
             WHERE s.package = $1 LIMIT 1",
            &[&full],
        )
        .await
        .map_err(pg_error(doing))?;
    if let Some(row) = staged {
        let (version, id): (String, String) = (row.get(0), row.get(1));
        return Err(DbError::conflict(
            doing,
            format!("{full}@{version} is staged (stage {id})"),
        ));
    }
    Ok(())
}

/// The columns of a stage, in the order [`stage_row`] reads them.
const STAGE_COLUMNS: &str =
    "id, package, version, tag, document, digest, actor, actor_type, created_at, expires_at";

fn stage_row(row: &tokio_postgres::Row) -> Result<StoredStage, DbError> {
    let doing = "read the staged release";
    let document: String = row.get(4);
    let digest: String = row.get(5);
    Ok(StoredStage {
        id: row.get(0),
        package: row.get(1),
        version: row.get(2),
        tag: row.get(3),
        document: serde_json::from_str(&document).map_err(|e| DbError::new(doing, e))?,
        digest: Digest::from_hex(&digest)
            .ok_or_else(|| DbError::new(doing, "a stage's digest is damaged"))?,
        actor: row.get(6),
        actor_type: row.get(7),
        created_at: row.get(8),
        expires_at: row.get(9),
    })
}

/// Removes the stages expired at `now`, in the caller's transaction; returns them.
async fn remove_expired_stage_rows(
    transaction: &deadpool_postgres::Transaction<'_>,
    now: i64,
) -> Result<Vec<StoredStage>, DbError> {
    let doing = "remove the expired staged releases";
    transaction
        .query(
            &format!(
                "DELETE FROM registry_stages WHERE expires_at <= $1 RETURNING {STAGE_COLUMNS}"
            ),
            &[&now],
        )
        .await
        .map_err(pg_error(doing))?
        .iter()
        .map(stage_row)
        .collect()
}

/// SQL for "the reader may see it": public, or the reader (`$1`) maintains it (listed, and
/// in an organisation's scope its member), or has it through a team.
const READABLE: &str = concat!(
    "(p.visibility = 'public' OR (EXISTS (SELECT 1 FROM registry_maintainers m
     WHERE m.package = p.name AND m.username = $1) AND NOT ",
    outside_its_org!("p.name", "$1"),
    ") OR EXISTS (SELECT 1 FROM
     registry_team_access t WHERE t.package = p.name AND t.username = $1))"
);

/// A package's rank for `terms` (the worst of its terms: 0 exact name, 1 name prefix, 2
/// in the name, 3 in the text only), each term the placeholder in `exact`.
fn tier_sql(exact: &[String]) -> String {
    let mut tiers: Vec<String> = exact
        .iter()
        .map(|exact| {
            format!(
                "CASE WHEN p.name = {exact} THEN 0
                      WHEN left(p.name, length({exact})) = {exact} THEN 1
                      WHEN strpos(p.name, {exact}) > 0 THEN 2 ELSE 3 END"
            )
        })
        .collect();
    tiers.push("0".to_owned());
    format!("GREATEST({})", tiers.join(", "))
}

/// The statement that counts a search's matches for `terms` (lower-cased), at most the
/// search's `counted` plus one (to tell "more"), and gives its page from them; and the
/// `LIKE` patterns it takes. When they are all there is, that page is the answer;
/// otherwise [`TierRead`]s rank the page over every match. Its values: `$1` the reader,
/// then each term's pattern, then each term, then the most matches read, the page's size
/// and start. Its text depends only on the number of terms, so that it is prepared once
/// per number.
///
/// The matches are read once, each with its rank, and the count, the order and the page
/// are all taken from those. The exact name is looked up by the primary key beside them,
/// so that it is counted however many packages match. Private packages are left out in
/// the query (by [`READABLE`]), before they are counted.
fn search_statement(terms: &[String]) -> (String, Vec<String>) {
    let patterns: Vec<String> = terms.iter().map(|t| contains_pattern(t)).collect();
    let mut conditions = vec![READABLE.to_owned()];
    for i in 0..terms.len() {
        conditions.push(format!("p.search_text LIKE ${} ESCAPE '\\'", i + 2));
    }
    let exact: Vec<String> = (0..terms.len())
        .map(|i| format!("${}::text", terms.len() + i + 2))
        .collect();
    let tier = tier_sql(&exact);
    let [limit, size, from] = [0, 1, 2].map(|i| format!("${}", 2 * terms.len() + 2 + i));
    // Without a word long enough for the trigram index, the first packages by name.
    let order = if terms.iter().any(|t| t.chars().count() >= 3) {
        ""
    } else {
        " ORDER BY p.name COLLATE \"C\""
    };
    let exact = if terms.is_empty() {
        String::new()
    } else {
        format!(
            "(SELECT name, tier FROM (
                  SELECT p.name, {tier} AS tier FROM registry_packages p
                  WHERE p.name = ${}::text AND {READABLE}
              ) exact WHERE tier = 0)
             UNION ",
            terms.len() + 2
        )
    };
    let sql = format!(
        "WITH found AS MATERIALIZED (
             {exact}(SELECT p.name, {tier} AS tier FROM registry_packages p
              WHERE {}{order} LIMIT {limit})
         ),
         page AS (SELECT name, tier FROM found
             ORDER BY tier, name COLLATE \"C\" LIMIT {size} OFFSET {from})
         SELECT (SELECT count(*) FROM found), p.name, p.description, p.keywords, p.latest,
             p.visibility, p.summary
         FROM (SELECT 1) one LEFT JOIN page ON true
             LEFT JOIN registry_packages p ON p.name = page.name
         ORDER BY page.tier, page.name COLLATE \"C\"",
        conditions.join(" AND ")
    );
    (sql, patterns)
}

/// How a rank's packages are read (see [`super::search_tiers`]).
#[derive(Clone, Copy)]
enum TierRead {
    /// Exact name and prefix: the name range from the prefix (to its end, if `bounded`).
    Prefix { bounded: bool },
    /// Through the trigram indexes, at most the limit, in the order they give.
    Index(Tier),
    /// Through the name index in name order, the first up to the limit.
    Names(Tier),
}

/// The statement that gives the names of the readable packages a [`TierRead`] reads for
/// `terms` terms. Its values: `$1` the reader, then each term's pattern, then each term,
/// then the limit; for a prefix, `$1` the reader, the limit, the prefix and its end.
fn tier_statement(terms: usize, read: TierRead) -> String {
    let exact: Vec<String> = (0..terms)
        .map(|i| format!("${}::text", terms + i + 2))
        .collect();
    let tier = tier_sql(&exact);
    let limit = format!("${}", 2 * terms + 2);
    let like = |column: &str| -> Vec<String> {
        (0..terms)
            .map(|i| format!("p.{column} LIKE ${} ESCAPE '\\'", i + 2))
            .collect()
    };
    let (rank, ordered) = match read {
        TierRead::Prefix { bounded } => {
            return format!(
                "SELECT p.name FROM registry_packages p
                 WHERE p.name COLLATE \"C\" >= $3::text{} AND {READABLE}
                 ORDER BY p.name COLLATE \"C\" LIMIT $2",
                if bounded {
                    " AND p.name COLLATE \"C\" < $4::text"
                } else {
                    ""
                }
            );
        }
        TierRead::Index(rank) => (rank, false),
        TierRead::Names(rank) => (rank, true),
    };
    let mut conditions = match rank {
        Tier::InName => like("name"),
        Tier::InText => like("search_text"),
    };
    conditions.push(format!("{tier} = {}", rank.rank()));
    format!(
        "SELECT p.name FROM registry_packages p WHERE {READABLE} AND {}{} LIMIT {limit}",
        conditions.join(" AND "),
        if ordered {
            " ORDER BY p.name COLLATE \"C\""
        } else {
            ""
        }
    )
}

/// An error of a search's query: cut off at its time limit, or another.
fn search_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> DbError {
    move |error| {
        if error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
            DbError::timed_out(doing, error)
        } else {
            pg_error(doing)(error)
        }
    }
}

/// A search hit from `name, description, keywords, latest, visibility, summary` at
/// `first` on in `row`.
fn search_hit(
    doing: &'static str,
    row: &tokio_postgres::Row,
    first: usize,
    name: String,
) -> Result<SearchHit, DbError> {
    Ok(SearchHit {
        name,
        description: row.get(first + 1),
        keywords: row
            .get::<_, &str>(first + 2)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        version: row.get(first + 3),
        visibility: access_of(doing, row.get(first + 4), "none")?.visibility,
        summary: serde_json::from_str(row.get::<_, &str>(first + 5))
            .map_err(|e| DbError::new(doing, e))?,
    })
}

/// What a search's rank queries take: its terms (lower-cased), their `LIKE` patterns,
/// and who reads.
struct TierValues<'a> {
    terms: &'a [String],
    patterns: &'a [String],
    reader: &'a Option<String>,
}

/// The names a [`TierRead`] other than a prefix gives, at most `limit`.
async fn tier_names(
    transaction: &deadpool_postgres::Transaction<'_>,
    with: &TierValues<'_>,
    read: TierRead,
    limit: usize,
) -> Result<Vec<String>, DbError> {
    let limit = limit as i64;
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![with.reader];
    values.extend(with.patterns.iter().map(|p| p as &(dyn ToSql + Sync)));
    values.extend(with.terms.iter().map(|t| t as &(dyn ToSql + Sync)));
    values.push(&limit);
    read_names(transaction, with.terms.len(), read, &values).await
}

/// The names `read`'s statement gives for `values`.
async fn read_names(
    transaction: &deadpool_postgres::Transaction<'_>,
    terms: usize,
    read: TierRead,
    values: &[&(dyn ToSql + Sync)],
) -> Result<Vec<String>, DbError> {
    let doing = "search";
    let statement = transaction
        .prepare_cached(&tier_statement(terms, read))
        .await
        .map_err(pg_error(doing))?;
    let rows = transaction
        .query(&statement, values)
        .await
        .map_err(search_error(doing))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The page of a search that matches more than it counts: each rank read by its own
/// bounded query, best first, until `from + size` packages are known.
async fn ranked_page(
    transaction: &deadpool_postgres::Transaction<'_>,
    with: &TierValues<'_>,
    (from, size, counted): (usize, usize, usize),
) -> Result<Vec<SearchHit>, DbError> {
    let doing = "search";
    let need = from + size;
    let mut names: Vec<String> = Vec::new();
    if let Some(prefix) = common_prefix(with.terms) {
        let end = prefix_end(prefix);
        let read = TierRead::Prefix {
            bounded: end.is_some(),
        };
        let limit = need as i64;
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![with.reader, &limit, &prefix];
        if let Some(end) = &end {
            values.push(end);
        }
        names.extend(read_names(transaction, with.terms.len(), read, &values).await?);
    }
    for tier in Tier::ALL {
        if names.len() >= need || with.terms.is_empty() {
            break;
        }
        let left = need - names.len();
        let found = if tier == Tier::InText && text_rank_is_dense(names.len(), counted) {
            None
        } else {
            let found = tier_names(transaction, with, TierRead::Index(tier), counted + 1).await?;
            all_found(
                found.into_iter().map(|name| (name, ())).collect(),
                counted,
                left,
            )
        };
        match found {
            Some(found) => names.extend(found.into_iter().map(|(name, ())| name)),
            None => names.extend(tier_names(transaction, with, TierRead::Names(tier), left).await?),
        }
    }
    let page: Vec<String> = names.into_iter().skip(from).take(size).collect();
    let rows = transaction
        .query(
            "SELECT name, description, keywords, latest, visibility, summary
             FROM registry_packages WHERE name = ANY($1)",
            &[&page],
        )
        .await
        .map_err(search_error(doing))?;
    let mut by_name: std::collections::HashMap<String, &tokio_postgres::Row> = rows
        .iter()
        .map(|row| (row.get::<_, String>(0), row))
        .collect();
    page.into_iter()
        .filter_map(|name| {
            let row = by_name.remove(&name)?;
            Some(search_hit(doing, row, 0, name))
        })
        .collect()
}

impl Metadata for PostgresMetadata {
    fn user(&self, name: &str) -> DbFuture<'_, Option<User>> {
        let name = name.to_owned();
        Box::pin(async move {
            let doing = "read the user";
            let client = self.client(doing).await?;
            let row = client
                .query_opt(
                    "SELECT record, revision FROM registry_users WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(pg_error(doing))?;
            row.map(|row| {
                let mut user: User = serde_json::from_str(row.get::<_, &str>(0))
                    .map_err(|e| DbError::new(doing, e))?;
                user.revision = Some(row.get(1));
                Ok(user)
            })
            .transpose()
        })
    }

    fn put_user(&self, user: &User) -> DbFuture<'_, i64> {
        let user = user.clone();
        Box::pin(async move {
            let doing = "save the user";
            let record = serde_json::to_string(&user).map_err(|e| DbError::new(doing, e))?;
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            let row = match user.revision {
                // Never an organisation's name.
                None => match transaction.batch_execute(NAMES_LOCK).await {
                    Ok(()) => {
                        transaction
                            .query_opt(
                                "INSERT INTO registry_users (name, record, revision)
                                 SELECT $1, $2, 1 WHERE NOT EXISTS
                                     (SELECT 1 FROM registry_orgs WHERE name = $1)
                                 ON CONFLICT (name) DO NOTHING RETURNING revision",
                                &[&user.name, &record],
                            )
                            .await
                    }
                    Err(error) => Err(error),
                },
                Some(read) => {
                    transaction
                        .query_opt(
                            "UPDATE registry_users SET record = $2, revision = revision + 1
                             WHERE name = $1 AND revision = $3 RETURNING revision",
                            &[&user.name, &record, &read],
                        )
                        .await
                }
            }
            .map_err(pg_error(doing))?;
            let revision = row.map(|row| row.get(0)).ok_or_else(|| {
                DbError::conflict(doing, format!("user {} changed meanwhile", user.name))
            })?;
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(revision)
        })
    }

    fn org(&self, name: &str) -> DbFuture<'_, Option<Org>> {
        let name = name.to_owned();
        Box::pin(async move {
            let doing = "read the organisation";
            let client = self.client(doing).await?;
            let row = client
                .query_opt(
                    "SELECT record, revision FROM registry_orgs WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(pg_error(doing))?;
            row.map(|row| {
                let mut org: Org = serde_json::from_str(row.get::<_, &str>(0))
                    .map_err(|e| DbError::new(doing, e))?;
                org.revision = Some(row.get(1));
                Ok(org)
            })
            .transpose()
        })
    }

    fn put_org(&self, org: &Org) -> DbFuture<'_, i64> {
        let org = org.clone();
        Box::pin(async move {
            let doing = "save the organisation";
            let record = serde_json::to_string(&org).map_err(|e| DbError::new(doing, e))?;
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            let row = match org.revision {
                // Never a user's name, nor a scope someone else has published into.
                None => {
                    transaction
                        .batch_execute(NAMES_LOCK)
                        .await
                        .map_err(pg_error(doing))?;
                    transaction
                        .query_opt(
                            "INSERT INTO registry_orgs (name, record, revision)
                             SELECT $1, $2, 1
                             WHERE NOT EXISTS (SELECT 1 FROM registry_users WHERE name = $1)
                                 AND NOT EXISTS (SELECT 1 FROM registry_scopes
                                     WHERE scope = $1 AND owner <> $3)
                             ON CONFLICT (name) DO NOTHING RETURNING revision",
                            &[&org.name, &record, &org.first_owner()],
                        )
                        .await
                }
                Some(read) => {
                    transaction
                        .query_opt(
                            "UPDATE registry_orgs SET record = $2, revision = revision + 1
                             WHERE name = $1 AND revision = $3 RETURNING revision",
                            &[&org.name, &record, &read],
                        )
                        .await
                }
            }
            .map_err(pg_error(doing))?;
            let revision: i64 = row.map(|row| row.get(0)).ok_or_else(|| {
                DbError::conflict(
                    doing,
                    format!(
                        "organisation {} changed meanwhile, or its name is taken",
                        org.name
                    ),
                )
            })?;
            transaction
                .execute(
                    "DELETE FROM registry_team_access WHERE org = $1",
                    &[&org.name],
                )
                .await
                .map_err(pg_error(doing))?;
            transaction
                .execute(
                    "DELETE FROM registry_org_members WHERE org = $1",
                    &[&org.name],
                )
                .await
                .map_err(pg_error(doing))?;
            let member = transaction
                .prepare(
                    "INSERT INTO registry_org_members (org, username, role) VALUES ($1, $2, $3)",
                )
                .await
                .map_err(pg_error(doing))?;
            for (user, role) in &org.members {
                transaction
                    .execute(&member, &[&org.name, user, &role.as_str()])
                    .await
                    .map_err(pg_error(doing))?;
            }
            let insert = transaction
                .prepare(
                    "INSERT INTO registry_team_access (org, package, username, access)
                     VALUES ($1, $2, $3, $4)",
                )
                .await
                .map_err(pg_error(doing))?;
            for (package, user, access) in org.access_rows() {
                transaction
                    .execute(&insert, &[&org.name, &package, &user, &access.as_str()])
                    .await
                    .map_err(pg_error(doing))?;
            }
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(revision)
        })
    }

    fn orgs_of(&self, user: &str) -> DbFuture<'_, Vec<(String, Role)>> {
        let user = user.to_owned();
        Box::pin(async move {
            let doing = "read the user's organisations";
            let client = self.client(doing).await?;
            let rows = client
                .query(
                    "SELECT org, role FROM registry_org_members WHERE username = $1
                     ORDER BY org LIMIT 1000",
                    &[&user],
                )
                .await
                .map_err(pg_error(doing))?;
            rows.iter()
                .map(|row| {
                    let role: &str = row.get(1);
                    let role = Role::parse(role)
                        .ok_or_else(|| DbError::new(doing, "a member's role is damaged"))?;
                    Ok((row.get(0), role))
                })
                .collect()
        })
    }

    fn remove_org(&self, org: &Org) -> DbFuture<'_, OrgRemoval> {
        let (name, read) = (org.name.clone(), org.revision);
        Box::pin(async move {
            let doing = "remove the organisation";
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            // In turn with first publishes into its scope (on any node).
            transaction
                .batch_execute(NAMES_LOCK)
                .await
                .map_err(pg_error(doing))?;
            // The record first, locked: a change on another node waits for this, or this
            // for it (and then finds the revision moved on).
            let locked = transaction
                .query_opt(
                    "SELECT 1 FROM registry_orgs WHERE name = $1 AND revision = $2 FOR UPDATE",
                    &[&name, &read],
                )
                .await
                .map_err(pg_error(doing))?;
            if locked.is_none() {
                return Err(DbError::conflict(
                    doing,
                    format!("organisation {name} changed meanwhile, or is gone"),
                ));
            }
            let packages: i64 = transaction
                .query_one(
                    "SELECT count(*) FROM registry_packages WHERE starts_with(name, $1)",
                    &[&format!("@{name}/")],
                )
                .await
                .map_err(pg_error(doing))?
                .get(0);
            if packages > 0 {
                return Ok(OrgRemoval::HasPackages(packages.unsigned_abs()));
            }
            // Its team access goes with it (ON DELETE CASCADE); so does the scope's first
            // publisher, who would otherwise keep the freed name's scope.
            transaction
                .execute("DELETE FROM registry_orgs WHERE name = $1", &[&name])
                .await
                .map_err(pg_error(doing))?;
            transaction
                .execute("DELETE FROM registry_scopes WHERE scope = $1", &[&name])
                .await
                .map_err(pg_error(doing))?;
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(OrgRemoval::Removed)
        })
    }

    fn org_standing(&self, name: &PackageName, user: &str) -> DbFuture<'_, OrgStanding> {
        let (full, user) = (name.to_string(), user.to_owned());
        let scope = name.scope().map(str::to_owned);
        Box::pin(async move {
            let doing = "read the organisation's member";
            let client = self.client(doing).await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM registry_orgs WHERE name = $1),
                         EXISTS (SELECT 1 FROM registry_org_members
                             WHERE org = $1 AND username = $2),
                         (SELECT access FROM registry_team_access
                             WHERE package = $3 AND username = $2)",
                    &[&scope, &user, &full],
                )
                .await
                .map_err(pg_error(doing))?;
            let team = row
                .get::<_, Option<&str>>(2)
                .map(|text| team_access_of(doing, text))
                .transpose()?;
            Ok(OrgStanding::of(row.get(0), row.get(1), team))
        })
    }

    fn scope_owner(&self, scope: &str) -> DbFuture<'_, Option<String>> {
        let scope = scope.to_owned();
        Box::pin(async move {
            let doing = "read the scope's owner";
            let client = self.client(doing).await?;
            let row = client
                .query_opt(
                    "SELECT owner FROM registry_scopes WHERE scope = $1",
                    &[&scope],
                )
                .await
                .map_err(pg_error(doing))?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn package(&self, name: &PackageName) -> DbFuture<'_, Option<StoredPackage>> {
        let full = name.to_string();
        Box::pin(async move {
            let doing = "read the package";
            let client = self.client(doing).await?;
            let row = client
                .query_opt(
                    "SELECT packument, visibility, mfa, revision FROM registry_packages
                     WHERE name = $1",
                    &[&full],
                )
                .await
                .map_err(pg_error(doing))?;
            let Some(row) = row else {
                return Ok(None);
            };
            Ok(Some(StoredPackage {
                packument: serde_json::from_str(row.get::<_, &str>(0))
                    .map_err(|e| DbError::new(doing, e))?,
                access: access_of(doing, row.get(1), row.get(2))?,
                revision: row.get(3),
            }))
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
        Box::pin(async move {
            let doing = "read the package";
            let client = self.client(doing).await?;
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {column}, revision FROM registry_packages WHERE name = $1"
                ))
                .await
                .map_err(pg_error(doing))?;
            let row = client
                .query_opt(&statement, &[&full])
                .await
                .map_err(pg_error(doing))?;
            Ok(row.map(|row| StoredDocument {
                json: row.get(0),
                revision: row.get(1),
            }))
        })
    }

    fn put_packument(
        &self,
        name: &PackageName,
        packument: &Value,
        write: PackageWrite,
    ) -> DbFuture<'_, ()> {
        let (name, packument) = (name.clone(), packument.clone());
        Box::pin(async move {
            let doing = "save the package";
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            put_package_rows(&transaction, &name, &packument, write).await?;
            transaction.commit().await.map_err(pg_error(doing))
        })
    }

    fn set_access(&self, name: &PackageName, access: Access, read: i64) -> DbFuture<'_, ()> {
        let full = name.to_string();
        Box::pin(async move {
            let doing = "save the package's access";
            let client = self.client(doing).await?;
            let changed = client
                .execute(
                    "UPDATE registry_packages SET visibility = $2, mfa = $3,
                         revision = nextval('registry_revisions')
                     WHERE name = $1 AND revision = $4",
                    &[
                        &full,
                        &access.visibility.as_column(),
                        &access.mfa.as_column(),
                        &read,
                    ],
                )
                .await
                .map_err(pg_error(doing))?;
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
        Box::pin(async move {
            let doing = "remove the package";
            let client = self.client(doing).await?;
            let removed = client
                .execute(
                    "DELETE FROM registry_packages WHERE name = $1 AND revision = $2",
                    &[&full, &read],
                )
                .await
                .map_err(pg_error(doing))?;
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
        Box::pin(async move {
            let doing = "read the package";
            let client = self.client(doing).await?;
            let statement = client
                .prepare_cached(concat!(
                    "SELECT p.visibility, p.mfa, ",
                    reader_maintains!(),
                    ", p.revision,
                         (SELECT t.access FROM registry_team_access t
                             WHERE t.package = p.name AND t.username = $2)
                     FROM registry_packages p WHERE p.name = $1"
                ))
                .await
                .map_err(pg_error(doing))?;
            let row = client
                .query_opt(&statement, &[&full, &reader])
                .await
                .map_err(pg_error(doing))?;
            row.map(|row| {
                Ok(ReadRule {
                    visibility: access_of(doing, row.get(0), row.get(1))?.visibility,
                    reader_maintains: row.get(2),
                    revision: row.get(3),
                    reader_team: row
                        .get::<_, Option<&str>>(4)
                        .map(|text| team_access_of(doing, text))
                        .transpose()?,
                })
            })
            .transpose()
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
        Box::pin(async move {
            let doing = "read the tarball's record";
            let client = self.client(doing).await?;
            let statement = client
                .prepare_cached(concat!(
                    "SELECT v.digest, p.visibility, p.mfa, ",
                    reader_maintains!(),
                    ", p.revision, (SELECT t.access FROM registry_team_access t
                             WHERE t.package = p.name AND t.username = $2)
                     FROM registry_versions v JOIN registry_packages p ON p.name = v.package
                     WHERE v.package = $1 AND v.tarball = $3"
                ))
                .await
                .map_err(pg_error(doing))?;
            let row = client
                .query_opt(&statement, &[&full, &reader, &file])
                .await
                .map_err(pg_error(doing))?;
            row.map(|row| {
                Ok(TarballRow {
                    digest: Digest::from_hex(row.get(0))
                        .ok_or_else(|| DbError::new(doing, "a tarball digest is damaged"))?,
                    rule: ReadRule {
                        visibility: access_of(doing, row.get(1), row.get(2))?.visibility,
                        reader_maintains: row.get(3),
                        revision: row.get(4),
                        reader_team: row
                            .get::<_, Option<&str>>(5)
                            .map(|text| team_access_of(doing, text))
                            .transpose()?,
                    },
                })
            })
            .transpose()
        })
    }

    fn tarball_in_use(&self, digest: &Digest) -> DbFuture<'_, bool> {
        let hex = digest.to_hex();
        Box::pin(async move {
            let doing = "read the tarball's record";
            let client = self.client(doing).await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM registry_versions WHERE digest = $1)
                         OR EXISTS (SELECT 1 FROM registry_stages WHERE digest = $1)",
                    &[&hex],
                )
                .await
                .map_err(pg_error(doing))?;
            Ok(row.get(0))
        })
    }

    fn search(
        &self,
        query: &SearchQuery<'_>,
        turn: Option<SearchTurn>,
    ) -> DbFuture<'_, SearchPage> {
        let terms: Vec<String> = query.terms.iter().map(|t| t.to_lowercase()).collect();
        let (from, size, counted) = (query.from, query.size, query.counted);
        let reader = query.reader.map(str::to_owned);
        let pool = self.pool.clone();
        let timeout = self.search_timeout;
        // A task of its own, which holds the turn: a caller that stops waiting (a client
        // that disconnects) drops only the handle, while the server still runs the query
        // (until it ends or reaches `statement_timeout`), and the turn with it.
        let task = tokio::spawn(async move {
            let _turn = turn;
            let doing = "search";
            let (sql, patterns) = search_statement(&terms);
            let (limit, page_size, page_from) = (counted as i64 + 1, size as i64, from as i64);
            let mut values: Vec<&(dyn ToSql + Sync)> = vec![&reader];
            values.extend(patterns.iter().map(|p| p as &(dyn ToSql + Sync)));
            values.extend(terms.iter().map(|t| t as &(dyn ToSql + Sync)));
            values.extend([&limit as &(dyn ToSql + Sync), &page_size, &page_from]);
            let mut client = pool.get().await.map_err(|e| DbError::new(doing, e))?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            // SET cannot take a parameter; the number is ours.
            transaction
                .batch_execute(&format!(
                    "SET LOCAL statement_timeout = {}",
                    timeout.as_millis()
                ))
                .await
                .map_err(pg_error(doing))?;
            let statement = transaction
                .prepare_cached(&sql)
                .await
                .map_err(pg_error(doing))?;
            let rows = transaction
                .query(&statement, &values)
                .await
                .map_err(search_error(doing))?;
            let mut found = 0;
            let mut hits = Vec::with_capacity(rows.len());
            for row in rows {
                found = row.get::<_, i64>(0) as usize;
                // The one row of a search that found nothing has no package.
                let Some(name) = row.get::<_, Option<String>>(1) else {
                    continue;
                };
                hits.push(search_hit(doing, &row, 1, name)?);
            }
            if found > counted {
                let with = TierValues {
                    terms: &terms,
                    patterns: &patterns,
                    reader: &reader,
                };
                hits = ranked_page(&transaction, &with, (from, size, counted)).await?;
            }
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(SearchPage {
                hits,
                total: found.min(counted) as u64,
            })
        });
        Box::pin(async move { task.await.map_err(|e| DbError::new("search", e))? })
    }

    fn starred_by(&self, user: &str) -> DbFuture<'_, Vec<String>> {
        let user = user.to_owned();
        Box::pin(async move {
            let doing = "read the user's stars";
            let client = self.client(doing).await?;
            let rows = client
                .query(
                    "SELECT package FROM registry_stars WHERE username = $1 ORDER BY package",
                    &[&user],
                )
                .await
                .map_err(pg_error(doing))?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    fn maintained_by(&self, user: &str) -> DbFuture<'_, Vec<Maintained>> {
        let user = user.to_owned();
        Box::pin(async move {
            let doing = "read the user's packages";
            let client = self.client(doing).await?;
            let rows = client
                .query(
                    concat!(
                        "SELECT p.name, p.visibility, p.mfa FROM registry_maintainers m
                         JOIN registry_packages p ON p.name = m.package
                         WHERE m.username = $1 AND NOT ",
                        outside_its_org!("p.name", "$1"),
                        " ORDER BY p.name"
                    ),
                    &[&user],
                )
                .await
                .map_err(pg_error(doing))?;
            rows.iter()
                .map(|row| {
                    Ok(Maintained {
                        name: row.get(0),
                        visibility: access_of(doing, row.get(1), row.get(2))?.visibility,
                    })
                })
                .collect()
        })
    }

    fn trusted_publishers(&self, name: &PackageName) -> DbFuture<'_, Vec<StoredPublisher>> {
        let full = name.to_string();
        Box::pin(async move {
            let doing = "read the package's trusted publishers";
            let client = self.client(doing).await?;
            let rows = client
                .query(
                    "SELECT id, issuer, policy, pin, created_by, created
                     FROM registry_trusted_publishers WHERE package = $1 ORDER BY created, seq",
                    &[&full],
                )
                .await
                .map_err(pg_error(doing))?;
            rows.iter()
                .map(|row| {
                    let json = |text: &str| {
                        serde_json::from_str::<Value>(text).map_err(|e| DbError::new(doing, e))
                    };
                    Ok(StoredPublisher {
                        id: row.get(0),
                        issuer: row.get(1),
                        policy: json(row.get(2))?,
                        pin: row.get::<_, Option<&str>>(3).map(json).transpose()?,
                        created_by: row.get(4),
                        created: row.get(5),
                    })
                })
                .collect()
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
        Box::pin(async move {
            let doing = "save the package's trusted publishers";
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            // The package's row, locked: two nodes adding at once take turns, so the count
            // below cannot be passed by both.
            let package = transaction
                .query_opt(
                    "SELECT 1 FROM registry_packages WHERE name = $1 FOR UPDATE",
                    &[&full],
                )
                .await
                .map_err(pg_error(doing))?;
            if package.is_none() {
                return Ok(PublishersAdded::NoPackage);
            }
            let existing: i64 = transaction
                .query_one(
                    "SELECT count(*) FROM registry_trusted_publishers WHERE package = $1",
                    &[&full],
                )
                .await
                .map_err(pg_error(doing))?
                .get(0);
            let existing = existing as usize;
            if existing + publishers.len() > max {
                return Ok(PublishersAdded::TooMany { existing });
            }
            for publisher in &publishers {
                let policy = publisher.policy.to_string();
                let pin = publisher.pin.as_ref().map(Value::to_string);
                transaction
                    .execute(
                        "INSERT INTO registry_trusted_publishers
                             (id, package, issuer, policy, pin, created_by, created)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &publisher.id,
                            &full,
                            &publisher.issuer,
                            &policy,
                            &pin,
                            &publisher.created_by,
                            &publisher.created,
                        ],
                    )
                    .await
                    .map_err(pg_error(doing))?;
            }
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(PublishersAdded::Added)
        })
    }

    fn remove_trusted_publisher(&self, name: &PackageName, id: &str) -> DbFuture<'_, bool> {
        let (full, id) = (name.to_string(), id.to_owned());
        Box::pin(async move {
            let doing = "remove the trusted publisher";
            let client = self.client(doing).await?;
            let removed = client
                .execute(
                    "DELETE FROM registry_trusted_publishers WHERE package = $1 AND id = $2",
                    &[&full, &id],
                )
                .await
                .map_err(pg_error(doing))?;
            Ok(removed > 0)
        })
    }

    fn pin_trusted_publisher(
        &self,
        name: &PackageName,
        id: &str,
        pin: &Value,
    ) -> DbFuture<'_, bool> {
        let (full, id, pin) = (name.to_string(), id.to_owned(), pin.to_string());
        Box::pin(async move {
            let doing = "pin the trusted publisher";
            let client = self.client(doing).await?;
            let pinned = client
                .execute(
                    "UPDATE registry_trusted_publishers SET pin = $3
                     WHERE package = $1 AND id = $2 AND pin IS NULL",
                    &[&full, &id, &pin],
                )
                .await
                .map_err(pg_error(doing))?;
            Ok(pinned > 0)
        })
    }

    fn add_stage(&self, stage: &StoredStage) -> DbFuture<'_, StageAdded> {
        let stage = stage.clone();
        Box::pin(async move {
            let doing = "stage the release";
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            remove_expired_stage_rows(&transaction, stage.created_at).await?;
            // The package's row, locked: a publish of the same version on another node
            // waits, and then sees this stage.
            let package = transaction
                .query_opt(
                    "SELECT 1 FROM registry_packages WHERE name = $1 FOR UPDATE",
                    &[&stage.package],
                )
                .await
                .map_err(pg_error(doing))?;
            if package.is_none() {
                return Ok(StageAdded::NoPackage);
            }
            let published = transaction
                .query_opt(
                    "SELECT 1 FROM registry_versions WHERE package = $1 AND version = $2",
                    &[&stage.package, &stage.version],
                )
                .await
                .map_err(pg_error(doing))?;
            if published.is_some() {
                return Ok(StageAdded::Published);
            }
            let taken = transaction
                .query_opt(
                    "SELECT id FROM registry_stages WHERE package = $1 AND version = $2",
                    &[&stage.package, &stage.version],
                )
                .await
                .map_err(pg_error(doing))?;
            if let Some(row) = taken {
                return Ok(StageAdded::Taken { id: row.get(0) });
            }
            let (document, digest) = (stage.document.to_string(), stage.digest.to_hex());
            transaction
                .execute(
                    &format!(
                        "INSERT INTO registry_stages ({STAGE_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ),
                    &[
                        &stage.id,
                        &stage.package,
                        &stage.version,
                        &stage.tag,
                        &document,
                        &digest,
                        &stage.actor,
                        &stage.actor_type,
                        &stage.created_at,
                        &stage.expires_at,
                    ],
                )
                .await
                .map_err(pg_error(doing))?;
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(StageAdded::Added)
        })
    }

    fn stage(&self, id: &str) -> DbFuture<'_, Option<StoredStage>> {
        let id = id.to_owned();
        Box::pin(async move {
            let sql = format!("SELECT {STAGE_COLUMNS} FROM registry_stages WHERE id = $1");
            self.one_stage("read the staged release", &sql, &id).await
        })
    }

    fn stages(&self, query: &StageQuery<'_>) -> DbFuture<'_, (Vec<StoredStage>, u64)> {
        let (maintainer, package) = (
            query.maintainer.to_owned(),
            query.package.map(str::to_owned),
        );
        let now = query.now;
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        Box::pin(async move {
            let doing = "list the staged releases";
            let client = self.client(doing).await?;
            // The packages the maintainer maintains: in an organisation's scope, only while
            // a member of it.
            let filter = concat!(
                "FROM registry_stages s JOIN registry_maintainers m
                     ON m.package = s.package AND m.username = $1
                 WHERE s.expires_at > $2 AND ($3::TEXT IS NULL OR s.package = $3) AND NOT ",
                outside_its_org!("s.package", "$1")
            );
            let total: i64 = client
                .query_one(
                    &format!("SELECT count(*) {filter}"),
                    &[&maintainer, &now, &package],
                )
                .await
                .map_err(pg_error(doing))?
                .get(0);
            let columns = STAGE_COLUMNS
                .split(", ")
                .map(|column| format!("s.{column}"))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = client
                .query(
                    &format!(
                        "SELECT {columns} {filter} ORDER BY s.created_at, s.id LIMIT $4 OFFSET $5"
                    ),
                    &[&maintainer, &now, &package, &limit, &offset],
                )
                .await
                .map_err(pg_error(doing))?;
            let stages = rows.iter().map(stage_row).collect::<Result<Vec<_>, _>>()?;
            Ok((stages, total.max(0) as u64))
        })
    }

    fn stage_of(&self, name: &PackageName, version: &str) -> DbFuture<'_, Option<String>> {
        let (full, version) = (name.to_string(), version.to_owned());
        Box::pin(async move {
            let doing = "read the staged releases";
            let client = self.client(doing).await?;
            Ok(client
                .query_opt(
                    "SELECT id FROM registry_stages WHERE package = $1 AND version = $2",
                    &[&full, &version],
                )
                .await
                .map_err(pg_error(doing))?
                .map(|row| row.get(0)))
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
        Box::pin(async move {
            let doing = "publish the staged release";
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            // The row is locked until the end: a reject on another node waits, then finds
            // it gone (or, should this roll back, still there).
            let removed = transaction
                .execute(
                    "DELETE FROM registry_stages WHERE id = $1 AND package = $2",
                    &[&id, &name.to_string()],
                )
                .await
                .map_err(pg_error(doing))?;
            if removed == 0 {
                return Ok(false);
            }
            put_package_rows(
                &transaction,
                &name,
                &packument,
                PackageWrite::Replacing { revision: read },
            )
            .await?;
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(true)
        })
    }

    fn remove_stage(&self, id: &str) -> DbFuture<'_, Option<StoredStage>> {
        let id = id.to_owned();
        Box::pin(async move {
            let sql =
                format!("DELETE FROM registry_stages WHERE id = $1 RETURNING {STAGE_COLUMNS}");
            self.one_stage("remove the staged release", &sql, &id).await
        })
    }

    fn requires_staging(&self, name: &PackageName) -> DbFuture<'_, bool> {
        let full = name.to_string();
        Box::pin(async move {
            let doing = "read the package's staging rule";
            let client = self.client(doing).await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM registry_staging_required WHERE package = $1)",
                    &[&full],
                )
                .await
                .map_err(pg_error(doing))?;
            Ok(row.get(0))
        })
    }

    fn set_requires_staging(&self, name: &PackageName, required: bool) -> DbFuture<'_, bool> {
        let full = name.to_string();
        Box::pin(async move {
            let doing = "save the package's staging rule";
            let client = self.client(doing).await?;
            let sql = if required {
                "INSERT INTO registry_staging_required (package)
                 SELECT name FROM registry_packages WHERE name = $1 ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM registry_staging_required WHERE package = $1"
            };
            client
                .execute(sql, &[&full])
                .await
                .map_err(pg_error(doing))?;
            let exists = client
                .query_opt("SELECT 1 FROM registry_packages WHERE name = $1", &[&full])
                .await
                .map_err(pg_error(doing))?;
            Ok(exists.is_some())
        })
    }

    fn remove_expired_stages(&self, now: i64) -> DbFuture<'_, Vec<StoredStage>> {
        Box::pin(async move {
            let doing = "remove the expired staged releases";
            let mut client = self.client(doing).await?;
            let transaction = client.transaction().await.map_err(pg_error(doing))?;
            let removed = remove_expired_stage_rows(&transaction, now).await?;
            transaction.commit().await.map_err(pg_error(doing))?;
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL_VARIABLE: &str = "TOKENGATE_TEST_POSTGRES_URL";

    /// A backend on a database of the test's own, made on the server at
    /// `TOKENGATE_TEST_POSTGRES_URL` and dropped by [`Scratch::finish`].
    struct Scratch {
        metadata: PostgresMetadata,
        admin: tokio_postgres::Client,
        name: String,
    }

    impl Scratch {
        /// `None`, said on stderr, without the variable; a failure without the server.
        async fn new(test: &str) -> Option<Self> {
            let Ok(server) = std::env::var(URL_VARIABLE) else {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: {test} on PostgreSQL: set {URL_VARIABLE}"
                );
                return None;
            };
            let (admin, connection) = tokio_postgres::connect(&server, NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!("{URL_VARIABLE} is set, but PostgreSQL cannot be reached: {e}")
                });
            tokio::spawn(connection);
            let name = format!("tokengate_db_{test}_{}", std::process::id());
            // One statement each: neither may run in a transaction block.
            for statement in [
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                format!("CREATE DATABASE {name}"),
            ] {
                admin.batch_execute(&statement).await.unwrap();
            }
            let base = server
                .rsplit_once('/')
                .map_or(server.as_str(), |(base, _)| base);
            let metadata = PostgresMetadata::connect(&format!("{base}/{name}"))
                .await
                .unwrap();
            Some(Self {
                metadata,
                admin,
                name,
            })
        }

        async fn finish(self) {
            drop(self.metadata);
            self.admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn search_ranks_exact_name_then_prefix_then_name_then_text() {
        if let Some(scratch) = Scratch::new("search").await {
            super::super::behaviour::search_ranks(&scratch.metadata).await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn a_search_keeps_its_turn_until_its_query_ends_and_is_cut_off_at_its_limit() {
        let Some(mut scratch) = Scratch::new("search_turns").await else {
            return;
        };
        let terms = vec!["pad".to_owned()];
        let query = SearchQuery {
            terms: &terms,
            from: 0,
            size: 20,
            reader: None,
            counted: 100,
        };
        // The search waits for this lock, on the server, until it is released.
        let locker = scratch.metadata.pool.get().await.unwrap();
        let lock = "BEGIN; LOCK TABLE registry_packages IN ACCESS EXCLUSIVE MODE";
        locker.batch_execute(lock).await.unwrap();

        // Far longer than the test: only the lock's release ends this query.
        scratch.metadata.search_timeout = Duration::from_secs(3600);
        let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let turn = std::sync::Arc::clone(&turns).acquire_owned().await.unwrap();
        let mut search = scratch.metadata.search(&query, Some(turn));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(search.as_mut().poll(&mut context).is_pending());
        // The client went away: its request's future is dropped, the query is not.
        drop(search);
        assert_eq!(
            turns.available_permits(),
            0,
            "the query still holds its turn"
        );
        locker.batch_execute("COMMIT").await.unwrap();
        drop(turns.acquire().await.unwrap());

        // A query past its limit is cut off, and says so.
        scratch.metadata.search_timeout = Duration::from_millis(50);
        locker.batch_execute(lock).await.unwrap();
        let error = match scratch.metadata.search(&query, None).await {
            Err(error) => error,
            Ok(_) => panic!("the search ran while the table was locked"),
        };
        assert!(error.is_timed_out(), "{error}");
        locker.batch_execute("COMMIT").await.unwrap();
        assert!(scratch.metadata.search(&query, None).await.is_ok());
        drop(locker);
        scratch.finish().await;
    }

    #[tokio::test]
    async fn search_is_bounded() {
        if let Some(scratch) = Scratch::new("search_bounds").await {
            super::super::behaviour::search_is_bounded(&scratch.metadata).await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn a_first_publish_claims_its_scope() {
        if let Some(scratch) = Scratch::new("scopes").await {
            super::super::behaviour::a_first_publish_claims_its_scope(&scratch.metadata).await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn a_first_publish_into_a_scope_finds_its_organisation_as_it_is_then() {
        if let Some(scratch) = Scratch::new("org_first_publish").await {
            super::super::behaviour::a_first_publish_into_a_scope_finds_its_organisation_as_it_is_then(
                &scratch.metadata,
            )
            .await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn a_users_organisations_follow_their_membership() {
        if let Some(scratch) = Scratch::new("orgs_of").await {
            super::super::behaviour::a_users_organisations_follow_their_membership(
                &scratch.metadata,
            )
            .await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn an_organisation_is_removed_only_when_its_scope_is_empty() {
        if let Some(scratch) = Scratch::new("org_removal").await {
            super::super::behaviour::an_organisation_is_removed_only_when_its_scope_is_empty(
                &scratch.metadata,
            )
            .await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn only_members_maintain_an_organisations_packages() {
        if let Some(scratch) = Scratch::new("org_maintainers").await {
            super::super::behaviour::only_members_maintain_an_organisations_packages(
                &scratch.metadata,
            )
            .await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn organisations_hold_their_teams_access() {
        if let Some(scratch) = Scratch::new("orgs").await {
            super::super::behaviour::organisations_hold_their_teams_access(&scratch.metadata).await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn user_writes_name_what_they_read() {
        if let Some(scratch) = Scratch::new("users").await {
            super::super::behaviour::user_writes_name_what_they_read(&scratch.metadata).await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn a_package_write_replaces_its_index_and_a_delete_removes_it() {
        if let Some(scratch) = Scratch::new("writes").await {
            super::super::behaviour::writes_replace_the_index(&scratch.metadata).await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn trusted_publishers_belong_to_their_package() {
        if let Some(scratch) = Scratch::new("trust").await {
            super::super::behaviour::trusted_publishers_belong_to_their_package(&scratch.metadata)
                .await;
            scratch.finish().await;
        }
    }

    #[tokio::test]
    async fn stages_reserve_their_version_and_are_decided_once() {
        if let Some(scratch) = Scratch::new("stages").await {
            super::super::behaviour::stages_reserve_their_version_and_are_decided_once(
                &scratch.metadata,
            )
            .await;
            scratch.finish().await;
        }
    }
}
