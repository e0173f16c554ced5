//! What the contract does not cover: errors for unreachable servers and damaged data,
//! recovery after an outage, namespaces, and what is at rest. The tests that need a server
//! take it from `TOKENGATE_TEST_REDIS_URL` and are skipped (saying so) without it.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis::{AsyncCommands, IntoConnectionInfo};
use tokengate::store::contract::{at, record};
use tokengate::store::{Page, StoreError, TokenStore};
use tokengate::{Action, NewToken, Tokens};
use tokengate_redis_store::RedisStore;

use support::{Fresh, Proxy};

#[tokio::test]
async fn an_unreachable_server_is_unavailable_quickly() {
    let started = Instant::now();
    let error = RedisStore::builder("redis://:hunter2@127.0.0.1:1/", "unreachable")
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "the password leaked: {shown}");
}

#[tokio::test]
async fn an_invalid_url_is_unavailable_not_a_panic() {
    let error = RedisStore::connect("http://:hunter2@example/", "x")
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}

/// Credentials the server refuses: unavailable, and the password is in no message.
#[tokio::test]
async fn refused_credentials_are_unavailable() {
    let Some(url) = support::url() else { return };
    let info = url
        .as_str()
        .into_connection_info()
        .unwrap()
        .set_redis_settings(
            redis::RedisConnectionInfo::default()
                .set_username("tokengate-test-nobody")
                .set_password("hunter2"),
        );
    let error = RedisStore::connect(info, "refused").await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains("hunter2"),
        "{error:?}"
    );
}

