//! [`RedisStore`]: a [`tokengate`] [`TokenStore`] on Redis, kept to the same contract as
//! the stores built into tokengate (`tokengate::store::contract` checks it in this
//! package's tests).
//!
//! ```no_run
//! use tokengate::{Action, NewToken, Tokens};
//! use tokengate_redis_store::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379/", "tokens").await?;
//! let tokens = Tokens::builder(store).prefix("npm")?.build();
//! let created = tokens.create("alice", NewToken::read_only()).await?;
//! let token = created.token.expose_secret();
//! assert!(tokens.authenticate(token, None, Action::Read).await.is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! # Data layout
//!
//! Every key starts with the store's namespace, so that several stores (and test runs)
//! can share one server without seeing each other's keys:
//!
//! | key                  | type       | holds                                              |
//! |----------------------|------------|----------------------------------------------------|
//! | `<ns>:token:<id>`    | hash       | one record, revoked or not                         |
//! | `<ns>:owner:<owner>` | sorted set | the ids of the owner's listed records              |
//! | `<ns>:sessions:<owner>` | set     | the ids of the owner's sessions not revoked        |
//! | `<ns>:exchanged:<owner>` | set    | the ids of the owner's exchanged tokens not revoked |
//! | `<ns>:id-token:<n>:<issuer>:<jti>` | string | an OIDC ID token used (`n` is the issuer's length in bytes), expiring when it may be forgotten |
//!
//! The hash's fields are `id`, `owner`, `digest` (the SHA-256 in lower-case hex), `grants`
//! (one `<permission> <pattern>` line per grant, such as `read-only *`, as tokengate's SQL
//! stores write them), `kind` (`standard`, `session` or `exchanged`), `second_factor` (`enforced` or
//! `bypassed`), `cidr` (the allow-list joined with commas; empty for any address),
//! `created_at`, and when set `expires_at`, `revoked_at`, `name`, `description` and
//! `last_used_at`. Times are whole milliseconds since the Unix epoch, in decimal; an absent
//! field is `None`.
//!
//! The owner's sorted set holds what listings show: standard tokens that are not revoked.
//! It scores each id by its `created_at`, and Redis orders equal scores by member bytes,
//! which is [`TokenId`]'s order: a listing comes out ordered by creation time, then id, as
//! the contract asks (`ZREVRANGE` gives the exact reverse for newest first). A page from a
//! cursor reads the ids that share the cursor's creation time, then a range of scores past
//! it (`ZRANGEBYSCORE … LIMIT`), so that it costs the page, not the tokens before it; the
//! total is the set's `ZCARD`.
//!
//! The sessions' set is what `revoke_all` of sessions reads (the sorted set serves it for
//! standard tokens), so that revoking all of an owner's sessions touches theirs only; the
//! exchanged tokens' set (trusted publishing's, never listed either) serves it for them.
//!
//! An ID token's use (trusted publishing's single-use `jti`, [`TokenStore::id_token_first_use`]
//! and [`ReplayGuard`]) is one `SET … NX PX`: the server's check-and-set is atomic, and the
//! key expires by itself once the use may be forgotten (measured on the server's clock, from
//! the time left that the caller gives).
//!
//! Writes that must check before they change (insert, revoke, revoke all, last use) and
//! listings run as Lua scripts, each one atomic step on the server.
//!
//! # Limits
//!
//! - Times are kept to the millisecond, like tokengate's SQL stores. Scores are doubles, so
//!   listing order is exact for creation times within 2^53 ms (about 285,000 years) of
//!   1970.
//! - The scripts reach keys named inside them (the owner set named in a hash, the hashes
//!   named in an owner set). On Redis Cluster every key of a store must therefore hash to
//!   one slot: use a hash-tagged namespace such as `{tokens}`.
//! - Sessions stored by a version of this store without the sessions' set are not in it,
//!   and `revoke_all` does not find them: they expire as sessions do.
//! - Redis keeps what its persistence settings keep. A revocation lost in a crash brings
//!   the token back, so run it with the append-only file on.
//! - Values of tokengate's non-exhaustive types that this store does not know (a token
//!   kind added later, say) are refused by `insert` as [`StoreError::Corrupt`] rather than
//!   stored as something else; so is a grant whose pattern would read back as another.
//! - TLS (`rediss://`) needs one of the `redis` crate's TLS features turned on in your
//!   build; this package does not pull one in.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, RedisError, Script,
    ScriptInvocation, Value,
};
use tokengate::oidc::{ReplayGuard, ReplayKey};
use tokengate::store::{Order, Page, RecordPage, StoreError, TokenStore};
use tokengate::{CidrList, Grants, SecondFactor, TokenDigest, TokenId, TokenKind, TokenRecord};

