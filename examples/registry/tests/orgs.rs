//! Organisations and teams through the registry's HTTP API, as npm's `npm org`, `npm team`
//! and `npm access` send them: roles, team access to private packages, `--orgs` tokens,
//! and that removing a member takes effect on the very next request without revoking
//! their tokens.

mod support;

use serde_json::json;
use support::client::{Client, publish_body, start};
use support::registry::{PASSWORD, Reply, TfaMode, enable_2fa};

const TOOL: &str = "/@acme%2ftool";

/// A registry where alice owns the organisation `acme` and published the private
/// `@acme/tool`, and bob, carol and dave have accounts.
struct Acme {
    client: Client,
    _data: tempfile::TempDir,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
}

impl Acme {
    async fn new() -> Self {
        let (client, data) = start().await;
        let alice = client.session("alice").await;
        let (bob, carol, dave) = (
            client.session("bob").await,
            client.session("carol").await,
            client.session("dave").await,
        );
        let made = client.send("PUT", "/-/org/acme", Some(&alice), "").await;
        assert_eq!(made.status, 201, "{}", made.body);
        let acme = Self {
            client,
            _data: data,
            alice,
            bob,
            carol,
            dave,
        };
        let published = acme.publish(&acme.alice.clone(), "1.0.0").await;
        assert_eq!(published.status, 201, "{}", published.body);
        acme
    }

    async fn publish(&self, token: &str, version: &str) -> Reply {
        let body = publish_body("@acme/tool", version, json!("restricted"));
        self.client.send("PUT", TOOL, Some(token), &body).await
    }

    async fn send(&self, method: &str, path: &str, token: &str, body: serde_json::Value) -> Reply {
        self.client
            .send(method, path, Some(token), &body.to_string())
            .await
    }

    /// alice (the owner) makes `user` a member, with `role` or npm's default.
    async fn set_member(&self, user: &str, role: Option<&str>) -> Reply {
        let mut body = json!({ "user": user });
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        self.send("PUT", "/-/org/acme/user", &self.alice, body)
            .await
    }

    /// alice (the owner) removes `user` from the organisation.
    async fn remove_member(&self, user: &str) -> Reply {
        self.send(
            "DELETE",
            "/-/org/acme/user",
            &self.alice,
            json!({ "user": user }),
        )
        .await
    }

    /// alice makes carol a member through the new team `team` alone (out of
    /// `developers`), which she gives `permissions` on @acme/tool.
    async fn carol_only_in(&self, team: &str, permissions: &str) {
        let team_path = |what: &str| format!("/-/team/acme/{team}/{what}");
        let steps = [
            (
                "PUT",
                "/-/org/acme/user".to_owned(),
                json!({ "user": "carol" }),
                200,
            ),
            (
                "DELETE",
                "/-/team/acme/developers/user".to_owned(),
                json!({ "user": "carol" }),
                204,
            ),
            (
                "PUT",
                "/-/org/acme/team".to_owned(),
                json!({ "name": team }),
                201,
            ),
            ("PUT", team_path("user"), json!({ "user": "carol" }), 201),
            (
                "PUT",
                team_path("package"),
                json!({ "package": "@acme/tool", "permissions": permissions }),
                201,
            ),
        ];
        for (method, path, body, status) in steps {
            let reply = self.send(method, &path, &self.alice, body).await;
            assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        }
    }

    async fn read(&self, token: &str) -> u16 {
        self.client.send("GET", TOOL, Some(token), "").await.status
    }
}

#[tokio::test]
async fn an_organisations_name_is_its_scope_and_never_a_users() {
    let acme = Acme::new().await;
    let taken = [
        ("an organisation's", "/-/org/acme"),
        ("a user's", "/-/org/bob"),
    ];
    for (whose, path) in taken {
        let refused = acme.client.send("PUT", path, Some(&acme.dave), "").await;
        assert_eq!(refused.status, 409, "{whose}: {}", refused.body);
        assert!(refused.body.contains("is taken"), "{}", refused.body);
    }
    // Nobody can sign up as `acme`: answered as a taken name with a wrong password is.
    let signup = acme.client.login("acme", PASSWORD).await;
    assert_eq!(signup.status, 401, "{}", signup.body);
    let bad = acme
        .client
        .send("PUT", "/-/org/Not%20A%20Scope", Some(&acme.dave), "")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    // Someone not in it cannot start packages in its scope.
    let body = publish_body("@acme/other", "1.0.0", json!("public"));
    let refused = acme
        .client
        .send("PUT", "/@acme%2fother", Some(&acme.dave), &body)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("scope @acme"), "{}", refused.body);
}

