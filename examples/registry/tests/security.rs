//! What the third security review found, each as a specification that failed before its
//! fix: second-factor bypasses, lockouts by strangers, and cheap ways to exhaust memory,
//! disk or the registry's lock.

mod support;

use serde_json::json;
use support::client::{Client, publish_body, start};
use support::registry::{PASSWORD, Reply, TfaMode, enable_2fa, http_from, loopback};

/// A user with `auth-and-writes` two-factor authentication: their session, and the
/// recovery codes they got, which stand in for codes from the authenticator (each is
/// good once, and using them spares the tests the 30 seconds between fresh codes).
struct Guarded {
    session: String,
    recovery: Vec<String>,
}

impl Guarded {
    async fn new(client: &Client, user: &str) -> Self {
        let session = client.session(user).await;
        let mut last_step = None;
        let enrolled = enable_2fa(
            client.registry.addr,
            &session,
            TfaMode::AuthAndWrites,
            &mut last_step,
        )
        .await;
        Self {
            session,
            recovery: enrolled.recovery,
        }
    }

    async fn code(&mut self) -> String {
        self.recovery.pop().expect("a recovery code left")
    }

    /// A request with their session and a code they have not used yet.
    async fn with_code(&mut self, client: &Client, method: &str, path: &str, body: &str) -> Reply {
        let code = self.code().await;
        client
            .send_otp(method, path, Some(&self.session), Some(&code), body)
            .await
    }

    /// A new token of theirs, made as `body` asks, with a code.
    async fn token(&mut self, client: &Client, body: serde_json::Value) -> String {
        let created = self
            .with_code(client, "POST", "/-/npm/v1/tokens", &body.to_string())
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.json()["token"].as_str().unwrap().to_owned()
    }
}

/// A write on a path the router matches, and what its body is.
struct Write {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: String,
}

