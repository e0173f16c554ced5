//! Trusted publishing against the registry binary and an OIDC issuer of the tests' own on
//! loopback: maintainers set trust policies up (`npm trust`'s routes), a CI job exchanges
//! its ID token for a token that publishes one package, and everything else is refused
//! with a message that says why.

mod support;

use serde_json::{Value, json};
use support::client::{Client, LOCAL, publish_body};
use support::issuer::{Issuer, github_claims};
use support::registry::{Registry, Reply, TfaMode, enable_2fa, loopback};

const EXCHANGE: &str = "/-/npm/v1/oidc/token/exchange/package";
/// npm's audience for a registry at http://127.0.0.1:PORT/.
const AUDIENCE: &str = "npm:127.0.0.1";

/// A registry trusting `issuer` for GitHub Actions and no GitLab, and alice, who publishes
/// `tool`.
struct World {
    client: Client,
    issuer: Issuer,
    alice: String,
    _data: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let issuer = Issuer::start(github_claims("acme/tool", "release.yml")).await;
        let data = tempfile::tempdir().unwrap();
        let flag = format!("github={}", issuer.url);
        let registry = Registry::start_with(
            "127.0.0.1:0",
            data.path(),
            &["--oidc-issuer", &flag, "--oidc-issuer", "gitlab=off"],
        )
        .await;
        let client = Client { registry };
        let alice = support::registry::add_user(client.registry.addr, "alice").await;
        let world = Self {
            client,
            issuer,
            alice,
            _data: data,
        };
        world.publish(&world.alice, "tool", "1.0.0").await;
        world
    }

    async fn publish(&self, token: &str, name: &str, version: &str) {
        let reply = self.publish_reply(token, name, version).await;
        assert!(reply.status < 300, "{}", reply.body);
    }

    async fn publish_reply(&self, token: &str, name: &str, version: &str) -> Reply {
        let path = format!("/{}", name.replace('/', "%2F"));
        let body = publish_body(name, version, json!(null));
        self.client.send("PUT", &path, Some(token), &body).await
    }

    /// `npm trust github <package> --repo <repo> --file <file> --allow-publish`.
    async fn trust(&self, token: &str, package: &str, repository: &str, file: &str) -> Reply {
        let body = json!([{ "type": "github",
            "claims": { "repository": repository, "workflow_ref": { "file": file } },
            "permissions": ["createPackage"] }]);
        self.trust_body(token, package, None, &body).await
    }

    async fn trust_body(
        &self,
        token: &str,
        package: &str,
        otp: Option<&str>,
        body: &Value,
    ) -> Reply {
        let path = format!("/-/package/{}/trust", package.replace('/', "%2F"));
        self.client
            .send_otp("POST", &path, Some(token), otp, &body.to_string())
            .await
    }

    async fn exchange(&self, package: &str, id_token: &str) -> Reply {
        self.exchange_from(LOCAL, package, id_token).await
    }

    async fn exchange_from(&self, from: std::net::IpAddr, package: &str, id_token: &str) -> Reply {
        let path = format!("{EXCHANGE}/{}", package.replace('/', "%2F"));
        self.client
            .send_from(from, "POST", &path, Some(id_token), None, "")
            .await
    }

    /// A token from the exchange for `package`, which must succeed.
    async fn exchanged(&self, package: &str) -> String {
        let reply = self
            .exchange(package, &self.issuer.mint(AUDIENCE, |_| {}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }
}

fn code_and_message(reply: &Reply) -> (String, String) {
    let body = reply.json();
    (
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_ci_job_publishes_its_package_with_an_exchanged_token_and_nothing_else() {
    let world = World::new().await;
    let added = world
        .trust(&world.alice, "tool", "acme/tool", "release.yml")
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let id = added.json()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(added.json()[0]["claims"]["repository"], "acme/tool");

    let token = world.exchanged("tool").await;
    assert!(token.starts_with("npm_"), "a token of the registry's own");
    world.publish(&token, "tool", "1.0.1").await;
    let packument = world.client.send("GET", "/tool", None, "").await.json();
    assert_eq!(
        packument["versions"]["1.0.1"]["_npmUser"]["name"], "alice",
        "it publishes as the maintainer who set the publisher up"
    );

    // Everything but publishing this package is refused.
    struct Refused {
        what: &'static str,
        method: &'static str,
        path: &'static str,
        body: Value,
        status: u16,
    }
    let cases = [
        Refused {
            what: "another package",
            method: "PUT",
            path: "/other",
            body: serde_json::from_str(&publish_body("other", "1.0.0", json!(null))).unwrap(),
            status: 403,
        },
        Refused {
            what: "a token of its own",
            method: "POST",
            path: "/-/npm/v1/tokens",
            body: json!({ "password": support::registry::PASSWORD, "packages_and_scopes_permission": "read-write" }),
            status: 403,
        },
        Refused {
            what: "a star",
            method: "PUT",
            path: "/tool",
            body: json!({ "_id": "tool", "users": { "alice": true } }),
            status: 403,
        },
        Refused {
            what: "a deprecation",
            method: "PUT",
            path: "/tool",
            body: json!({ "_id": "tool", "versions": { "1.0.0": { "deprecated": "old" } } }),
            status: 403,
        },
        Refused {
            what: "its owners",
            method: "PUT",
            path: "/tool/-rev/1",
            body: json!({ "_id": "tool", "_rev": "1", "maintainers": [{ "name": "mallory" }] }),
            status: 403,
        },
        Refused {
            what: "its access",
            method: "POST",
            path: "/-/package/tool/access",
            body: json!({ "access": "restricted" }),
            status: 403,
        },
        Refused {
            what: "a trusted publisher of its own",
            method: "POST",
            path: "/-/package/tool/trust",
            body: json!([{ "type": "github", "claims": { "repository": "evil/tool",
                "workflow_ref": { "file": "x.yml" } }, "permissions": ["createPackage"] }]),
            status: 403,
        },
    ];
    for case in cases {
        let reply = world
            .client
            .send(case.method, case.path, Some(&token), &case.body.to_string())
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.what, reply.body);
    }

    // Its dist-tags, which npm 12's `npm dist-tag` changes with an exchanged token too.
    let tagged = world
        .client
        .send(
            "PUT",
            "/-/package/tool/dist-tags/beta",
            Some(&token),
            "\"1.0.1\"",
        )
        .await;
    assert_eq!(tagged.status, 200, "{}", tagged.body);

    // The maintainer lists and revokes it; the next exchange finds none.
    let listed = world
        .client
        .send("GET", "/-/package/tool/trust", Some(&world.alice), "")
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()[0]["id"], id.as_str());
    let path = format!("/-/package/tool/trust/{id}");
    let revoked = world
        .client
        .send("DELETE", &path, Some(&world.alice), "")
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let again = world
        .client
        .send("DELETE", &path, Some(&world.alice), "")
        .await;
    assert_eq!(again.status, 404, "{}", again.body);
    let refused = world
        .exchange("tool", &world.issuer.mint(AUDIENCE, |_| {}))
        .await;
    assert_eq!(code_and_message(&refused).0, "no_matching_publisher");
}

#[tokio::test]
async fn id_tokens_that_are_not_exactly_right_are_refused_with_a_reason() {
    let world = World::new().await;
    let added = world
        .trust(&world.alice, "tool", "acme/tool", "release.yml")
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let stranger = Issuer::start(github_claims("acme/tool", "release.yml")).await;

    struct Case {
        what: &'static str,
        token: String,
        status: u16,
        code: &'static str,
        says: &'static str,
    }
    let good = || world.issuer.mint(AUDIENCE, |_| {});
    let replayed = good();
    assert_eq!(world.exchange("tool", &replayed).await.status, 201);
    let tampered = {
        let token = good();
        let (rest, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        format!("{rest}.{flipped}{}", &signature[1..])
    };
    let unsigned = |alg: &str| {
        use base64::Engine as _;
        let b64 = |v: Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let token = good();
        let claims = token.split('.').nth(1).unwrap().to_owned();
        format!(
            "{}.{claims}.{}",
            b64(json!({ "alg": alg, "kid": "test-key" })),
            if alg == "none" { "" } else { "c2lnbmF0dXJl" }
        )
    };
    let cases = [
        Case {
            what: "used before",
            token: replayed,
            status: 401,
            code: "invalid_id_token",
            says: "already used",
        },
        Case {
            what: "for another registry",
            token: world.issuer.mint("npm:registry.npmjs.org", |_| {}),
            status: 401,
            code: "invalid_id_token",
            says: "audience",
        },
        Case {
            what: "from an issuer the registry does not trust",
            token: stranger.mint(AUDIENCE, |_| {}),
            status: 401,
            code: "invalid_id_token",
            says: "issuer",
        },
        Case {
            what: "expired",
            token: world.issuer.mint(AUDIENCE, |c| {
                c["iat"] = json!(1_700_000_000);
                c["nbf"] = json!(1_700_000_000);
                c["exp"] = json!(1_700_000_300);
            }),
            status: 401,
            code: "invalid_id_token",
            says: "expired",
        },
        Case {
            what: "with a changed signature",
            token: tampered,
            status: 401,
            code: "invalid_id_token",
            says: "signature",
        },
        Case {
            what: "unsigned (alg none)",
            token: unsigned("none"),
            status: 401,
            code: "invalid_id_token",
            says: "none",
        },
        Case {
            what: "signed with a shared secret (HS256)",
            token: unsigned("HS256"),
            status: 401,
            code: "invalid_id_token",
            says: "HS256",
        },
        Case {
            what: "from another repository",
            token: world.issuer.mint(AUDIENCE, |c| {
                *c = json!({ "iss": c["iss"], "aud": c["aud"], "iat": c["iat"],
                    "exp": c["exp"], "jti": c["jti"] });
                let other = github_claims("mallory/tool", "release.yml");
                for (key, value) in other.as_object().unwrap() {
                    c[key] = value.clone();
                }
            }),
            status: 403,
            code: "no_matching_publisher",
            says: "mallory/tool",
        },
        Case {
            what: "from another workflow",
            token: world.issuer.mint(AUDIENCE, |c| {
                c["workflow_ref"] = json!("acme/tool/.github/workflows/deploy.yml@refs/heads/main");
            }),
            status: 403,
            code: "no_matching_publisher",
            says: "deploy.yml",
        },
        Case {
            what: "issued in the future",
            token: world.issuer.mint(AUDIENCE, |c| {
                let later = c["iat"].as_u64().unwrap() + 3600;
                c["iat"] = json!(later);
                c["exp"] = json!(later + 300);
            }),
            status: 401,
            code: "invalid_id_token",
            says: "issued in the future",
        },
        Case {
            what: "far larger than an ID token",
            token: world
                .issuer
                .mint(AUDIENCE, |c| c["padding"] = json!("x".repeat(20_000))),
            status: 401,
            code: "invalid_id_token",
            says: "over the limit",
        },
        Case {
            what: "garbage",
            token: "not.a.jwt".to_owned(),
            status: 401,
            code: "invalid_id_token",
            says: "",
        },
    ];
    for case in cases {
        let reply = world.exchange("tool", &case.token).await;
        let (code, message) = code_and_message(&reply);
        assert_eq!(reply.status, case.status, "{}: {}", case.what, reply.body);
        assert_eq!(code, case.code, "{}: {}", case.what, reply.body);
        assert!(
            message.to_lowercase().contains(&case.says.to_lowercase()),
            "{}: {message}",
            case.what
        );
        assert!(
            !reply.body.contains(&case.token) || case.token.len() < 20,
            "{}: the answer never repeats the token",
            case.what
        );
    }

    // A package without a matching publisher, one without any, and one that does not
    // exist are answered alike, and the answer never shows a policy.
    let private = world
        .client
        .send(
            "PUT",
            "/@alice%2Fsecret",
            Some(&world.alice),
            &publish_body("@alice/secret", "1.0.0", json!("restricted")),
        )
        .await;
    assert!(private.status < 300, "{}", private.body);
    let hidden = world
        .trust(
            &world.alice,
            "@alice/secret",
            "alice/internal-repo",
            "ship.yml",
        )
        .await;
    assert_eq!(hidden.status, 201, "{}", hidden.body);
    let mut answers = Vec::new();
    world.publish(&world.alice, "plain", "1.0.0").await;
    for package in ["@alice/secret", "plain", "@alice/missing"] {
        let reply = world.exchange(package, &good()).await;
        let message = code_and_message(&reply).1.replace(package, "<package>");
        answers.push((reply.status, message));
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
    assert_eq!(answers[0].0, 403);
    assert!(!answers[0].1.contains("internal-repo"), "{}", answers[0].1);
}

#[tokio::test]
async fn the_first_exchange_pins_the_repository_so_a_namesake_made_later_cannot_publish() {
    let world = World::new().await;
    world
        .trust(&world.alice, "tool", "acme/tool", "release.yml")
        .await;
    world.exchanged("tool").await;
    let listed = world
        .client
        .send("GET", "/-/package/tool/trust", Some(&world.alice), "")
        .await;
    assert!(
        listed.json()[0].get("pin").is_none(),
        "npm's shape, as it was sent: {}",
        listed.body
    );
    // acme/tool deleted, and made again by someone else: same name, new ids.
    let namesake = world.issuer.mint(AUDIENCE, |c| {
        c["repository_id"] = json!("99");
        c["repository_owner_id"] = json!("98");
    });
    let reply = world.exchange("tool", &namesake).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(code_and_message(&reply).0, "no_matching_publisher");
    world.exchanged("tool").await;
}

#[tokio::test]
async fn maintainers_manage_trusted_publishers_with_their_second_factor() {
    let world = World::new().await;
    let bob = support::registry::add_user(world.client.registry.addr, "bob").await;
    let good = json!([{ "type": "github",
        "claims": { "repository": "acme/tool", "workflow_ref": { "file": "release.yml" } },
        "permissions": ["createPackage"] }]);
    let read_only = world
        .client
        .token(
            &world.alice,
            json!({ "password": support::registry::PASSWORD, "readonly": true }),
        )
        .await;
    let bypassing = world
        .client
        .token(
            &world.alice,
            json!({ "password": support::registry::PASSWORD, "packages_and_scopes_permission": "read-write", "bypass_2fa": true }),
        )
        .await;

    struct Case {
        what: &'static str,
        token: String,
        package: &'static str,
        body: Value,
        status: u16,
        says: &'static str,
    }
    let policy = |claims: Value, permissions: Value| json!([{ "type": "github", "claims": claims, "permissions": permissions }]);
    let cases = [
        Case {
            what: "a token that bypasses two-factor authentication",
            token: bypassing,
            package: "tool",
            body: good.clone(),
            status: 403,
            says: "bypasses two-factor authentication",
        },
        Case {
            what: "someone who does not maintain it",
            token: bob.clone(),
            package: "tool",
            body: good.clone(),
            status: 403,
            says: "not a maintainer",
        },
        Case {
            what: "a read-only token",
            token: read_only,
            package: "tool",
            body: good.clone(),
            status: 403,
            says: "read-only",
        },
        Case {
            what: "a package that does not exist",
            token: world.alice.clone(),
            package: "missing",
            body: good.clone(),
            status: 404,
            says: "not found",
        },
        Case {
            what: "a condition the registry does not check",
            token: world.alice.clone(),
            package: "tool",
            body: policy(
                json!({ "repository": "acme/tool", "workflow_ref": { "file": "release.yml" },
                    "ref": "refs/heads/main" }),
                json!(["createPackage"]),
            ),
            status: 400,
            says: "is not a condition this registry checks",
        },
        Case {
            what: "a provider the registry does not trust",
            token: world.alice.clone(),
            package: "tool",
            body: json!([{ "type": "gitlab", "claims": { "project_path": "acme/tool",
                "ci_config_ref_uri": { "file": ".gitlab-ci.yml" } },
                "permissions": ["createPackage"] }]),
            status: 400,
            says: "--oidc-issuer gitlab=off",
        },
        Case {
            what: "not an array",
            token: world.alice.clone(),
            package: "tool",
            body: good[0].clone(),
            status: 400,
            says: "a JSON array",
        },
        Case {
            what: "eleven at once",
            token: world.alice.clone(),
            package: "tool",
            body: Value::Array(vec![good[0].clone(); 11]),
            status: 400,
            says: "1 to 10",
        },
    ];
    for case in cases {
        let reply = world
            .trust_body(&case.token, case.package, None, &case.body)
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.what, reply.body);
        assert!(
            reply.body.contains(case.says),
            "{}: {}",
            case.what,
            reply.body
        );
    }
    assert_eq!(
        world
            .client
            .send("GET", "/-/package/tool/trust", Some(&bob), "")
            .await
            .status,
        403,
        "only maintainers see them"
    );

    // Ten at most, across requests.
    let nine = Value::Array(vec![good[0].clone(); 9]);
    assert_eq!(
        world
            .trust_body(&world.alice, "tool", None, &nine)
            .await
            .status,
        201
    );
    let two = Value::Array(vec![good[0].clone(); 2]);
    let reply = world.trust_body(&world.alice, "tool", None, &two).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("has 9 trusted publishers"),
        "{}",
        reply.body
    );

    // With 2FA, each of the three asks for a code, as npm's OTP prompt expects.
    let mut last_step = None;
    let enrolled = enable_2fa(
        world.client.registry.addr,
        &world.alice,
        TfaMode::AuthOnly,
        &mut last_step,
    )
    .await;
    let asked = world.trust_body(&world.alice, "tool", None, &good).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert_eq!(asked.header("www-authenticate"), Some("OTP"));
    let listed = world
        .client
        .send("GET", "/-/package/tool/trust", Some(&world.alice), "")
        .await;
    assert_eq!(listed.status, 401, "{}", listed.body);
    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    let listed = world
        .client
        .send_otp(
            "GET",
            "/-/package/tool/trust",
            Some(&world.alice),
            Some(&code),
            "",
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let id = listed.json()[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/-/package/tool/trust/{id}");
    let revoked = world
        .client
        .send_otp("DELETE", &path, Some(&world.alice), Some(&code), "")
        .await;
    assert_eq!(revoked.status, 401, "a code is good once: {}", revoked.body);
    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    let revoked = world
        .client
        .send_otp("DELETE", &path, Some(&world.alice), Some(&code), "")
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
}

#[tokio::test]
async fn a_publisher_set_up_by_a_maintainer_who_left_publishes_nothing() {
    let world = World::new().await;
    let bob = support::registry::add_user(world.client.registry.addr, "bob").await;
    assert_eq!(
        world
            .client
            .set_owners(&world.alice, "tool", &["alice", "bob"])
            .await
            .status,
        200
    );
    world.trust(&bob, "tool", "acme/tool", "release.yml").await;
    assert_eq!(
        world
            .client
            .set_owners(&world.alice, "tool", &["alice"])
            .await
            .status,
        200
    );
    let reply = world
        .exchange("tool", &world.issuer.mint(AUDIENCE, |_| {}))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(code_and_message(&reply).0, "publisher_owner_gone");
    assert!(reply.body.contains("bob"), "{}", reply.body);
}

#[tokio::test]
async fn a_package_that_disallows_tokens_still_takes_trusted_publishing() {
    let world = World::new().await;
    let mut last_step = None;
    let enrolled = enable_2fa(
        world.client.registry.addr,
        &world.alice,
        TfaMode::AuthAndWrites,
        &mut last_step,
    )
    .await;
    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    let set = world
        .client
        .send_otp(
            "POST",
            "/-/package/tool/access",
            Some(&world.alice),
            Some(&code),
            r#"{"publish_requires_tfa":true}"#,
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    let body = json!([{ "type": "github",
        "claims": { "repository": "acme/tool", "workflow_ref": { "file": "release.yml" } },
        "permissions": ["createPackage"] }]);
    let added = world
        .trust_body(&world.alice, "tool", Some(&code), &body)
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let token = world.exchanged("tool").await;
    world.publish(&token, "tool", "1.0.1").await;
}

#[tokio::test]
async fn after_the_issuer_rotates_its_key_the_new_key_works_once_the_registry_may_refetch() {
    let world = World::new().await;
    let added = world
        .trust(&world.alice, "tool", "acme/tool", "release.yml")
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    world.exchanged("tool").await;
    assert_eq!(
        world.issuer.key_fetches(),
        1,
        "the first exchange fetches the keys"
    );

    world.issuer.rotate_key();
    let reply = world
        .exchange("tool", &world.issuer.mint(AUDIENCE, |_| {}))
        .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let (code, message) = code_and_message(&reply);
    assert_eq!(code, "invalid_id_token", "{message}");
    assert!(
        message.contains("key-2"),
        "names the unknown key id: {message}"
    );
    assert_eq!(
        world.issuer.key_fetches(),
        1,
        "an unknown key id refetches at most once a minute, so a stream of made-up ids \
         cannot make the registry hammer the issuer"
    );

    // The refetch interval is the verifier's minute; nothing shorter is configurable from
    // outside, so this test waits it out.
    tokio::time::sleep(std::time::Duration::from_secs(61)).await;
    let token = world.exchanged("tool").await;
    assert_eq!(
        world.issuer.key_fetches(),
        2,
        "the unknown key id refetched"
    );
    world.publish(&token, "tool", "1.0.1").await;
}

#[tokio::test]
async fn an_issuer_that_cannot_be_reached_is_a_503_to_try_again_and_off_is_a_404() {
    // Nothing listens on a port just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("github=http://{}", closed.local_addr().unwrap());
    drop(closed);
    let issuer = Issuer::start(github_claims("acme/tool", "release.yml")).await;
    let token = issuer.mint(AUDIENCE, |c| {
        c["iss"] = json!(down.trim_start_matches("github="))
    });
    let data = tempfile::tempdir().unwrap();
    let registry =
        Registry::start_with("127.0.0.1:0", data.path(), &["--oidc-issuer", &down]).await;
    let client = Client { registry };
    let reply = client
        .send("POST", &format!("{EXCHANGE}/tool"), Some(&token), "")
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["error"], "issuer_unavailable");
    assert!(reply.header("retry-after").is_some());

    let off = tempfile::tempdir().unwrap();
    let client = Client {
        registry: Registry::start_with("127.0.0.1:0", off.path(), &["--oidc-issuer", "none"]).await,
    };
    let reply = client
        .send("POST", &format!("{EXCHANGE}/tool"), Some(&token), "")
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.json()["error"], "trusted_publishing_off");
}

#[tokio::test]
async fn guessing_at_the_exchange_is_held_to_the_failure_limit() {
    let world = World::new().await;
    let guesser = loopback(7);
    let mut last = None;
    for _ in 0..60 {
        let reply = world.exchange_from(guesser, "tool", "not.a.jwt").await;
        last = Some(reply.status);
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_some());
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    assert_eq!(last, Some(429), "refused after 50 misses a minute");
    // Another address is not held to it.
    let reply = world
        .exchange("tool", &world.issuer.mint(AUDIENCE, |_| {}))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[tokio::test]
async fn a_publisher_allowed_to_stage_only_stages_and_cannot_publish() {
    let world = World::new().await;
    let body = json!([{ "type": "github",
        "claims": { "repository": "acme/tool", "workflow_ref": { "file": "release.yml" } },
        "permissions": ["createStagedPackage"] }]);
    let trusted = world.trust_body(&world.alice, "tool", None, &body).await;
    assert_eq!(trusted.status, 201, "{}", trusted.body);
    let token = world.exchanged("tool").await;

    let direct = world.publish_reply(&token, "tool", "1.1.0").await;
    assert_eq!(direct.status, 403, "{}", direct.body);
    assert!(
        direct.body.contains("stage the change instead"),
        "{}",
        direct.body
    );
    let staged = world
        .client
        .send(
            "POST",
            "/-/stage/package/tool",
            Some(&token),
            &publish_body("tool", "1.1.0", json!(null)),
        )
        .await;
    assert_eq!(staged.status, 201, "{}", staged.body);
    let id = staged.json()["stageId"].as_str().unwrap().to_owned();
    let view = world
        .client
        .send("GET", &format!("/-/stage/{id}"), Some(&world.alice), "")
        .await;
    assert_eq!(
        view.json()["actorType"],
        "trusted-publisher",
        "{}",
        view.body
    );
    // The CI job cannot approve what it staged; the maintainer can.
    let path = format!("/-/stage/{id}/approve");
    let by_ci = world.client.send("POST", &path, Some(&token), "").await;
    assert_eq!(by_ci.status, 403, "{}", by_ci.body);
    let approved = world
        .client
        .send("POST", &path, Some(&world.alice), "")
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}