#[tokio::test]
async fn members_join_developers_which_publishes_new_packages_and_removal_stops_them() {
    let acme = Acme::new().await;
    let bob_ci = acme
        .client
        .token(
            &acme.bob,
            json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" }),
        )
        .await;
    assert_eq!(acme.read(&bob_ci).await, 404, "not a member yet");

    let set = acme.set_member("bob", None).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        set.json(),
        json!({ "org": { "name": "acme", "size": 2 }, "user": "bob", "role": "developer" })
    );
    let roster = acme
        .send("GET", "/-/org/acme/user", &acme.bob, json!({}))
        .await;
    assert_eq!(
        roster.json(),
        json!({ "alice": "owner", "bob": "developer" })
    );
    let teams = acme
        .send("GET", "/-/org/acme/team?format=cli", &acme.bob, json!({}))
        .await;
    assert_eq!(teams.json(), json!(["acme:developers"]));

    // `developers` got read-write on @acme/tool when alice published it.
    assert_eq!(acme.read(&bob_ci).await, 200);
    let published = acme.publish(&bob_ci, "1.0.1").await;
    assert_eq!(published.status, 201, "{}", published.body);

    let removed = acme.remove_member("bob").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    // The very next requests with the same token: as if @acme/tool did not exist.
    assert_eq!(acme.read(&bob_ci).await, 404);
    let refused = acme.publish(&bob_ci, "1.0.2").await;
    let body = publish_body("@acme/nothing", "1.0.2", json!("restricted"));
    let missing = acme
        .client
        .send("PUT", "/@acme%2fnothing", Some(&bob_ci), &body)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        (refused.status, &refused.body),
        (missing.status, &missing.body)
    );
    let tokens = acme
        .client
        .send("GET", "/-/npm/v1/tokens", Some(&acme.bob), "")
        .await;
    let listed = tokens.json()["objects"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        bob_ci.starts_with(&listed),
        "bob's token was not revoked: {}",
        tokens.body
    );
}

