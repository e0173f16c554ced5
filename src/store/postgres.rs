//! [`PostgresStore`]: tokens in PostgreSQL, shared by several nodes (feature `postgres`).

use std::fmt;
use std::future::poll_fn;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

use super::columns::{self, COLUMNS, Row};
use super::{Order, Page, RecordPage, StoreChange, StoreError, TokenStore};
use crate::record::{TokenKind, TokenRecord};
use crate::token::TokenId;

/// Longest schema name accepted (the notification channel adds a prefix, and PostgreSQL
/// identifiers stop at 63 bytes).
const MAX_SCHEMA_LEN: usize = 40;
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// What starts a notice that an owner's rights changed, on the channel revocations use;
/// a token id (base62) never holds the colon, and a node of an earlier release ignores it.
const OWNER_RIGHTS_NOTICE: &str = "owner-rights:";
/// PostgreSQL refuses a notice payload of 8000 bytes or more.
const MAX_NOTICE_PAYLOAD: usize = 7999;

/// A [`TokenStore`] in PostgreSQL, for several nodes sharing one database.
///
/// Connections come from a pool. The schema is created (or migrated) on connect. Each
/// revocation (each id that [`TokenStore::revoke_all`] revokes, too) is broadcast with
/// `NOTIFY`: every store listens on a connection of its own
/// and feeds [`TokenStore::changes`], so every [`Tokens`](crate::Tokens) on every node drops
/// the revoked token from its cache at once, whatever its cache TTL. When the listening
/// connection drops, the stores tell their `Tokens` to drop everything cached (notices may
/// have been missed) and reconnect with back-off (0.1 s doubling to 5 s). TLS is not
/// built in: reach the server over a trusted network or a local socket.
///
/// [`TokenStore::owner_rights_changed`] is broadcast the same way, on the same channel.
///
/// Cheap to clone; clones share the pool and the listener, which stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    queries: Queries,
    changes: broadcast::Sender<StoreChange>,
    listener_pid: Arc<AtomicI32>,
    listener: AbortHandle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Options for [`PostgresStore`]; see [`PostgresStore::builder`].
#[derive(Clone)]
pub struct PostgresStoreBuilder {
    url: String,
    schema: String,
    pool_size: usize,
    timeout: Duration,
    heartbeat: Duration,
}

impl fmt::Debug for PostgresStoreBuilder {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl PostgresStoreBuilder {
    /// The schema that holds the table (default `public`); created if missing. Lower-case
    /// ASCII letters, digits and `_`, starting with a letter or `_`, at most 40 bytes.
    pub fn schema(mut self, schema: &str) -> Self {
        schema.clone_into(&mut self.schema);
        self
    }

    /// Most pooled connections (default 16), besides the listening one.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long to wait for a connection, from the pool or the server, before a call fails
    /// with [`StoreError::Unavailable`] (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the listening connection is asked to answer (default 10 s). A connection
    /// that has not answered by the next beat is taken for lost, even with no error and no
    /// closed socket (a stalled network path): every [`Tokens`](crate::Tokens) on the store
    /// drops its cache and the connection is made again. This bounds how long a node can go
    /// on accepting a token revoked elsewhere while the feed is silent.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// Connects, creates or migrates the schema, and starts listening for revocations.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        if !valid_schema(&self.schema) {
            return Err(StoreError::unavailable(format!(
                "invalid PostgreSQL schema name {:?}: use lower-case letters, digits and _, \
                 at most {MAX_SCHEMA_LEN} bytes",
                self.schema
            )));
        }
        let mut config = tokio_postgres::Config::from_str(&self.url)
            .map_err(|error| StoreError::unavailable(format!("invalid PostgreSQL URL: {error}")))?;
        config.connect_timeout(self.timeout);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(StoreError::unavailable)?;
        let queries = Queries::new(&self.schema);
        migrate(&pool, &self.schema, &queries).await?;

