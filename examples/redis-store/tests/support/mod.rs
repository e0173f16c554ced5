//! Shared by the tests: the server named in `TOKENGATE_TEST_REDIS_URL`, stores in fresh
//! namespaces that delete their keys when dropped, and a proxy that can be cut.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use tokengate::store::{Page, RecordPage, StoreError, TokenStore};
use tokengate::{TokenId, TokenKind, TokenRecord};
use tokengate_redis_store::RedisStore;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub const URL_VAR: &str = "TOKENGATE_TEST_REDIS_URL";

/// The server's URL; `None`, after saying on stderr that the calling test is skipped, when
/// the variable is unset.
pub fn url() -> Option<String> {
    let Some(url) = std::env::var_os(URL_VAR) else {
        skipped(&format!(
            "{URL_VAR} is not set; set it to a Redis server's URL \
             (e.g. {URL_VAR}=redis://127.0.0.1:6379/) to run it"
        ));
        return None;
    };
    Some(
        url.into_string()
            .unwrap_or_else(|_| panic!("{URL_VAR} is not valid UTF-8")),
    )
}

/// Says on stderr that the calling test is skipped, and why.
pub fn skipped(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    // Straight to the process's stderr: the harness hides `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A namespace no other store, test or run uses.
pub fn fresh_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "tokengate-test:{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A [`RedisStore`] in a fresh namespace, whose keys go when the last clone does.
#[derive(Clone, Debug)]
pub struct Fresh {
    pub store: RedisStore,
    _cleanup: Arc<Cleanup>,
}

/// A store in a fresh namespace on the server at `url`; fails the test, saying why, when
/// the server cannot be reached.
pub async fn fresh(url: &str) -> Fresh {
    let info = url
        .into_connection_info()
        .unwrap_or_else(|error| panic!("{URL_VAR} is not a Redis URL: {error}"));
    fresh_via(url, info).await
}

/// As [`fresh`], but connecting through `via` (a proxy) while cleaning up through `url`.
pub async fn fresh_via(url: &str, via: ConnectionInfo) -> Fresh {
    let namespace = fresh_namespace();
    let store = RedisStore::builder(via, namespace.clone())
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_or_else(|error| {
            panic!("{URL_VAR} is set, but the Redis server there cannot be used: {error}")
        });
    Fresh {
        store,
        _cleanup: Arc::new(Cleanup {
            url: url.to_owned(),
            namespace,
        }),
    }
}

impl Fresh {
    pub fn namespace(&self) -> &str {
        self.store.namespace()
    }
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
    async fn id_token_first_use(
        &self,
        key: &tokengate::oidc::ReplayKey,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        self.store.id_token_first_use(key, until, now).await
    }
}

#[derive(Debug)]
struct Cleanup {
    url: String,
    namespace: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Best effort and never a panic: this also runs while a failed test unwinds.
        if let Err(error) = delete_namespace(&self.url, &self.namespace) {
            let _ = writeln!(
                std::io::stderr(),
                "could not delete the test keys under {}: {error}",
                self.namespace
            );
        }
    }
}

/// Every key of `namespace`, found with SCAN so that the server is not blocked.
pub fn keys_of(
    connection: &mut redis::Connection,
    namespace: &str,
) -> redis::RedisResult<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}:*"))
            .arg("COUNT")
            .arg(1000)
            .query(connection)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

// Synchronous: it runs in `Drop`, where nothing can be awaited.
pub fn delete_namespace(url: &str, namespace: &str) -> redis::RedisResult<()> {
    let mut connection = sync_connection(url)?;
    let keys = keys_of(&mut connection, namespace)?;
    for chunk in keys.chunks(500) {
        redis::cmd("DEL").arg(chunk).query::<()>(&mut connection)?;
    }
    Ok(())
}

pub fn sync_connection(url: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))
}

/// A connection of the test's own, to read and tamper with what a store wrote.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap_or_else(|error| panic!("{URL_VAR} is not a Redis URL: {error}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|error| panic!("cannot reach Redis at {URL_VAR}: {error}"))
}

/// A TCP proxy in front of the Redis server: [`Proxy::shut`] cuts every connection and
/// refuses new ones, as a server that went down; [`Proxy::open`] brings it back on the same
/// port.
pub struct Proxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    accepting: Option<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let mut proxy = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            target,
            accepting: None,
        };
        proxy.open().await;
        proxy
    }

    /// The server's connection details with the proxy's address in place of its own.
    pub fn in_front_of(&self, info: ConnectionInfo) -> ConnectionInfo {
        info.set_addr(ConnectionAddr::Tcp(
            self.addr.ip().to_string(),
            self.addr.port(),
        ))
    }

    pub fn shut(&mut self) {
        // Dropping the accept task drops its listener and the set of pipes it owns.
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }

    pub async fn open(&mut self) {
        let mut tries = 0;
        let listener = loop {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            // The aborted listener closes once the runtime gets to it: retry briefly.
            match socket.bind(self.addr).and_then(|()| socket.listen(64)) {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("the proxy cannot listen on {}: {error}", self.addr),
            }
        };
        self.addr = listener.local_addr().unwrap();
        let target = self.target;
        self.accepting = Some(tokio::spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                pipes.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shut();
    }
}