#[tokio::test]
async fn a_member_who_leaves_maintains_none_of_its_packages() {
    let acme = Acme::new().await;
    assert_eq!(acme.set_member("bob", None).await.status, 200);
    let bob_ci = acme
        .client
        .token(
            &acme.bob,
            json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" }),
        )
        .await;
    // bob starts @acme/kit, as members do, so he is its one maintainer; alice makes him one
    // of @acme/tool's too.
    const KIT: &str = "/@acme%2fkit";
    let body = publish_body("@acme/kit", "1.0.0", json!("restricted"));
    let started = acme.client.send("PUT", KIT, Some(&bob_ci), &body).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let owners = acme
        .client
        .set_owners(&acme.alice, "@acme/tool", &["alice", "bob"])
        .await;
    assert_eq!(owners.status, 200, "{}", owners.body);
    // dave is not a member: he cannot be made a maintainer of the organisation's package.
    let outsider = acme
        .client
        .set_owners(&acme.alice, "@acme/tool", &["alice", "bob", "dave"])
        .await;
    assert_eq!(outsider.status, 400, "{}", outsider.body);
    assert!(
        outsider
            .body
            .contains("dave is not a member of the organisation acme"),
        "{}",
        outsider.body
    );

    let removed = acme.remove_member("bob").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    // His token on the very next requests: neither package is his any more.
    let read = acme.client.send("GET", KIT, Some(&bob_ci), "").await;
    assert_eq!(read.status, 404, "{}", read.body);
    let body = publish_body("@acme/kit", "1.0.1", json!("restricted"));
    let refused = acme.client.send("PUT", KIT, Some(&bob_ci), &body).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(acme.read(&bob_ci).await, 404, "@acme/tool");
    let mine = acme
        .client
        .send("GET", "/-/user/bob/package", Some(&bob_ci), "")
        .await;
    assert_eq!(mine.json(), json!({}), "{}", mine.body);
    // The lists no longer name him; alice, who removed him, keeps what he alone maintained.
    for (path, left) in [(KIT, json!(["alice"])), (TOOL, json!(["alice"]))] {
        let packument = acme.client.send("GET", path, Some(&acme.alice), "").await;
        let names: Vec<_> = packument.json()["maintainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["name"].clone())
            .collect();
        assert_eq!(json!(names), left, "{path}");
    }
    let collaborators = acme
        .client
        .send(
            "GET",
            "/-/package/@acme%2fkit/collaborators",
            Some(&acme.alice),
            "",
        )
        .await;
    assert_eq!(
        collaborators.json()["bob"],
        json!(null),
        "{}",
        collaborators.body
    );
}

#[tokio::test]
async fn a_read_only_team_installs_and_cannot_publish() {
    let acme = Acme::new().await;
    let alice = &acme.alice;
    acme.carol_only_in("readers", "read-only").await;
    let carol = acme
        .client
        .token(
            &acme.carol,
            json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-only",
                    "scopes": ["@acme"] }),
        )
        .await;
    assert_eq!(acme.read(&carol).await, 200);
    let collaborators = acme
        .send(
            "GET",
            "/-/package/@acme%2ftool/collaborators",
            &carol,
            json!({}),
        )
        .await;
    assert_eq!(
        collaborators.json(),
        json!({ "alice": "read-write", "carol": "read-only" }),
        "npm access list collaborators: the maintainer, and the team's member"
    );
    // Her session may write anything she may: the gate asks what she may now.
    let session = acme.carol.clone();
    let refused = acme.publish(&session, "2.0.0").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("owner may not"), "{}", refused.body);
    let upgraded = acme
        .send(
            "PUT",
            "/-/team/acme/readers/package",
            alice,
            json!({ "package": "@acme/tool", "permissions": "read-write" }),
        )
        .await;
    assert_eq!(upgraded.status, 201, "{}", upgraded.body);
    let published = acme.publish(&session, "2.0.0").await;
    assert_eq!(
        published.status, 201,
        "on the very next request: {}",
        published.body
    );
    let listed = acme
        .send("GET", "/-/team/acme/readers/package", alice, json!({}))
        .await;
    assert_eq!(listed.json(), json!({ "@acme/tool": "read-write" }));
    let members = acme
        .send(
            "GET",
            "/-/team/acme/readers/user?format=cli",
            alice,
            json!({}),
        )
        .await;
    assert_eq!(members.json(), json!(["carol"]));

    let revoked = acme
        .send(
            "DELETE",
            "/-/team/acme/readers/package",
            alice,
            json!({ "package": "@acme/tool" }),
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_eq!(acme.read(&carol).await, 404, "on the very next request");
}

