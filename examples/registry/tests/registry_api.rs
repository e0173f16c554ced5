//! The example registry's HTTP API without npm: the cases npm's CLI never sends
//! (IPv6 allow-lists, older clients, hostile input) and the refusals in its wire format.

mod support;

use support::client::{Client, publish_body, start};
use support::registry::{PASSWORD, Registry, Reply, TfaMode, enable_2fa, http};

#[tokio::test]
async fn users_log_in_with_their_password_only() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    let again = client.session("alice").await;
    assert_ne!(session, again, "each login gets a new token");

    let wrong = client.login("alice", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.json()["error"]
            .as_str()
            .unwrap()
            .contains("incorrect")
    );

    let whoami = client.send("GET", "/-/whoami", Some(&session), "").await;
    assert_eq!(whoami.json()["username"], "alice");
    let anonymous = client.send("GET", "/-/whoami", None, "").await;
    assert_eq!(anonymous.status, 401);

    let stored = support::registry::database_text(_data.path());
    assert!(!stored.contains(PASSWORD), "the password is stored hashed");
    assert!(stored.contains("$argon2"));
}

#[tokio::test]
async fn token_api_speaks_npms_wire_format() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;

    let created = client
        .create(
            &session,
            serde_json::json!({
                "password": PASSWORD, "packages_and_scopes_permission": "read-write", "name": "v6", "cidr_whitelist": ["2001:db8::/32", "10.0.0.0/8"],
                "expires": 30, "bypass_2fa": true, "description": "from the API"
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    assert_eq!(
        created["cidr_whitelist"],
        serde_json::json!(["2001:db8::/32", "10.0.0.0/8"])
    );
    assert_eq!(created["readonly"], false);
    assert!(created["expires"].is_string());
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("npm_") && token.len() == 43);

    let old_client = client
        .create(
            &session,
            serde_json::json!({ "password": PASSWORD, "readonly": true }),
        )
        .await;
    assert_eq!(old_client.json()["readonly"], true);
    let npm11 = client
        .create(
            &session,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-only" }),
        )
        .await;
    assert_eq!(npm11.json()["readonly"], true);

    // Pages of 2, with npm's `urls.next`.
    let page = client
        .send(
            "GET",
            "/-/npm/v1/tokens?page=0&perPage=2",
            Some(&session),
            "",
        )
        .await
        .json();
    // Three tokens: the login session is never listed.
    assert_eq!(page["total"], 3);
    assert_eq!(page["objects"].as_array().unwrap().len(), 2);
    let next = page["urls"]["next"].as_str().unwrap().to_owned();
    let rest = client.send("GET", &next, Some(&session), "").await.json();
    assert_eq!(rest["objects"].as_array().unwrap().len(), 1);
    assert!(rest["urls"]["next"].is_null());
    let everything = format!("{page}{rest}");
    assert!(
        !everything.contains(&token[..20]),
        "listings show no secret"
    );
    let v6 = rest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page["objects"].as_array().unwrap())
        .find(|t| t["name"] == "v6")
        .unwrap()
        .clone();
    assert!(token.starts_with(v6["token"].as_str().unwrap()));
    for field in [
        "key",
        "created",
        "updated",
        "readonly",
        "cidr_whitelist",
        "expires",
        "accessed",
        "packages_all",
        "packages",
        "scopes",
        "packages_and_scopes_permission",
        "bypass_2fa",
    ] {
        assert!(v6.get(field).is_some(), "listing lacks {field}: {v6}");
    }
}

#[tokio::test]
async fn bad_token_requests_are_refused_clearly() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    let cases = [
        (
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "cidr_whitelist": ["10.0.0.300/8"] }),
            400,
            "CIDR whitelist contains invalid CIDR entry: 10.0.0.300/8",
        ),
        (
            serde_json::json!({ "password": "wrong", "packages_and_scopes_permission": "read-write" }),
            401,
            "incorrect password",
        ),
        (
            serde_json::json!({ "packages_and_scopes_permission": "read-write" }),
            400,
            "password is required",
        ),
        (
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "none" }),
            400,
            "not supported",
        ),
        (
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "expires": 0 }),
            400,
            "expires",
        ),
        (
            serde_json::json!({ "password": 7, "packages_and_scopes_permission": "read-write" }),
            400,
            "invalid request body",
        ),
        (
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "surprise": true }),
            400,
            "unknown field `surprise`",
        ),
    ];
    for (body, status, message) in cases {
        let reply = client.create(&session, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(message), "{body}: {error}");
    }
    let malformed = client
        .send("POST", "/-/npm/v1/tokens", Some(&session), "{not json")
        .await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.json()["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let listed = client
        .send("GET", "/-/npm/v1/tokens", Some(&session), "")
        .await
        .json();
    assert_eq!(
        listed["total"], 0,
        "nothing was created by a refused request (and sessions are not listed)"
    );
}

#[tokio::test]
async fn tokens_are_revoked_by_their_owner_only() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let bob = client.session("bob").await;
    let alices = client
        .create(&alice, serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" }))
        .await
        .json();
    let key = alices["key"].as_str().unwrap();
    let token = alices["token"].as_str().unwrap();

    let path = format!("/-/npm/v1/tokens/token/{key}");
    assert_eq!(
        client.send("DELETE", &path, Some(&bob), "").await.status,
        404
    );
    let whoami = client.send("GET", "/-/whoami", Some(token), "").await;
    assert_eq!(whoami.json()["username"], "alice");

    let by_token = format!("/-/npm/v1/tokens/token/{token}");
    assert_eq!(
        client
            .send("DELETE", &by_token, Some(&alice), "")
            .await
            .status,
        204
    );
    let refused = client.send("GET", "/-/whoami", Some(token), "").await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(
        client.send("DELETE", &path, Some(&alice), "").await.status,
        404
    );
    let junk = client
        .send(
            "DELETE",
            "/-/npm/v1/tokens/token/nonsense",
            Some(&alice),
            "",
        )
        .await;
    assert_eq!(junk.status, 404);
}

#[tokio::test]
async fn hostile_requests_write_nothing() {
    let (client, data) = start().await;
    let session = client.session("alice").await;
    let publish = |name: &str, attachment: &str| {
        serde_json::json!({
            "name": name,
            "versions": { "1.0.0": { "name": name, "version": "1.0.0" } },
            "dist-tags": { "latest": "1.0.0" },
            "_attachments": { attachment: { "data": "aGVsbG8=", "length": 5 } }
        })
        .to_string()
    };
    let cases: Vec<(&str, String, String)> = vec![
        (
            "/..%2f..%2fetc",
            publish("../../etc", "etc-1.0.0.tgz"),
            "invalid package name".into(),
        ),
        (
            "/left-pad",
            publish("right-pad", "right-pad-1.0.0.tgz"),
            "does not match".into(),
        ),
        (
            "/left-pad",
            publish("left-pad", "../../x.tgz"),
            "attachment must be named".into(),
        ),
        (
            "/left-pad",
            publish("left-pad", "left-pad-1.0.0.tgz").replace("aGVsbG8=", "!!"),
            "base64".into(),
        ),
        (
            "/left-pad",
            publish("left-pad", "left-pad-1.0.0.tgz").replace("\"length\":5", "\"length\":6"),
            "length".into(),
        ),
        ("/left-pad", "{".into(), "not valid JSON".into()),
        (
            "/Left-Pad",
            publish("Left-Pad", "Left-Pad-1.0.0.tgz"),
            "invalid package name".into(),
        ),
    ];
    for (path, body, message) in &cases {
        let reply = client.send("PUT", path, Some(&session), body).await;
        assert!(
            (400..500).contains(&reply.status),
            "{path}: {}",
            reply.status
        );
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(message.as_str()), "{path}: {error}");
    }
    assert!(
        !data.path().join("packages").exists(),
        "a refused publish wrote something"
    );

    let huge = format!(
        "{{\"name\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(70 * 1024 * 1024)
    );
    let reply = client.send("PUT", "/left-pad", Some(&session), &huge).await;
    assert_eq!(reply.status, 413);
    let reply = client
        .send(
            "POST",
            "/-/npm/v1/tokens",
            Some(&session),
            &"x".repeat(100 * 1024),
        )
        .await;
    assert_eq!(reply.status, 413);

    for path in [
        "/..%2f..%2fetc%2fpasswd",
        "/left-pad/-/..%2f..%2fusers%2falice.json",
        "/@demo/hello/-/..%2fpackument.json",
        "/%2e%2e/-/x.tgz",
    ] {
        let reply = client.send("GET", path, None, "").await;
        assert!(
            matches!(reply.status, 400 | 404),
            "{path}: {}",
            reply.status
        );
        assert!(!reply.body.contains("argon2"), "{path}");
    }

    // A good publish, then the same version again.
    let good = publish("left-pad", "left-pad-1.0.0.tgz");
    assert_eq!(
        client
            .send("PUT", "/left-pad", Some(&session), &good)
            .await
            .status,
        201
    );
    let again = client.send("PUT", "/left-pad", Some(&session), &good).await;
    assert_eq!(again.status, 403);
    assert!(
        again.json()["error"]
            .as_str()
            .unwrap()
            .contains("previously published")
    );
    let bob = client.session("bob").await;
    let theirs = client
        .send(
            "PUT",
            "/left-pad",
            Some(&bob),
            &good.replace("1.0.0", "1.0.1"),
        )
        .await;
    assert_eq!(theirs.status, 403);
    let packument = client.send("GET", "/left-pad", None, "").await.json();
    let tarball = packument["versions"]["1.0.0"]["dist"]["tarball"]
        .as_str()
        .unwrap();
    let path = tarball
        .split_once(&client.registry.addr.to_string())
        .unwrap()
        .1;
    let reply = client.send("GET", path, None, "").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "hello"));
}

