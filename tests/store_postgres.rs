//! `PostgresStore`: the store contract, what the rows hold, and several nodes on one
//! database. Needs a server: the URL comes from `TOKENGATE_TEST_POSTGRES_URL`, and these
//! tests fail (they do not skip) when it is missing or the server cannot be reached.

#[cfg(feature = "postgres")]
mod support;

/// Says why this binary runs nothing without the feature, rather than passing silently.
#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_tests_need_the_postgres_feature() {
    // Straight to stderr, past the harness's capture (which `eprintln!` is not), so that
    // the skip is seen without `--nocapture`.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: store_postgres: these tests need `--features postgres` and a server in \
         TOKENGATE_TEST_POSTGRES_URL (see the README's Contributing section)"
    );
}

#[cfg(feature = "postgres")]
mod with_server {
    use std::net::{SocketAddr, ToSocketAddrs};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::support::proxy::Proxy;
    use bytes::Bytes;
    use http::{Request, StatusCode};
    use http_body_util::Full;
    use tokengate::store::PostgresStore;
    use tokengate::{NewToken, Reason, TokenAuthLayer, Tokens};
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    fn url() -> String {
        std::env::var("TOKENGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "TOKENGATE_TEST_POSTGRES_URL is not set. The `postgres` feature's tests need a \
                 PostgreSQL server, e.g. TOKENGATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
                 (`.ci/run` starts one and sets it)"
            )
        })
    }

    /// A schema no other test uses.
    fn fresh_schema() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!(
            "t{}_{}_{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::SeqCst)
        )
    }

    async fn store_in(schema: &str, url: &str) -> PostgresStore {
        PostgresStore::builder(url)
            .schema(schema)
            .timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap_or_else(|error| {
                panic!("cannot reach PostgreSQL at TOKENGATE_TEST_POSTGRES_URL: {error}")
            })
    }

    async fn fresh() -> PostgresStore {
        store_in(&fresh_schema(), &url()).await
    }

    tokengate::store_contract_tests!(fresh().await);

    fn manager(store: PostgresStore) -> Tokens<PostgresStore> {
        Tokens::builder(store)
            .prefix("npm")
            .unwrap()
            .cache_ttl(Duration::from_secs(3600))
            .build()
    }

    async fn sql() -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// Polls `refused` every 10 ms for up to `limit`; returns how long it took.
    async fn within<F, Fut>(limit: Duration, mut refused: F) -> Option<Duration>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < limit {
            if refused().await {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Two nodes on one schema: an ID token used through one is a replay through the
    /// other, and uses past their time are deleted.
    #[cfg(feature = "oidc")]
    #[tokio::test]
    async fn id_token_uses_are_seen_by_every_node_and_expired_ones_are_deleted() {
        use tokengate::oidc::{ReplayGuard, ReplayKey};
        let schema = fresh_schema();
        let (one, two) = (
            store_in(&schema, &url()).await,
            store_in(&schema, &url()).await,
        );
        let now = std::time::SystemTime::now();
        let key = ReplayKey::new("https://gitlab.com", "jti-9");
        let until = now + Duration::from_secs(300);
        assert!(one.first_use(&key, until, now).await.unwrap());
        assert!(
            !two.first_use(&key, until, now).await.unwrap(),
            "a replay on another node"
        );
        let later = until + Duration::from_secs(1);
        let other = ReplayKey::new("https://gitlab.com", "jti-10");
        assert!(
            two.first_use(&other, later + Duration::from_secs(300), later)
                .await
                .unwrap()
        );
        let left: i64 = sql()
            .await
            .query_one(
                &format!("SELECT COUNT(*) FROM \"{schema}\".tokengate_id_token_uses"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 1, "the expired use was deleted");
    }

    #[tokio::test]
    async fn rows_hold_digests_never_tokens() {
        let schema = fresh_schema();
        let tokens = manager(store_in(&schema, &url()).await);
        let secrets = super::support::issue_use_and_revoke(&tokens, 10).await;
        let rows = sql()
            .await
            .query(
                &format!("SELECT row_to_json(t)::text FROM \"{schema}\".tokengate_tokens t"),
                &[],
            )
            .await
            .unwrap();
        let dump: String = rows.iter().map(|row| row.get::<_, String>(0)).collect();
        assert_eq!(rows.len(), 10);
        super::support::assert_no_token_in(dump.as_bytes(), &secrets);
    }

    /// Two nodes on one database: a revoke on A is refused on B within a second, although B's
    /// cache would keep the record for an hour.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoke_on_one_node_is_refused_on_another_at_once() {
        let schema = fresh_schema();
        let node_a = manager(store_in(&schema, &url()).await);
        let node_b = manager(store_in(&schema, &url()).await);
        let created = node_a
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        let token = created.token.expose_secret().to_owned();
        node_b
            .authenticate(&token, None, tokengate::Action::Read)
            .await
            .unwrap();

        node_a.revoke(created.listing.id.as_str()).await.unwrap();
        let took = within(Duration::from_secs(1), || async {
            node_b
                .authenticate(&token, None, tokengate::Action::Read)
                .await
                .is_err()
        })
        .await;
        assert!(
            took.is_some(),
            "node B still accepts a token revoked on node A"
        );
        let refused = node_b
            .authenticate(&token, None, tokengate::Action::Read)
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Reason::Revoked);
    }

    /// Two nodes on one database and one application data set: an owner's right withdrawn
    /// and announced on A is refused on B within a second, although B would keep its
    /// answer for an hour; the token itself is not revoked, and other owners keep theirs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_owners_rights_changed_on_one_node_are_seen_on_another_at_once() {
        use super::support::rights::Writers;
        use tokengate::{Action, Resource};

        let schema = fresh_schema();
        let writers = Writers::default();
        let node = |store| {
            Tokens::builder(store)
                .prefix("npm")
                .unwrap()
                .cache_ttl(Duration::from_secs(3600))
                .owner_rights(writers.clone())
                .build()
        };
        let node_a = node(store_in(&schema, &url()).await);
        let node_b = node(store_in(&schema, &url()).await);
        let tool = Resource::new("tool");
        let mut tokens = Vec::new();
        for owner in ["alice", "bob"] {
            writers.allow(owner, "tool");
            let created = node_a.create(owner, NewToken::read_write()).await.unwrap();
            let token = created.token.expose_secret().to_owned();
            node_b
                .authenticate_on(&token, None, Action::Write, &tool)
                .await
                .unwrap();
            tokens.push(token);
        }
        let checks = writers.checks();

        writers.deny("alice", "tool");
        node_a.owner_rights_changed("alice").await.unwrap();
        let took = within(Duration::from_secs(1), || async {
            node_b
                .authenticate_on(&tokens[0], None, Action::Write, &tool)
                .await
                .is_err()
        })
        .await;
        assert!(took.is_some(), "node B still lets alice's token write");
        let refused = node_b
            .authenticate_on(&tokens[0], None, Action::Write, &tool)
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Reason::OwnerNotPermitted);
        assert!(
            node_b
                .authenticate(&tokens[0], None, Action::Read)
                .await
                .is_ok()
        );
        let before = writers.checks();
        node_b
            .authenticate_on(&tokens[1], None, Action::Write, &tool)
            .await
            .unwrap();
        assert_eq!(writers.checks(), before, "bob's answer stayed cached on B");
        assert!(before > checks);
    }

    /// Two nodes on one database: every session revoked at once on A, more of them than a
    /// change feed holds (1,024), is refused on B within a second although B cached each
    /// for an hour; the owner's other tokens are still accepted on B.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoke_all_on_one_node_is_refused_on_another_at_once() {
        use tokengate::{Action, TokenKind};

        const SESSIONS: usize = 1_200;
        let schema = fresh_schema();
        let node_a = manager(store_in(&schema, &url()).await);
        let node_b = manager(store_in(&schema, &url()).await);
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS {
            let created = node_a.create("alice", NewToken::session()).await.unwrap();
            sessions.push(created.token.expose_secret().to_owned());
        }
        let kept = node_a
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        let kept = kept.token.expose_secret().to_owned();
        for token in sessions.iter().chain([&kept]) {
            node_b
                .authenticate(token, None, Action::Read)
                .await
                .unwrap();
        }

        let revoked = node_a.revoke_all("alice", TokenKind::Session).await;
        assert_eq!(revoked.unwrap(), SESSIONS as u64);
        let took = within(Duration::from_secs(1), || async {
            for token in &sessions {
                if node_b.authenticate(token, None, Action::Read).await.is_ok() {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(took.is_some(), "node B still accepts sessions revoked on A");
        for token in &sessions {
            let refused = node_b.authenticate(token, None, Action::Read).await;
            assert_eq!(refused.unwrap_err().reason(), Reason::Revoked);
        }
        assert!(node_b.authenticate(&kept, None, Action::Read).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_whose_listener_is_killed_recovers() {
        let schema = fresh_schema();
        let node_a = manager(store_in(&schema, &url()).await);
        let store_b = store_in(&schema, &url()).await;
        let node_b = manager(store_b.clone());
        let first = node_a
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        node_b
            .authenticate(first.token.expose_secret(), None, tokengate::Action::Read)
            .await
            .unwrap();

        let old_pid = store_b.listener_pid().expect("B is listening");
        let killed: bool = sql()
            .await
            .query_one("SELECT pg_terminate_backend($1)", &[&old_pid])
            .await
            .unwrap()
            .get(0);
        assert!(killed);
        let back = within(Duration::from_secs(10), || async {
            store_b.listener_pid().is_some_and(|pid| pid != old_pid)
        })
        .await;
        assert!(back.is_some(), "B's listener did not reconnect");

        // Still honours a revoke made after the reconnection.
        let second = node_a
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        let token = second.token.expose_secret().to_owned();
        node_b
            .authenticate(&token, None, tokengate::Action::Read)
            .await
            .unwrap();
        node_a.revoke(&token).await.unwrap();
        let took = within(Duration::from_secs(1), || async {
            node_b
                .authenticate(&token, None, tokengate::Action::Read)
                .await
                .is_err()
        })
        .await;
        assert!(
            took.is_some(),
            "B missed a revoke after its listener came back"
        );
    }

    fn upstream(url: &str) -> SocketAddr {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            #[allow(unreachable_patterns)]
            other => panic!("this test needs a TCP URL, not {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        (host.as_str(), port)
            .to_socket_addrs()
            .unwrap()
            .next()
            .unwrap()
    }

    /// `url` with its host and port replaced by `addr`.
    fn through(url: &str, addr: SocketAddr) -> String {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let database = config.get_dbname().unwrap_or(user);
        format!("postgres://{user}{password}@{addr}/{database}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_means_503_until_it_is_back() {
        let proxy = Proxy::start(upstream(&url())).await;
        let store = store_in(&fresh_schema(), &through(&url(), proxy.addr)).await;
        let tokens = manager(store);
        let created = tokens
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        let auth = format!("Bearer {}", created.token.expose_secret());
        let layer = TokenAuthLayer::new(tokens.clone());
        let status = || {
            let service = ServiceBuilder::new()
                .layer(layer.clone())
                .service(service_fn(|_: Request<String>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::<Bytes>::default()))
                }));
            let request = Request::builder()
                .header("authorization", auth.clone())
                .body(String::new())
                .unwrap();
            async move { service.oneshot(request).await.unwrap().status() }
        };

        proxy.down();
        assert_eq!(status().await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            status().await,
            StatusCode::SERVICE_UNAVAILABLE,
            "not cached"
        );

        proxy.up();
        let recovered = within(Duration::from_secs(10), || async {
            status().await == StatusCode::OK
        })
        .await;
        assert!(
            recovered.is_some(),
            "still refused after the server came back"
        );
    }

    /// A node whose listening connection goes silent (no error, no close) stops serving
    /// its cache within a few heartbeats, instead of accepting for the whole cache TTL a
    /// token revoked elsewhere.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_listener_is_noticed_by_its_heartbeat() {
        let schema = fresh_schema();
        let node_a = manager(store_in(&schema, &url()).await);
        let proxy = Proxy::start(upstream(&url())).await;
        let store_b = PostgresStore::builder(&through(&url(), proxy.addr))
            .schema(&schema)
            .timeout(Duration::from_secs(1))
            .heartbeat(Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        let node_b = manager(store_b);
        let created = node_a
            .create("alice", NewToken::read_write())
            .await
            .unwrap();
        let token = created.token.expose_secret().to_owned();
        let accepted = node_b
            .authenticate(&token, None, tokengate::Action::Read)
            .await;
        assert!(
            accepted.is_ok(),
            "B knows the token and caches it for an hour"
        );

        proxy.stall();
        node_a.revoke(&token).await.unwrap();
        let refused = within(Duration::from_secs(5), || async {
            node_b
                .authenticate(&token, None, tokengate::Action::Read)
                .await
                .is_err()
        })
        .await;
        assert!(
            refused.is_some(),
            "B still accepted a revoked token with its feed silent"
        );
    }

    /// A table written by the first release (before grants existed) is migrated when a
    /// store connects, and its tokens keep exactly the access they had.
    #[tokio::test]
    async fn a_first_release_table_migrates_in_place() {
        use tokengate::{Action, Grants, Permission, SecretToken, TokenPrefix};

        let schema = fresh_schema();
        let prefix = TokenPrefix::new("npm").unwrap();
        let read_only = SecretToken::generate(&prefix).unwrap();
        let read_write = SecretToken::generate(&prefix).unwrap();
        let client = sql().await;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA \"{schema}\";
                 CREATE TABLE \"{schema}\".tokengate_tokens (
                     id TEXT PRIMARY KEY, owner TEXT NOT NULL, digest BYTEA NOT NULL,
                     access TEXT NOT NULL, cidr TEXT NOT NULL, created_at BIGINT NOT NULL,
                     expires_at BIGINT, revoked_at BIGINT, name TEXT, description TEXT,
                     last_used_at BIGINT
                 );"
            ))
            .await
            .unwrap();
        for (token, access) in [(&read_only, "read-only"), (&read_write, "read-write")] {
            client
                .execute(
                    &format!(
                        "INSERT INTO \"{schema}\".tokengate_tokens \
                         VALUES ($1, 'alice', $2, $3, '', 1700000000000, NULL, NULL, NULL, \
                         NULL, NULL)"
                    ),
                    &[
                        &token.id().as_str(),
                        &token.digest().as_bytes().to_vec(),
                        &access,
                    ],
                )
                .await
                .unwrap();
        }

        let tokens = manager(store_in(&schema, &url()).await);
        for (token, permission) in [
            (&read_only, Permission::ReadOnly),
            (&read_write, Permission::ReadWrite),
        ] {
            let secret = token.expose_secret();
            let who = tokens
                .authenticate(secret, None, Action::Read)
                .await
                .unwrap();
            assert_eq!(who.grants(), &Grants::everything(permission));
            let write = tokens.authenticate(secret, None, Action::Write).await;
            assert_eq!(write.is_ok(), permission == Permission::ReadWrite);
        }
        assert_eq!(
            tokens
                .list("alice", tokengate::store::Page::default())
                .await
                .unwrap()
                .total,
            2
        );
    }

    /// A table of the previous release (kinds, the index on owner, no count) gets the
    /// listing's index and the count of each owner's listed tokens when a store connects:
    /// its tokens are counted once, however many nodes connect, and the count follows every
    /// write, one made by plain SQL (as an older node writes) included.
    #[tokio::test]
    async fn a_previous_release_table_counts_its_tokens_when_migrated() {
        use tokengate::store::{Cursor, Order, Page, TokenStore};
        use tokengate::{SecretToken, TokenKind, TokenPrefix};

        let schema = fresh_schema();
        let table = format!("\"{schema}\".tokengate_tokens");
        let client = sql().await;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA \"{schema}\";
                 CREATE TABLE {table} (
                     id TEXT PRIMARY KEY, owner TEXT NOT NULL, digest BYTEA NOT NULL,
                     access TEXT NOT NULL, cidr TEXT NOT NULL, created_at BIGINT NOT NULL,
                     expires_at BIGINT, revoked_at BIGINT, name TEXT, description TEXT,
                     last_used_at BIGINT
                 );
                 CREATE INDEX tokengate_tokens_by_owner
                     ON {table} (owner, created_at, id) WHERE revoked_at IS NULL;
                 ALTER TABLE {table} ADD COLUMN grants TEXT;
                 ALTER TABLE {table} ADD COLUMN kind TEXT NOT NULL DEFAULT 'standard';
                 ALTER TABLE {table} ADD COLUMN second_factor TEXT NOT NULL
                     DEFAULT 'enforced';"
            ))
            .await
            .unwrap();
        let prefix = TokenPrefix::new("npm").unwrap();
        let insert = async |owner: &str, kind: &str, revoked: bool, second: i64| {
            let token = SecretToken::generate(&prefix).unwrap();
            let created = 1_700_000_000_000_i64 + second * 1_000;
            client
                .execute(
                    &format!(
                        "INSERT INTO {table} VALUES ($1, $2, $3, 'read-write', '', $4, NULL, \
                         $5, NULL, NULL, NULL, NULL, $6, 'enforced')"
                    ),
                    &[
                        &token.id().as_str(),
                        &owner,
                        &token.digest().as_bytes().to_vec(),
                        &created,
                        &revoked.then_some(created + 1),
                        &kind,
                    ],
                )
                .await
                .unwrap();
            let at = std::time::UNIX_EPOCH + Duration::from_millis(created as u64);
            Cursor::new(at, token.id())
        };
        let mut alice = Vec::new();
        for (kind, revoked, second) in [
            ("standard", false, 3),
            ("standard", false, 1),
            ("standard", false, 1),
            ("standard", true, 2),
            ("session", false, 2),
            ("exchanged", false, 2),
        ] {
            let cursor = insert("alice", kind, revoked, second).await;
            if kind == "standard" && !revoked {
                alice.push(cursor);
            }
        }
        insert("bob", "standard", false, 5).await;
        insert("carol", "standard", true, 5).await;
        alice.sort();

        let store = store_in(&schema, &url()).await;
        let other = store_in(&schema, &url()).await;
        let totals = async || {
            let mut totals = Vec::new();
            for owner in ["alice", "bob", "carol"] {
                totals.push(store.list(owner, Page::default()).await.unwrap().total);
            }
            totals
        };
        assert_eq!(totals().await, [3, 1, 0], "counted once for two nodes");
        for order in [Order::OldestFirst, Order::NewestFirst] {
            let mut seen = Vec::new();
            let mut page = Page::first(2).in_order(order);
            loop {
                let listed = other.list("alice", page).await.unwrap();
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

        // Writes through the store, and by plain SQL as an older node makes them.
        let tokens = manager(store.clone());
        let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
        tokens.create("alice", NewToken::session()).await.unwrap();
        insert("carol", "standard", false, 9).await;
        insert("carol", "session", false, 9).await;
        client
            .execute(
                &format!("UPDATE {table} SET revoked_at = 1 WHERE id = $1"),
                &[&alice[0].id().as_str()],
            )
            .await
            .unwrap();
        assert_eq!(totals().await, [3, 1, 1]);
        let revoked = other
            .revoke_all(
                "alice",
                TokenKind::Standard,
                Some(created.listing.id),
                std::time::SystemTime::now(),
            )
            .await
            .unwrap();
        assert_eq!(revoked.len(), 2);
        client
            .execute(&format!("DELETE FROM {table} WHERE owner = 'bob'"), &[])
            .await
            .unwrap();
        assert_eq!(totals().await, [1, 0, 1]);

        let indexes: Vec<String> = client
            .query(
                "SELECT indexname FROM pg_indexes WHERE schemaname = $1 \
                 AND tablename = 'tokengate_tokens' ORDER BY indexname",
                &[&schema],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(indexes, ["tokengate_tokens_live", "tokengate_tokens_pkey"]);
    }
}