#[tokio::test]
async fn an_orgs_token_manages_members_and_nothing_about_packages() {
    let acme = Acme::new().await;
    let made_admin = acme.set_member("bob", Some("admin")).await;
    assert_eq!(made_admin.status, 200, "{}", made_admin.body);
    let orgs = acme
        .client
        .token(
            &acme.bob,
            json!({ "password": PASSWORD, "orgs": ["acme"], "orgs_permission": "read-write" }),
        )
        .await;
    let packages_only = acme
        .client
        .token(
            &acme.bob,
            json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" }),
        )
        .await;
    acme.set_member("carol", None).await;
    acme.send(
        "PUT",
        "/-/org/acme/team",
        &acme.alice,
        json!({ "name": "ops" }),
    )
    .await;

    let added = acme
        .send(
            "PUT",
            "/-/team/acme/ops/user",
            &orgs,
            json!({ "user": "carol" }),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let refused = acme.publish(&orgs, "1.0.1").await;
    assert_eq!(
        refused.status, 403,
        "an --orgs token publishes nothing: {}",
        refused.body
    );

    let refused = acme
        .send(
            "DELETE",
            "/-/team/acme/ops/user",
            &packages_only,
            json!({ "user": "carol" }),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("--orgs acme"), "{}", refused.body);
}

#[tokio::test]
async fn roles_decide_who_changes_what() {
    let acme = Acme::new().await;
    acme.set_member("bob", None).await;
    struct Case {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        body: serde_json::Value,
    }
    let by_a_developer = [
        Case {
            name: "remove an owner",
            method: "DELETE",
            path: "/-/org/acme/user",
            body: json!({ "user": "alice" }),
        },
        Case {
            name: "make themselves an owner",
            method: "PUT",
            path: "/-/org/acme/user",
            body: json!({ "user": "bob", "role": "owner" }),
        },
        Case {
            name: "create a team",
            method: "PUT",
            path: "/-/org/acme/team",
            body: json!({ "name": "mine" }),
        },
        Case {
            name: "change what developers get on new packages",
            method: "PATCH",
            path: "/-/org/acme",
            body: json!({ "developers_on_new_packages": "none" }),
        },
        Case {
            name: "remove the organisation",
            method: "DELETE",
            path: "/-/org/acme",
            body: json!({}),
        },
    ];
    for case in by_a_developer {
        let refused = acme
            .send(case.method, case.path, &acme.bob, case.body)
            .await;
        assert_eq!(refused.status, 403, "{}: {}", case.name, refused.body);
        assert!(
            refused.body.contains("you are a developer"),
            "{}",
            refused.body
        );
    }
    let last = acme.remove_member("alice").await;
    assert_eq!(last.status, 400, "the last owner stays: {}", last.body);
    let developers = acme
        .send("DELETE", "/-/team/acme/developers", &acme.alice, json!({}))
        .await;
    assert_eq!(developers.status, 400, "{}", developers.body);
}

#[tokio::test]
async fn a_new_team_is_refused_with_what_is_wrong_with_it() {
    let acme = Acme::new().await;
    struct Case {
        name: &'static str,
        body: serde_json::Value,
        status: u16,
        says: &'static str,
    }
    let long = "x".repeat(257);
    let cases = [
        Case {
            name: "not a name npm accepts",
            body: json!({ "name": "two words" }),
            status: 400,
            says: "cannot be a team's name",
        },
        Case {
            name: "a description past the bound",
            body: json!({ "name": "readers", "description": long }),
            status: 400,
            says: "at most 256 characters",
        },
        Case {
            name: "a field npm does not send",
            body: json!({ "name": "readers", "permissions": "read-write" }),
            status: 400,
            says: "permissions",
        },
        Case {
            name: "every organisation's team",
            body: json!({ "name": "developers" }),
            status: 409,
            says: "acme:developers exists already",
        },
    ];
    for case in cases {
        let reply = acme
            .send("PUT", "/-/org/acme/team", &acme.alice, case.body)
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.body);
        reply.assert_says(case.status, case.says);
    }
}

#[tokio::test]
async fn adding_someone_tells_outsiders_nothing_about_whether_they_exist() {
    let acme = Acme::new().await;
    struct Case {
        name: &'static str,
        path: &'static str,
    }
    let cases = [
        Case {
            name: "npm org set",
            path: "/-/org/acme/user",
        },
        Case {
            name: "npm team add",
            path: "/-/team/acme/developers/user",
        },
    ];
    for case in cases {
        let mut answers = Vec::new();
        for user in ["carol", "nobody-at-all"] {
            let reply = acme
                .send("PUT", case.path, &acme.dave, json!({ "user": user }))
                .await;
            answers.push((reply.status, reply.body));
        }
        assert_eq!(answers[0].0, 404, "{}: {:?}", case.name, answers[0]);
        assert_eq!(answers[0], answers[1], "{}", case.name);
    }
}