        let (changes, _) = broadcast::channel(1024);
        let listener_pid = Arc::new(AtomicI32::new(0));
        // Listen before returning, so that no revocation after `connect` is missed.
        let first = Listener::connect(&config, &queries.channel).await?;
        listener_pid.store(first.pid, Ordering::Release);
        let listener = tokio::spawn(listen(
            config,
            queries.channel.clone(),
            first,
            changes.clone(),
            Arc::clone(&listener_pid),
            self.heartbeat,
        ))
        .abort_handle();
        Ok(PostgresStore {
            shared: Arc::new(Shared {
                pool,
                queries,
                changes,
                listener_pid,
                listener,
            }),
        })
    }
}

fn valid_schema(schema: &str) -> bool {
    let mut bytes = schema.bytes();
    schema.len() <= MAX_SCHEMA_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PostgresStore {
    /// Connects with the default options; see [`PostgresStore::builder`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Options for a store on the database at `url`
    /// (`postgres://user:password@host:port/database`).
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.to_owned(),
            schema: "public".to_owned(),
            pool_size: 16,
            timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
        }
    }

    /// The server process id of the listening connection, or `None` while it is
    /// reconnecting: for diagnostics (`pg_stat_activity`).
    pub fn listener_pid(&self) -> Option<i32> {
        match self.shared.listener_pid.load(Ordering::Acquire) {
            0 => None,
            pid => Some(pid),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.shared
            .pool
            .get()
            .await
            .map_err(StoreError::unavailable)
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.shared.queries.table)
            .field("listener_pid", &self.listener_pid())
            .finish()
    }
}

/// Every statement, written once for the configured schema.
struct Queries {
    table: String,
    channel: String,
    get: String,
    insert: String,
    count: String,
    /// By [`list_index`].
    list: [String; 4],
    revoke: String,
    revoke_all: String,
    record_use: String,
    notify: String,
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    id_token_first_use: String,
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    id_token_sweep: String,
}