/// Percent-encodes everything but unreserved characters, as npm encodes a name in a path.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn package_and_user_names() {
    let (client, _data) = start().await;
    for good in ["left-pad", "a", "@scope/pkg", "x.y_z~1", "9"] {
        let reply = client
            .send("GET", &format!("/{}", encode(good)), None, "")
            .await;
        assert_eq!(reply.status, 404, "{good}: {}", reply.body);
        assert!(reply.body.contains("not found"), "{good}");
    }
    let too_long = "a".repeat(215);
    for bad in [
        "Left",
        ".hidden",
        "_x",
        "../etc",
        "a/b",
        "@scope",
        "@/x",
        "@scope/",
        "@a/../b",
        "@a/b/c",
        "a b",
        "a\\b",
        too_long.as_str(),
    ] {
        let reply = client
            .send("GET", &format!("/{}", encode(bad)), None, "")
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body.contains("invalid package name"), "{bad}");
    }

    for good in ["alice", "b", "bob-2", "x.y_z", "9lives"] {
        assert_eq!(client.login(good, PASSWORD).await.status, 201, "{good}");
    }
    for bad in ["Alice", ".hidden", "_x", "a b", "ünï"] {
        let body = serde_json::json!({ "name": bad, "password": PASSWORD }).to_string();
        let path = format!("/-/user/org.couchdb.user:{}", encode(bad));
        let reply = client.send("PUT", &path, None, &body).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body.contains("invalid user name"), "{bad}");
    }
}

#[tokio::test]
async fn scopes_belong_to_their_user_or_first_publisher() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let bob = client.session("bob").await;
    let public = serde_json::json!("public");
    let publish = |token: &str, name: &str, version: &str| {
        let path = format!("/{}", encode(name));
        let body = publish_body(name, version, public.clone());
        let token = token.to_owned();
        let client = &client;
        async move { client.send("PUT", &path, Some(&token), &body).await }
    };

    // `@alice` is alice's because she is alice, before she ever published into it.
    let refused = publish(&bob, "@alice/anything", "1.0.0").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("scope @alice"), "{}", refused.body);
    assert_eq!(publish(&alice, "@alice/a", "1.0.0").await.status, 201);

    // `@tools` is nobody's name: its first publisher owns it from then on.
    assert_eq!(publish(&bob, "@tools/lint", "1.0.0").await.status, 201);
    let refused = publish(&alice, "@tools/other", "1.0.0").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(publish(&bob, "@tools/fmt", "1.0.0").await.status, 201);

    // Nobody can then sign up as `tools` and take the scope over: the name is taken, and
    // answered as a taken user name with a wrong password is.
    let taken = client.login("tools", PASSWORD).await;
    let wrong = client.login("alice", "not alice's password").await;
    assert_eq!((taken.status, &taken.body), (wrong.status, &wrong.body));
    assert_eq!(taken.status, 401, "{}", taken.body);
}

