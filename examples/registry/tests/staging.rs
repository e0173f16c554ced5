//! Staged publishing through the HTTP API (`npm stage`'s requests, and the races and
//! refusals npm's CLI never shows): a stage-only token stages, a maintainer approves with
//! their second factor, and nothing staged is installable until then.

mod support;

use serde_json::json;
use support::client::{Client, publish_body, start};
use support::registry::{PASSWORD, Registry, TfaMode, enable_2fa};

const PACKAGE: &str = "staged-pkg";

/// A registry where alice has published `staged-pkg@1.0.0`: her client, session, and a
/// stage-only token of hers (npm 12's `read-write-stage-only`) for every package.
struct Published {
    client: Client,
    alice: String,
    stage_only: String,
    data: tempfile::TempDir,
}

impl Published {
    async fn new() -> Self {
        let (client, data) = start().await;
        Self::on(client, data).await
    }

    async fn on(client: Client, data: tempfile::TempDir) -> Self {
        let alice = client.session("alice").await;
        let body = publish_body(PACKAGE, "1.0.0", json!(null));
        let first = client
            .send("PUT", &format!("/{PACKAGE}"), Some(&alice), &body)
            .await;
        assert_eq!(first.status, 201, "{}", first.body);
        let stage_only = client
            .token(
                &alice,
                json!({
                    "password": PASSWORD,
                    "packages_all": true,
                    "packages_and_scopes_permission": "read-write-stage-only"
                }),
            )
            .await;
        Self {
            client,
            alice,
            stage_only,
            data,
        }
    }

    /// Publishes `version` directly (`npm publish`) with `token`; the reply.
    async fn publish(&self, token: &str, version: &str) -> support::registry::Reply {
        self.client
            .send(
                "PUT",
                &format!("/{PACKAGE}"),
                Some(token),
                &publish_body(PACKAGE, version, json!(null)),
            )
            .await
    }

    /// The tarball of `version` as `npm install` fetches it; the reply.
    async fn tarball(&self, version: &str) -> support::registry::Reply {
        let path = format!("/{PACKAGE}/-/{PACKAGE}-{version}.tgz");
        self.client.send("GET", &path, None, "").await
    }

    /// Stages `version` with `token`; the reply.
    async fn stage(&self, token: &str, version: &str) -> support::registry::Reply {
        self.client
            .send(
                "POST",
                &format!("/-/stage/package/{PACKAGE}"),
                Some(token),
                &publish_body(PACKAGE, version, json!(null)),
            )
            .await
    }

    /// Stages `version` with the stage-only token, which must succeed; the stage's id.
    async fn staged(&self, version: &str) -> String {
        let reply = self.stage(&self.stage_only, version).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["stageId"].as_str().unwrap().to_owned()
    }