/// A [`TokenStore`] on a Redis server. See the [crate docs](crate) for what it writes.
///
/// Cheap to clone: clones share one multiplexed connection, which reconnects by itself
/// after the server comes back. Must be used within a Tokio runtime. Its `Debug` shows the
/// server and namespace, never a password.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    shared: Arc<Shared>,
}

struct Shared {
    namespace: String,
    server: Server,
}

/// Options for [`RedisStore`]; see [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    // Parsed at once so that `Debug` can redact it; a bad URL is reported by `connect`.
    info: Result<ConnectionInfo, RedisError>,
    namespace: String,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl RedisStoreBuilder {
    /// How long each attempt to connect may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a command may wait for its answer before it fails with
    /// [`StoreError::Unavailable`] (default 2 s). Token lookups run on the request path,
    /// where a quick 503 beats a hung request.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects, failing with [`StoreError::Unavailable`] when the URL is invalid or the
    /// server cannot be reached or refuses the credentials.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let info = self
            .info
            .map_err(|error| StoreError::unavailable(format!("invalid Redis URL: {error}")))?;
        let server = Server::of(&info);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            // Requests wait on a reconnection in progress: keep it short so that they fail
            // fast while the server is down.
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(Duration::from_millis(500));
        let cannot = |error: RedisError| {
            StoreError::unavailable(format!(
                "cannot connect to Redis at {}: {error}",
                server.addr
            ))
        };
        let client = Client::open(info).map_err(cannot)?;
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(cannot)?;
        Ok(RedisStore {
            connection,
            shared: Arc::new(Shared {
                namespace: self.namespace,
                server,
            }),
        })
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("RedisStoreBuilder");
        match &self.info {
            Ok(info) => out.field("server", &Server::of(info)),
            Err(_) => out.field("server", &"<invalid URL>"),
        };
        out.field("namespace", &self.namespace)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

const RECONNECT_RETRIES: usize = 2;

impl RedisStore {
    /// Connects to the server at `url` (such as `redis://:password@host:6379/0`) with the
    /// default options, keeping every key under `namespace`.
    pub async fn connect(
        url: impl IntoConnectionInfo,
        namespace: impl Into<String>,
    ) -> Result<Self, StoreError> {
        Self::builder(url, namespace).connect().await
    }

    /// Options for a store on the server at `url`, keeping every key under `namespace`.
    pub fn builder(
        url: impl IntoConnectionInfo,
        namespace: impl Into<String>,
    ) -> RedisStoreBuilder {
        RedisStoreBuilder {
            info: url.into_connection_info(),
            namespace: namespace.into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }

    /// The prefix of every key this store writes.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    fn token_key(&self, id: TokenId) -> String {
        format!("{}{id}", self.token_prefix())
    }

    fn token_prefix(&self) -> String {
        format!("{}:token:", self.shared.namespace)
    }

    fn owner_key(&self, owner: &str) -> String {
        format!("{}{owner}", self.owner_prefix())
    }

    fn owner_prefix(&self) -> String {
        format!("{}:owner:", self.shared.namespace)
    }

    fn sessions_key(&self, owner: &str) -> String {
        format!("{}{owner}", self.sessions_prefix())
    }

    fn sessions_prefix(&self) -> String {
        format!("{}:sessions:", self.shared.namespace)
    }

    fn exchanged_key(&self, owner: &str) -> String {
        format!("{}{owner}", self.exchanged_prefix())
    }

    fn exchanged_prefix(&self) -> String {
        format!("{}:exchanged:", self.shared.namespace)
    }

    /// The set of `owner`'s live records of `kind` when that kind is not listed.
    fn unlisted_key(&self, owner: &str, kind: TokenKind) -> Option<String> {
        match kind {
            TokenKind::Session => Some(self.sessions_key(owner)),
            TokenKind::Exchanged => Some(self.exchanged_key(owner)),
            _ => None,
        }
    }

    fn id_token_key(&self, key: &ReplayKey) -> String {
        // The length keeps issuer and jti apart whatever they hold.
        let issuer = key.issuer();
        format!(
            "{}:id-token:{}:{issuer}:{}",
            self.shared.namespace,
            issuer.len(),
            key.jti()
        )
    }

    /// Runs a script; `what` names the keys it works on, for errors.
    async fn run(&self, script: &ScriptInvocation<'_>, what: &str) -> Result<Value, StoreError> {
        let mut connection = self.connection.clone();
        script
            .invoke_async(&mut connection)
            .await
            .map_err(|error| failure(error, what))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.shared.server)
            .field("namespace", &self.shared.namespace)
            .finish()
    }
}