#[tokio::test]
async fn private_packages_answer_only_to_maintainers_who_may_read_them() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let bob = client.session("bob").await;
    struct Publish {
        name: &'static str,
        access: serde_json::Value,
        status: u16,
        public: bool,
    }
    let publishes = [
        Publish {
            name: "@alice/secret",
            access: "restricted".into(),
            status: 201,
            public: false,
        },
        // npm sends null without `--access`; a new scoped package is then private.
        Publish {
            name: "@alice/quiet",
            access: serde_json::Value::Null,
            status: 201,
            public: false,
        },
        Publish {
            name: "@alice/open",
            access: "public".into(),
            status: 201,
            public: true,
        },
        Publish {
            name: "plain",
            access: serde_json::Value::Null,
            status: 201,
            public: true,
        },
        Publish {
            name: "unscoped",
            access: "restricted".into(),
            status: 400,
            public: false,
        },
        Publish {
            name: "@alice/odd",
            access: "secret".into(),
            status: 400,
            public: false,
        },
    ];
    for publish in &publishes {
        let body = publish_body(publish.name, "1.0.0", publish.access.clone());
        let path = format!("/{}", encode(publish.name));
        let reply = client.send("PUT", &path, Some(&alice), &body).await;
        assert_eq!(
            reply.status, publish.status,
            "{}: {}",
            publish.name, reply.body
        );
    }
    let reader = client
        .token(
            &alice,
            serde_json::json!({ "password": PASSWORD, "readonly": true }),
        )
        .await;
    let other_package = client.token(&alice, serde_json::json!({ "password": PASSWORD, "packages": ["@alice/open"], "packages_and_scopes_permission": "read-only" })).await;

    // Every route that names the package, for each kind of caller.
    let routes = |name: &str| {
        let encoded = encode(name);
        let base = name.rsplit('/').next().unwrap().to_owned();
        vec![
            format!("/{encoded}"),
            format!("/{name}"),
            format!("/{name}/-/{base}-1.0.0.tgz"),
            format!("/{encoded}/-/{base}-1.0.0.tgz"),
            format!("/-/package/{encoded}/visibility"),
            format!("/-/package/{encoded}/collaborators"),
        ]
    };
    struct Caller<'a> {
        label: &'a str,
        token: Option<&'a str>,
        sees_private: bool,
    }
    let callers = [
        Caller {
            label: "anonymous",
            token: None,
            sees_private: false,
        },
        Caller {
            label: "bob",
            token: Some(&bob),
            sees_private: false,
        },
        Caller {
            label: "another package's token",
            token: Some(&other_package),
            sees_private: false,
        },
        Caller {
            label: "alice's session",
            token: Some(&alice),
            sees_private: true,
        },
        Caller {
            label: "alice's read-only token",
            token: Some(&reader),
            sees_private: true,
        },
    ];
    for publish in publishes.iter().filter(|p| p.status == 201) {
        for caller in &callers {
            for path in routes(publish.name) {
                let reply = client.send("GET", &path, caller.token, "").await;
                let visible = publish.public || caller.sees_private;
                let expected = if visible { 200 } else { 404 };
                assert_eq!(
                    reply.status, expected,
                    "{} {path}: {}",
                    caller.label, reply.body
                );
                if !visible {
                    assert!(
                        reply.body.contains("not found"),
                        "the same answer as for nothing at all: {}",
                        reply.body
                    );
                }
            }
        }
    }
    let missing = client.send("GET", "/%40alice%2Fnothing", None, "").await;
    let hidden = client.send("GET", "/%40alice%2Fsecret", None, "").await;
    assert_eq!(missing.body.replace("nothing", "secret"), hidden.body);

    // `npm access list packages alice`: only what the caller may see.
    let listing = |token: Option<&str>| {
        let token = token.map(str::to_owned);
        let client = &client;
        async move {
            client
                .send("GET", "/-/user/alice/package", token.as_deref(), "")
                .await
                .json()
        }
    };
    let mine = listing(Some(&alice)).await;
    assert_eq!(mine.as_object().unwrap().len(), 4, "{mine}");
    let theirs = listing(Some(&bob)).await;
    assert_eq!(
        theirs,
        serde_json::json!({ "@alice/open": "read-write", "plain": "read-write" })
    );

    // A later publish keeps the visibility; asking for the other one is refused.
    let next = publish_body("@alice/secret", "1.0.1", serde_json::Value::Null);
    let reply = client
        .send("PUT", "/%40alice%2Fsecret", Some(&alice), &next)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let flip = publish_body("@alice/secret", "1.0.2", "public".into());
    let reply = client
        .send("PUT", "/%40alice%2Fsecret", Some(&alice), &flip)
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("npm access set status=public"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn access_and_owner_changes_are_writes_by_maintainers() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let bob = client.session("bob").await;
    let body = publish_body("@alice/secret", "1.0.0", "restricted".into());
    assert_eq!(
        client
            .send("PUT", "/%40alice%2Fsecret", Some(&alice), &body)
            .await
            .status,
        201
    );
    let reader = client
        .token(
            &alice,
            serde_json::json!({ "password": PASSWORD, "readonly": true }),
        )
        .await;
    let make_public = r#"{"access":"public"}"#;
    let access = "/-/package/%40alice%2Fsecret/access";
    struct Case<'a> {
        label: &'a str,
        token: &'a str,
        status: u16,
    }
    let cases = [
        Case {
            label: "bob, who cannot see it",
            token: &bob,
            status: 404,
        },
        Case {
            label: "alice's read-only token",
            token: &reader,
            status: 403,
        },
    ];
    for case in cases {
        let reply = client
            .send("POST", access, Some(case.token), make_public)
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.label, reply.body);
        let owners = serde_json::json!({
            "_id": "@alice/secret", "_rev": "1-tokengate",
            "maintainers": [{ "name": "alice" }, { "name": "bob" }]
        });
        let reply = client
            .send(
                "PUT",
                "/%40alice%2Fsecret/-rev/1-tokengate",
                Some(case.token),
                &owners.to_string(),
            )
            .await;
        assert_eq!(
            reply.status, case.status,
            "{} owners: {}",
            case.label, reply.body
        );
    }
    assert_eq!(
        client
            .send("GET", "/%40alice%2Fsecret", Some(&bob), "")
            .await
            .status,
        404
    );

    // A 2FA rule a client would only send by mistake is refused, not guessed at.
    let odd = r#"{"automation_token_overrides_tfa":true}"#;
    let reply = client.send("POST", access, Some(&alice), odd).await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // Alice adds bob: he reads and publishes; she removes him: both stop at once.
    let owners = |names: &'static [&'static str]| client.set_owners(&alice, "@alice/secret", names);
    let reply = owners(&["alice", "bob"]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        client
            .send("GET", "/%40alice%2Fsecret", Some(&bob), "")
            .await
            .status,
        200
    );
    let by_bob = publish_body("@alice/secret", "1.1.0", serde_json::Value::Null);
    assert_eq!(
        client
            .send("PUT", "/%40alice%2Fsecret", Some(&bob), &by_bob)
            .await
            .status,
        201
    );
    let reply = owners(&["alice"]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        client
            .send("GET", "/%40alice%2Fsecret", Some(&bob), "")
            .await
            .status,
        404
    );
    let again = publish_body("@alice/secret", "1.2.0", serde_json::Value::Null);
    assert_eq!(
        client
            .send("PUT", "/%40alice%2Fsecret", Some(&bob), &again)
            .await
            .status,
        403
    );
    let nobody = owners(&[]).await;
    assert_eq!(nobody.status, 400);
    let stranger = owners(&["alice", "mallory"]).await;
    assert_eq!(stranger.status, 400);

    // Alice makes it public: everyone reads it.
    let reply = client.send("POST", access, Some(&alice), make_public).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        client
            .send("GET", "/%40alice%2Fsecret", None, "")
            .await
            .status,
        200
    );
    let status = client
        .send("GET", "/-/package/%40alice%2Fsecret/visibility", None, "")
        .await;
    assert_eq!(status.json(), serde_json::json!({ "public": true }));
}

#[tokio::test]
async fn the_audit_log_records_changes_and_refusals_without_secrets() {
    let (client, data) = start().await;
    let session = client.session("alice").await;
    let created = client
        .create(
            &session,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-only" }),
        )
        .await
        .json();
    let read_only = created["token"].as_str().unwrap().to_owned();
    let key = created["key"].as_str().unwrap().to_owned();
    let publish = publish_body("audited", "1.0.0", serde_json::json!("public"));
    let refused = client
        .send("PUT", "/audited", Some(&read_only), &publish)
        .await;
    assert_eq!(refused.status, 403);
    let published = client
        .send("PUT", "/audited", Some(&session), &publish)
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let path = format!("/-/npm/v1/tokens/token/{key}");
    assert_eq!(
        client
            .send("DELETE", &path, Some(&session), "")
            .await
            .status,
        204
    );

    let log_path = data.path().join("audit.log");
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .collect();
        if lines.len() >= 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "token created", // the login session
            "write",         // POST /-/npm/v1/tokens with it
            "token created",
            "refused", // the read-only token's publish
            "write",   // the session's publish
            "write",   // DELETE of the read-only token
            "token revoked"
        ],
        "{lines:?}"
    );
    assert_eq!(lines[3]["reason"], "ReadOnly");
    assert_eq!(lines[3]["path"], "/audited");
    assert_eq!(lines[6]["token_id"], key.as_str());
    assert_eq!(lines[6]["owner"], "alice");
    let text = std::fs::read_to_string(&log_path).unwrap();
    for token in [&session, &read_only] {
        assert!(
            !text.contains(&token[15..]),
            "a token's secret is in the audit log"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the audit log is its owner's alone");
    }
}