impl Queries {
    fn new(schema: &str) -> Self {
        let table = format!("\"{schema}\".tokengate_tokens");
        let uses = format!("\"{schema}\".tokengate_id_token_uses");
        Self {
            channel: format!("tokengate_{schema}"),
            get: format!("SELECT {COLUMNS} FROM {table} WHERE id = $1"),
            insert: format!(
                "INSERT INTO {table} ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ),
            count: format!(
                "SELECT listed FROM \"{schema}\".tokengate_listed_counts WHERE owner = $1"
            ),
            list: [
                (Order::OldestFirst, false),
                (Order::OldestFirst, true),
                (Order::NewestFirst, false),
                (Order::NewestFirst, true),
            ]
            .map(|(order, after_cursor)| list_sql(&table, order, after_cursor)),
            // The notice is sent only if this call revoked the token, and only on commit.
            revoke: format!(
                "WITH revoked AS (UPDATE {table} SET revoked_at = $2 \
                 WHERE id = $1 AND revoked_at IS NULL RETURNING id) \
                 SELECT pg_notify($3, id) FROM revoked"
            ),
            // One notice per id, as a single revocation sends, so that every node (of this
            // release or an earlier one) forgets each; all sent on commit, none otherwise.
            revoke_all: format!(
                "WITH revoked AS (UPDATE {table} SET revoked_at = $3 \
                 WHERE owner = $1 AND kind = $2 AND revoked_at IS NULL \
                 AND ($5::text IS NULL OR id <> $5) RETURNING id) \
                 SELECT id, pg_notify($4, id) FROM revoked"
            ),
            notify: "SELECT pg_notify($1, $2)".to_owned(),
            record_use: format!(
                "UPDATE {table} SET last_used_at = GREATEST(COALESCE(last_used_at, $2), $2) \
                 WHERE id = $1"
            ),
            // A key already there and still remembered changes no row; of concurrent
            // first uses, the primary key makes one insert and the others wait for it,
            // then find it remembered.
            id_token_first_use: format!(
                "INSERT INTO {uses} AS used (issuer, jti, used_until) VALUES ($1, $2, $3) \
                 ON CONFLICT (issuer, jti) DO UPDATE SET used_until = EXCLUDED.used_until \
                 WHERE used.used_until <= $4"
            ),
            // A few at a time, skipping rows another call holds: sweeps never wait on
            // each other nor deadlock.
            id_token_sweep: format!(
                "DELETE FROM {uses} WHERE ctid IN (SELECT ctid FROM {uses} \
                 WHERE used_until <= $1 LIMIT 100 FOR UPDATE SKIP LOCKED)"
            ),
            table,
        }
    }
}

/// Where the statement for a page in `order`, from a cursor or not, is in
/// [`Queries::list`].
fn list_index(order: Order, after_cursor: bool) -> usize {
    let order = match order {
        Order::OldestFirst => 0,
        Order::NewestFirst => 2,
    };
    order + usize::from(after_cursor)
}

/// The statement for a page in `order`, from a cursor (`$4`, `$5`: its creation time and
/// id) or not. Parameters: `$1` owner, `$2` limit, `$3` offset.
fn list_sql(table: &str, order: Order, after_cursor: bool) -> String {
    let (follows, direction) = match order {
        Order::OldestFirst => (">", "ASC"),
        Order::NewestFirst => ("<", "DESC"),
    };
    let from = if after_cursor {
        format!("AND (created_at, id) {follows} ($4, $5) ")
    } else {
        String::new()
    };
    format!(
        "SELECT {COLUMNS} FROM {table} \
         WHERE owner = $1 AND kind = 'standard' AND revoked_at IS NULL {from}\
         ORDER BY created_at {direction}, id {direction} LIMIT $2 OFFSET $3"
    )
}

/// The count of each owner's listed tokens (live, standard), made once with the triggers
/// that keep it: statement-level, so that a write locks its token rows before the count's,
/// and written in the database, so that every write counts, an older node's included. The
/// table is locked while the count starts from the rows already there.
fn listed_counts(schema: &str, table: &str) -> String {
    let counts = format!("\"{schema}\".tokengate_listed_counts");
    let count = format!("\"{schema}\".tokengate_count_listed");
    format!(
        "DO $migrate$ BEGIN
         IF to_regclass('{counts}') IS NULL THEN
             LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;
             CREATE TABLE {counts} (owner TEXT PRIMARY KEY, listed BIGINT NOT NULL);
             CREATE FUNCTION {count}() RETURNS trigger LANGUAGE plpgsql AS $count$
             BEGIN
                 -- Each branch names only the transition tables its trigger has.
                 IF TG_OP = 'INSERT' THEN
                     INSERT INTO {counts} AS counted (owner, listed)
                         SELECT owner, COUNT(*) FROM new_rows
                         WHERE revoked_at IS NULL AND kind = 'standard' GROUP BY owner
                         ON CONFLICT (owner) DO UPDATE
                         SET listed = counted.listed + EXCLUDED.listed;
                 ELSIF TG_OP = 'DELETE' THEN
                     UPDATE {counts} AS counted SET listed = counted.listed - gone.listed
                         FROM (SELECT owner, COUNT(*) AS listed FROM old_rows
                               WHERE revoked_at IS NULL AND kind = 'standard'
                               GROUP BY owner) AS gone
                         WHERE counted.owner = gone.owner;
                 ELSE
                     INSERT INTO {counts} AS counted (owner, listed)
                         SELECT owner, SUM(change) FROM (
                             SELECT owner, 1 AS change FROM new_rows
                                 WHERE revoked_at IS NULL AND kind = 'standard'
                             UNION ALL
                             SELECT owner, -1 FROM old_rows
                                 WHERE revoked_at IS NULL AND kind = 'standard'
                         ) AS changes
                         GROUP BY owner HAVING SUM(change) <> 0
                         ON CONFLICT (owner) DO UPDATE
                         SET listed = counted.listed + EXCLUDED.listed;
                 END IF;
                 RETURN NULL;
             END
             $count$;
             CREATE TRIGGER tokengate_listed_insert AFTER INSERT ON {table}
                 REFERENCING NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION {count}();
             CREATE TRIGGER tokengate_listed_update AFTER UPDATE ON {table}
                 REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION {count}();
             CREATE TRIGGER tokengate_listed_delete AFTER DELETE ON {table}
                 REFERENCING OLD TABLE AS old_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION {count}();
             INSERT INTO {counts} (owner, listed)
                 SELECT owner, COUNT(*) FROM {table}
                 WHERE revoked_at IS NULL AND kind = 'standard' GROUP BY owner;
         END IF;
         END $migrate$;"
    )
}

async fn migrate(pool: &Pool, schema: &str, queries: &Queries) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(StoreError::unavailable)?;
    let transaction = client.transaction().await.map_err(pg_error)?;
    let table = &queries.table;
    // Nodes starting together take turns.
    transaction
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtext('tokengate schema')); \
             CREATE SCHEMA IF NOT EXISTS \"{schema}\"; \
             CREATE TABLE IF NOT EXISTS {table} (
                 id TEXT PRIMARY KEY,
                 owner TEXT NOT NULL,
                 digest BYTEA NOT NULL,
                 access TEXT NOT NULL,
                 cidr TEXT NOT NULL,
                 created_at BIGINT NOT NULL,
                 expires_at BIGINT,
                 revoked_at BIGINT,
                 name TEXT,
                 description TEXT,
                 last_used_at BIGINT
             );
             -- Grants, kinds and the second-factor choice; earlier rows keep grants NULL
             -- and read as a grant on everything with their access.
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS grants TEXT;
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'standard';
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS second_factor TEXT NOT NULL \
                 DEFAULT 'enforced';
             -- The OIDC ID tokens used (trusted publishing's single-use jti), each
             -- remembered until used_until; made whatever the features.
             CREATE TABLE IF NOT EXISTS \"{schema}\".tokengate_id_token_uses (
                 issuer TEXT NOT NULL,
                 jti TEXT NOT NULL,
                 used_until BIGINT NOT NULL,
                 PRIMARY KEY (issuer, jti)
             );
             CREATE INDEX IF NOT EXISTS tokengate_id_token_uses_by_time
                 ON \"{schema}\".tokengate_id_token_uses (used_until);
             -- An owner's live tokens of one kind in listing order: pages read from their
             -- cursor on, and revoke_all finds one kind. It replaces the index on (owner,
             -- created_at, id), which held sessions and exchanged tokens among them.
             DROP INDEX IF EXISTS \"{schema}\".tokengate_tokens_by_owner;
             CREATE INDEX IF NOT EXISTS tokengate_tokens_live
                 ON {table} (owner, kind, created_at, id) WHERE revoked_at IS NULL;
             {counts}",
            counts = listed_counts(schema, table),
        ))
        .await
        .map_err(pg_error)?;
    transaction.commit().await.map_err(pg_error)
}