/// Where a store connects, with the password left out.
struct Server {
    addr: String,
    tls: bool,
    db: i64,
    username: Option<String>,
    has_password: bool,
}

impl Server {
    fn of(info: &ConnectionInfo) -> Self {
        let settings = info.redis_settings();
        Self {
            addr: info.addr().to_string(),
            tls: matches!(info.addr(), ConnectionAddr::TcpTls { .. }),
            db: settings.db(),
            username: settings.username().map(str::to_owned),
            has_password: settings.password().is_some(),
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.has_password.then_some("[redacted]"))
            .finish()
    }
}

/// A key of the wrong type is data that cannot be read back; anything else is about
/// reaching the server (refused, timed out, out of memory, not permitted).
fn failure(error: RedisError, what: &str) -> StoreError {
    if error.code() == Some("WRONGTYPE") {
        StoreError::Corrupt(format!("{what}: a Redis key of the wrong type"))
    } else {
        StoreError::unavailable(error)
    }
}

/// The script's answer as `T`, or [`StoreError::Corrupt`] saying what could not be read.
fn answer<T: FromRedisValue>(value: Value, what: impl fmt::Display) -> Result<T, StoreError> {
    redis::from_redis_value(value)
        .map_err(|_| StoreError::Corrupt(format!("unexpected answer from Redis for {what}")))
}

struct Scripts {
    insert: Script,
    revoke: Script,
    revoke_all: Script,
    list: Script,
    record_use: Script,
}