#[tokio::test]
async fn granular_tokens_write_only_where_their_grants_say() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let create = |body: serde_json::Value| {
        let mut body = body;
        body["password"] = PASSWORD.into();
        client.create(&alice, body)
    };
    let one_package = create(serde_json::json!({
        "packages": ["@alice/a"], "packages_and_scopes_permission": "read-write", "name": "a only"
    }))
    .await;
    assert_eq!(one_package.status, 201, "{}", one_package.body);
    let one_package = one_package.json();
    assert_eq!(one_package["packages"], serde_json::json!(["@alice/a"]));
    assert_eq!(one_package["packages_all"], false);
    let scope = create(serde_json::json!({
        "scopes": ["@alice"], "packages_and_scopes_permission": "read-write", "bypass_2fa": true
    }))
    .await
    .json();
    assert_eq!(scope["scopes"], serde_json::json!(["@alice"]));
    assert_eq!(scope["bypass_2fa"], true);
    let reader = create(serde_json::json!({
        "packages_all": true, "packages_and_scopes_permission": "read-only"
    }))
    .await
    .json();
    assert_eq!(reader["readonly"], true);

    struct Case {
        token: &'static str,
        package: &'static str,
        path: &'static str,
        status: u16,
        says: &'static str,
    }
    let cases = [
        Case {
            token: "one",
            package: "@alice/a",
            path: "/@alice%2fa",
            status: 201,
            says: "",
        },
        Case {
            token: "one",
            package: "@alice/b",
            path: "/@alice%2fb",
            status: 403,
            says: "no access to @alice/b",
        },
        // The same package however its name is encoded in the path.
        Case {
            token: "one",
            package: "@alice/b",
            path: "/%40alice%2Fb",
            status: 403,
            says: "no access to @alice/b",
        },
        Case {
            token: "one",
            package: "@alice/b",
            path: "/@alice/b",
            status: 403,
            says: "no access to @alice/b",
        },
        Case {
            token: "scope",
            package: "@alice/b",
            path: "/@alice%2fb",
            status: 201,
            says: "",
        },
        Case {
            token: "scope",
            package: "plain",
            path: "/plain",
            status: 403,
            says: "no access to plain",
        },
        Case {
            token: "reader",
            package: "@alice/c",
            path: "/@alice%2fc",
            status: 403,
            says: "read-only",
        },
    ];
    for case in cases {
        let token = match case.token {
            "one" => one_package["token"].as_str().unwrap(),
            "scope" => scope["token"].as_str().unwrap(),
            _ => reader["token"].as_str().unwrap(),
        };
        let body = publish_body(case.package, "1.0.0", serde_json::json!("public"));
        let reply = client.send("PUT", case.path, Some(token), &body).await;
        assert_eq!(
            reply.status, case.status,
            "{} {}: {}",
            case.token, case.path, reply.body
        );
        assert!(
            reply.body.contains(case.says),
            "{}: {}",
            case.path,
            reply.body
        );
    }
    // Every token still reads everything: the packages are public.
    for token in [&one_package["token"], &scope["token"], &reader["token"]] {
        let reply = client
            .send("GET", "/plain", Some(token.as_str().unwrap()), "")
            .await;
        assert_ne!(reply.status, 403, "{}", reply.body);
    }

    // The login session is not listed; the three tokens are.
    let listed = client
        .send("GET", "/-/npm/v1/tokens", Some(&alice), "")
        .await
        .json();
    assert_eq!(listed["total"], 3, "{listed}");
}

#[tokio::test]
async fn write_tokens_live_seven_days_unless_asked_and_ninety_at_most() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let day = 86_400.0;
    let lifetime = |reply: &Reply| {
        let created = reply.json();
        let at = |field: &str| {
            humantime::parse_rfc3339(created[field].as_str().unwrap())
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        (at("expires") - at("created")) / day
    };
    let default = client
        .create(&alice, serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" }))
        .await;
    assert_eq!(default.status, 201, "{}", default.body);
    assert!((lifetime(&default) - 7.0).abs() < 0.01, "{}", default.body);
    let ninety = client
        .create(
            &alice,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "expires": 90 }),
        )
        .await;
    assert!((lifetime(&ninety) - 90.0).abs() < 0.01, "{}", ninety.body);
    let too_long = client
        .create(
            &alice,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "expires": 365 }),
        )
        .await;
    assert_eq!(too_long.status, 400, "{}", too_long.body);
    assert!(
        too_long.body.contains("at most 90 days"),
        "{}",
        too_long.body
    );
    let read_only = client
        .create(
            &alice,
            serde_json::json!({ "password": PASSWORD, "expires": 365, "readonly": true }),
        )
        .await;
    assert_eq!(
        read_only.status, 201,
        "read-only tokens are not bound: {}",
        read_only.body
    );
    let forever = client
        .create(
            &alice,
            serde_json::json!({ "password": PASSWORD, "readonly": true }),
        )
        .await
        .json();
    assert!(forever["expires"].is_null(), "{forever}");
}

#[tokio::test]
async fn organisations_and_bad_grants_are_refused_by_name() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    struct Case {
        body: serde_json::Value,
        says: &'static str,
    }
    let cases = [
        Case {
            body: serde_json::json!({ "orgs": ["acme"] }),
            says: "orgs_permission is missing",
        },
        Case {
            body: serde_json::json!({ "orgs_permission": "read-only" }),
            says: "orgs_permission needs orgs",
        },
        Case {
            body: serde_json::json!({ "orgs": ["Not An Org"], "orgs_permission": "read-only" }),
            says: "orgs: ",
        },
        Case {
            body: serde_json::json!({ "orgs": ["acme"], "orgs_permission": "admin" }),
            says: r#"orgs_permission \"admin\" is not supported"#,
        },
        Case {
            body: serde_json::json!({ "packages": ["Not A Name"] }),
            says: "packages:",
        },
        Case {
            body: serde_json::json!({ "scopes": ["@a/b"] }),
            says: "scopes:",
        },
        Case {
            body: serde_json::json!({ "packages_and_scopes_permission": "admin" }),
            says: "packages_and_scopes_permission",
        },
    ];
    for case in cases {
        let mut body = case.body.clone();
        body["password"] = PASSWORD.into();
        let reply = client.create(&alice, body).await;
        assert_eq!(reply.status, 400, "{}: {}", case.body, reply.body);
        assert!(
            reply.body.contains(case.says),
            "{}: {}",
            case.body,
            reply.body
        );
    }
}

/// Findings of a red-team review, each a case that failed before its fix.
#[tokio::test]
async fn what_the_review_found_stays_fixed() {
    let (client, data) = start().await;
    let alice = client.session("alice").await;
    let bob = client.session("bob").await;
    let restricted = publish_body("@alice/priv", "1.0.0", "restricted".into());
    assert_eq!(
        client
            .send("PUT", "/%40alice%2Fpriv", Some(&alice), &restricted)
            .await
            .status,
        201
    );

    // User names are checked before they become paths: no probing of files.
    for name in [
        "..%2Fpackages%2F@alice%252fpriv%2Fpackument",
        "..%2Fpackages%2F@alice%252fnope%2Fpackument",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        let path = format!("/-/user/org.couchdb.user:{name}");
        let reply = client.send("GET", &path, Some(&bob), "").await;
        assert_eq!(reply.status, 404, "{name}: {}", reply.body);
    }
    let owners = serde_json::json!({
        "_id": "@alice/priv", "_rev": "1-x",
        "maintainers": [{ "name": "alice" }, { "name": "../users/bob" }]
    });
    let reply = client
        .send(
            "PUT",
            "/%40alice%2Fpriv/-rev/1-x",
            Some(&alice),
            &owners.to_string(),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // A token limited to one package manages no tokens.
    let limited = client
        .token(
            &alice,
            serde_json::json!({
                "password": PASSWORD, "packages": ["@alice/a"],
                "packages_and_scopes_permission": "read-write"
            }),
        )
        .await;
    let full = client
        .create(
            &alice,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "name": "full" }),
        )
        .await
        .json();
    let full_key = full["key"].as_str().unwrap();
    let listing = client
        .send("GET", "/-/npm/v1/tokens", Some(&limited), "")
        .await;
    assert_eq!(listing.status, 403, "{}", listing.body);
    let path = format!("/-/npm/v1/tokens/token/{full_key}");
    let revoke = client.send("DELETE", &path, Some(&limited), "").await;
    assert_eq!(revoke.status, 403, "{}", revoke.body);
    let still = client
        .send("GET", "/-/whoami", full["token"].as_str(), "")
        .await;
    assert_eq!(still.status, 200);

    // Logging out works for a token that may not write, and never logs the token.
    let read_only = client
        .token(
            &alice,
            serde_json::json!({ "password": PASSWORD, "readonly": true }),
        )
        .await;
    let publish = publish_body("audited-logout", "1.0.0", "public".into());
    let refused = client
        .send("PUT", "/audited-logout", Some(&read_only), &publish)
        .await;
    assert_eq!(refused.status, 403);
    let path = format!("/-/user/token/{read_only}");
    let logout = client.send("DELETE", &path, Some(&read_only), "").await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(
        client
            .send("GET", "/-/whoami", Some(&read_only), "")
            .await
            .status,
        401
    );
    let gone = client.send("DELETE", &path, None, "").await;
    assert_eq!(gone.status, 404);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let audit = std::fs::read_to_string(data.path().join("audit.log")).unwrap();
    assert!(
        !audit.contains(&read_only[15..]),
        "a token in the audit log: {audit}"
    );

    // Publishing a private package one cannot see answers as for one that does not exist.
    let hidden = client
        .send(
            "PUT",
            "/%40alice%2Fpriv",
            Some(&bob),
            &publish_body("@alice/priv", "2.0.0", "public".into()),
        )
        .await;
    let missing = client
        .send(
            "PUT",
            "/%40alice%2Fnope",
            Some(&bob),
            &publish_body("@alice/nope", "2.0.0", "public".into()),
        )
        .await;
    assert_eq!(hidden.status, missing.status);
    assert_eq!(hidden.body, missing.body);

    // A manifest whose dist is not an object is refused, not stored to break reads.
    let mut boom: serde_json::Value =
        serde_json::from_str(&publish_body("@bob/boom", "1.0.0", "public".into())).unwrap();
    boom["versions"]["1.0.0"]["dist"] = 1.into();
    let reply = client
        .send("PUT", "/%40bob%2Fboom", Some(&bob), &boom.to_string())
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // An explicit empty list of packages is not a token for everything.
    let reply = client
        .create(
            &alice,
            serde_json::json!({
                "password": PASSWORD, "packages_and_scopes_permission": "read-write", "packages": [], "scopes": [], "packages_all": false
            }),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("cover no package"), "{}", reply.body);

    // What is on disk is its owner's alone, and nothing half-written is left.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: std::path::PathBuf| {
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(data.path().join("tarballs")), 0o700);
        assert_eq!(mode(data.path().join("registry.db")), 0o600);
        let tarball = std::fs::read_dir(data.path().join("tarballs"))
            .unwrap()
            .flat_map(|folder| std::fs::read_dir(folder.unwrap().path()).unwrap())
            .next()
            .expect("a tarball is kept")
            .unwrap();
        assert_eq!(mode(tarball.path()), 0o600);
        assert_eq!(mode(data.path().join("tokens.db")), 0o600);
        assert_eq!(mode(data.path().join("secret.key")), 0o600);
    }
    let partial = std::process::Command::new("find")
        .arg(data.path())
        .args(["-name", "*.partial"])
        .output()
        .unwrap();
    assert!(
        partial.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&partial.stdout)
    );
}