fn pg_error(error: tokio_postgres::Error) -> StoreError {
    StoreError::unavailable(format!("PostgreSQL: {error}"))
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let read = || -> Result<Row, tokio_postgres::Error> {
        Ok(Row {
            id: row.try_get(0)?,
            owner: row.try_get(1)?,
            digest: row.try_get(2)?,
            access: row.try_get(3)?,
            cidr: row.try_get(4)?,
            created_at: row.try_get(5)?,
            expires_at: row.try_get(6)?,
            revoked_at: row.try_get(7)?,
            name: row.try_get(8)?,
            description: row.try_get(9)?,
            last_used_at: row.try_get(10)?,
            grants: row.try_get(11)?,
            kind: row.try_get(12)?,
            second_factor: row.try_get(13)?,
        })
    };
    read().map_err(|error| StoreError::Corrupt(format!("PostgreSQL row: {error}")))
}

impl TokenStore for PostgresStore {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.queries.get)
            .await
            .map_err(pg_error)?;
        let row = client
            .query_opt(&statement, &[&id.as_str()])
            .await
            .map_err(pg_error)?;
        row.map(|row| read_row(&row)?.into_record()).transpose()
    }

    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        let row = Row::from_record(&record);
        let statement = client
            .prepare_cached(&self.shared.queries.insert)
            .await
            .map_err(pg_error)?;
        let inserted = client
            .execute(
                &statement,
                &[
                    &row.id,
                    &row.owner,
                    &row.digest,
                    &row.access,
                    &row.cidr,
                    &row.created_at,
                    &row.expires_at,
                    &row.revoked_at,
                    &row.name,
                    &row.description,
                    &row.last_used_at,
                    &row.grants,
                    &row.kind,
                    &row.second_factor,
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::Duplicate(record.id))
            }
            Err(error) => Err(pg_error(error)),
        }
    }

    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        let mut client = self.client().await?;
        let queries = &self.shared.queries;
        // One snapshot for the count and the page.
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let count = transaction
            .prepare_cached(&queries.count)
            .await
            .map_err(pg_error)?;
        let total: i64 = transaction
            .query_opt(&count, &[&owner])
            .await
            .map_err(pg_error)?
            .map_or(0, |row| row.get(0));
        // One more than the page holds, to tell whether another follows.
        let limit = page.effective_limit() as i64 + 1;
        let offset = columns::sql_offset(page.offset());
        let statement = transaction
            .prepare_cached(&queries.list[list_index(page.order(), page.cursor().is_some())])
            .await
            .map_err(pg_error)?;
        let statement = &statement;
        let rows = match page.cursor() {
            Some(cursor) => {
                let (created_at, id) = (columns::millis(cursor.created_at()), cursor.id());
                transaction
                    .query(
                        statement,
                        &[&owner, &limit, &offset, &created_at, &id.as_str()],
                    )
                    .await
            }
            None => {
                transaction
                    .query(statement, &[&owner, &limit, &offset])
                    .await
            }
        }
        .map_err(pg_error)?;
        transaction.commit().await.map_err(pg_error)?;
        let records = rows
            .iter()
            .map(|row| read_row(row)?.into_record())
            .collect::<Result<_, _>>()?;
        Ok(RecordPage::from_lookahead(
            &page,
            records,
            total.max(0) as u64,
        ))
    }

    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.queries.revoke)
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &statement,
                &[
                    &id.as_str(),
                    &columns::millis(at),
                    &self.shared.queries.channel,
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.len() == 1)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        let except = except.map(|id| id.to_string());
        let mut client = self.client().await?;
        // A transaction, so that ids that do not read back revoke nothing and notify no one.
        let transaction = client.transaction().await.map_err(pg_error)?;
        let rows = transaction
            .query(
                &self.shared.queries.revoke_all,
                &[
                    &owner,
                    &kind.as_str(),
                    &columns::millis(at),
                    &self.shared.queries.channel,
                    &except,
                ],
            )
            .await
            .map_err(pg_error)?;
        let ids = rows
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StoreError::Corrupt(format!("PostgreSQL row: {error}")))?;
        let ids = columns::token_ids(ids)?;
        transaction.commit().await.map_err(pg_error)?;
        Ok(ids)
    }

    #[cfg(feature = "oidc")]
    async fn id_token_first_use(
        &self,
        key: &crate::oidc::ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let queries = &self.shared.queries;
        let now = columns::millis(now);
        let statement = client
            .prepare_cached(&queries.id_token_first_use)
            .await
            .map_err(pg_error)?;
        let recorded = client
            .execute(
                &statement,
                &[&key.issuer(), &key.jti(), &columns::millis(until), &now],
            )
            .await
            .map_err(pg_error)?;
        // Expired uses are dropped after the answer, and a failure to drop them only
        // leaves them for the next call: the use itself is recorded.
        let swept = match client.prepare_cached(&queries.id_token_sweep).await {
            Ok(sweep) => client.execute(&sweep, &[&now]).await,
            Err(error) => Err(error),
        };
        if let Err(error) = swept {
            tracing::warn!(%error, "PostgreSQL: could not delete expired ID-token uses");
        }
        Ok(recorded == 1)
    }

    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(pg_error)?;
        let statement = transaction
            .prepare(&self.shared.queries.record_use)
            .await
            .map_err(pg_error)?;
        for (id, at) in &uses {
            transaction
                .execute(&statement, &[&id.as_str(), &columns::millis(*at)])
                .await
                .map_err(pg_error)?;
        }
        transaction.commit().await.map_err(pg_error)
    }

    async fn owner_rights_changed(&self, owner: &str) -> Result<(), StoreError> {
        let payload = format!("{OWNER_RIGHTS_NOTICE}{owner}");
        if payload.len() > MAX_NOTICE_PAYLOAD {
            return Err(StoreError::Unsupported(
                "owner names too long for a PostgreSQL notice (over 7,900 bytes)",
            ));
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.shared.queries.notify)
            .await
            .map_err(pg_error)?;
        client
            .execute(&statement, &[&self.shared.queries.channel, &payload])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        Some(self.shared.changes.subscribe())
    }
}