#[tokio::test]
async fn owners_remove_an_organisation_once_its_scope_is_empty() {
    let acme = Acme::new().await;
    let made = acme.set_member("bob", Some("admin")).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let by_an_admin = acme
        .send("DELETE", "/-/org/acme", &acme.bob, json!({}))
        .await;
    by_an_admin.assert_says(403, "you are an admin");
    let packages_only = acme
        .client
        .token(
            &acme.alice,
            json!({ "password": PASSWORD, "packages_all": true, "packages_and_scopes_permission": "read-write" }),
        )
        .await;
    let without_orgs = acme
        .send("DELETE", "/-/org/acme", &packages_only, json!({}))
        .await;
    without_orgs.assert_says(403, "--orgs acme");

    let with_packages = acme
        .send("DELETE", "/-/org/acme", &acme.alice, json!({}))
        .await;
    with_packages.assert_says(409, "has packages (1)");
    assert_eq!(acme.read(&acme.bob).await, 200, "nothing was removed");

    let rev = acme
        .client
        .send("GET", TOOL, Some(&acme.alice), "")
        .await
        .json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let unpublished = acme
        .client
        .send(
            "DELETE",
            &format!("{TOOL}/-rev/{rev}"),
            Some(&acme.alice),
            "",
        )
        .await;
    assert_eq!(unpublished.status, 200, "{}", unpublished.body);
    let removed = acme
        .send("DELETE", "/-/org/acme", &acme.alice, json!({}))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    for token in [&acme.alice, &acme.bob] {
        let gone = acme.send("GET", "/-/org/acme/user", token, json!({})).await;
        assert_eq!(gone.status, 404, "{}", gone.body);
    }
    // The name, and so the scope, is free for anyone.
    let again = acme
        .client
        .send("PUT", "/-/org/acme", Some(&acme.dave), "")
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[tokio::test]
async fn developers_get_on_new_packages_what_the_organisation_says() {
    let acme = Acme::new().await;
    acme.set_member("bob", None).await;
    let shown = acme.send("GET", "/-/org/acme", &acme.bob, json!({})).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.json()["developers_on_new_packages"], "read-write");
    assert_eq!(
        acme.send("GET", "/-/org/acme", &acme.dave, json!({}))
            .await
            .status,
        404,
        "outsiders do not see it"
    );

    struct Refused {
        name: &'static str,
        body: serde_json::Value,
        says: &'static str,
    }
    let refused = [
        Refused {
            name: "an unknown setting",
            body: json!({ "developers_on_new_packages": "none", "visibility": "public" }),
            says: "visibility",
        },
        Refused {
            name: "an unknown choice",
            body: json!({ "developers_on_new_packages": "no-access" }),
            says: "no-access\\\" is not one of read-write, read-only, none",
        },
        Refused {
            name: "nothing to change",
            body: json!({}),
            says: "nothing to change",
        },
    ];
    for case in refused {
        let reply = acme
            .send("PATCH", "/-/org/acme", &acme.alice, case.body)
            .await;
        assert_eq!(reply.status, 400, "{}: {}", case.name, reply.body);
        reply.assert_says(400, case.says);
    }

    struct Choice {
        setting: &'static str,
        package: &'static str,
        bob_reads: u16,
        bob_publishes: u16,
    }
    let choices = [
        Choice {
            setting: "none",
            package: "@acme/nothing-for-developers",
            bob_reads: 404,
            bob_publishes: 403,
        },
        Choice {
            setting: "read-only",
            package: "@acme/read-for-developers",
            bob_reads: 200,
            bob_publishes: 403,
        },
        Choice {
            setting: "read-write",
            package: "@acme/write-for-developers",
            bob_reads: 200,
            bob_publishes: 201,
        },
    ];
    for choice in choices {
        let set = acme
            .send(
                "PATCH",
                "/-/org/acme",
                &acme.alice,
                json!({ "developers_on_new_packages": choice.setting }),
            )
            .await;
        assert_eq!(set.status, 200, "{}", set.body);
        assert_eq!(set.json()["developers_on_new_packages"], choice.setting);
        let path = format!("/{}", choice.package.replace('/', "%2f"));
        let first = publish_body(choice.package, "1.0.0", json!("restricted"));
        let published = acme
            .client
            .send("PUT", &path, Some(&acme.alice), &first)
            .await;
        assert_eq!(published.status, 201, "{}", published.body);
        let read = acme.client.send("GET", &path, Some(&acme.bob), "").await;
        assert_eq!(
            read.status, choice.bob_reads,
            "{}: {}",
            choice.setting, read.body
        );
        let next = publish_body(choice.package, "1.0.1", json!("restricted"));
        let by_bob = acme.client.send("PUT", &path, Some(&acme.bob), &next).await;
        assert_eq!(
            by_bob.status, choice.bob_publishes,
            "{}: {}",
            choice.setting, by_bob.body
        );
    }
    // Packages published before a change keep what developers had.
    assert_eq!(acme.read(&acme.bob).await, 200);
}