#[tokio::test]
async fn two_factor_authentication_guards_logins_tokens_and_writes() {
    let (client, data) = start().await;
    let alice = client.session("alice").await;
    let with_otp = |token: &str, otp: Option<&str>, method: &str, path: &str, body: &str| {
        let auth = format!("Bearer {token}");
        let mut headers = vec![
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        if let Some(otp) = otp {
            headers.push(("npm-otp", otp));
        }
        let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_owned());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let addr = client.registry.addr;
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            support::registry::http(addr, &method, &path, &headers, body.as_bytes()).await
        }
    };

    // Enrolment: password, the otpauth URL once, then the first code, then recovery codes.
    let begin = serde_json::json!({ "tfa": { "password": PASSWORD, "mode": "auth-and-writes" } });
    let begun = with_otp(&alice, None, "POST", "/-/npm/v1/user", &begin.to_string()).await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let url = begun.json()["tfa"].as_str().unwrap().to_owned();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    let secret = support::totp_from_url(&url);
    let profile = client
        .send("GET", "/-/npm/v1/user", Some(&alice), "")
        .await
        .json();
    assert_eq!(profile["tfa"]["pending"], true);
    let mut last_step = None;
    let confirm =
        serde_json::json!({ "tfa": [support::fresh_code(&secret, &mut last_step).await] });
    let confirmed = with_otp(&alice, None, "POST", "/-/npm/v1/user", &confirm.to_string()).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let recovery: Vec<String> = confirmed.json()["tfa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let profile = client
        .send("GET", "/-/npm/v1/user", Some(&alice), "")
        .await
        .json();
    assert_eq!(
        profile["tfa"],
        serde_json::json!({ "pending": false, "mode": "auth-and-writes" })
    );

    // Nothing of it is on disk in clear.
    let user_file = support::registry::database_text(data.path());
    let base32_secret = url
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        !user_file.contains(base32_secret),
        "the secret is on disk in clear"
    );
    for recovery_code in &recovery {
        assert!(!user_file.contains(recovery_code.as_str()));
    }

    // Writes: no code, 401 with npm's OTP challenge; a code, once.
    let publish = |version: &str| publish_body("tfa-pkg", version, "public".into());
    let refused = with_otp(&alice, None, "PUT", "/tfa-pkg", &publish("1.0.0")).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.header("www-authenticate"), Some("OTP"));
    assert!(refused.body.contains("one-time password"));
    let now_code = support::fresh_code(&secret, &mut last_step).await;
    let published = with_otp(
        &alice,
        Some(&now_code),
        "PUT",
        "/tfa-pkg",
        &publish("1.0.0"),
    )
    .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let replay = with_otp(
        &alice,
        Some(&now_code),
        "PUT",
        "/tfa-pkg",
        &publish("1.0.1"),
    )
    .await;
    assert_eq!(replay.status, 401, "a code works once: {}", replay.body);

    // Token management asks for a code; a bypass token then writes without one.
    let create = serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "bypass_2fa": true }).to_string();
    let refused = with_otp(&alice, None, "POST", "/-/npm/v1/tokens", &create).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let next_code = support::fresh_code(&secret, &mut last_step).await;
    let created = with_otp(
        &alice,
        Some(&next_code),
        "POST",
        "/-/npm/v1/tokens",
        &create,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let robot = created.json()["token"].as_str().unwrap().to_owned();
    let by_robot = with_otp(&robot, None, "PUT", "/tfa-pkg", &publish("1.0.1")).await;
    assert_eq!(by_robot.status, 201, "{}", by_robot.body);

    // Logging in: the password, then a code; a recovery code works once.
    let login = serde_json::json!({ "name": "alice", "password": PASSWORD }).to_string();
    let login_path = "/-/user/org.couchdb.user:alice";
    let send_login = |otp: Option<String>| {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(otp) = otp {
            headers.push(("npm-otp".to_owned(), otp));
        }
        let (addr, login) = (client.registry.addr, login.clone());
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            support::registry::http(addr, "PUT", login_path, &headers, login.as_bytes()).await
        }
    };
    let refused = send_login(None).await;
    assert_eq!(
        (refused.status, refused.header("www-authenticate")),
        (401, Some("OTP"))
    );
    let logged_in = send_login(Some(recovery[0].clone())).await;
    assert_eq!(logged_in.status, 201, "{}", logged_in.body);
    let again = send_login(Some(recovery[0].clone())).await;
    assert_eq!(
        again.status, 401,
        "a recovery code works once: {}",
        again.body
    );

    // Turning it off takes the password and a code.
    let disable = serde_json::json!({ "tfa": { "password": PASSWORD, "mode": "disable" } });
    let refused = with_otp(&alice, None, "POST", "/-/npm/v1/user", &disable.to_string()).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let disabled = with_otp(
        &alice,
        Some(&recovery[1]),
        "POST",
        "/-/npm/v1/user",
        &disable.to_string(),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.json()["tfa"], false);
    let plain = with_otp(&alice, None, "PUT", "/tfa-pkg", &publish("1.0.2")).await;
    assert_eq!(plain.status, 201, "{}", plain.body);
}