/// A connection that has run `LISTEN`, and the notices it receives.
struct Listener {
    pid: i32,
    // Dropping the client closes the connection.
    client: tokio_postgres::Client,
    notices: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    async fn connect(config: &tokio_postgres::Config, channel: &str) -> Result<Self, StoreError> {
        let (client, mut connection) = config.connect(NoTls).await.map_err(pg_error)?;
        let (sender, notices) = mpsc::unbounded_channel();
        // Drives the connection; ends (closing `notices`) when it drops.
        tokio::spawn(async move {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(notice)) => {
                        if sender.send(notice.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "PostgreSQL listening connection failed");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!(
                "SET application_name = 'tokengate-listener'; LISTEN \"{channel}\""
            ))
            .await
            .map_err(pg_error)?;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        Ok(Self {
            pid,
            client,
            notices,
        })
    }
}

/// Forwards the listener's notices as changes until its connection drops or goes silent:
/// every `heartbeat` it must answer a query within the next `heartbeat`.
async fn follow(
    listener: &mut Listener,
    changes: &broadcast::Sender<StoreChange>,
    heartbeat: Duration,
) {
    let mut beat = tokio::time::interval(heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.tick().await;
    loop {
        tokio::select! {
            notice = listener.notices.recv() => {
                let Some(payload) = notice else { return };
                if let Some(owner) = payload.strip_prefix(OWNER_RIGHTS_NOTICE) {
                    let _ = changes.send(StoreChange::OwnerRightsChanged(owner.into()));
                    continue;
                }
                match payload.parse::<TokenId>() {
                    Ok(id) => {
                        let _ = changes.send(StoreChange::Revoked(id));
                    }
                    Err(_) => tracing::warn!("ignored a malformed revocation notice"),
                }
            }
            _ = beat.tick() => {
                let answered = tokio::time::timeout(
                    heartbeat,
                    listener.client.simple_query("SELECT 1"),
                )
                .await;
                if !matches!(answered, Ok(Ok(_))) {
                    tracing::warn!("PostgreSQL listening connection did not answer its heartbeat");
                    return;
                }
            }
        }
    }
}

/// Forwards notices as changes; when the connection drops, says `Resync`, reconnects with
/// back-off, and says `Resync` again once listening (anything cached meanwhile may be
/// stale).
async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    mut listener: Listener,
    changes: broadcast::Sender<StoreChange>,
    pid: Arc<AtomicI32>,
    heartbeat: Duration,
) {
    loop {
        follow(&mut listener, &changes, heartbeat).await;
        pid.store(0, Ordering::Release);
        let _ = changes.send(StoreChange::Resync);
        tracing::warn!("PostgreSQL listening connection lost; reconnecting");
        let mut delay = FIRST_RETRY;
        listener = loop {
            tokio::time::sleep(delay).await;
            match Listener::connect(&config, &channel).await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(%error, "PostgreSQL listening connection: retrying");
                    delay = (delay * 2).min(LAST_RETRY);
                }
            }
        };
        pid.store(listener.pid, Ordering::Release);
        let _ = changes.send(StoreChange::Resync);
        tracing::info!("PostgreSQL listening connection restored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["public", "_x", "tokens_2", &"a".repeat(40)] {
            assert!(valid_schema(good), "{good}");
        }
        for bad in ["", "Public", "1abc", "a-b", "a\"b", "a b", &"a".repeat(41)] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
