//! The tests themselves, built with the registry's `postgres` feature.

use crate::support::client::{Client, publish_body};
use crate::support::registry::{PASSWORD, Registry};
use serde_json::json;

const URL_VARIABLE: &str = "TOKENGATE_TEST_POSTGRES_URL";

/// A database of this test's own on the server, dropped when the test ends.
struct ScratchDatabase {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(server: &str) -> Self {
        let (admin, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("{URL_VARIABLE} is set, but PostgreSQL cannot be reached: {e}")
            });
        tokio::spawn(connection);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("tokengate_nodes_{}_{nanos}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        // The same server and user, this database.
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }

    async fn drop(self) {
        let _ = self
            .admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// Two registries on a scratch database and one data folder; `None` (said on stderr)
/// without a server to run on.
struct TwoNodes {
    database: ScratchDatabase,
    _shared: tempfile::TempDir,
    one: Client,
    other: Client,
}

impl TwoNodes {
    async fn start(test: &str) -> Option<Self> {
        let Ok(server) = std::env::var(URL_VARIABLE) else {
            crate::support::skipped(&format!(
                "{test}: set {URL_VARIABLE} (see the README's Contributing section)"
            ));
            return None;
        };
        let database = ScratchDatabase::create(&server).await;
        let shared = tempfile::tempdir().unwrap();
        let flags = ["--database", database.url.as_str()];
        let one = Client {
            registry: Registry::start_with("127.0.0.1:0", shared.path(), &flags).await,
        };
        let other = Client {
            registry: Registry::start_with("127.0.0.1:0", shared.path(), &flags).await,
        };
        Some(Self {
            database,
            _shared: shared,
            one,
            other,
        })
    }

    async fn stop(self) {
        self.one.registry.stop().await;
        self.other.registry.stop().await;
        self.database.drop().await;
    }
}

#[tokio::test]
async fn two_registries_on_one_database_serve_as_one() {
    let Some(nodes) = TwoNodes::start("two registries on one PostgreSQL").await else {
        return;
    };
    let (one, other) = (&nodes.one, &nodes.other);

    // A publish on one installs from the other at once.
    let alice = one.session("alice").await;
    let publish = publish_body("tool", "1.0.0", serde_json::Value::Null);
    let published = one.send("PUT", "/tool", Some(&alice), &publish).await;
    assert_eq!(published.status, 201, "{}", published.body);
    let packument = other.send("GET", "/tool", None, "").await;
    assert_eq!(packument.status, 200, "{}", packument.body);
    assert_eq!(packument.json()["dist-tags"]["latest"], "1.0.0");
    let tarball = other.send("GET", "/tool/-/tool-1.0.0.tgz", None, "").await;
    assert_eq!(tarball.bytes, b"hello");

    // A token revoked on one is refused by the other on its very next request.
    let made = one
        .create(&alice, json!({ "password": PASSWORD, "readonly": true }))
        .await
        .json();
    let token = made["token"].as_str().unwrap();
    let key = made["key"].as_str().unwrap();
    let before = other.send("GET", "/-/whoami", Some(token), "").await;
    assert_eq!(
        before.status, 200,
        "the other node knows the token (and caches it)"
    );
    let revoked = one
        .send(
            "DELETE",
            &format!("/-/npm/v1/tokens/token/{key}"),
            Some(&alice),
            "",
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let after = other.send("GET", "/-/whoami", Some(token), "").await;
    assert_eq!(after.status, 401, "{}", after.body);

    // A password changed on one ends the sessions of both (but the one that changed it).
    let on_other = other.session("alice").await;
    let change = json!({ "password": { "old": PASSWORD, "new": "a much newer password" } });
    let changed = one
        .send("POST", "/-/npm/v1/user", Some(&alice), &change.to_string())
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    for (node, name) in [(one, "the node it changed on"), (other, "the other node")] {
        let refused = node.send("GET", "/-/whoami", Some(&on_other), "").await;
        assert_eq!(refused.status, 401, "{name}: {}", refused.body);
        let login = node.login("alice", "a much newer password").await;
        assert_eq!(login.status, 201, "{name}: {}", login.body);
    }

    nodes.stop().await;
}

/// A team's access changed on one node is what the other allows on its next request,
/// though it had cached what the member's token could do (for a minute): the owner-rights
/// answers are dropped on every node.
#[tokio::test]
async fn a_team_change_on_one_node_is_applied_by_the_other_at_once() {
    let Some(nodes) = TwoNodes::start("organisations on two registries").await else {
        return;
    };
    let (one, other) = (&nodes.one, &nodes.other);
    let alice = one.session("alice").await;
    let carol = other.session("carol").await;
    let made = one.send("PUT", "/-/org/acme", Some(&alice), "").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let publish = |version: &str| publish_body("@acme/tool", version, json!("restricted"));
    let published = one
        .send("PUT", "/@acme%2ftool", Some(&alice), &publish("1.0.0"))
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let change = |path: &'static str, body: serde_json::Value| {
        let alice = alice.clone();
        async move {
            let reply = one.send("PUT", path, Some(&alice), &body.to_string()).await;
            assert!(reply.status < 300, "{path}: {}", reply.body);
        }
    };
    change("/-/org/acme/user", json!({ "user": "carol" })).await;
    let left = one
        .send(
            "DELETE",
            "/-/team/acme/developers/user",
            Some(&alice),
            &json!({ "user": "carol" }).to_string(),
        )
        .await;
    assert_eq!(left.status, 204, "{}", left.body);
    change("/-/org/acme/team", json!({ "name": "readers" })).await;
    change("/-/team/acme/readers/user", json!({ "user": "carol" })).await;
    let grant = |permissions: &str| json!({ "package": "@acme/tool", "permissions": permissions });
    change("/-/team/acme/readers/package", grant("read-only")).await;

    // The other node refuses carol's publish, and caches why.
    let refused = other
        .send("PUT", "/@acme%2ftool", Some(&carol), &publish("1.0.1"))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    change("/-/team/acme/readers/package", grant("read-write")).await;
    let mut published = None;
    for _ in 0..100 {
        let reply = other
            .send("PUT", "/@acme%2ftool", Some(&carol), &publish("1.0.1"))
            .await;
        if reply.status == 201 {
            published = Some(reply);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(published.is_some(), "the other node still refuses carol");
    nodes.stop().await;
}

/// A stage made on one node is approved on one and rejected on the other at the same time:
/// exactly one of them wins, and the package shows the version only if the approval did.
#[tokio::test]
async fn an_approve_and_a_reject_on_two_nodes_exactly_one_wins() {
    let Ok(server) = std::env::var(URL_VARIABLE) else {
        crate::support::skipped(&format!(
            "staging on two registries on one PostgreSQL: set {URL_VARIABLE}"
        ));
        return;
    };
    let database = ScratchDatabase::create(&server).await;
    let shared = tempfile::tempdir().unwrap();
    let flags = ["--database", database.url.as_str()];
    let one = Client {
        registry: Registry::start_with("127.0.0.1:0", shared.path(), &flags).await,
    };
    let other = Client {
        registry: Registry::start_with("127.0.0.1:0", shared.path(), &flags).await,
    };
    let alice = one.session("alice").await;
    let body = publish_body("raced", "1.0.0", json!(null));
    assert_eq!(
        one.send("PUT", "/raced", Some(&alice), &body).await.status,
        201
    );
    for round in 1..=4 {
        let version = format!("1.{round}.0");
        let staged = one
            .send(
                "POST",
                "/-/stage/package/raced",
                Some(&alice),
                &publish_body("raced", &version, json!(null)),
            )
            .await;
        assert_eq!(staged.status, 201, "{}", staged.body);
        let id = staged.json()["stageId"].as_str().unwrap().to_owned();
        let (approve, reject) = (format!("/-/stage/{id}/approve"), format!("/-/stage/{id}"));
        let (approved, rejected) = tokio::join!(
            one.send("POST", &approve, Some(&alice), ""),
            other.send("DELETE", &reject, Some(&alice), "")
        );
        let statuses = (approved.status, rejected.status);
        assert!(
            statuses == (200, 404) || statuses == (404, 200),
            "round {round}: {statuses:?}: {} / {}",
            approved.body,
            rejected.body
        );
        let packument = other.send("GET", "/raced", None, "").await.json();
        assert_eq!(
            packument["versions"][&version].is_object(),
            approved.status == 200,
            "round {round}"
        );
    }
    one.registry.stop().await;
    other.registry.stop().await;
    database.drop().await;
}