#[tokio::test]
async fn abuse_cases_get_clear_and_uniform_answers() {
    // A wrong password is a 401 whatever its length.
    let (client, _data) = start().await;
    client.session("alice").await;
    for wrong in ["short", "a wrong password", &"x".repeat(2000)] {
        let reply = client.login("alice", wrong).await;
        assert_eq!(
            reply.status,
            401,
            "{} characters: {}",
            wrong.len(),
            reply.body
        );
    }
    // New passwords still follow the rule, and say so.
    let reply = client.login("newcomer", "short").await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // Allow-list entries whose meaning is a guess are refused with npm's message.
    let session = client.session("alice").await;
    for entry in ["010.0.0.1/32", "10.0.0.1/08"] {
        let reply = client
            .create(
                &session,
                serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "cidr_whitelist": [entry] }),
            )
            .await;
        assert_eq!(reply.status, 400, "{entry}: {}", reply.body);
        assert!(
            reply.body.contains(&format!(
                "CIDR whitelist contains invalid CIDR entry: {entry}"
            )),
            "{}",
            reply.body
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_checked() {
    let data = tempfile::tempdir().unwrap();
    let registry = Registry::start_with(
        "127.0.0.1:0",
        data.path(),
        &["--trusted-proxy", "127.0.0.1"],
    )
    .await;
    let client = Client { registry };
    let session = client.session("alice").await;
    let token = client
        .token(
            &session,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "cidr_whitelist": ["10.0.0.0/8"] }),
        )
        .await;
    let auth = format!("Bearer {token}");
    let whoami = |forwarded: Option<&'static str>| {
        let mut headers = vec![("authorization", auth.clone())];
        if let Some(forwarded) = forwarded {
            headers.push(("x-forwarded-for", forwarded.to_owned()));
        }
        let addr = client.registry.addr;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            http(addr, "GET", "/-/whoami", &headers, b"").await.status
        }
    };
    assert_eq!(whoami(Some("10.1.2.3")).await, 200);
    assert_eq!(whoami(Some("192.0.2.1")).await, 401);
    assert_eq!(
        whoami(None).await,
        401,
        "the proxy itself is not in the allow-list"
    );

    let bad = std::process::Command::new(support::registry::binary())
        .args(["--memory", "--trusted-proxy", "10.0.0.0/33"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--trusted-proxy"));
}

#[tokio::test]
async fn writes_are_refused_before_their_bodies_are_read() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        Registry::start_with("127.0.0.1:0", data.path(), &["--max-publish-mb", "1"]).await;
    let client = Client { registry };
    let session = client.session("alice").await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));

    let anonymous = client.send("PUT", "/victim", None, &big).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let too_large = client.send("PUT", "/victim", Some(&session), &big).await;
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(too_large.body.contains("1 MiB"), "{}", too_large.body);
    let scoped = client
        .send("PUT", "/%40alice%2Fvictim", Some(&session), &big)
        .await;
    assert_eq!(scoped.status, 413, "{}", scoped.body);
    // Reads of the same routes are untouched.
    assert_eq!(client.send("GET", "/victim", None, "").await.status, 404);
}

#[tokio::test]
async fn guessing_a_password_is_cut_short() {
    let (client, _data) = start().await;
    client.session("alice").await;
    for _ in 0..10 {
        assert_eq!(client.login("alice", "a wrong password").await.status, 401);
    }
    // Locked for a while, even with the right password, and told how long.
    let locked = client.login("alice", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.header("retry-after").is_some());
    assert!(
        locked.body.contains("too many wrong passwords"),
        "{}",
        locked.body
    );
    // Another account still logs in from the same address, whose own budget is larger.
    let bob = client.login("bob", PASSWORD).await;
    assert_eq!(bob.status, 201, "{}", bob.body);
}

#[tokio::test]
async fn guessing_one_time_passwords_is_cut_short() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    let mut last_step = None;
    let secret = enable_2fa(
        client.registry.addr,
        &session,
        TfaMode::AuthOnly,
        &mut last_step,
    )
    .await
    .secret;
    // Well-formed codes that are not among those valid around now.
    let now = std::time::SystemTime::now();
    let around = std::time::Duration::from_secs(90);
    let valid = [now - around, now, now + around].map(|at| secret.code_at(at).to_string());
    let wrong = ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|code| !valid.iter().any(|valid| valid == code))
        .unwrap();
    let login = |code: String| {
        let client = &client;
        async move {
            let body = serde_json::json!({ "name": "alice", "password": PASSWORD }).to_string();
            let headers = [("content-type", "application/json"), ("npm-otp", &code)];
            let path = "/-/user/org.couchdb.user:alice";
            http(client.registry.addr, "PUT", path, &headers, body.as_bytes()).await
        }
    };
    for attempt in 0..10 {
        let refused = login(wrong.to_owned()).await;
        assert_eq!(refused.status, 401, "attempt {attempt}: {}", refused.body);
        assert_eq!(refused.header("www-authenticate"), Some("OTP"));
    }
    // Now even the right code waits.
    let code = support::fresh_code(&secret, &mut last_step).await;
    let locked = login(code).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.header("retry-after").is_some());
    assert!(
        locked.body.contains("too many wrong one-time passwords"),
        "{}",
        locked.body
    );
}