    /// The versions the packument shows.
    async fn versions(&self) -> Vec<String> {
        let packument = self
            .client
            .send("GET", &format!("/{PACKAGE}"), None, "")
            .await;
        assert_eq!(packument.status, 200, "{}", packument.body);
        packument.json()["versions"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    async fn approve(&self, token: &str, id: &str, otp: Option<&str>) -> support::registry::Reply {
        let path = format!("/-/stage/{id}/approve");
        self.client
            .send_otp("POST", &path, Some(token), otp, "")
            .await
    }

    async fn reject(&self, token: &str, id: &str) -> support::registry::Reply {
        let path = format!("/-/stage/{id}");
        self.client.send("DELETE", &path, Some(token), "").await
    }
}

#[tokio::test]
async fn a_stage_only_token_stages_and_a_maintainer_approves() {
    let setup = Published::new().await;
    let client = &setup.client;

    let direct = setup.publish(&setup.stage_only, "1.1.0").await;
    assert_eq!(direct.status, 403, "{}", direct.body);
    assert!(
        direct.body.contains("stage the change instead"),
        "{}",
        direct.body
    );

    let id = setup.staged("1.1.0").await;
    assert_eq!(
        setup.versions().await,
        ["1.0.0"],
        "a staged version is hidden"
    );
    let tarball = setup.tarball("1.1.0").await;
    assert_eq!(tarball.status, 404, "a staged tarball is not installable");

    // The version is reserved, for a direct publish and a second stage alike.
    let over = setup.publish(&setup.alice, "1.1.0").await;
    assert_eq!(over.status, 403, "{}", over.body);
    assert!(over.body.contains(&id), "{}", over.body);
    let twice = setup.stage(&setup.alice, "1.1.0").await;
    assert_eq!(twice.status, 403, "{}", twice.body);
    assert!(twice.body.contains(&id), "{}", twice.body);

    // Listed, viewed and downloaded by the maintainer.
    let list = client
        .send("GET", "/-/stage?page=0&perPage=100", Some(&setup.alice), "")
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let listed = list.json();
    assert_eq!(listed["total"], 1);
    let item = &listed["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["packageName"], PACKAGE);
    assert_eq!(item["version"], "1.1.0");
    assert_eq!(item["tag"], "latest");
    assert_eq!(item["actor"], "alice");
    assert_eq!(item["actorType"], "user");
    let filtered = client
        .send(
            "GET",
            "/-/stage?page=0&perPage=100&package=other",
            Some(&setup.alice),
            "",
        )
        .await;
    assert_eq!(filtered.json()["total"], 0);
    let view = client
        .send("GET", &format!("/-/stage/{id}"), Some(&setup.alice), "")
        .await;
    assert_eq!(view.json()["version"], "1.1.0");
    let download = client
        .send(
            "GET",
            &format!("/-/stage/{id}/tarball"),
            Some(&setup.alice),
            "",
        )
        .await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, "hello");

    // Approval is a person's: the token that staged cannot give it.
    let by_stager = setup.approve(&setup.stage_only, &id, None).await;
    assert_eq!(by_stager.status, 403, "{}", by_stager.body);
    let approved = setup.approve(&setup.alice, &id, None).await;
    assert_eq!(approved.status, 200, "{}", approved.body);

    let packument = client
        .send("GET", &format!("/{PACKAGE}"), None, "")
        .await
        .json();
    let version = &packument["versions"]["1.1.0"];
    assert_eq!(version["_npmUser"]["name"], "alice");
    assert_eq!(version["_stagedBy"]["name"], "alice");
    assert_eq!(version["_stagedBy"]["stageId"], id.as_str());
    assert_eq!(packument["dist-tags"]["latest"], "1.1.0");
    let tarball = setup.tarball("1.1.0").await;
    assert_eq!(tarball.status, 200);
    assert_eq!(tarball.body, "hello");
    let gone = client.send("GET", "/-/stage", Some(&setup.alice), "").await;
    assert_eq!(
        gone.json()["total"],
        0,
        "an approved stage is no longer listed"
    );
    let again = setup.approve(&setup.alice, &id, None).await;
    assert_eq!(again.status, 404, "{}", again.body);

    // The audit log says who staged (the stage-only token) and who approved.
    let log = setup.data.path().join("audit.log");
    let mut events = Vec::new();
    for _ in 0..50 {
        events = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|line| line["resource"] == PACKAGE || line["event"] == "write")
            .map(|line| line["event"].as_str().unwrap().to_owned())
            .collect();
        if events.iter().any(|event| event == "stage") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(events.iter().any(|event| event == "stage"), "{events:?}");
}

#[tokio::test]
async fn only_maintainers_see_a_stage_and_others_get_404() {
    let setup = Published::new().await;
    let id = setup.staged("1.1.0").await;
    let bob = setup.client.session("bob").await;
    let listed = setup.client.send("GET", "/-/stage", Some(&bob), "").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["total"], 0);
    for path in [format!("/-/stage/{id}"), format!("/-/stage/{id}/tarball")] {
        let reply = setup.client.send("GET", &path, Some(&bob), "").await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
    }
    let approve = setup.approve(&bob, &id, None).await;
    assert_eq!(approve.status, 404, "{}", approve.body);
    let reject = setup.reject(&bob, &id).await;
    assert_eq!(reject.status, 404, "{}", reject.body);
    let anonymous = setup.client.send("GET", "/-/stage", None, "").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(setup.versions().await, ["1.0.0"]);
}

#[tokio::test]
async fn rejecting_frees_the_version() {
    let setup = Published::new().await;
    let id = setup.staged("1.1.0").await;
    let rejected = setup.reject(&setup.alice, &id).await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    let view = setup
        .client
        .send("GET", &format!("/-/stage/{id}"), Some(&setup.alice), "")
        .await;
    assert_eq!(view.status, 404);
    // Free again: staged anew, or published directly.
    let restaged = setup.staged("1.1.0").await;
    assert_ne!(restaged, id);
    assert_eq!(setup.reject(&setup.alice, &restaged).await.status, 200);
    let direct = setup.publish(&setup.alice, "1.1.0").await;
    assert_eq!(direct.status, 201, "{}", direct.body);
}

#[tokio::test]
async fn deciding_needs_the_approvers_code_and_refuses_tokens_that_bypass_it() {
    let setup = Published::new().await;
    let bypass = setup
        .client
        .token(
            &setup.alice,
            json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "bypass_2fa": true }),
        )
        .await;
    let mut last = None;
    let enrolled = enable_2fa(
        setup.client.registry.addr,
        &setup.alice,
        TfaMode::AuthOnly,
        &mut last,
    )
    .await;
    // Staging never asks for a code.
    let id = setup.staged("1.1.0").await;

    let refused = setup.approve(&bypass, &id, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("bypasses"), "{}", refused.body);
    let no_code = setup.approve(&setup.alice, &id, None).await;
    assert_eq!(no_code.status, 401, "{}", no_code.body);
    assert_eq!(no_code.header("www-authenticate"), Some("OTP"));
    let code = support::fresh_code(&enrolled.secret, &mut last).await;
    let approved = setup.approve(&setup.alice, &id, Some(&code)).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(setup.versions().await, ["1.0.0", "1.1.0"]);
}