#[tokio::test]
async fn outsiders_cannot_tell_that_the_organisation_has_private_packages() {
    let acme = Acme::new().await;
    let dave = &acme.dave;
    let missing = acme
        .client
        .send("GET", "/@acme%2fnothing", Some(dave), "")
        .await;
    let hidden = acme.client.send("GET", TOOL, Some(dave), "").await;
    assert_eq!(hidden.status, 404);
    assert_eq!(
        hidden.body.replace("tool", "nothing"),
        missing.body,
        "the same 404 as for a package that does not exist"
    );
    // Anonymously too, and for a user's name: npm's `npm access list packages <user>`
    // asks for the organisation first and falls back to the user on a 404.
    for path in ["/-/org/acme/package", "/-/org/alice/package"] {
        let refused = acme.client.send("GET", path, None, "").await;
        assert_eq!(refused.status, 404, "{path}: {}", refused.body);
    }
    for path in [
        "/-/org/acme/package",
        "/-/org/acme/user",
        "/-/org/acme/team",
    ] {
        let refused = acme.send("GET", path, dave, json!({})).await;
        assert_eq!(refused.status, 404, "{path}: {}", refused.body);
    }
    let search = acme
        .client
        .send("GET", "/-/v1/search?text=tool", Some(dave), "")
        .await;
    assert_eq!(search.json()["total"], 0, "{}", search.body);
}

#[tokio::test]
async fn with_two_factor_on_changes_ask_for_a_code_and_reads_do_not() {
    let acme = Acme::new().await;
    let mut last_step = None;
    let enrolled = enable_2fa(
        acme.client.registry.addr,
        &acme.alice,
        TfaMode::AuthOnly,
        &mut last_step,
    )
    .await;
    let body = json!({ "user": "bob" }).to_string();
    let asked = acme
        .client
        .send("PUT", "/-/org/acme/user", Some(&acme.alice), &body)
        .await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert_eq!(asked.header("www-authenticate"), Some("OTP"));
    assert!(asked.body.contains("one-time password"), "{}", asked.body);
    let roster = acme
        .send("GET", "/-/org/acme/user", &acme.alice, json!({}))
        .await;
    assert_eq!(
        roster.json(),
        json!({ "alice": "owner" }),
        "nothing was changed"
    );

    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    let done = acme
        .client
        .send_otp(
            "PUT",
            "/-/org/acme/user",
            Some(&acme.alice),
            Some(&code),
            &body,
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
}

#[tokio::test]
async fn granting_a_package_tells_outsiders_nothing_about_whether_it_exists() {
    let acme = Acme::new().await;
    let grant = |package: &str| json!({ "package": package, "permissions": "read-only" });
    let path = "/-/team/acme/developers/package";
    // carol is a developer of acme whose teams have nothing of @acme/tool.
    acme.set_member("carol", None).await;
    let revoked = acme
        .send(
            "DELETE",
            path,
            &acme.alice,
            json!({ "package": "@acme/tool" }),
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    struct Case {
        who: &'static str,
        token: Option<String>,
    }
    let cases = [
        Case {
            who: "a developer who cannot see it",
            token: Some(acme.carol.clone()),
        },
        Case {
            who: "an outsider",
            token: Some(acme.dave.clone()),
        },
        Case {
            who: "anyone anonymous",
            token: None,
        },
    ];
    for case in cases {
        let ask = |package: &'static str| {
            let body = grant(package).to_string();
            let token = case.token.clone();
            let client = &acme.client;
            async move { client.send("PUT", path, token.as_deref(), &body).await }
        };
        let (private, missing) = (ask("@acme/tool").await, ask("@acme/nothing").await);
        assert_eq!(
            (private.status, private.body.replace("tool", "nothing")),
            (missing.status, missing.body.clone()),
            "{}: the same answer for a private package as for one that does not exist",
            case.who
        );
        assert!(private.status >= 400, "{}: {}", case.who, private.body);
    }
}

#[tokio::test]
async fn a_token_that_bypasses_two_factor_cannot_create_an_organisation() {
    let acme = Acme::new().await;
    let automation = acme
        .client
        .token(
            &acme.dave,
            json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "bypass_2fa": true }),
        )
        .await;
    let refused = acme
        .client
        .send("PUT", "/-/org/daveco", Some(&automation), "")
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("two-factor"), "{}", refused.body);
    let made = acme
        .client
        .send("PUT", "/-/org/daveco", Some(&acme.dave), "")
        .await;
    assert_eq!(made.status, 201, "a session still does: {}", made.body);
}