#[tokio::test]
async fn slow_and_stalled_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let data = tempfile::tempdir().unwrap();
    let flags = ["--header-timeout", "1", "--request-timeout", "2"];
    let registry = Registry::start_with("127.0.0.1:0", data.path(), &flags).await;
    let client = Client { registry };
    let session = client.session("alice").await;

    // Half a header, then silence: the server closes the connection.
    let mut half = tokio::net::TcpStream::connect(client.registry.addr)
        .await
        .unwrap();
    half.write_all(b"GET /-/ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        half.read_to_end(&mut rest),
    )
    .await;
    assert!(
        closed.is_ok(),
        "a half-sent header kept the connection open"
    );

    // A publish that declares a megabyte and sends one byte: 408, not a hang.
    let mut slow = tokio::net::TcpStream::connect(client.registry.addr)
        .await
        .unwrap();
    let head = format!(
        "PUT /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {session}\r\n\
         Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        slow.read_to_end(&mut answer),
    )
    .await;
    assert!(answered.is_ok(), "a trickled body kept the request open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_unanswered() {
    use support::registry::ping;
    use tokio::io::BufReader;
    use tokio::net::TcpStream;

    let connect = |addr| async move { BufReader::new(TcpStream::connect(addr).await.unwrap()) };

    let data = tempfile::tempdir().unwrap();
    let flags = ["--max-connections", "2"];
    let registry = Registry::start_with("127.0.0.1:0", data.path(), &flags).await;
    let addr = registry.addr;
    // Two kept-alive connections take both places.
    let mut first = connect(addr).await;
    let mut second = connect(addr).await;
    assert_eq!(ping(&mut first).await.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(ping(&mut second).await.as_deref(), Some("HTTP/1.1 200 OK"));
    // A third is closed without an answer, and the two keep being served.
    let mut third = connect(addr).await;
    assert_eq!(
        ping(&mut third).await,
        None,
        "a third connection was served"
    );
    assert_eq!(ping(&mut first).await.as_deref(), Some("HTTP/1.1 200 OK"));
    // A flood of them is one warning, not a line each.
    for _ in 0..20 {
        assert_eq!(ping(&mut connect(addr).await).await, None);
    }
    assert_eq!(registry.logged("connections refused"), 1);
    // Once one of them closes, its place is free again.
    drop(second);
    let served = support::registry::ping_until_served(support::client::LOCAL, addr).await;
    assert_eq!(
        served.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "no place came free"
    );
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    use support::registry::{connect_from, ping};
    use tokio::io::BufReader;

    let crowded = support::registry::loopback(2);
    let other = support::registry::loopback(3);
    let data = tempfile::tempdir().unwrap();
    let flags = [
        "--max-connections",
        "8",
        "--max-connections-per-address",
        "2",
    ];
    let registry = Registry::start_with("127.0.0.1:0", data.path(), &flags).await;
    let addr = registry.addr;
    let connect = |source| async move { BufReader::new(connect_from(source, addr).await) };

    // At the limit: two kept-alive connections from one address are both served.
    let mut first = connect(crowded).await;
    let mut second = connect(crowded).await;
    assert_eq!(ping(&mut first).await.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(ping(&mut second).await.as_deref(), Some("HTTP/1.1 200 OK"));
    // One past it: a third from that address is closed without an answer, though the
    // total has room...
    assert_eq!(
        ping(&mut connect(crowded).await).await,
        None,
        "a third connection from one address was served"
    );
    // ...which another address still gets, and the first two keep being served.
    let mut elsewhere = connect(other).await;
    assert_eq!(
        ping(&mut elsewhere).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    assert_eq!(ping(&mut first).await.as_deref(), Some("HTTP/1.1 200 OK"));
    // A flood from the crowded address is one warning that names the flag, not a line
    // each; and it is not the total's warning.
    for _ in 0..20 {
        assert_eq!(ping(&mut connect(crowded).await).await, None);
    }
    assert_eq!(registry.logged("see --max-connections-per-address"), 1);
    assert_eq!(registry.logged("see --max-connections)"), 0);
    // Once one of its connections closes, the address has a place again.
    drop(second);
    let served = support::registry::ping_until_served(crowded, addr).await;
    assert_eq!(
        served.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "no place came free"
    );
}

#[tokio::test]
async fn a_trusted_proxys_connections_count_against_the_total_only() {
    use support::registry::{connect_from, ping};
    use tokio::io::BufReader;

    let proxy = support::registry::loopback(2);
    let data = tempfile::tempdir().unwrap();
    let flags = [
        "--max-connections",
        "4",
        "--max-connections-per-address",
        "2",
        "--trusted-proxy",
        "127.0.0.2",
    ];
    let registry = Registry::start_with("127.0.0.1:0", data.path(), &flags).await;
    // A reverse proxy carries many clients: it may open more than one address may...
    let mut open = Vec::new();
    for n in 0..4 {
        let mut connection = BufReader::new(connect_from(proxy, registry.addr).await);
        let served = ping(&mut connection).await;
        assert_eq!(served.as_deref(), Some("HTTP/1.1 200 OK"), "connection {n}");
        open.push(connection);
    }
    // ...but not more than the total.
    let mut fifth = BufReader::new(connect_from(proxy, registry.addr).await);
    assert_eq!(
        ping(&mut fifth).await,
        None,
        "a fifth connection was served"
    );
}

#[test]
fn the_per_address_connection_limit_is_checked_and_documented() {
    struct Refused {
        flags: &'static [&'static str],
        says: &'static str,
    }
    let cases = [
        Refused {
            flags: &["--max-connections-per-address", "0"],
            says: "--max-connections-per-address: \"0\" is not a number from 1 to --max-connections",
        },
        Refused {
            flags: &["--max-connections-per-address", "many"],
            says: "--max-connections-per-address: \"many\" is not a number from 1 to --max-connections",
        },
        Refused {
            flags: &[
                "--max-connections",
                "10",
                "--max-connections-per-address",
                "11",
            ],
            says: "--max-connections-per-address (11) is more than --max-connections (10)",
        },
        Refused {
            flags: &[
                "--max-connections-per-address",
                "11",
                "--max-connections",
                "10",
            ],
            says: "--max-connections-per-address (11) is more than --max-connections (10)",
        },
        Refused {
            flags: &["--max-connections-per-address", "1025"],
            says: "--max-connections-per-address (1025) is more than --max-connections (1024)",
        },
    ];
    for case in cases {
        let refused = std::process::Command::new(support::registry::binary())
            .arg("--memory")
            .args(case.flags)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{:?}", case.flags);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains(case.says), "{:?}: {said}", case.flags);
    }
    let help = std::process::Command::new(support::registry::binary())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--max-connections-per-address N"), "{help}");
}

#[tokio::test]
async fn package_metadata_is_bounded_before_anything_is_written() {
    let (client, data) = start().await;
    let alice = client.session("alice").await;
    let mut body: serde_json::Value =
        serde_json::from_str(&publish_body("bulky", "1.0.0", "public".into())).unwrap();
    body["versions"]["1.0.0"]["description"] = "x".repeat(9 * 1024 * 1024).into();
    let reply = client
        .send("PUT", "/bulky", Some(&alice), &body.to_string())
        .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body.contains("8 MiB"), "{}", reply.body);
    assert!(
        !data.path().join("packages/bulky").exists(),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_port_in_use_is_refused_with_what_to_do_about_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(support::registry::binary())
        .args(["--listen", &address, "--memory"])
        .current_dir(data.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("cannot listen on {address}")),
        "{said}"
    );
    assert!(
        said.contains("choose another address with --listen"),
        "{said}"
    );
}

/// `urls.next` carries a cursor, as `npm token list` follows it: a token revoked between
/// two pages, the one the cursor came from included, moves no other token between pages,
/// and one made meanwhile (newer than the first page) does not show up on a later one.
#[tokio::test]
async fn npm_token_list_follows_a_cursor_across_revocations() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    let mut keys = Vec::new();
    for name in ["first", "second", "third", "fourth", "fifth"] {
        let body = serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "name": name });
        keys.push(
            client.create(&session, body).await.json()["key"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = |path: String| {
        let (client, session) = (&client, &session);
        async move {
            let reply = client.send("GET", &path, Some(session), "").await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let json = reply.json();
            let names: Vec<String> = json["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            (
                names,
                json["urls"]["next"].as_str().map(str::to_owned),
                json["total"].clone(),
            )
        }
    };
    let (names, next, total) = page("/-/npm/v1/tokens?perPage=2".into()).await;
    assert_eq!(
        (names, total),
        (vec!["fifth".to_owned(), "fourth".into()], 5.into())
    );
    let next = next.unwrap();
    assert!(next.contains("after="), "{next}");
    // The cursor's own token and the next page's first go; a newer one is made.
    for key in [&keys[3], &keys[2]] {
        let path = format!("/-/npm/v1/tokens/token/{key}");
        assert_eq!(
            client
                .send("DELETE", &path, Some(&session), "")
                .await
                .status,
            204
        );
    }
    client
        .create(
            &session,
            serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "name": "sixth" }),
        )
        .await;
    let (names, next, total) = page(next).await;
    assert_eq!(
        (names, total),
        (vec!["second".to_owned(), "first".into()], 4.into())
    );
    assert_eq!(next, None, "nothing older than first");

    let bad = client
        .send("GET", "/-/npm/v1/tokens?after=nope", Some(&session), "")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[tokio::test]
async fn npm_token_list_is_newest_first_as_the_web_shows_it() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    for name in ["first", "second", "third"] {
        let body = serde_json::json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "name": name });
        client.token(&session, body).await;
    }
    let names = |reply: Reply| -> Vec<String> {
        reply.json()["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = client
        .send(
            "GET",
            "/-/npm/v1/tokens?page=0&perPage=2",
            Some(&session),
            "",
        )
        .await;
    assert_eq!(first.json()["total"], 3);
    assert_eq!(names(first), ["third", "second"]);
    let second = client
        .send(
            "GET",
            "/-/npm/v1/tokens?page=1&perPage=2",
            Some(&session),
            "",
        )
        .await;
    assert_eq!(names(second), ["first"]);
}

#[tokio::test]
async fn installs_get_the_abbreviated_document_and_revalidate_with_etags() {
    let (client, _data) = support::client::start().await;
    let session = support::registry::add_user(client.registry.addr, "alice").await;
    let publish = support::client::publish_body("tool", "1.0.0", serde_json::Value::Null);
    assert_eq!(
        client
            .send("PUT", "/tool", Some(&session), &publish)
            .await
            .status,
        201
    );
    let corgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
    let get = |accept: &'static str, etag: Option<String>| {
        let client = &client;
        async move {
            let mut headers = vec![("accept", accept)];
            let etag = etag.unwrap_or_default();
            if !etag.is_empty() {
                headers.push(("if-none-match", etag.as_str()));
            }
            http(client.registry.addr, "GET", "/tool", &headers, b"").await
        }
    };

    let install = get(corgi, None).await;
    assert_eq!(install.status, 200);
    assert_eq!(
        install.header("content-type"),
        Some("application/vnd.npm.install-v1+json")
    );
    let document = install.json();
    assert!(document.get("time").is_none() && document.get("maintainers").is_none());
    let version = &document["versions"]["1.0.0"];
    assert!(
        version["dist"]["integrity"]
            .as_str()
            .unwrap()
            .starts_with("sha512-")
    );
    assert!(
        version["dist"]["tarball"]
            .as_str()
            .unwrap()
            .ends_with("/tool/-/tool-1.0.0.tgz")
    );
    let etag = install.header("etag").expect("an ETag").to_owned();

    let full = get("application/json", None).await;
    assert!(
        full.json().get("time").is_some(),
        "plain JSON is the whole packument"
    );
    assert_ne!(
        full.header("etag"),
        Some(etag.as_str()),
        "each document its own tag"
    );

    let unchanged = get(corgi, Some(etag.clone())).await;
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.body.is_empty());

    let next = support::client::publish_body("tool", "1.1.0", serde_json::Value::Null);
    assert_eq!(
        client
            .send("PUT", "/tool", Some(&session), &next)
            .await
            .status,
        201
    );
    let changed = get(corgi, Some(etag.clone())).await;
    assert_eq!(changed.status, 200, "a write changes the tag");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));

    let tarball = client.send("GET", "/tool/-/tool-1.1.0.tgz", None, "").await;
    assert_eq!(tarball.bytes, b"hello");
    assert_eq!(tarball.header("content-length"), Some("5"));
}