// Field names in these scripts must match the `F_*` constants below.
static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    // KEYS: the token's hash, its owner's listed set, its owner's set of its kind when it
    // is not listed (sessions, exchanged tokens). ARGV: id, created_at ms or '' for a
    // record that is not to be listed, '1' for a live record of an unlisted kind or '',
    // then field, value, field, value...
    insert: Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then
            return 0
        end
        redis.call('HSET', KEYS[1], unpack(ARGV, 4))
        if ARGV[2] ~= '' then
            redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
        end
        if ARGV[3] ~= '' then
            redis.call('SADD', KEYS[3], ARGV[1])
        end
        return 1
        ",
    ),
    // KEYS: the token's hash. ARGV: the owner-set key prefix, id, revoked_at ms, the
    // sessions-set key prefix, the exchanged-set key prefix.
    revoke: Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 0
            or redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then
            return 0
        end
        -- Revocation first: should the owner be unreadable, the token is still refused.
        redis.call('HSET', KEYS[1], 'revoked_at', ARGV[3])
        local owner = redis.call('HGET', KEYS[1], 'owner')
        if owner then
            redis.call('ZREM', ARGV[1] .. owner, ARGV[2])
            redis.call('SREM', ARGV[4] .. owner, ARGV[2])
            redis.call('SREM', ARGV[5] .. owner, ARGV[2])
        end
        return 1
        ",
    ),
    // KEYS: the owner's set of live ids of the kind (sorted for standard tokens).
    // ARGV: the token key prefix, owner, kind, revoked_at ms, 'sorted' or 'set', the id
    // to keep or ''.
    // Revokes each that is still the owner's, of the kind and live; returns their ids.
    revoke_all: Script::new(
        r"
        local ids
        if ARGV[5] == 'sorted' then
            ids = redis.call('ZRANGE', KEYS[1], 0, -1)
        else
            ids = redis.call('SMEMBERS', KEYS[1])
        end
        local revoked = {}
        for _, id in ipairs(ids) do
          -- Redis runs Lua 5.1: no goto, so the one to keep is skipped by this test.
          if id ~= ARGV[6] then
            local key = ARGV[1] .. id
            local fields = redis.call('HMGET', key, 'owner', 'kind', 'revoked_at')
            if fields[1] == ARGV[2] and fields[2] == ARGV[3] and not fields[3] then
                redis.call('HSET', key, 'revoked_at', ARGV[4])
                revoked[#revoked + 1] = id
            end
            if fields[1] == ARGV[2] and fields[2] == ARGV[3] then
                if ARGV[5] == 'sorted' then
                    redis.call('ZREM', KEYS[1], id)
                else
                    redis.call('SREM', KEYS[1], id)
                end
            end
          end
        end
        return revoked
        ",
    ),
    // KEYS: the owner's live set. ARGV: the token key prefix, 'asc' or 'desc', the first
    // and last rank (a page without a cursor), how many (a page from a cursor), and the
    // cursor's score and id, or '' and ''. One script, so that the total and the page are
    // one snapshot.
    list: Script::new(
        r"
        local asc = ARGV[2] == 'asc'
        local ids
        if ARGV[6] == '' then
            if asc then
                ids = redis.call('ZRANGE', KEYS[1], ARGV[3], ARGV[4])
            else
                ids = redis.call('ZREVRANGE', KEYS[1], ARGV[3], ARGV[4])
            end
        else
            -- Members in byte order, as the set orders equal scores (Lua's own comparison
            -- follows the server's locale).
            local function before(a, b)
                for i = 1, math.max(#a, #b) do
                    local x, y = a:byte(i) or -1, b:byte(i) or -1
                    if x ~= y then
                        return x < y
                    end
                end
                return false
            end
            local count, score, cursor = tonumber(ARGV[5]), ARGV[6], ARGV[7]
            ids = {}
            -- The cursor's own time first (the ids past the cursor's), then the times past it.
            local ties
            if asc then
                ties = redis.call('ZRANGEBYSCORE', KEYS[1], score, score)
            else
                ties = redis.call('ZREVRANGEBYSCORE', KEYS[1], score, score)
            end
            for _, id in ipairs(ties) do
                local follows
                if asc then follows = before(cursor, id) else follows = before(id, cursor) end
                if follows and #ids < count then
                    ids[#ids + 1] = id
                end
            end
            if #ids < count then
                local rest
                if asc then
                    rest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. score, '+inf',
                        'LIMIT', 0, count - #ids)
                else
                    rest = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. score, '-inf',
                        'LIMIT', 0, count - #ids)
                end
                for _, id in ipairs(rest) do
                    ids[#ids + 1] = id
                end
            end
        end
        local hashes = {}
        for i, id in ipairs(ids) do
            hashes[i] = redis.call('HGETALL', ARGV[1] .. id)
        end
        return {redis.call('ZCARD', KEYS[1]), ids, hashes}
        ",
    ),
    // KEYS: token hashes. ARGV: the matching last-use times in ms.
    record_use: Script::new(
        r"
        for i, key in ipairs(KEYS) do
            if redis.call('EXISTS', key) == 1 then
                local current = redis.call('HGET', key, 'last_used_at')
                -- An unreadable time is left alone for `get` to report, not papered over.
                local known = current and tonumber(current)
                if not current or (known and known < tonumber(ARGV[i])) then
                    redis.call('HSET', key, 'last_used_at', ARGV[i])
                end
            end
        end
        return 0
        ",
    ),
});

/// Most uses recorded by one script call: long batches would hold up the server.
const USES_PER_CALL: usize = 256;

const F_ID: &str = "id";
const F_OWNER: &str = "owner";
const F_DIGEST: &str = "digest";
const F_GRANTS: &str = "grants";
const F_KIND: &str = "kind";
const F_SECOND_FACTOR: &str = "second_factor";
const F_CIDR: &str = "cidr";
const F_CREATED_AT: &str = "created_at";
const F_EXPIRES_AT: &str = "expires_at";
const F_REVOKED_AT: &str = "revoked_at";
const F_NAME: &str = "name";
const F_DESCRIPTION: &str = "description";
const F_LAST_USED_AT: &str = "last_used_at";

const STANDARD: &str = "standard";
const SESSION: &str = "session";
const EXCHANGED: &str = "exchanged";
const ENFORCED: &str = "enforced";
const BYPASSED: &str = "bypassed";

/// The hash fields of a record; `None` fields are left out.
fn encode(record: &TokenRecord) -> Result<Vec<(&'static str, String)>, StoreError> {
    // Values added to tokengate later are refused rather than stored as others.
    let cannot_keep = |what: &str| {
        StoreError::Corrupt(format!(
            "token {}: {what} this store cannot keep",
            record.id
        ))
    };
    let kind = match record.kind {
        TokenKind::Standard => STANDARD,
        TokenKind::Session => SESSION,
        TokenKind::Exchanged => EXCHANGED,
        _ => return Err(cannot_keep("a kind")),
    };
    let second_factor = match record.second_factor {
        SecondFactor::Enforced => ENFORCED,
        SecondFactor::Bypassed => BYPASSED,
        _ => return Err(cannot_keep("a second-factor setting")),
    };
    // Grants that would read back as others (tokengate refuses to make them) stay out.
    let grants = record.grants.to_string();
    if grants.parse::<Grants>().as_ref() != Ok(&record.grants) {
        return Err(cannot_keep("a grant pattern"));
    }
    let mut fields = vec![
        (F_ID, record.id.to_string()),
        (F_OWNER, record.owner.clone()),
        (F_DIGEST, record.digest.to_hex()),
        (F_GRANTS, grants),
        (F_KIND, kind.to_owned()),
        (F_SECOND_FACTOR, second_factor.to_owned()),
        (F_CIDR, record.cidr.to_strings().join(",")),
        (F_CREATED_AT, millis(record.created_at).to_string()),
    ];
    let ms = |at: Option<SystemTime>| at.map(|at| millis(at).to_string());
    let optional = [
        (F_EXPIRES_AT, ms(record.expires_at)),
        (F_REVOKED_AT, ms(record.revoked_at)),
        (F_NAME, record.name.clone()),
        (F_DESCRIPTION, record.description.clone()),
        (F_LAST_USED_AT, ms(record.last_used_at)),
    ];
    fields.extend(
        optional
            .into_iter()
            .filter_map(|(field, value)| value.map(|value| (field, value))),
    );
    Ok(fields)
}

/// A token's hash as read back. Errors name the token and the field, never a value: the
/// digest must not reach logs.
struct Fields {
    id: TokenId,
    map: Hash,
}

/// A hash's fields and values as Redis returns them: bytes, checked when read.
type Hash = HashMap<Vec<u8>, Vec<u8>>;

impl Fields {
    fn corrupt(&self, problem: &str, field: &str) -> StoreError {
        StoreError::Corrupt(format!("token {}: {problem} {field}", self.id))
    }

    fn text(&self, field: &str) -> Result<Option<&str>, StoreError> {
        self.map
            .get(field.as_bytes())
            .map(|bytes| std::str::from_utf8(bytes).map_err(|_| self.corrupt("bad", field)))
            .transpose()
    }

    fn required(&self, field: &str) -> Result<&str, StoreError> {
        self.text(field)?
            .ok_or_else(|| self.corrupt("missing", field))
    }

    fn time(&self, field: &str) -> Result<Option<SystemTime>, StoreError> {
        self.text(field)?
            .map(|text| {
                text.parse()
                    .ok()
                    .and_then(time)
                    .ok_or_else(|| self.corrupt("bad", field))
            })
            .transpose()
    }

    fn into_record(self) -> Result<TokenRecord, StoreError> {
        if self.required(F_ID)? != self.id.as_str() {
            return Err(self.corrupt("bad", F_ID));
        }
        let digest = TokenDigest::from_hex(self.required(F_DIGEST)?)
            .map_err(|_| self.corrupt("bad", F_DIGEST))?;
        let grants: Grants = self
            .required(F_GRANTS)?
            .parse()
            .map_err(|_| self.corrupt("bad", F_GRANTS))?;
        let kind = match self.required(F_KIND)? {
            STANDARD => TokenKind::Standard,
            SESSION => TokenKind::Session,
            EXCHANGED => TokenKind::Exchanged,
            _ => return Err(self.corrupt("bad", F_KIND)),
        };
        let second_factor = match self.required(F_SECOND_FACTOR)? {
            ENFORCED => SecondFactor::Enforced,
            BYPASSED => SecondFactor::Bypassed,
            _ => return Err(self.corrupt("bad", F_SECOND_FACTOR)),
        };
        let cidr = match self.required(F_CIDR)? {
            "" => CidrList::any(),
            list => CidrList::parse(list.split(',')).map_err(|_| self.corrupt("bad", F_CIDR))?,
        };
        let created_at = self
            .time(F_CREATED_AT)?
            .ok_or_else(|| self.corrupt("missing", F_CREATED_AT))?;
        let mut record = TokenRecord::new(self.id, self.required(F_OWNER)?, digest, created_at);
        record.grants = grants;
        record.kind = kind;
        record.second_factor = second_factor;
        record.cidr = cidr;
        record.expires_at = self.time(F_EXPIRES_AT)?;
        record.revoked_at = self.time(F_REVOKED_AT)?;
        record.name = self.text(F_NAME)?.map(str::to_owned);
        record.description = self.text(F_DESCRIPTION)?.map(str::to_owned);
        record.last_used_at = self.time(F_LAST_USED_AT)?;
        Ok(record)
    }
}

/// Milliseconds since the Unix epoch, negative before it, saturating far out.
fn millis(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

/// The instant `millis` milliseconds from the Unix epoch, if the platform can hold it.
fn time(millis: i64) -> Option<SystemTime> {
    let offset = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    }
}

/// Whether listings show the record: a standard token, not revoked.
fn listed(record: &TokenRecord) -> bool {
    record.revoked_at.is_none() && record.kind == TokenKind::Standard
}

impl TokenStore for RedisStore {
    async fn get(&self, id: TokenId) -> Result<Option<TokenRecord>, StoreError> {
        let key = self.token_key(id);
        let mut connection = self.connection.clone();
        let value: Value = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .map_err(|error| failure(error, &key))?;
        let map: Hash = answer(value, &key)?;
        if map.is_empty() {
            return Ok(None);
        }
        Fields { id, map }.into_record().map(Some)
    }

    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        let fields = encode(&record)?;
        let key = self.token_key(record.id);
        let mut script = SCRIPTS.insert.prepare_invoke();
        script
            .key(&key)
            .key(self.owner_key(&record.owner))
            .key(
                self.unlisted_key(&record.owner, record.kind)
                    .unwrap_or_else(|| self.sessions_key(&record.owner)),
            )
            .arg(record.id.as_str());
        if listed(&record) {
            script.arg(millis(record.created_at));
        } else {
            script.arg("");
        }
        let live_unlisted =
            record.revoked_at.is_none() && self.unlisted_key(&record.owner, record.kind).is_some();
        script.arg(if live_unlisted { "1" } else { "" });
        for (field, value) in fields {
            script.arg(field).arg(value);
        }
        let inserted: i64 = answer(self.run(&script, &key).await?, &key)?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Duplicate(record.id))
        }
    }

    async fn list(&self, owner: &str, page: Page) -> Result<RecordPage, StoreError> {
        let key = self.owner_key(owner);
        // One more than the page holds, to tell whether another follows.
        let count = page.effective_limit() + 1;
        let first = i64::try_from(page.offset()).unwrap_or(i64::MAX);
        let last = first.saturating_add(count as i64 - 1);
        let order = match page.order() {
            Order::OldestFirst => "asc",
            Order::NewestFirst => "desc",
        };
        let (score, cursor) = match page.cursor() {
            Some(cursor) => (
                millis(cursor.created_at()).to_string(),
                cursor.id().to_string(),
            ),
            None => (String::new(), String::new()),
        };
        let mut script = SCRIPTS.list.prepare_invoke();
        script
            .key(&key)
            .arg(self.token_prefix())
            .arg(order)
            .arg(first)
            .arg(last)
            .arg(count)
            .arg(score)
            .arg(cursor);
        let (total, ids, hashes): (u64, Vec<Vec<u8>>, Vec<Hash>) =
            answer(self.run(&script, &key).await?, &key)?;
        if ids.len() != hashes.len() {
            return Err(StoreError::Corrupt(format!(
                "unexpected answer from Redis for {key}"
            )));
        }
        let mut records = Vec::with_capacity(ids.len());
        for (id, map) in ids.into_iter().zip(hashes) {
            let id = std::str::from_utf8(&id)
                .ok()
                .and_then(|id| id.parse::<TokenId>().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("{key} holds a bad token id")))?;
            if map.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "token {id}: listed in {key} but not stored"
                )));
            }
            let record = Fields { id, map }.into_record()?;
            // Guards against one owner's set leading to another owner's tokens.
            if record.owner != owner || !listed(&record) {
                return Err(StoreError::Corrupt(format!(
                    "token {id}: in {key} but not a listed token of that owner"
                )));
            }
            records.push(record);
        }
        Ok(RecordPage::from_lookahead(&page, records, total))
    }

    async fn revoke(&self, id: TokenId, at: SystemTime) -> Result<bool, StoreError> {
        let key = self.token_key(id);
        let mut script = SCRIPTS.revoke.prepare_invoke();
        script
            .key(&key)
            .arg(self.owner_prefix())
            .arg(id.as_str())
            .arg(millis(at))
            .arg(self.sessions_prefix())
            .arg(self.exchanged_prefix());
        let revoked: i64 = answer(self.run(&script, &key).await?, &key)?;
        Ok(revoked == 1)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        kind: TokenKind,
        except: Option<TokenId>,
        at: SystemTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        let (key, set, kind) = match kind {
            TokenKind::Standard => (self.owner_key(owner), "sorted", STANDARD),
            TokenKind::Session => (self.sessions_key(owner), "set", SESSION),
            TokenKind::Exchanged => (self.exchanged_key(owner), "set", EXCHANGED),
            // `insert` refuses kinds it does not know: none is stored.
            _ => return Ok(Vec::new()),
        };
        let mut script = SCRIPTS.revoke_all.prepare_invoke();
        script
            .key(&key)
            .arg(self.token_prefix())
            .arg(owner)
            .arg(kind)
            .arg(millis(at))
            .arg(set)
            .arg(except.map(|id| id.to_string()).unwrap_or_default());
        let ids: Vec<Vec<u8>> = answer(self.run(&script, &key).await?, &key)?;
        ids.into_iter()
            .map(|id| {
                std::str::from_utf8(&id)
                    .ok()
                    .and_then(|id| id.parse::<TokenId>().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("{key} holds a bad token id")))
            })
            .collect()
    }

    async fn id_token_first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let redis_key = self.id_token_key(key);
        // At least a millisecond: PX takes no zero, and a use is always recorded.
        let remembered = until.duration_since(now).unwrap_or_default();
        let millis = u64::try_from(remembered.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut connection = self.connection.clone();
        // `OK` when set, nil when the key was there.
        let answer: Value = redis::cmd("SET")
            .arg(&redis_key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut connection)
            .await
            .map_err(|error| failure(error, "an ID token's use"))?;
        match answer {
            Value::Nil => Ok(false),
            Value::Okay => Ok(true),
            _ => Err(StoreError::Corrupt(
                "unexpected answer from Redis for an ID token's use".to_owned(),
            )),
        }
    }

    async fn record_use(&self, uses: Vec<(TokenId, SystemTime)>) -> Result<(), StoreError> {
        for batch in uses.chunks(USES_PER_CALL) {
            let mut script = SCRIPTS.record_use.prepare_invoke();
            for (id, at) in batch {
                script.key(self.token_key(*id)).arg(millis(*at));
            }
            self.run(&script, "the token keys of a batch of last uses")
                .await?;
        }
        Ok(())
    }
}