#[tokio::test]
async fn an_organisations_name_leaves_room_for_its_packages() {
    let acme = Acme::new().await;
    struct Case {
        what: &'static str,
        name: String,
        status: u16,
    }
    // A package's name is at most 214 characters, `@` and `/` and one letter included.
    let cases = [
        Case {
            what: "the longest scope a package fits in",
            name: "a".repeat(211),
            status: 201,
        },
        Case {
            what: "a scope no package fits in",
            name: "b".repeat(212),
            status: 400,
        },
    ];
    for case in cases {
        let path = format!("/-/org/{}", case.name);
        let made = acme.client.send("PUT", &path, Some(&acme.dave), "").await;
        assert_eq!(made.status, case.status, "{}: {}", case.what, made.body);
        if case.status == 201 {
            let package = format!("@{}/x", case.name);
            let body = publish_body(&package, "1.0.0", json!("restricted"));
            let path = format!("/@{}%2fx", case.name);
            let published = acme
                .client
                .send("PUT", &path, Some(&acme.dave), &body)
                .await;
            assert_eq!(published.status, 201, "{}: {}", case.what, published.body);
        }
    }
}

#[tokio::test]
async fn an_organisation_removed_during_a_first_publish_into_its_scope_leaves_it_owned() {
    let acme = Acme::new().await;
    // The window is narrow: without the removal waiting for publishes, a few of these
    // rounds land a package in the freed scope with nobody recorded as its owner.
    for round in 0..40 {
        let org = format!("race{round}");
        let made = acme
            .client
            .send("PUT", &format!("/-/org/{org}"), Some(&acme.alice), "")
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        let set = acme
            .send(
                "PUT",
                &format!("/-/org/{org}/user"),
                &acme.alice,
                json!({ "user": "bob" }),
            )
            .await;
        assert_eq!(set.status, 200, "{}", set.body);
        let body = publish_body(&format!("@{org}/p"), "1.0.0", json!("restricted"));
        let (package, whole) = (format!("/@{org}%2fp"), format!("/-/org/{org}"));
        let (published, removed) = tokio::join!(
            acme.client.send("PUT", &package, Some(&acme.bob), &body),
            acme.client.send("DELETE", &whole, Some(&acme.alice), "")
        );
        if published.status != 201 {
            continue;
        }
        let body = publish_body(&format!("@{org}/dave"), "1.0.0", json!("public"));
        let refused = acme
            .client
            .send("PUT", &format!("/@{org}%2fdave"), Some(&acme.dave), &body)
            .await;
        assert_eq!(
            refused.status, 403,
            "round {round}: removal {}, bob's package is in @{org}, yet dave starts one: {}",
            removed.status, refused.body
        );
    }
}

#[tokio::test]
async fn an_organisation_made_during_a_first_publish_into_its_scope_is_refused_or_first() {
    let acme = Acme::new().await;
    // Narrow as the removal's race: a few rounds hit it when creation does not wait.
    for round in 0..40 {
        let org = format!("fresh{round}");
        let body = publish_body(&format!("@{org}/p"), "1.0.0", json!("public"));
        let (package, whole) = (format!("/@{org}%2fp"), format!("/-/org/{org}"));
        let (published, made) = tokio::join!(
            acme.client.send("PUT", &package, Some(&acme.dave), &body),
            acme.client.send("PUT", &whole, Some(&acme.alice), "")
        );
        assert!(
            !(published.status == 201 && made.status == 201),
            "round {round}: alice made {org} while dave, not a member, started a package \
             in its scope: {}",
            made.body
        );
    }
}