#[tokio::test]
async fn a_publish_whose_integrity_does_not_match_its_tarball_is_refused() {
    let (client, _data) = support::client::start().await;
    let session = support::registry::add_user(client.registry.addr, "alice").await;
    let mut publish: serde_json::Value = serde_json::from_str(&support::client::publish_body(
        "tool",
        "1.0.0",
        serde_json::Value::Null,
    ))
    .unwrap();
    // The SHA-512 of "hallo", not of the "hello" attached.
    publish["versions"]["1.0.0"]["dist"] = serde_json::json!({
        "integrity": "sha512-cLd7dUbULoMTkxbsB9BIZy9cSqQaH+wynebBjm71Pjz3rRJK8YrsC1WiWt6xBR9H6ImZIc/Zr1YOja/rCTmrzw=="
    });
    let refused = client
        .send("PUT", "/tool", Some(&session), &publish.to_string())
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("dist.integrity"), "{}", refused.body);
    assert_eq!(client.send("GET", "/tool", None, "").await.status, 404);
}

#[tokio::test]
async fn a_token_limited_to_some_packages_cannot_count_its_owners_private_ones_in_search() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    for name in ["@alice/pub", "@alice/secret-alpha", "@alice/secret-beta"] {
        let access = if name == "@alice/pub" {
            serde_json::json!("public")
        } else {
            serde_json::Value::Null
        };
        let path = format!("/{}", name.replace('/', "%2f"));
        let published = client
            .send(
                "PUT",
                &path,
                Some(&alice),
                &publish_body(name, "1.0.0", access),
            )
            .await;
        assert_eq!(published.status, 201, "{}", published.body);
    }
    let narrow = client
        .token(
            &alice,
            serde_json::json!({
                "password": PASSWORD,
                "packages": ["@alice/pub"],
                "packages_and_scopes_permission": "read-only",
                "expires": 7,
            }),
        )
        .await;
    struct Case {
        name: &'static str,
        token: String,
        text: &'static str,
        total: u64,
    }
    let cases = [
        Case {
            name: "the owner's session finds all three",
            token: alice.clone(),
            text: "alice",
            total: 3,
        },
        Case {
            name: "the narrow token finds the public one only",
            token: narrow.clone(),
            text: "alice",
            total: 1,
        },
        Case {
            name: "and counts no private name, however it is spelled",
            token: narrow.clone(),
            text: "secret-a",
            total: 0,
        },
    ];
    for case in cases {
        let found = client
            .send(
                "GET",
                &format!("/-/v1/search?text={}", case.text),
                Some(&case.token),
                "",
            )
            .await;
        assert_eq!(found.status, 200, "{}: {}", case.name, found.body);
        let found = found.json();
        assert_eq!(found["total"], case.total, "{}", case.name);
        assert_eq!(
            found["objects"].as_array().unwrap().len() as u64,
            case.total,
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn unpublishing_a_version_removes_its_tarball_from_disk() {
    let (client, data) = start().await;
    let alice = client.session("alice").await;
    for (version, bytes) in [("1.0.0", "one"), ("1.1.0", "two")] {
        let mut body: serde_json::Value =
            serde_json::from_str(&publish_body("tool", version, serde_json::Value::Null)).unwrap();
        let attachment = &mut body["_attachments"][format!("tool-{version}.tgz")];
        attachment["data"] =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes).into();
        attachment["length"] = bytes.len().into();
        let published = client
            .send("PUT", "/tool", Some(&alice), &body.to_string())
            .await;
        assert_eq!(published.status, 201, "{}", published.body);
    }
    let files = || {
        std::fs::read_dir(data.path().join("tarballs"))
            .unwrap()
            .flat_map(|folder| std::fs::read_dir(folder.unwrap().path()).unwrap())
            .count()
    };
    assert_eq!(files(), 2);
    let mut packument = client.send("GET", "/tool", Some(&alice), "").await.json();
    packument["versions"]
        .as_object_mut()
        .unwrap()
        .remove("1.1.0");
    let rev = packument["_rev"].as_str().unwrap().to_owned();
    let path = format!("/tool/-rev/{rev}");
    let unpublished = client
        .send("PUT", &path, Some(&alice), &packument.to_string())
        .await;
    assert_eq!(unpublished.status, 200, "{}", unpublished.body);
    assert_eq!(
        files(),
        1,
        "the removed version's tarball is gone from disk"
    );
    let kept = client.send("GET", "/tool/-/tool-1.0.0.tgz", None, "").await;
    assert_eq!(kept.bytes, b"one");
}

#[tokio::test]
async fn an_unknown_query_parameter_is_refused_by_name() {
    struct Case {
        name: &'static str,
        path: &'static str,
        status: u16,
        /// What the refusal names.
        names: Option<&'static str>,
    }
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    let body = publish_body("tool", "1.0.0", serde_json::json!(null));
    let published = client.send("PUT", "/tool", Some(&session), &body).await;
    assert_eq!(published.status, 201, "{}", published.body);
    let cases = [
        Case {
            name: "a misspelt search option",
            path: "/-/v1/search?text=tool&szie=5",
            status: 400,
            names: Some("szie"),
        },
        Case {
            name: "the weights npm's search sends",
            path: "/-/v1/search?text=tool&size=20&from=0&quality=0.65&popularity=0.98&maintenance=0.5",
            status: 200,
            names: None,
        },
        Case {
            name: "a search weight that is no number",
            path: "/-/v1/search?text=tool&quality=high",
            status: 400,
            names: Some("quality"),
        },
        Case {
            name: "npm's read before a write",
            path: "/tool?write=true",
            status: 200,
            names: None,
        },
        Case {
            name: "an option packuments do not have",
            path: "/tool?full=1",
            status: 400,
            names: Some("full"),
        },
        Case {
            name: "one beside write",
            path: "/tool?write=true&full=1",
            status: 400,
            names: Some("full"),
        },
        Case {
            name: "on a tarball",
            path: "/tool/-/tool-1.0.0.tgz?cache=0",
            status: 400,
            names: Some("cache"),
        },
        Case {
            name: "on a route that reads no query",
            path: "/-/whoami?verbose",
            status: 400,
            names: Some("verbose"),
        },
        Case {
            name: "a token list option in the wrong case",
            path: "/-/npm/v1/tokens?perpage=5",
            status: 400,
            names: Some("perpage"),
        },
        Case {
            name: "a web page's",
            path: "/-/web/tokens?sort=name",
            status: 400,
            names: Some("sort"),
        },
    ];
    for case in cases {
        let reply = client.send("GET", case.path, Some(&session), "").await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.body);
        if let Some(names) = case.names {
            assert!(reply.body.contains(names), "{}: {}", case.name, reply.body);
        }
    }
}