/// The store is the verifier's replay guard: every node on the server sees every use.
impl ReplayGuard for RedisStore {
    fn first_use(
        &self,
        key: &ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        TokenStore::id_token_first_use(self, key, until, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokengate::store::contract;
    use tokengate::{Grant, Permission, ResourcePattern};

    fn fields_of(record: &TokenRecord) -> Fields {
        let map = encode(record)
            .unwrap()
            .into_iter()
            .map(|(field, value)| (field.as_bytes().to_vec(), value.into_bytes()))
            .collect();
        Fields { id: record.id, map }
    }

    #[test]
    fn records_round_trip_through_fields() {
        let mut record = contract::record("zoë", contract::at(0));
        assert_eq!(fields_of(&record).into_record().unwrap(), record);
        record.grants = Grants::new([
            Grant::new(
                ResourcePattern::parse("@acme/*").unwrap(),
                Permission::ReadWrite,
            ),
            Grant::new(
                ResourcePattern::parse("left-pad").unwrap(),
                Permission::NoAccess,
            ),
            Grant::new(ResourcePattern::All, Permission::ReadOnly),
        ])
        .unwrap();
        record.kind = TokenKind::Session;
        record.second_factor = SecondFactor::Bypassed;
        record.cidr = CidrList::parse(["10.0.0.0/8", "2001:db8::/32"]).unwrap();
        record.expires_at = Some(contract::at(100));
        record.revoked_at = Some(contract::at(50));
        record.name = Some(String::new());
        record.description = Some("a, b\nc".into());
        record.last_used_at = Some(contract::at(7));
        assert_eq!(fields_of(&record).into_record().unwrap(), record);
    }

    #[test]
    fn times_round_trip_to_the_millisecond() {
        for ms in [0, 1, 1_700_000_000_123, -5_000] {
            assert_eq!(time(ms).map(millis), Some(ms));
        }
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(millis(t), 1_700_000_000_123);
    }

    #[test]
    fn bad_fields_are_named_without_their_values() {
        let record = contract::record("alice", contract::at(0));
        let digest = record.digest.to_hex();
        let cases: [(&str, &[u8], &str); 12] = [
            (F_ID, b"AAAAAAAAAAA", "bad id"),
            (F_DIGEST, b"00ff", "bad digest"),
            (F_GRANTS, b"read-write a*b", "bad grants"),
            (F_GRANTS, b"admin *", "bad grants"),
            (F_GRANTS, b"", "bad grants"),
            (F_KIND, b"admin", "bad kind"),
            (F_SECOND_FACTOR, b"maybe", "bad second_factor"),
            (F_CIDR, b"10.0.0.0/8,junk", "bad cidr"),
            (F_CREATED_AT, b"yesterday", "bad created_at"),
            (F_EXPIRES_AT, b"9223372036854775808", "bad expires_at"),
            (F_OWNER, b"\xff\xfe", "bad owner"),
            (F_NAME, b"\xc3", "bad name"),
        ];
        for (field, value, expected) in cases {
            let mut fields = fields_of(&record);
            fields.map.insert(field.as_bytes().to_vec(), value.to_vec());
            let error = fields.into_record().unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, StoreError::Corrupt(_)), "{message}");
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains(&digest), "{message}");
        }
        let required = [
            F_ID,
            F_OWNER,
            F_DIGEST,
            F_GRANTS,
            F_KIND,
            F_SECOND_FACTOR,
            F_CIDR,
            F_CREATED_AT,
        ];
        for field in required {
            let mut fields = fields_of(&record);
            fields.map.remove(field.as_bytes());
            let message = fields.into_record().unwrap_err().to_string();
            assert!(message.contains(&format!("missing {field}")), "{message}");
        }
    }

    #[test]
    fn patterns_that_would_read_back_as_others_never_reach_a_store() {
        // tokengate refuses them when the grants are made; `encode` checks again.
        for pattern in ["a*", "two words", "line\nbreak", ""] {
            let exact = ResourcePattern::Exact(pattern.into());
            assert!(
                Grants::new([Grant::new(exact, Permission::ReadOnly)]).is_err(),
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let builder = RedisStore::builder("redis://alice:hunter2@127.0.0.1:6390/3", "ns");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("127.0.0.1:6390"), "{shown}");
    }
}