#[tokio::test]
async fn debug_shows_the_server_but_not_the_password() {
    let builder = RedisStore::builder("redis://ci:s3cr3t@127.0.0.1:6390/2", "tokens");
    let shown = format!("{builder:?}");
    assert!(
        shown.contains("127.0.0.1:6390") && shown.contains("tokens"),
        "{shown}"
    );
    assert!(
        shown.contains("[redacted]") && !shown.contains("s3cr3t"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_connected_store_shows_its_namespace_but_no_password() {
    let Some(url) = support::url() else { return };
    let store = support::fresh(&url).await;
    let shown = format!("{:?}", store.store);
    assert!(shown.contains(store.namespace()), "{shown}");
    let info = url.as_str().into_connection_info().unwrap();
    if let Some(password) = info.redis_settings().password() {
        assert!(!shown.contains(password), "{shown}");
    }
}

/// A corrupt field is reported as such, naming the field but not the value, by every call
/// that reads it; a key of the wrong type likewise.
#[tokio::test]
async fn damaged_data_is_corrupt_not_a_panic() {
    let Some(url) = support::url() else { return };
    let store = support::fresh(&url).await;
    let mut raw = support::raw(&url).await;
    let ns = store.namespace().to_owned();

    let damaged = record("alice", at(0));
    store.insert(damaged.clone()).await.unwrap();
    let key = format!("{ns}:token:{}", damaged.id);
    let _: () = raw.hset(&key, "grants", "admin *").await.unwrap();
    let digest = damaged.digest.to_hex();
    for error in [
        store.get(damaged.id).await.unwrap_err(),
        store.list("alice", Page::default()).await.unwrap_err(),
    ] {
        let message = error.to_string();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        assert!(message.contains("grants"), "{message}");
        assert!(
            !message.contains(&digest),
            "a digest in an error: {message}"
        );
        assert!(
            !message.contains("admin"),
            "a stored value in an error: {message}"
        );
    }
    let _: () = raw.hset(&key, "digest", "not hex").await.unwrap();
    let _: () = raw.hset(&key, "grants", "read-only *").await.unwrap();
    let error = store.get(damaged.id).await.unwrap_err();
    assert!(error.to_string().contains("digest"), "{error}");
    // Revocation never depends on the rest of the record being readable.
    assert!(store.revoke(damaged.id, at(1)).await.unwrap());
    assert_eq!(store.list("alice", Page::default()).await.unwrap().total, 0);

    let wrong_type = record("bob", at(0));
    let _: () = raw
        .set(format!("{ns}:token:{}", wrong_type.id), "a string")
        .await
        .unwrap();
    for error in [
        store.get(wrong_type.id).await.unwrap_err(),
        store.revoke(wrong_type.id, at(1)).await.unwrap_err(),
        store
            .record_use(vec![(wrong_type.id, at(2))])
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    }
    assert!(matches!(
        store.insert(wrong_type.clone()).await,
        Err(StoreError::Duplicate(_))
    ));

    let _: () = raw.set(format!("{ns}:owner:carol"), "x").await.unwrap();
    let error = store.list("carol", Page::default()).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");

    // An owner set naming a token that is not there, or another owner's.
    let bobs = record("bob", at(0));
    store.insert(bobs.clone()).await.unwrap();
    let _: () = raw
        .zadd(format!("{ns}:owner:dave"), bobs.id.as_str(), 0)
        .await
        .unwrap();
    let error = store.list("dave", Page::default()).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let _: () = raw
        .zadd(format!("{ns}:owner:erin"), "AAAAAAAAAAA", 0)
        .await
        .unwrap();
    let error = store.list("erin", Page::default()).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

/// A server that goes away makes calls fail as unavailable, within the timeouts, and the
/// same store works again once it is back.
#[tokio::test]
async fn an_outage_is_unavailable_and_the_store_recovers() {
    let Some(url) = support::url() else { return };
    let info = url.as_str().into_connection_info().unwrap();
    let target: SocketAddr = match tokio::net::lookup_host(info.addr().to_string()).await {
        Ok(mut addrs) => addrs.next().unwrap(),
        Err(_) => {
            support::skipped("the proxy needs a TCP address in TOKENGATE_TEST_REDIS_URL");
            return;
        }
    };
    let mut proxy = Proxy::start(target).await;
    let store = support::fresh_via(&url, proxy.in_front_of(info)).await;
    let kept = record("alice", at(0));
    store.insert(kept.clone()).await.unwrap();

    proxy.shut();
    let started = Instant::now();
    let error = store.get(kept.id).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let error = store.insert(record("alice", at(1))).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );

    proxy.open().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.get(kept.id).await {
            Ok(found) => {
                assert_eq!(found, Some(kept));
                break;
            }
            Err(error) if Instant::now() < deadline => {
                assert!(error.is_unavailable(), "{error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no recovery after the server came back: {error}"),
        }
    }
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let Some(url) = support::url() else { return };
    let (one, other) = (support::fresh(&url).await, support::fresh(&url).await);
    let shared = record("alice", at(0));
    one.insert(shared.clone()).await.unwrap();
    assert_eq!(other.get(shared.id).await.unwrap(), None);
    assert_eq!(other.list("alice", Page::default()).await.unwrap().total, 0);
    assert!(!other.revoke(shared.id, at(1)).await.unwrap());
    other.insert(shared.clone()).await.unwrap();
    assert!(other.revoke(shared.id, at(1)).await.unwrap());
    assert_eq!(one.get(shared.id).await.unwrap(), Some(shared));
}

/// Under `Tokens`: tokens work end to end, and Redis holds digests, never tokens.
#[tokio::test]
async fn redis_holds_digests_never_tokens() {
    let Some(url) = support::url() else { return };
    let store = support::fresh(&url).await;
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .build();
    let mut secrets = Vec::new();
    for i in 0..6 {
        let created = tokens
            .create("alice", NewToken::read_write().name(format!("token {i}")))
            .await
            .unwrap();
        let secret = created.token.expose_secret().to_owned();
        tokens
            .authenticate(&secret, None, Action::Write)
            .await
            .unwrap();
        if i % 2 == 0 {
            assert!(tokens.revoke(&secret).await.unwrap());
            assert!(
                tokens
                    .authenticate(&secret, None, Action::Read)
                    .await
                    .is_err()
            );
        }
        secrets.push(secret);
    }
    assert_eq!(
        tokens.list("alice", Page::default()).await.unwrap().total,
        3
    );

    let mut connection = support::sync_connection(&url).unwrap();
    let mut at_rest = Vec::new();
    for key in support::keys_of(&mut connection, store.namespace()).unwrap() {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut connection).unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query(&mut connection)
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut connection)
                .unwrap(),
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query(&mut connection)
                .unwrap(),
            other => panic!("unexpected key type {other}"),
        };
        at_rest.extend(key);
        values.into_iter().for_each(|value| at_rest.extend(value));
    }
    let contains = |needle: &str| {
        at_rest
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(contains("token 1"), "the test reads the real data");
    for token in &secrets {
        // The secret part: after `npm_` and the 11-character id, before the checksum.
        let secret = &token[token.len() - 28..token.len() - 6];
        assert!(!contains(token), "a full token is stored");
        assert!(!contains(secret), "a token's secret is stored");
    }
}

/// The tests' own cleanup works: a dropped store leaves no key behind.
#[tokio::test]
async fn a_dropped_test_store_leaves_no_keys() {
    let Some(url) = support::url() else { return };
    let store: Fresh = support::fresh(&url).await;
    let namespace = store.namespace().to_owned();
    store.insert(record("alice", at(0))).await.unwrap();
    let revoked = record("alice", at(1));
    store.insert(revoked.clone()).await.unwrap();
    store.revoke(revoked.id, at(2)).await.unwrap();
    let mut connection = support::sync_connection(&url).unwrap();
    assert_eq!(
        support::keys_of(&mut connection, &namespace).unwrap().len(),
        3
    );
    drop(store);
    assert!(
        support::keys_of(&mut connection, &namespace)
            .unwrap()
            .is_empty()
    );
}