#[tokio::test]
async fn a_listed_maintainer_who_is_not_a_member_finds_nothing_of_it_in_search_or_stages() {
    // alice starts @acme/kit in a scope nobody has, with bob as a second maintainer, and
    // stages its next version; then she makes the organisation acme, without bob. The
    // list still names him, and he maintains nothing there.
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let bob = client.session("bob").await;
    const KIT: &str = "/@acme%2fkit";
    let body = publish_body("@acme/kit", "1.0.0", json!("restricted"));
    let started = client.send("PUT", KIT, Some(&alice), &body).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let owners = client
        .set_owners(&alice, "@acme/kit", &["alice", "bob"])
        .await;
    assert_eq!(owners.status, 200, "{}", owners.body);
    let body = publish_body("@acme/kit", "1.1.0", json!(null));
    let staged = client
        .send("POST", "/-/stage/package/@acme%2fkit", Some(&alice), &body)
        .await;
    assert_eq!(staged.status, 201, "{}", staged.body);
    let search = "/-/v1/search?text=kit";
    let found = client.send("GET", search, Some(&bob), "").await;
    assert_eq!(
        found.json()["total"],
        1,
        "a maintainer, before: {}",
        found.body
    );
    let stages = client.send("GET", "/-/stage", Some(&bob), "").await;
    assert_eq!(stages.json()["total"], 1, "before: {}", stages.body);

    let made = client.send("PUT", "/-/org/acme", Some(&alice), "").await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(client.send("GET", KIT, Some(&bob), "").await.status, 404);
    let found = client.send("GET", search, Some(&bob), "").await;
    assert_eq!(
        found.json(),
        json!({ "objects": [], "total": 0, "time": found.json()["time"] }),
        "npm search: {}",
        found.body
    );
    let stages = client.send("GET", "/-/stage", Some(&bob), "").await;
    assert_eq!(
        stages.json(),
        json!({ "items": [], "total": 0 }),
        "npm stage list: {}",
        stages.body
    );
    // alice, a member, still finds both.
    let found = client.send("GET", search, Some(&alice), "").await;
    assert_eq!(found.json()["total"], 1, "{}", found.body);
    let stages = client.send("GET", "/-/stage", Some(&alice), "").await;
    assert_eq!(stages.json()["total"], 1, "{}", stages.body);
}

/// The rev of the package at `path`, as `token` reads it.
async fn rev_of(client: &Client, path: &str, token: &str) -> String {
    let read = client.send("GET", path, Some(token), "").await;
    assert_eq!(read.status, 200, "{}", read.body);
    read.json()["_rev"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_package_unpublished_and_published_again_has_none_of_the_old_teams_access() {
    let acme = Acme::new().await;
    let alice = &acme.alice;
    // carol is a member through the team `old` alone, which may install @acme/tool.
    acme.carol_only_in("old", "read-write").await;
    assert_eq!(acme.read(&acme.carol).await, 200, "through the team");

    let rev = rev_of(&acme.client, TOOL, alice).await;
    let unpublished = acme
        .client
        .send("DELETE", &format!("{TOOL}/-rev/{rev}"), Some(alice), "")
        .await;
    assert_eq!(unpublished.status, 200, "{}", unpublished.body);
    let listed = acme
        .send("GET", "/-/team/acme/old/package", alice, json!({}))
        .await;
    assert_eq!(listed.json(), json!({}), "the team's access went with it");

    // A new package of the same name: the old team's grant is not its.
    let published = acme.publish(alice, "2.0.0").await;
    assert_eq!(published.status, 201, "{}", published.body);
    assert_eq!(acme.read(&acme.carol).await, 404, "the old team's access");
    let body = publish_body("@acme/tool", "2.0.1", json!(null));
    let refused = acme
        .client
        .send("PUT", TOOL, Some(&acme.carol), &body)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let listed = acme
        .send("GET", "/-/org/acme/package", alice, json!({}))
        .await;
    assert_eq!(
        listed.json(),
        json!({ "@acme/tool": "read-write" }),
        "developers only"
    );
}