#[tokio::test]
async fn writes_to_packages_named_with_a_leading_dash_ask_for_the_second_factor() {
    let (client, _data) = start().await;
    let mut alice = Guarded::new(&client, "alice").await;
    let writes = [
        Write {
            name: "a scoped package whose name starts with a dash, with a literal slash",
            method: "PUT",
            path: "/@alice/-x",
            body: publish_body("@alice/-x", "1.0.0", json!("public")),
        },
        Write {
            name: "a scoped package whose name starts with a dash, with an escaped slash",
            method: "PUT",
            path: "/@alice%2f-y",
            body: publish_body("@alice/-y", "1.0.0", json!("public")),
        },
        Write {
            name: "an unscoped package whose name starts with a dash",
            method: "PUT",
            path: "/-foo",
            body: publish_body("-foo", "1.0.0", json!(null)),
        },
    ];
    for write in &writes {
        let refused = client
            .send(write.method, write.path, Some(&alice.session), &write.body)
            .await;
        assert_eq!(refused.status, 401, "{}: {}", write.name, refused.body);
        assert_eq!(
            refused.header("www-authenticate"),
            Some("OTP"),
            "{}",
            write.name
        );
        let published = alice
            .with_code(&client, write.method, write.path, &write.body)
            .await;
        assert_eq!(published.status, 201, "{}: {}", write.name, published.body);
    }

    // The package's own rule cannot be switched off without a code either.
    let rule = json!({ "publish_requires_tfa": true }).to_string();
    let set = alice
        .with_code(&client, "POST", "/-/package/-foo/access", &rule)
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let off = json!({ "publish_requires_tfa": false }).to_string();
    let refused = client
        .send("POST", "/-/package/-foo/access", Some(&alice.session), &off)
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    // Under `mfa=publish`, even a token that bypasses the second factor needs a code.
    let bypass = alice
        .token(&client, json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write", "bypass_2fa": true }))
        .await;
    let refused = client
        .send(
            "PUT",
            "/-foo",
            Some(&bypass),
            &publish_body("-foo", "1.0.1", json!(null)),
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
}

#[tokio::test]
async fn a_star_is_the_users_own_record_and_no_package_rule_asks_a_code_for_it() {
    let (client, _data) = start().await;
    let mut alice = Guarded::new(&client, "alice").await;
    let published = alice
        .with_code(
            &client,
            "PUT",
            "/starry",
            &publish_body("starry", "1.0.0", json!(null)),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let rule = json!({ "publish_requires_tfa": true }).to_string();
    let set = alice
        .with_code(&client, "POST", "/-/package/starry/access", &rule)
        .await;
    assert_eq!(set.status, 200, "{}", set.body);

    // Bob has no second factor: his star and unstar go through.
    let bob = client.session("bob").await;
    let star = |starred: bool| {
        let users = if starred {
            json!({ "bob": true })
        } else {
            json!({})
        };
        json!({ "_id": "starry", "users": users }).to_string()
    };
    let starred = client.send("PUT", "/starry", Some(&bob), &star(true)).await;
    assert_eq!(starred.status, 200, "{}", starred.body);
    let unstarred = client
        .send("PUT", "/starry", Some(&bob), &star(false))
        .await;
    assert_eq!(unstarred.status, 200, "{}", unstarred.body);

    // A publish is still a publish, whatever else its body says.
    let mixed = json!({
        "_id": "starry", "users": { "bob": true },
        "versions": { "1.0.1": { "name": "starry", "version": "1.0.1" } },
        "_attachments": { "starry-1.0.1.tgz": { "data": "aGVsbG8=", "length": 5 } }
    });
    let refused = client
        .send("PUT", "/starry", Some(&alice.session), &mixed.to_string())
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
}

#[tokio::test]
async fn strangers_guessing_a_password_stop_themselves_not_the_account() {
    let (client, _data) = start().await;
    // Alice signs up, and so logs in, from 127.0.0.1.
    let alice = client.session("alice").await;

    // A stranger at 127.0.0.2 gets ten wrong guesses, then waits.
    for guess in 1..=10 {
        let wrong = client
            .login_from(loopback(2), "alice", &format!("guess {guess:04}"))
            .await;
        assert_eq!(wrong.status, 401, "guess {guess}: {}", wrong.body);
    }
    let stopped = client.login_from(loopback(2), "alice", "guess 0011").await;
    assert_eq!(stopped.status, 429, "{}", stopped.body);
    let right = client.login_from(loopback(2), "alice", PASSWORD).await;
    assert_eq!(
        right.status, 429,
        "the guesser's address waits, whatever it sends"
    );

    // More strangers push the account past its slowdown, each stopped at ten.
    for stranger in 3..=4 {
        for guess in 1..=10 {
            let wrong = client
                .login_from(loopback(stranger), "alice", &format!("guess {guess:04}"))
                .await;
            assert_eq!(wrong.status, 401, "{}", wrong.body);
        }
    }

    // Alice is not locked out: from the address she logged in from, from a new one
    // (slowed down, not refused), and with her own token.
    let home = client.login_from(loopback(1), "alice", PASSWORD).await;
    assert_eq!(home.status, 201, "{}", home.body);
    let elsewhere = client.login_from(loopback(9), "alice", PASSWORD).await;
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.body);
    let created = client
        .send_from(
            loopback(10),
            "POST",
            "/-/npm/v1/tokens",
            Some(&alice),
            None,
            &json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" })
                .to_string(),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

#[tokio::test]
async fn right_passwords_sent_at_once_are_never_counted_as_wrong() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let client = std::sync::Arc::new(client);
    let creations = (0..16).map(|_| {
        let (client, alice) = (std::sync::Arc::clone(&client), alice.clone());
        tokio::spawn(async move {
            client
                .create(
                    &alice,
                    json!({ "password": PASSWORD, "packages_and_scopes_permission": "read-write" }),
                )
                .await
                .status
        })
    });
    for creation in creations {
        assert_eq!(creation.await.unwrap(), 201);
    }
}

/// A web login from `from`: the form the login page posts.
async fn web_login(client: &Client, from: std::net::IpAddr, user: &str, password: &str) -> Reply {
    let addr = client.registry.addr;
    let origin = format!("http://{addr}");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", origin.as_str()),
    ];
    let password = password.replace(' ', "+");
    let form = format!("username={user}&password={password}");
    http_from(
        from,
        addr,
        "POST",
        "/-/web/login",
        &headers,
        form.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn an_unknown_user_is_answered_as_a_known_one_with_a_wrong_password() {
    let (client, _data) = start().await;
    client.session("alice").await;
    let known = web_login(&client, loopback(2), "alice", "a wrong password").await;
    let unknown = web_login(&client, loopback(3), "nobody", "a wrong password").await;
    assert_eq!(known.status, 401, "{}", known.body);
    // The same page, but for the name typed in.
    let unknown_body = unknown.body.replace("nobody", "alice");
    assert_eq!((known.status, &known.body), (unknown.status, &unknown_body));
    // Both are checked and counted: ten unknown-user guesses stop the address.
    for guess in 2..=10 {
        let wrong = web_login(&client, loopback(3), "nobody", &format!("guess {guess:04}")).await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
    }
    let stopped = web_login(&client, loopback(3), "nobody", "guess 0011").await;
    assert_eq!(stopped.status, 429, "{}", stopped.body);
}

#[tokio::test]
async fn a_granular_token_asked_for_without_a_permission_is_refused_not_made_read_write() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    struct Asked {
        name: &'static str,
        body: serde_json::Value,
    }
    let asked = [
        Asked {
            name: "packages and no permission (npm 11 dropping read-write-stage-only)",
            body: json!({ "password": PASSWORD, "packages": ["@alice/a"] }),
        },
        Asked {
            name: "scopes and no permission",
            body: json!({ "password": PASSWORD, "scopes": ["@alice"] }),
        },
        Asked {
            name: "every package and no permission",
            body: json!({ "password": PASSWORD, "packages_all": true }),
        },
    ];
    for asked in asked {
        let refused = client.create(&alice, asked.body).await;
        assert_eq!(refused.status, 400, "{}: {}", asked.name, refused.body);
        assert!(
            refused
                .body
                .contains("packages_and_scopes_permission is missing")
                && refused
                    .body
                    .contains("read-only, read-write, read-write-stage-only or no-access"),
            "{}: {}",
            asked.name,
            refused.body
        );
    }
    // npm 11 and 12 drop `--read-only` and send no permission at all: such a request is
    // refused, never made read-write; older clients' `readonly` names it.
    let unnamed = client
        .create(
            &alice,
            json!({ "password": PASSWORD, "name": "read-only, I thought" }),
        )
        .await;
    assert_eq!(unnamed.status, 400, "{}", unnamed.body);
    assert!(
        unnamed
            .body
            .contains("--packages-and-scopes-permission=read-only")
            && unnamed.body.contains("do not send --read-only"),
        "{}",
        unnamed.body
    );
    for (readonly, read_only) in [(false, false), (true, true)] {
        let classic = client
            .create(
                &alice,
                json!({ "password": PASSWORD, "readonly": readonly }),
            )
            .await;
        assert_eq!(classic.status, 201, "{}", classic.body);
        assert_eq!(classic.json()["readonly"], read_only, "{}", classic.body);
    }
}

/// What `npm token create --packages @alice/a --packages-and-scopes-permission read-write`
/// sends.
fn one_package_token() -> serde_json::Value {
    json!({
        "password": PASSWORD, "packages": ["@alice/a"],
        "packages_and_scopes_permission": "read-write"
    })
}

#[tokio::test]
async fn the_profile_changes_only_through_a_token_for_everything_and_with_a_code() {
    let (client, _data) = start().await;
    let mut alice = Guarded::new(&client, "alice").await;
    let one_package = alice.token(&client, one_package_token()).await;
    let email = json!({ "email": "mallory@example.com" }).to_string();

    let refused = client
        .send("POST", "/-/npm/v1/user", Some(&one_package), &email)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("cannot change the profile"),
        "{}",
        refused.body
    );
    let refused = client
        .send("POST", "/-/npm/v1/user", Some(&alice.session), &email)
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.header("www-authenticate"), Some("OTP"));
    let profile = client
        .send("GET", "/-/npm/v1/user", Some(&alice.session), "")
        .await;
    assert_ne!(profile.json()["email"], "mallory@example.com");

    let changed = alice
        .with_code(&client, "POST", "/-/npm/v1/user", &email)
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
}

#[tokio::test]
async fn wrong_codes_from_one_sender_do_not_refuse_the_owners_right_code() {
    let (client, _data) = start().await;
    let mut alice = Guarded::new(&client, "alice").await;
    let one_package = alice.token(&client, one_package_token()).await;
    let publish = publish_body("@alice/a", "1.0.0", json!("public"));

    // Whoever holds the one-package token guesses codes from 127.0.0.2, and is stopped.
    for guess in 0..10 {
        let wrong = client
            .send_from(
                loopback(2),
                "PUT",
                "/@alice%2fa",
                Some(&one_package),
                Some(&format!("{guess:06}")),
                &publish,
            )
            .await;
        assert_eq!(wrong.status, 401, "guess {guess}: {}", wrong.body);
    }
    let code = alice.code().await;
    let stopped = client
        .send_from(
            loopback(2),
            "PUT",
            "/@alice%2fa",
            Some(&one_package),
            Some(&code),
            &publish,
        )
        .await;
    assert_eq!(
        stopped.status, 401,
        "the guessing token's codes wait: {}",
        stopped.body
    );

    // Alice, with her own session, is not the guesser: her right code goes through.
    let published = client
        .send_otp(
            "PUT",
            "/@alice%2fa",
            Some(&alice.session),
            Some(&code),
            &publish,
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.body);
}

#[tokio::test]
async fn a_new_password_ends_every_other_session_however_many_there_are() {
    let (client, _data) = start().await;
    let stolen = client.session("alice").await;
    // More sessions than the registry used to remember (100), the stolen one the oldest.
    let mut sessions = Vec::new();
    for _ in 0..110 {
        sessions.push(client.session("alice").await);
    }
    let current = sessions.pop().unwrap();
    let change = json!({ "password": { "old": PASSWORD, "new": "a much newer password" } });
    let changed = client
        .send(
            "POST",
            "/-/npm/v1/user",
            Some(&current),
            &change.to_string(),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    for session in [&stolen, &sessions[0], &sessions[108]] {
        let refused = client.send("GET", "/-/whoami", Some(session), "").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let kept = client.send("GET", "/-/whoami", Some(&current), "").await;
    assert_eq!(
        kept.status, 200,
        "the session that changed it goes on: {}",
        kept.body
    );
}

#[tokio::test]
async fn a_flood_of_junk_tokens_with_long_paths_cannot_fill_the_audit_log() {
    let (client, data) = start().await;
    let path = format!("/{}", "p".repeat(30_000));
    let junk = "npm_".to_owned() + &"x".repeat(37);
    for _ in 0..500 {
        let refused = client.send("GET", &path, Some(&junk), "").await;
        assert!(matches!(refused.status, 401 | 429), "{}", refused.body);
    }
    // The writer is a background task: give it a moment to catch up.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(data.path().join("audit.log")).unwrap_or_default();
    // Ten lines of their own, each with the path cut to 256 bytes; the rest summarised.
    assert_eq!(log.lines().count(), 10, "{log}");
    assert!(log.len() < 8 * 1024, "{} bytes", log.len());
}

#[tokio::test]
async fn logging_out_made_up_tokens_counts_as_guessing_them() {
    let (client, _data) = start().await;
    let session = client.session("alice").await;
    // Fifty made-up, well-formed tokens: the same budget as the gates'.
    for n in 0..50u32 {
        let made_up = format!("/-/user/token/npm_{n:0>37}");
        let wrong = client
            .send_from(loopback(2), "DELETE", &made_up, None, None, "")
            .await;
        assert_eq!(wrong.status, 404, "{}", wrong.body);
    }
    let path = format!("/-/user/token/{session}");
    let stopped = client
        .send_from(loopback(2), "DELETE", &path, None, None, "")
        .await;
    assert_eq!(stopped.status, 429, "{}", stopped.body);
    assert!(stopped.header("retry-after").is_some());
    // And the gates answer that address the same way.
    let gated = client
        .send_from(
            loopback(2),
            "GET",
            "/-/whoami",
            Some("npm_made_up"),
            None,
            "",
        )
        .await;
    assert_eq!(gated.status, 429, "{}", gated.body);
    // Elsewhere, the holder logs out.
    let logged_out = client
        .send_from(loopback(3), "DELETE", &path, None, None, "")
        .await;
    assert_eq!(logged_out.status, 200, "{}", logged_out.body);
}

#[tokio::test]
async fn the_profile_says_when_the_account_was_made_and_last_changed() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    let before = client
        .send("GET", "/-/npm/v1/user", Some(&alice), "")
        .await
        .json();
    let created = before["created"].as_str().expect("created");
    assert!(humantime::parse_rfc3339(created).is_ok(), "{created}");
    let change = json!({ "fullname": "Alice Liddell" }).to_string();
    let changed = client
        .send("POST", "/-/npm/v1/user", Some(&alice), &change)
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let after = client
        .send("GET", "/-/npm/v1/user", Some(&alice), "")
        .await
        .json();
    assert_eq!(after["created"], created);
    assert!(after["updated"].as_str().unwrap() >= created, "{after}");
}

#[tokio::test]
async fn an_owners_list_read_before_a_change_cannot_be_written_over_it() {
    let (client, _data) = start().await;
    let alice = client.session("alice").await;
    client.session("bob").await;
    client.session("carol").await;
    let publish = publish_body("shared", "1.0.0", json!(null));
    assert_eq!(
        client
            .send("PUT", "/shared", Some(&alice), &publish)
            .await
            .status,
        201
    );
    let added = client.set_owners(&alice, "shared", &["alice", "bob"]).await;
    assert_eq!(added.status, 200, "{}", added.body);
    // Two people read the list; one removes bob, then the other adds carol to what they read.
    let read = client.send("GET", "/shared", Some(&alice), "").await.json();
    let stale = read["_rev"].as_str().unwrap().to_owned();
    let removed = client.set_owners(&alice, "shared", &["alice"]).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let refused = client
        .put_owners(&alice, "shared", &stale, &["alice", "bob", "carol"])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("run the command again"),
        "{}",
        refused.body
    );
    let now = client.send("GET", "/shared", Some(&alice), "").await.json();
    assert_eq!(now["maintainers"].as_array().unwrap().len(), 1, "{now}");
}

#[tokio::test]
async fn a_scope_that_holds_only_private_packages_is_answered_as_any_taken_scope() {
    let (client, _data) = start().await;
    let bob = client.session("bob").await;
    let carol = client.session("carol").await;
    let eve = client.session("eve").await;
    // @acme holds one private package (bob's); @open one public package (carol's).
    let private = publish_body("@acme/secret", "1.0.0", json!("restricted"));
    let public = publish_body("@open/tool", "1.0.0", json!("public"));
    assert_eq!(
        client
            .send("PUT", "/@acme%2fsecret", Some(&bob), &private)
            .await
            .status,
        201
    );
    assert_eq!(
        client
            .send("PUT", "/@open%2ftool", Some(&carol), &public)
            .await
            .status,
        201
    );

    let publish_into = |scope: &str| {
        let name = format!("@{scope}/mine");
        let path = format!("/@{scope}%2fmine");
        let body = publish_body(&name, "1.0.0", json!("public"));
        let (client, eve) = (&client, eve.clone());
        async move { client.send("PUT", &path, Some(&eve), &body).await }
    };
    let into_acme = publish_into("acme").await;
    let into_open = publish_into("open").await;
    assert_eq!(into_acme.status, 403, "{}", into_acme.body);
    assert_eq!(
        (into_acme.status, into_acme.body.replace("acme", "SCOPE")),
        (into_open.status, into_open.body.replace("open", "SCOPE")),
    );
    for said in ["bob", "private", "belongs"] {
        assert!(!into_acme.body.contains(said), "{}", into_acme.body);
    }
    let as_acme = client.login("acme", PASSWORD).await;
    let as_open = client.login("open", PASSWORD).await;
    assert_eq!(
        (as_acme.status, &as_acme.body),
        (as_open.status, &as_open.body)
    );
    assert!(!as_acme.body.contains("scope"), "{}", as_acme.body);
}

#[cfg(unix)]
#[tokio::test]
async fn a_data_folder_others_could_read_is_made_private_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let first = support::registry::Registry::start("127.0.0.1:0", &dir).await;
    support::registry::add_user(first.addr, "alice").await;
    first.stop().await;
    // As an earlier release, or a hand-made folder, may have left them.
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let set = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&dir, 0o755);
    set(&dir.join("tokens.db"), 0o644);

    let again = support::registry::Registry::start("127.0.0.1:0", &dir).await;
    support::registry::add_user(again.addr, "bob").await;
    assert_eq!(mode(&dir), 0o700);
    for file in ["tokens.db", "tokens.db-wal", "tokens.db-shm"] {
        let path = dir.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert!(
        dir.join("tokens.db-wal").exists(),
        "the database runs in WAL mode"
    );
    again.stop().await;
}