#[tokio::test]
async fn concurrent_approve_and_reject_of_one_stage_exactly_one_wins() {
    let setup = Published::new().await;
    for round in 0..4 {
        let version = format!("1.{}.0", round + 1);
        let id = setup.staged(&version).await;
        let (approved, rejected) = tokio::join!(
            setup.approve(&setup.alice, &id, None),
            setup.reject(&setup.alice, &id)
        );
        let statuses = (approved.status, rejected.status);
        assert!(
            statuses == (200, 404) || statuses == (404, 200),
            "round {round}: {statuses:?}: {} / {}",
            approved.body,
            rejected.body
        );
        let published = setup.versions().await.contains(&version);
        assert_eq!(published, approved.status == 200, "round {round}");
    }
}

#[tokio::test]
async fn an_expired_stage_cannot_be_approved_and_frees_its_version() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        Registry::start_with("127.0.0.1:0", data.path(), &["--stage-expiry-seconds", "1"]).await;
    let setup = Published::on(Client { registry }, data).await;
    let id = setup.staged("1.1.0").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let listed = setup
        .client
        .send("GET", "/-/stage", Some(&setup.alice), "")
        .await;
    assert_eq!(listed.json()["total"], 0, "an expired stage is not listed");
    let approve = setup.approve(&setup.alice, &id, None).await;
    assert_eq!(approve.status, 404, "{}", approve.body);
    assert!(approve.body.contains("expired"), "{}", approve.body);
    assert_eq!(setup.versions().await, ["1.0.0"]);
    // The version is free again.
    setup.staged("1.1.0").await;
}

#[tokio::test]
async fn a_stage_is_checked_as_a_publish_is() {
    let setup = Published::new().await;
    struct Case {
        what: &'static str,
        path: String,
        body: String,
        status: u16,
        says: &'static str,
    }
    let cases = [
        Case {
            what: "a name in the body that is not the URL's",
            path: format!("/-/stage/package/{PACKAGE}"),
            body: publish_body("other", "1.1.0", json!(null)),
            status: 400,
            says: "does not match",
        },
        Case {
            what: "a published version",
            path: format!("/-/stage/package/{PACKAGE}"),
            body: publish_body(PACKAGE, "1.0.0", json!(null)),
            status: 403,
            says: "previously published",
        },
        Case {
            what: "a package that does not exist yet",
            path: "/-/stage/package/brand-new".to_owned(),
            body: publish_body("brand-new", "1.0.0", json!(null)),
            status: 400,
            says: "publish its first version",
        },
    ];
    for case in cases {
        let reply = setup
            .client
            .send("POST", &case.path, Some(&setup.stage_only), &case.body)
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.what, reply.body);
        assert!(
            reply.body.contains(case.says),
            "{}: {}",
            case.what,
            reply.body
        );
    }
    let bob = setup.client.session("bob").await;
    let not_theirs = setup.stage(&bob, "1.1.0").await;
    assert_eq!(not_theirs.status, 403, "{}", not_theirs.body);
}

#[tokio::test]
async fn a_package_that_requires_staging_refuses_direct_publishes() {
    let setup = Published::new().await;
    let path = format!("/-/package/{PACKAGE}/staging");
    let read = setup.client.send("GET", &path, None, "").await;
    assert_eq!(read.json()["required"], false, "{}", read.body);
    let bob = setup.client.session("bob").await;
    let by_other = setup
        .client
        .send("PUT", &path, Some(&bob), r#"{"required":true}"#)
        .await;
    assert_eq!(by_other.status, 403, "{}", by_other.body);
    let by_stager = setup
        .client
        .send(
            "PUT",
            &path,
            Some(&setup.stage_only),
            r#"{"required":true}"#,
        )
        .await;
    assert_eq!(by_stager.status, 403, "{}", by_stager.body);
    let unknown = setup
        .client
        .send(
            "PUT",
            &path,
            Some(&setup.alice),
            r#"{"required":true,"x":1}"#,
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let set = setup
        .client
        .send("PUT", &path, Some(&setup.alice), r#"{"required":true}"#)
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        setup.client.send("GET", &path, None, "").await.json()["required"],
        true
    );

    let direct = setup.publish(&setup.alice, "1.1.0").await;
    assert_eq!(direct.status, 403, "{}", direct.body);
    assert!(
        direct.body.contains("requires every release to be staged"),
        "{}",
        direct.body
    );
    let id = setup.staged("1.1.0").await;
    assert_eq!(setup.approve(&setup.alice, &id, None).await.status, 200);
    assert_eq!(setup.versions().await, ["1.0.0", "1.1.0"]);

    let unset = setup
        .client
        .send("PUT", &path, Some(&setup.alice), r#"{"required":false}"#)
        .await;
    assert_eq!(unset.status, 200, "{}", unset.body);
    assert_eq!(setup.publish(&setup.alice, "1.2.0").await.status, 201);
}
