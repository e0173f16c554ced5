//! The real `npm` CLI against the example registry: log in, tokens, publish, install,
//! IP allow-lists, revocation, and a restart.
//!
//! Runs whenever `npm` is on PATH and says plainly when it skips. With
//! `TOKENGATE_REQUIRE_NPM=1` (as `.ci/run` sets it) a missing `npm` is a failure;
//! `TOKENGATE_NPM_TESTS_RUN_ELSEWHERE=1` says another step runs it.
//!
//! Written for npm 11 and npm 12 (`.ci/run` runs it with both). npm 12 has no
//! `npm adduser`, so users are made with `npm login --auth-type=legacy`, and no `npm star`,
//! `unstar` or `stars`: the steps that type them run under npm 11 only, and say on stderr
//! that they did not run under npm 12.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::npm::{Npm, npm_has, npm_major, npm_version, step_runs};
use support::registry::{PASSWORD, Registry, add_user, http, http_from};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// util-linux `script`, which gives npm's logins the terminal npm reads passwords from.
fn script_is_available() -> bool {
    std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("util-linux"))
}

impl Npm {
    /// Makes the user `user` (email `<user>@example.com`) and logs in as it, into
    /// [`Npm::session_config`], answering npm's prompts on a pseudo-terminal (npm reads
    /// passwords from a terminal only). npm 11: `npm adduser` (npm falls back from web
    /// sign-up to the CouchDB login the registry speaks). npm 12 has no `adduser`:
    /// `npm login --auth-type=legacy`, which sends no email, then `npm profile set email`.
    async fn make_user(&self, user: &str) {
        let email = format!("{user}@example.com");
        let mut answers = vec![
            ("Username:", Answer::Text(user.to_owned())),
            ("Password:", Answer::Text(PASSWORD.to_owned())),
        ];
        let adduser = npm_has("adduser");
        let command_line = if adduser {
            answers.push(("Email", Answer::Text(email.clone())));
            "npm adduser"
        } else {
            "npm login --auth-type=legacy"
        };
        let session = self.session_config();
        let (ok, seen) = self
            .interactive(&session, command_line, &answers, None)
            .await;
        assert!(
            ok && seen.contains("Logged in"),
            "{command_line} failed:\n{seen}"
        );
        if !adduser {
            self.ok(&session, &self.root, &["profile", "set", "email", &email])
                .await;
        }
    }

    /// Runs `command_line` (a shell command) on a pseudo-terminal with `config`, answering
    /// each prompt in turn as it appears; returns whether it succeeded and all it printed.
    async fn interactive(
        &self,
        config: &Path,
        command_line: &str,
        answers: &[(&str, Answer)],
        mut authenticator: Option<&mut Authenticator>,
    ) -> (bool, String) {
        let mut command = self.command("script", config, &self.root);
        command
            .args(["-qec", command_line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .expect("`script` (util-linux) gives npm a terminal");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let dialogue = async {
            let mut seen = String::new();
            let mut next = 0;
            let mut buffer = [0u8; 4096];
            loop {
                let read = stdout.read(&mut buffer).await.unwrap();
                if read == 0 {
                    return seen;
                }
                seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
                let Some((prompt, answer)) = answers.get(next) else {
                    continue;
                };
                // Each prompt is looked for after the previous answer.
                if !seen
                    .rsplit_once(ANSWERED)
                    .map_or(seen.as_str(), |(_, rest)| rest)
                    .contains(prompt)
                {
                    continue;
                }
                let text = match answer {
                    Answer::Text(text) => text.clone(),
                    Answer::Code => {
                        let authenticator = authenticator.as_deref_mut().expect("an authenticator");
                        authenticator.learn(&seen);
                        authenticator.code().await
                    }
                };
                stdin
                    .write_all(format!("{text}\n").as_bytes())
                    .await
                    .unwrap();
                seen.push_str(ANSWERED);
                next += 1;
            }
        };
        let seen = tokio::time::timeout(Duration::from_secs(120), dialogue)
            .await
            .unwrap_or_else(|_| panic!("{command_line} finished within 120 s"));
        let status = child.wait().await.unwrap();
        (status.success(), seen)
    }
}

/// What the stars steps type: npm 12 has none of these.
const STARS: &[&str] = &["star", "unstar", "stars"];

/// Marks, in what a dialogue saw, where an answer was given.
const ANSWERED: &str = "\u{1}answered\u{1}";

/// What to type at a prompt.
enum Answer {
    Text(String),
    /// A fresh one-time password from the authenticator.
    Code,
}

/// An authenticator app: learns the secret npm prints while 2FA is set up, and gives each
/// code once.
#[derive(Default)]
struct Authenticator {
    secret: Option<tokengate::TotpSecret>,
    last_step: Option<u64>,
}

impl Authenticator {
    /// Reads the secret from `npm profile enable-2fa`'s "Or enter code: <secret>".
    fn learn(&mut self, seen: &str) {
        if self.secret.is_some() {
            return;
        }
        if let Some((_, rest)) = seen.rsplit_once("Or enter code:") {
            let secret = rest
                .split_whitespace()
                .next()
                .expect("the secret after the prompt");
            self.secret = Some(support::totp_from_url(&format!(
                "otpauth://x?secret={secret}"
            )));
        }
    }

    async fn code(&mut self) -> String {
        let secret = self
            .secret
            .as_ref()
            .expect("2FA was set up, and its secret seen");
        support::fresh_code(secret, &mut self.last_step).await
    }
}

fn created_token(output: &str) -> String {
    output
        .split_whitespace()
        .skip_while(|word| *word != "token")
        .nth(1)
        .filter(|token| token.starts_with("npm_"))
        .unwrap_or_else(|| panic!("no token in: {output}"))
        .to_owned()
}

/// Whether npm and `script` are here to run a test (and no other step runs it); says so
/// plainly when they are not, and fails when `TOKENGATE_REQUIRE_NPM=1` asks for them.
fn npm_ready(test: &str) -> bool {
    if support::runs_elsewhere(test, "TOKENGATE_REQUIRE_NPM") {
        return false;
    }
    let missing = match (npm_version().is_some(), script_is_available()) {
        (true, true) => return true,
        (false, _) => "npm is not on PATH",
        (true, false) => "util-linux `script` is not on PATH (npm needs a terminal to log in)",
    };
    assert!(
        std::env::var("TOKENGATE_REQUIRE_NPM").as_deref() != Ok("1"),
        "TOKENGATE_REQUIRE_NPM=1 but {missing}"
    );
    support::skipped(&format!("{missing}, so {test} did not run"));
    false
}

/// A registry with two users logged in through npm, alice and bob, and an npm config
/// with no token.
struct TwoUsers {
    work: tempfile::TempDir,
    registry: Registry,
    alice: Npm,
    bob: Npm,
    alice_session: PathBuf,
    bob_session: PathBuf,
    anonymous: PathBuf,
}

impl TwoUsers {
    async fn start() -> Self {
        let work = tempfile::tempdir().unwrap();
        let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
        let alice = Npm::new(&work.path().join("alice"), &registry.url);
        let bob = Npm::new(&work.path().join("bob"), &registry.url);
        alice.make_user("alice").await;
        bob.make_user("bob").await;
        let anonymous = work.path().join("anonymous.npmrc");
        std::fs::write(&anonymous, "").unwrap();
        Self {
            alice_session: alice.session_config(),
            bob_session: bob.session_config(),
            work,
            registry,
            alice,
            bob,
            anonymous,
        }
    }
}

/// A folder holding a package.json for `name` at `version`, ready to publish.
fn package_dir(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(name.replace('/', "__"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        format!(r#"{{"name":"{name}","version":"{version}","main":"index.js"}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        format!("module.exports = '{name}';\n"),
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_npm_cli_against_the_example_registry() {
    if !npm_ready("the npm CLI test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let registry = Registry::start("127.0.0.1:0", &data).await;
    let npm = Npm::new(&work.path().join("npm"), &registry.url);
    let session = npm.session_config();
    let here = work.path();

    // Log in (this creates the user) and ask who we are.
    npm.make_user("alice").await;
    assert_eq!(npm.ok(&session, here, &["whoami"]).await.trim(), "alice");

    // Three tokens, as `npm token create` makes them.
    let password = format!("--password={PASSWORD}");
    let full = created_token(
        &npm.ok(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--name=full",
                "--packages-and-scopes-permission=read-write",
            ],
        )
        .await,
    );
    let read_only = created_token(
        &npm.ok(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--name=ci",
                "--packages-and-scopes-permission=read-only",
            ],
        )
        .await,
    );
    // npm 11 and 12 take `--read-only` and send nothing of it: the registry refuses the
    // request rather than make the publishing token it would otherwise look like.
    let refused = npm
        .fails(
            &session,
            here,
            &["token", "create", &password, "--read-only"],
        )
        .await;
    assert!(refused.contains("do not send --read-only"), "{refused}");
    let office_output = npm
        .ok(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--name=office",
                "--packages-and-scopes-permission=read-write",
                "--cidr=10.0.0.0/8",
            ],
        )
        .await;
    assert!(
        office_output.contains("with IP whitelist: 10.0.0.0/8"),
        "{office_output}"
    );
    let office = created_token(&office_output);

    // `npm token list` shows each, truncated, and nothing more of them.
    let listed = npm.ok(&session, here, &["token", "list"]).await;
    for token in [&full, &read_only, &office] {
        assert!(listed.contains(&format!("{}…", &token[..10])), "{listed}");
        assert!(
            !listed.contains(&token[..20]),
            "a listing shows too much: {listed}"
        );
    }
    assert!(listed.contains("with IP whitelist: 10.0.0.0/8"), "{listed}");
    let json = npm.ok(&session, here, &["token", "list", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let by_name = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no token named {name}: {listed}"))
            .clone()
    };
    assert_eq!(by_name("ci")["readonly"], true);
    assert_eq!(by_name("full")["readonly"], false);
    let full_key = by_name("full")["key"].as_str().unwrap().to_owned();

    // A package to publish.
    let package = package_dir(work.path(), "@demo/hello", "1.0.0");

    let read_only_config = npm.config_with("read-only", &read_only);
    let full_config = npm.config_with("full", &full);
    let office_config = npm.config_with("office", &office);

    let refused = npm
        .fails(&read_only_config, &package, &["publish", "--access=public"])
        .await;
    assert!(
        refused.contains("403") && refused.contains("read-only"),
        "{refused}"
    );
    let published = npm
        .ok(&full_config, &package, &["publish", "--access=public"])
        .await;
    assert!(published.contains("@demo/hello@1.0.0"), "{published}");
    npm.fails(&full_config, &package, &["publish", "--access=public"])
        .await;

    // Install it into a fresh project with the read-only token.
    let install = |dir: &'static str| {
        let project = work.path().join(dir);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("package.json"),
            r#"{"name":"app","version":"0.0.0"}"#,
        )
        .unwrap();
        project
    };
    let app = install("app");
    npm.ok(&read_only_config, &app, &["install", "@demo/hello"])
        .await;
    let installed = std::fs::read_to_string(app.join("node_modules/@demo/hello/index.js")).unwrap();
    assert!(installed.contains("@demo/hello"));

    // The CIDR-bound token, used from 127.0.0.1.
    let refused = npm.fails(&office_config, here, &["whoami"]).await;
    assert!(
        refused.contains("Login is not allowed from your IP address"),
        "{refused}"
    );

    // Revoke by id: refused on the very next command.
    let removed = npm
        .ok(&session, here, &["token", "revoke", &full_key])
        .await;
    assert!(removed.contains("Removed 1 token"), "{removed}");
    let refused = npm.fails(&full_config, here, &["whoami"]).await;
    assert!(
        refused.contains("E401") || refused.contains("401"),
        "{refused}"
    );

    // A bad CIDR entry.
    let refused = npm
        .fails(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--packages-and-scopes-permission=read-write",
                "--cidr=10.0.0.300/8",
            ],
        )
        .await;
    assert!(
        refused.contains("CIDR whitelist contains invalid CIDR entry: 10.0.0.300/8"),
        "{refused}"
    );

    // Restart on the same address and data: every token and package is still there.
    let listen = registry.addr.to_string();
    registry.stop().await;
    let registry = Registry::start(&listen, &data).await;
    assert_eq!(npm.ok(&session, here, &["whoami"]).await.trim(), "alice");
    assert_eq!(
        npm.ok(&read_only_config, here, &["whoami"]).await.trim(),
        "alice"
    );
    npm.fails(&full_config, here, &["whoami"]).await;
    npm.fails(&office_config, here, &["whoami"]).await;
    let version = npm
        .ok(&read_only_config, here, &["view", "@demo/hello", "version"])
        .await;
    assert_eq!(version.trim(), "1.0.0");
    let again = install("app-after-restart");
    npm.ok(&read_only_config, &again, &["install", "@demo/hello"])
        .await;
    let listed = npm.ok(&session, here, &["token", "list"]).await;
    assert!(
        listed.contains(&read_only[..10]) && !listed.contains(&full[..10]),
        "{listed}"
    );

    // Logging out revokes the session token on the server, not just in the config.
    let session_token = std::fs::read_to_string(&session)
        .unwrap()
        .lines()
        .find_map(|line| {
            line.split_once(":_authToken=")
                .map(|(_, t)| t.trim().to_owned())
        })
        .expect("npm's login saved a token");
    npm.ok(&session, here, &["logout"]).await;
    let old_session = npm.config_with("old-session", &session_token);
    npm.fails(&old_session, here, &["whoami"]).await;
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granular_tokens_through_the_real_npm_cli() {
    if !npm_ready("the granular-token npm CLI test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
    let npm = Npm::new(&work.path().join("alice"), &registry.url);
    let session = npm.session_config();
    let here = work.path();
    npm.make_user("alice").await;
    let password = format!("--password={PASSWORD}");

    // The login session is not in the list.
    let listed = npm.ok(&session, here, &["token", "list", "--json"]).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed).unwrap(),
        serde_json::json!([])
    );

    let create = |args: &'static [&'static str]| {
        let mut all = vec!["token", "create", password.as_str()];
        all.extend_from_slice(args);
        let npm = &npm;
        let session = &session;
        async move { npm.run(session, here, &all).await }
    };
    let (ok, one_package) = create(&[
        "--name=a only",
        "--packages=@alice/a",
        "--packages-and-scopes-permission=read-write",
    ])
    .await;
    assert!(ok, "{one_package}");
    let one_package = created_token(&one_package);
    let (ok, scope) = create(&[
        "--name=alice scope",
        "--scopes=@alice",
        "--packages-and-scopes-permission=read-write",
    ])
    .await;
    assert!(ok, "{scope}");
    let scope = created_token(&scope);
    let (ok, reader) = create(&[
        "--name=reader",
        "--packages-all",
        "--packages-and-scopes-permission=read-only",
    ])
    .await;
    assert!(ok, "{reader}");
    let reader = created_token(&reader);

    // npm's lifetime policy: a write token for a year is refused, with the limit.
    let (ok, refused) = create(&[
        "--expires=365",
        "--packages-and-scopes-permission=read-write",
    ])
    .await;
    assert!(!ok && refused.contains("at most 90 days"), "{refused}");
    // An organisation without its permission is refused by name, not taken for all.
    let (ok, refused) = create(&["--orgs=acme"]).await;
    assert!(
        !ok && refused.contains("orgs_permission is missing"),
        "{refused}"
    );

    let listed = npm.ok(&session, here, &["token", "list"]).await;
    for name in ["a only", "alice scope", "reader"] {
        assert!(listed.contains(&format!("name {name}")), "{listed}");
    }
    assert_eq!(
        listed.matches("Token npm_").count(),
        3,
        "only the three: {listed}"
    );

    let one_package = npm.config_with("one-package", &one_package);
    let scope = npm.config_with("scope", &scope);
    let reader = npm.config_with("reader", &reader);
    let a = package_dir(here, "@alice/a", "1.0.0");
    let b = package_dir(here, "@alice/b", "1.0.0");
    let plain = package_dir(here, "plain-package", "1.0.0");
    let publish = ["publish", "--access=public"];

    // A token for @alice/a publishes @alice/a, and gets npm's E403 on @alice/b.
    npm.ok(&one_package, &a, &publish).await;
    let refused = npm.fails(&one_package, &b, &publish).await;
    assert!(
        refused.contains("E403") && refused.contains("this token has no access to @alice/b"),
        "{refused}"
    );
    // A scope token publishes inside its scope only.
    npm.ok(&scope, &b, &publish).await;
    let refused = npm.fails(&scope, &plain, &publish).await;
    assert!(
        refused.contains("E403") && refused.contains("plain-package"),
        "{refused}"
    );
    // An all-packages read-only token installs but cannot publish.
    let app = here.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"app","version":"0.0.0"}"#,
    )
    .unwrap();
    npm.ok(&reader, &app, &["install", "@alice/a", "@alice/b"])
        .await;
    assert!(app.join("node_modules/@alice/b/index.js").exists());
    let refused = npm.fails(&reader, &plain, &publish).await;
    assert!(refused.contains("E403"), "{refused}");

    // Bob cannot publish into alice's scope.
    let bob = Npm::new(&work.path().join("bob"), &registry.url);
    bob.make_user("bob").await;
    let c = package_dir(here, "@alice/c", "1.0.0");
    let refused = bob.fails(&bob.session_config(), &c, &publish).await;
    assert!(
        refused.contains("E403") && refused.contains("scope @alice"),
        "{refused}"
    );
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_packages_through_the_real_npm_cli() {
    if !npm_ready("the private-package npm CLI test") {
        return;
    }
    let scene = TwoUsers::start().await;
    let TwoUsers {
        registry,
        alice,
        bob,
        alice_session,
        bob_session,
        anonymous,
        ..
    } = &scene;
    let here = scene.work.path();
    let password = format!("--password={PASSWORD}");

    // A restricted publish, and a scoped one without --access, which npm makes private.
    let secret = package_dir(here, "@alice/secret", "1.0.0");
    alice
        .ok(alice_session, &secret, &["publish", "--access=restricted"])
        .await;
    let quiet = package_dir(here, "@alice/quiet", "1.0.0");
    alice.ok(alice_session, &quiet, &["publish"]).await;
    let status = alice
        .ok(
            alice_session,
            here,
            &["access", "get", "status", "@alice/quiet"],
        )
        .await;
    assert!(status.contains("private"), "{status}");

    // Invisible anonymously and to bob: npm's E404, as for a package that does not exist.
    for (who, config) in [("anonymous", &anonymous), ("bob", &bob_session)] {
        let refused = alice.fails(config, here, &["view", "@alice/secret"]).await;
        assert!(refused.contains("E404"), "{who}: {refused}");
        let listed = alice
            .ok(
                config,
                here,
                &["access", "list", "packages", "alice", "--json"],
            )
            .await;
        assert!(!listed.contains("@alice/secret"), "{who}: {listed}");
    }
    let listed = alice
        .ok(
            alice_session,
            here,
            &["access", "list", "packages", "--json"],
        )
        .await;
    assert!(
        listed.contains("@alice/secret") && listed.contains("@alice/quiet"),
        "{listed}"
    );

    // CI: a project whose lockfile names the private package, an .npmrc that takes the
    // token from the environment, and alice's read-only token there: `npm ci` installs it.
    let read_only = created_token(
        &alice
            .ok(
                alice_session,
                here,
                &[
                    "token",
                    "create",
                    &password,
                    "--packages-and-scopes-permission=read-only",
                ],
            )
            .await,
    );
    let project = here.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"0.0.0"}"#,
    )
    .unwrap();
    alice
        .ok(alice_session, &project, &["install", "@alice/secret"])
        .await;
    assert!(project.join("package-lock.json").exists());
    let ci = here.join("ci-checkout");
    std::fs::create_dir_all(&ci).unwrap();
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(project.join(file), ci.join(file)).unwrap();
    }
    token_from_environment(&ci, &registry.url);
    // Each run with a cache of its own, as on a CI machine: only the registry can answer.
    let cache = |name: &str| here.join(name).to_string_lossy().into_owned();
    let (with_token, without_token) = (cache("ci-cache-1"), cache("ci-cache-2"));
    let env = [
        ("NPM_TOKEN", read_only.as_str()),
        ("npm_config_cache", &with_token),
    ];
    let (ok, output) = alice.run_with(anonymous, &ci, &["ci"], &env).await;
    assert!(ok, "npm ci with the read-only token: {output}");
    assert!(ci.join("node_modules/@alice/secret/index.js").exists());
    let env = [("NPM_TOKEN", ""), ("npm_config_cache", &without_token)];
    let (ok, output) = alice.run_with(anonymous, &ci, &["ci"], &env).await;
    assert!(
        !ok && output.contains("E404"),
        "npm ci without a token installed a private package: {output}"
    );

    // A granular token for another package cannot read it.
    let other = created_token(
        &alice
            .ok(
                alice_session,
                here,
                &[
                    "token",
                    "create",
                    &password,
                    "--packages=@alice/quiet",
                    "--packages-and-scopes-permission=read-only",
                ],
            )
            .await,
    );
    let other = alice.config_with("other-package", &other);
    let refused = alice.fails(&other, here, &["view", "@alice/secret"]).await;
    assert!(refused.contains("E404"), "{refused}");
    alice
        .ok(&other, here, &["view", "@alice/quiet", "version"])
        .await;

    // `npm owner add bob`: he installs and publishes it; `npm owner rm bob`: both stop.
    alice
        .ok(
            alice_session,
            here,
            &["owner", "add", "bob", "@alice/secret"],
        )
        .await;
    let owners = alice
        .ok(alice_session, here, &["owner", "ls", "@alice/secret"])
        .await;
    assert!(
        owners.contains("alice <alice@example.com>") && owners.contains("bob <bob@example.com>"),
        "{owners}"
    );
    let collaborators = alice
        .ok(
            bob_session,
            here,
            &["access", "list", "collaborators", "@alice/secret", "--json"],
        )
        .await;
    assert!(collaborators.contains("bob"), "{collaborators}");
    let bobs_app = here.join("bobs-app");
    std::fs::create_dir_all(&bobs_app).unwrap();
    std::fs::write(
        bobs_app.join("package.json"),
        r#"{"name":"bobs","version":"0.0.0"}"#,
    )
    .unwrap();
    bob.ok(bob_session, &bobs_app, &["install", "@alice/secret"])
        .await;
    let secret_next = package_dir(&here.join("next"), "@alice/secret", "1.1.0");
    bob.ok(bob_session, &secret_next, &["publish"]).await;
    alice
        .ok(
            alice_session,
            here,
            &["owner", "rm", "bob", "@alice/secret"],
        )
        .await;
    let refused = bob
        .fails(bob_session, here, &["view", "@alice/secret"])
        .await;
    assert!(refused.contains("E404"), "{refused}");
    let secret_later = package_dir(&here.join("later"), "@alice/secret", "1.2.0");
    bob.fails(bob_session, &secret_later, &["publish"]).await;

    // A package 2FA rule needs the account's own 2FA first: refused by name, not ignored.
    let refused = alice
        .fails(
            alice_session,
            here,
            &["access", "set", "mfa=publish", "@alice/secret"],
        )
        .await;
    assert!(refused.contains("two-factor"), "{refused}");

    // `npm access set status=public`: everyone reads it.
    alice
        .ok(
            alice_session,
            here,
            &["access", "set", "status=public", "@alice/secret"],
        )
        .await;
    let version = alice
        .ok(anonymous, here, &["view", "@alice/secret", "version"])
        .await;
    assert_eq!(version.trim(), "1.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_authentication_through_the_real_npm_cli() {
    if !npm_ready("the two-factor npm CLI test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
    let here = work.path();
    let npm = Npm::new(&here.join("alice"), &registry.url);
    npm.make_user("alice").await;
    let session = npm.session_config();
    let mut phone = Authenticator::default();

    // `npm profile enable-2fa`: the password, the secret shown, the first code, then
    // recovery codes.
    let (ok, enrolled) = npm
        .interactive(
            &session,
            "npm profile enable-2fa auth-and-writes",
            &[
                ("npm password:", Answer::Text(PASSWORD.to_owned())),
                ("OTP code", Answer::Code),
            ],
            Some(&mut phone),
        )
        .await;
    assert!(
        ok && enrolled.contains("2FA successfully enabled"),
        "{enrolled}"
    );
    let recovery: Vec<String> = enrolled
        .split_whitespace()
        .filter(|word| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery.len(), 10, "{enrolled}");
    let profile = npm.ok(&session, here, &["profile", "get"]).await;
    assert!(
        profile.contains("two-factor auth: auth-and-writes"),
        "{profile}"
    );

    // A publish without a code fails with npm's one-time-password error; with one it
    // works; the same code again does not.
    let v1 = package_dir(here, "tfa-pkg", "1.0.0");
    let refused = npm.fails(&session, &v1, &["publish"]).await;
    assert!(refused.contains("one-time password"), "{refused}");
    let code = phone.code().await;
    npm.ok(&session, &v1, &["publish", &format!("--otp={code}")])
        .await;
    let v2 = package_dir(&here.join("next"), "tfa-pkg", "1.0.1");
    let refused = npm
        .fails(&session, &v2, &["publish", &format!("--otp={code}")])
        .await;
    assert!(
        refused.contains("one-time password"),
        "a replayed code: {refused}"
    );

    // A token made with --bypass-2fa (which itself takes a code) publishes without one.
    let password = format!("--password={PASSWORD}");
    let otp = format!("--otp={}", phone.code().await);
    let robot = created_token(
        &npm.ok(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--packages-and-scopes-permission=read-write",
                "--bypass-2fa",
                &otp,
            ],
        )
        .await,
    );
    let robot = npm.config_with("robot", &robot);
    npm.ok(&robot, &v2, &["publish"]).await;

    // `npm access set mfa=publish`: now even the bypass token is asked for a code;
    // `mfa=automation` lets it through again. (A recovery code stands in for a code.)
    let recovery_otp = |i: usize| format!("--otp={}", recovery[i]);
    npm.ok(
        &session,
        here,
        &["access", "set", "mfa=publish", "tfa-pkg", &recovery_otp(2)],
    )
    .await;
    let v2b = package_dir(&here.join("asks"), "tfa-pkg", "1.0.1-b");
    let refused = npm.fails(&robot, &v2b, &["publish", "--tag=beta"]).await;
    assert!(refused.contains("one-time password"), "{refused}");
    npm.ok(
        &session,
        here,
        &[
            "access",
            "set",
            "mfa=automation",
            "tfa-pkg",
            &recovery_otp(3),
        ],
    )
    .await;
    npm.ok(&robot, &v2b, &["publish", "--tag=beta"]).await;
    npm.ok(
        &session,
        here,
        &["access", "set", "mfa=none", "tfa-pkg", &recovery_otp(4)],
    )
    .await;

    // `npm login` (the password login; its web login is in tests/browser.rs) asks for a code
    // at its prompt; a recovery code logs in once, never again.
    let login_answers = |code: &str| {
        [
            ("Username:", Answer::Text("alice".to_owned())),
            ("Password:", Answer::Text(PASSWORD.to_owned())),
            ("OTP", Answer::Text(code.to_owned())),
        ]
    };
    let fresh_config = here.join("login.npmrc");
    std::fs::write(&fresh_config, "").unwrap();
    let (ok, seen) = npm
        .interactive(
            &fresh_config,
            "npm login --auth-type=legacy",
            &login_answers(&recovery[0]),
            None,
        )
        .await;
    assert!(ok && seen.contains("Logged in"), "{seen}");
    std::fs::write(&fresh_config, "").unwrap();
    let (ok, seen) = npm
        .interactive(
            &fresh_config,
            "npm login --auth-type=legacy",
            &login_answers(&recovery[0]),
            None,
        )
        .await;
    assert!(!ok, "a recovery code logged in twice: {seen}");

    // `npm profile disable-2fa` needs the password and a right code.
    let disable = |code: Answer| {
        [
            ("npm password:", Answer::Text(PASSWORD.to_owned())),
            ("OTP", code),
        ]
    };
    let (ok, seen) = npm
        .interactive(
            &session,
            "npm profile disable-2fa",
            &disable(Answer::Text("000000".into())),
            None,
        )
        .await;
    assert!(!ok, "disabled with a wrong code: {seen}");
    let (ok, seen) = npm
        .interactive(
            &session,
            "npm profile disable-2fa",
            &disable(Answer::Code),
            Some(&mut phone),
        )
        .await;
    assert!(
        ok && seen.contains("Two factor authentication disabled"),
        "{seen}"
    );
    let v3 = package_dir(&here.join("plain"), "tfa-pkg", "1.0.2");
    npm.ok(&session, &v3, &["publish"]).await;

    // Nothing of the secret or the codes is in the registry's files or log in clear.
    let data = here.join("data");
    let files = std::process::Command::new("grep")
        .args(["-r", "-l", &recovery[1]])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        files.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&files.stdout)
    );
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_what_npm_asks() {
    if !npm_ready("the ping, search, star and profile npm CLI test") {
        return;
    }
    let scene = TwoUsers::start().await;
    let TwoUsers {
        alice,
        bob,
        alice_session,
        bob_session,
        anonymous,
        ..
    } = &scene;
    let here = scene.work.path();

    // `npm ping` and `npm doctor ping`.
    let pong = alice.ok(anonymous, here, &["ping"]).await;
    assert!(pong.contains("PONG"), "{pong}");
    alice.ok(anonymous, here, &["doctor", "ping"]).await;

    // Packages to find: the exact name, a prefix, a word inside, a description, a private.
    let publish = |name: &'static str, description: &'static str, access: &'static str| {
        let dir = here.join("src").join(name.replace('/', "__"));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = serde_json::json!({
            "name": name, "version": "1.0.0", "description": description,
            "keywords": ["greeting"], "main": "index.js"
        });
        std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(dir.join("index.js"), "module.exports = 1;\n").unwrap();
        std::fs::write(dir.join("README.md"), format!("# {name}\n\nSays hello.\n")).unwrap();
        let alice = &alice;
        let session = &alice_session;
        async move {
            alice
                .ok(session, &dir, &["publish", &format!("--access={access}")])
                .await;
        }
    };
    publish("hello", "the original", "public").await;
    publish("hello-x", "a better one", "public").await;
    publish("say-hello", "politely", "public").await;
    publish("greeter", "says hello to you", "public").await;
    publish("@alice/hello-secret", "hello, privately", "restricted").await;

    let names = |json: &str| -> Vec<String> {
        serde_json::from_str::<serde_json::Value>(json)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let found = alice
        .ok(anonymous, here, &["search", "hello", "--json"])
        .await;
    assert_eq!(
        names(&found),
        ["hello", "hello-x", "say-hello", "greeter"],
        "{found}"
    );
    let found = alice
        .ok(alice_session, here, &["search", "hello", "--json"])
        .await;
    assert!(
        names(&found).contains(&"@alice/hello-secret".to_owned()),
        "{found}"
    );
    let found = alice
        .ok(bob_session, here, &["search", "hello", "--json"])
        .await;
    assert!(!found.contains("hello-secret"), "{found}");
    let listed: serde_json::Value = serde_json::from_str(
        &alice
            .ok(anonymous, here, &["search", "hello-x", "--json"])
            .await,
    )
    .unwrap();
    let first = &listed[0];
    assert_eq!(first["version"], "1.0.0");
    assert_eq!(first["description"], "a better one");
    assert_eq!(first["publisher"]["username"], "alice");
    assert_eq!(first["maintainers"][0]["email"], "alice@example.com");
    assert!(first["date"].is_string(), "{first}");

    // Stars: a write like any other, each user's own.
    if step_runs(
        "the stars part of the ping, search, star and profile test",
        STARS,
    ) {
        let starred = bob.ok(bob_session, here, &["star", "hello-x"]).await;
        assert!(starred.contains("hello-x"), "{starred}");
        let stars = bob.ok(bob_session, here, &["stars"]).await;
        assert_eq!(stars.trim(), "hello-x");
        let stars = bob.ok(alice_session, here, &["stars", "bob"]).await;
        assert_eq!(stars.trim(), "hello-x");
        let password = format!("--password={PASSWORD}");
        let read_only = created_token(
            &bob.ok(
                bob_session,
                here,
                &[
                    "token",
                    "create",
                    &password,
                    "--packages-and-scopes-permission=read-only",
                ],
            )
            .await,
        );
        let read_only = bob.config_with("read-only", &read_only);
        let refused = bob.fails(&read_only, here, &["star", "hello"]).await;
        assert!(refused.contains("E403"), "{refused}");
        bob.ok(bob_session, here, &["unstar", "hello-x"]).await;
        let stars = bob.ok(bob_session, here, &["stars"]).await;
        assert!(!stars.contains("hello-x"), "{stars}");
    }

    // What `npm view` and `npm owner ls` show of a publish.
    let owners = alice.ok(anonymous, here, &["owner", "ls", "hello-x"]).await;
    assert_eq!(owners.trim(), "alice <alice@example.com>");
    let readme = alice
        .ok(anonymous, here, &["view", "hello-x", "readme"])
        .await;
    assert!(readme.contains("Says hello."), "{readme}");
    let publisher = alice
        .ok(anonymous, here, &["view", "hello-x", "_npmUser"])
        .await;
    assert!(
        publisher.contains("alice <alice@example.com>"),
        "{publisher}"
    );
    let maintainers = alice
        .ok(anonymous, here, &["view", "hello-x", "maintainers"])
        .await;
    assert!(
        maintainers.contains("alice <alice@example.com>"),
        "{maintainers}"
    );
    let time = alice
        .ok(anonymous, here, &["view", "hello-x", "time", "--json"])
        .await;
    assert!(time.contains("\"1.0.0\""), "{time}");

    // `npm profile get` and `set`; a new password needs the old one and ends other sessions.
    alice
        .ok(
            alice_session,
            here,
            &["profile", "set", "fullname", "Alice Liddell"],
        )
        .await;
    alice
        .ok(
            alice_session,
            here,
            &["profile", "set", "homepage", "https://example.com/alice"],
        )
        .await;
    let refused = alice
        .fails(
            alice_session,
            here,
            &["profile", "set", "homepage", "javascript:alert(1)"],
        )
        .await;
    assert!(refused.contains("invalid homepage"), "{refused}");
    let profile = alice.ok(alice_session, here, &["profile", "get"]).await;
    assert!(profile.contains("fullname: Alice Liddell"), "{profile}");
    assert!(profile.contains("email: alice@example.com"), "{profile}");
    assert!(profile.contains("two-factor auth: disabled"), "{profile}");
    for field in ["created: ", "updated: "] {
        let line = profile.lines().find(|line| line.starts_with(field));
        assert!(
            line.is_some_and(|line| line.len() > field.len() + 10),
            "{profile}"
        );
    }

    let other_session = here.join("other.npmrc");
    std::fs::write(&other_session, "").unwrap();
    let answers = [
        ("Username:", Answer::Text("alice".to_owned())),
        ("Password:", Answer::Text(PASSWORD.to_owned())),
    ];
    let (ok, seen) = alice
        .interactive(
            &other_session,
            "npm login --auth-type=legacy",
            &answers,
            None,
        )
        .await;
    assert!(ok, "{seen}");
    alice.ok(&other_session, here, &["whoami"]).await;
    let new_password = "an even better horse";
    let answers = [
        ("Current password:", Answer::Text(PASSWORD.to_owned())),
        ("New password:", Answer::Text(new_password.to_owned())),
        ("Again:", Answer::Text(new_password.to_owned())),
    ];
    let (ok, seen) = alice
        .interactive(alice_session, "npm profile set password", &answers, None)
        .await;
    assert!(ok, "{seen}");
    alice.ok(alice_session, here, &["whoami"]).await;
    let refused = alice.fails(&other_session, here, &["whoami"]).await;
    assert!(
        refused.contains("401"),
        "the other session still works: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dist_tags_deprecation_and_unpublish_through_the_real_npm_cli() {
    if !npm_ready("the dist-tag, deprecate and unpublish npm CLI test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
    let here = work.path();
    let npm = Npm::new(&here.join("alice"), &registry.url);
    npm.make_user("alice").await;
    let session = npm.session_config();
    let password = format!("--password={PASSWORD}");
    let reader = created_token(
        &npm.ok(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--packages-and-scopes-permission=read-only",
            ],
        )
        .await,
    );
    let reader = npm.config_with("reader", &reader);
    let other = created_token(
        &npm.ok(
            &session,
            here,
            &[
                "token",
                "create",
                &password,
                "--packages=something-else",
                "--packages-and-scopes-permission=read-write",
            ],
        )
        .await,
    );
    let other = npm.config_with("other", &other);

    // `--tag beta` tags the prerelease and leaves `latest` where it was.
    for (version, tag) in [
        ("1.0.0", None),
        ("2.0.0-beta.1", Some("beta")),
        ("1.1.0", None),
    ] {
        let dir = package_dir(&here.join(version), "tagged", version);
        let mut args = vec!["publish".to_owned()];
        if let Some(tag) = tag {
            args.push(format!("--tag={tag}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        npm.ok(&session, &dir, &args).await;
    }
    let tags = npm.ok(&session, here, &["dist-tag", "ls", "tagged"]).await;
    assert!(
        tags.contains("latest: 1.1.0") && tags.contains("beta: 2.0.0-beta.1"),
        "{tags}"
    );

    // dist-tag add and rm: writes, refused to read-only and to other packages' tokens.
    npm.ok(
        &session,
        here,
        &["dist-tag", "add", "tagged@1.0.0", "stable"],
    )
    .await;
    for refused_config in [&reader, &other] {
        let refused = npm
            .fails(
                refused_config,
                here,
                &["dist-tag", "add", "tagged@1.0.0", "old"],
            )
            .await;
        assert!(refused.contains("E403"), "{refused}");
    }
    npm.ok(&session, here, &["dist-tag", "rm", "tagged", "beta"])
        .await;
    let tags = npm.ok(&session, here, &["dist-tag", "ls", "tagged"]).await;
    assert!(
        tags.contains("stable: 1.0.0") && !tags.contains("beta"),
        "{tags}"
    );

    // deprecate: the message shows in `npm view`; a read-only token cannot.
    let refused = npm
        .fails(&reader, here, &["deprecate", "tagged@1.0.0", "use 1.1"])
        .await;
    assert!(refused.contains("E403"), "{refused}");
    npm.ok(&session, here, &["deprecate", "tagged@1.0.0", "use 1.1"])
        .await;
    let deprecated = npm
        .ok(&session, here, &["view", "tagged@1.0.0", "deprecated"])
        .await;
    assert_eq!(deprecated.trim(), "use 1.1");

    // unpublish one version, then the whole package.
    let refused = npm
        .fails(&reader, here, &["unpublish", "tagged@1.0.0", "--force"])
        .await;
    assert!(refused.contains("E403"), "{refused}");
    npm.ok(&session, here, &["unpublish", "tagged@1.0.0", "--force"])
        .await;
    let versions = npm
        .ok(&session, here, &["view", "tagged", "versions", "--json"])
        .await;
    assert!(
        !versions.contains("\"1.0.0\"") && versions.contains("1.1.0"),
        "{versions}"
    );
    let tags = npm.ok(&session, here, &["dist-tag", "ls", "tagged"]).await;
    assert!(
        !tags.contains("stable"),
        "a tag of a removed version stays: {tags}"
    );
    npm.ok(&session, here, &["unpublish", "tagged", "--force"])
        .await;
    let gone = npm.fails(&session, here, &["view", "tagged"]).await;
    assert!(gone.contains("E404"), "{gone}");
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_web_login_opened_elsewhere_needs_the_persons_confirmation() {
    if !npm_ready("the npm web login test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
    add_user(registry.addr, "alice").await;
    let npm = Npm::new(&work.path().join("npm"), &registry.url);
    let config = work.path().join("web-login.npmrc");
    std::fs::write(&config, "").unwrap();
    let origin = registry.url.trim_end_matches('/').to_owned();

    // npm login runs at 127.0.0.1 (an attacker's terminal, or the person's own over SSH)
    // and its link is opened by a browser at 127.0.0.2.
    let mut login = npm.web_login(&config).await;
    let page = login.url.trim_start_matches(&origin).to_owned();
    let id = page.rsplit('=').next().unwrap().to_owned();
    let browser: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let shown = http_from(browser, registry.addr, "GET", &page, &[], b"").await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains("id=\"npm-from\">127.0.0.1<"),
        "{}",
        shown.body
    );
    assert!(
        shown
            .body
            .contains("This login was started from another address than this browser's."),
        "{}",
        shown.body
    );

    // The password alone does not log npm in: npm keeps waiting.
    let form = format!(
        "username=alice&password={}&npm={id}",
        PASSWORD.replace(' ', "+")
    );
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", origin.as_str()),
    ];
    let path = "/-/web/login";
    let plain = http_from(
        browser,
        registry.addr,
        "POST",
        path,
        &headers,
        form.as_bytes(),
    )
    .await;
    assert_eq!(plain.status, 401, "{}", plain.body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        login.child.try_wait().unwrap().is_none(),
        "npm login finished without the confirmation"
    );

    // Ticking the box that says "I ran npm login myself, there" does.
    let confirmed = format!("{form}&confirm_npm=yes");
    let reply = http_from(
        browser,
        registry.addr,
        "POST",
        path,
        &headers,
        confirmed.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (ok, said) = login.finish().await;
    assert!(ok, "npm login failed: {said}");
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains(":_authToken=npm_"), "{saved}");
    let (ok, said) = npm.run(&config, &npm.root, &["whoami"]).await;
    assert!(ok && said.contains("alice"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_login_from_an_address_with_too_many_waiting_asks_for_the_password() {
    if !npm_ready("the npm web login limit test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
    add_user(registry.addr, "alice").await;
    let npm = Npm::new(&work.path().join("npm"), &registry.url);
    let config = work.path().join("login.npmrc");
    std::fs::write(&config, "").unwrap();

    // Five browser logins left waiting from this machine's address, its limit.
    for n in 0..5 {
        let started = http(
            registry.addr,
            "POST",
            "/-/v1/login",
            &[("content-type", "application/json")],
            b"{}",
        )
        .await;
        assert_eq!(started.status, 200, "login {n}: {}", started.body);
    }
    // npm's web login is refused with 429, and npm asks for the password instead of
    // failing: the person still logs in.
    let answers = [
        ("Username:", Answer::Text("alice".to_owned())),
        ("Password:", Answer::Text(PASSWORD.to_owned())),
    ];
    let (ok, seen) = npm.interactive(&config, "npm login", &answers, None).await;
    assert!(ok && seen.contains("Logged in"), "{seen}");
    assert!(!seen.contains("/-/web/login?npm="), "{seen}");
    let (ok, said) = npm.run(&config, &npm.root, &["whoami"]).await;
    assert!(ok && said.contains("alice"), "{said}");
}

/// What the third security review found, as npm itself sends it: a star answers to no
/// package rule, a one-package token changes nothing of the account, and a permission
/// npm 11 drops (npm 12's `read-write-stage-only`) leaves a token that is refused, not
/// made read-write. (npm will not publish a name that starts with a dash, so that bypass
/// is tested through the API in `tests/security.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_third_review_found_through_the_real_npm_cli() {
    if !npm_ready("the npm CLI test of the third review") {
        return;
    }
    use support::registry::{TfaMode, enable_2fa};
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", &work.path().join("data")).await;
    let here = work.path();
    let alice_session = add_user(registry.addr, "alice").await;
    let bob_session = add_user(registry.addr, "bob").await;
    let mut last_step = None;
    let mut recovery = enable_2fa(
        registry.addr,
        &alice_session,
        TfaMode::AuthAndWrites,
        &mut last_step,
    )
    .await
    .recovery;
    let alice = Npm::new(&here.join("alice"), &registry.url);
    let alice_config = alice.config_with("alice", &alice_session);
    let bob = Npm::new(&here.join("bob"), &registry.url);
    let bob_config = bob.config_with("bob", &bob_session);

    let starry = package_dir(here, "starry", "1.0.0");
    let refused = alice.fails(&alice_config, &starry, &["publish"]).await;
    assert!(
        refused.contains("EOTP") || refused.contains("one-time"),
        "{refused}"
    );
    let code = recovery.pop().unwrap();
    alice
        .ok(
            &alice_config,
            &starry,
            &["publish", &format!("--otp={code}")],
        )
        .await;
    let code = recovery.pop().unwrap();
    alice
        .ok(
            &alice_config,
            here,
            &[
                "access",
                "set",
                "mfa=publish",
                "starry",
                &format!("--otp={code}"),
            ],
        )
        .await;

    // Bob has no second factor: `npm star` of a package with mfa=publish goes through.
    if step_runs("the star of the third review's npm CLI test", STARS) {
        bob.ok(&bob_config, here, &["star", "starry"]).await;
        bob.ok(&bob_config, here, &["unstar", "starry"]).await;
    }

    // npm 11 drops a permission it does not know and sends the packages alone: the token
    // is refused, not made read-write. npm 12 sends it, and gets a stage-only token.
    let code = recovery.pop().unwrap();
    let (made, said) = alice
        .run(
            &alice_config,
            here,
            &[
                "token",
                "create",
                "--packages=starry",
                "--packages-and-scopes-permission=read-write-stage-only",
                &format!("--password={PASSWORD}"),
                &format!("--otp={code}"),
            ],
        )
        .await;
    if npm_major() < 12 {
        assert!(!made, "{said}");
        assert!(
            said.contains("packages_and_scopes_permission is missing"),
            "{said}"
        );
    } else {
        assert!(made, "{said}");
    }

    // A one-package token cannot change the account's email.
    let code = recovery.pop().unwrap();
    let one_package = alice
        .ok(
            &alice_config,
            here,
            &[
                "token",
                "create",
                "--packages=starry",
                "--packages-and-scopes-permission=read-write",
                &format!("--password={PASSWORD}"),
                &format!("--otp={code}"),
            ],
        )
        .await;
    let one_package = alice.config_with("one-package", &created_token(&one_package));
    let refused = alice
        .fails(
            &one_package,
            here,
            &["profile", "set", "email", "mallory@example.com"],
        )
        .await;
    assert!(refused.contains("cannot change the profile"), "{refused}");
}

/// A registry trusting `issuer` as `provider`'s, and alice (signed in with the returned
/// config), who has published `package` 1.0.0 with a token: trusted publishing publishes
/// existing packages only.
async fn registry_trusting(
    here: &Path,
    provider: &str,
    issuer: &support::issuer::Issuer,
    package: &str,
) -> (Registry, Npm, PathBuf) {
    let trusted = format!("{provider}={}", issuer.url);
    let registry = Registry::start_with(
        "127.0.0.1:0",
        &here.join("data"),
        &["--oidc-issuer", &trusted],
    )
    .await;
    let alice = Npm::new(&here.join("alice"), &registry.url);
    alice.make_user("alice").await;
    let session = alice.session_config();
    alice
        .ok(&session, &package_dir(here, package, "1.0.0"), &["publish"])
        .await;
    (registry, alice, session)
}

/// `npm trust` and a publish from a simulated GitHub Actions job: npm asks the job's ID
/// token endpoint (a loopback issuer of the test's own) for a token with the registry's
/// audience, exchanges it, and publishes with what it got; no token is configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_publishing_through_the_real_npm_cli() {
    use support::issuer::{Issuer, github_claims};
    if !npm_ready("the trusted-publishing npm CLI test") {
        return;
    }
    let issuer = Issuer::start(github_claims("acme/tool", "release.yml")).await;
    let work = tempfile::tempdir().unwrap();
    let here = work.path();
    let (registry, alice, session) =
        registry_trusting(here, "github", &issuer, "trusted-tool").await;

    let added = alice
        .ok(
            &session,
            here,
            &[
                "trust",
                "github",
                "trusted-tool",
                "--repo",
                "acme/tool",
                "--file",
                "release.yml",
                "--allow-publish",
                "--yes",
            ],
        )
        .await;
    assert!(added.contains("acme/tool"), "{added}");
    let listed = alice
        .ok(&session, here, &["trust", "list", "trusted-tool", "--json"])
        .await;
    let start = listed
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {listed}"));
    let id = serde_json::Deserializer::from_str(&listed[start..])
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap()
        .unwrap()["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {listed}"))
        .to_owned();

    // The CI job: no token anywhere, only the job's ID token endpoint.
    let ci = here.join("ci.npmrc");
    std::fs::write(&ci, "").unwrap();
    let env = issuer.github_actions_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tool = package_dir(here, "trusted-tool", "1.0.1");
    let (ok, published) = alice
        .run_with(&ci, &tool, &["publish", "--loglevel=verbose"], &env)
        .await;
    assert!(ok, "the job publishes:\n{published}");
    assert!(
        published.contains("Successfully retrieved and set token"),
        "{published}"
    );
    let read = http(registry.addr, "GET", "/trusted-tool", &[], b"").await;
    assert_eq!(read.status, 200, "{}", read.body);
    let packument = read.json();
    assert_eq!(packument["versions"]["1.0.1"]["_npmUser"]["name"], "alice");

    // npm 12's `npm dist-tag` exchanges an ID token too (npm 11's sends the configured
    // token, here none).
    if npm_major() >= 12 {
        let (ok, tagged) = alice
            .run_with(
                &ci,
                here,
                &["dist-tag", "add", "trusted-tool@1.0.1", "beta"],
                &env,
            )
            .await;
        assert!(
            ok && tagged.contains("+beta: trusted-tool@1.0.1"),
            "{tagged}"
        );
    } else {
        support::skipped(
            "npm 11's dist-tag has no trusted publishing: that step ran under npm 12 only",
        );
    }

    // Another workflow of the repository: npm falls back to no token, and its verbose log
    // says why.
    issuer.set_claims(github_claims("acme/tool", "deploy.yml"));
    let tool = package_dir(here, "trusted-tool", "1.0.2");
    let (ok, refused) = alice
        .run_with(&ci, &tool, &["publish", "--loglevel=verbose"], &env)
        .await;
    assert!(!ok, "another workflow publishes nothing:\n{refused}");
    assert!(
        refused.contains("no trusted publisher of trusted-tool matches this ID token"),
        "{refused}"
    );

    alice
        .ok(
            &session,
            here,
            &["trust", "revoke", "trusted-tool", "--id", &id],
        )
        .await;
    let listed = alice
        .ok(&session, here, &["trust", "list", "trusted-tool"])
        .await;
    assert!(listed.contains("No trust configurations"), "{listed}");
    // The revoked workflow publishes nothing from the next job on.
    issuer.set_claims(github_claims("acme/tool", "release.yml"));
    let (ok, refused) = alice
        .run_with(&ci, &tool, &["publish", "--loglevel=verbose"], &env)
        .await;
    assert!(!ok, "a revoked publisher publishes nothing:\n{refused}");
    assert!(
        refused.contains("no trusted publisher of trusted-tool matches this ID token"),
        "{refused}"
    );
    registry.stop().await;
}

/// The stage id in `npm stage publish`'s "+ name@version (staged with id <id>)".
fn staged_id(output: &str) -> String {
    let (_, rest) = output
        .split_once("staged with id ")
        .unwrap_or_else(|| panic!("no stage id in: {output}"));
    rest.split(')').next().unwrap().trim().to_owned()
}

/// `npm stage`, end to end: CI stages with a stage-only token (npm 12) or a read-write one
/// (npm 11), the staged version is neither installable nor in the packument, its
/// maintainer lists, views and downloads it (another user cannot), approves it with a code
/// (refused without), and it installs; a rejected stage frees its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_publishing_through_the_real_npm_cli() {
    if !npm_ready("the staged-publishing npm CLI test") {
        return;
    }
    use support::registry::{TfaMode, enable_2fa};
    let scene = TwoUsers::start().await;
    let TwoUsers {
        registry,
        alice,
        bob,
        alice_session: alice_config,
        bob_session: bob_config,
        anonymous,
        ..
    } = &scene;
    let here = scene.work.path();
    let alice_session = session_token(alice_config);

    alice
        .ok(
            alice_config,
            &package_dir(here, "staged-cli", "1.0.0"),
            &["publish"],
        )
        .await;
    // npm 12 makes the token CI should have; npm 11 stages with a read-write one.
    let permission = if npm_major() >= 12 {
        "--packages-and-scopes-permission=read-write-stage-only"
    } else {
        "--packages-and-scopes-permission=read-write"
    };
    let made = alice
        .ok(
            alice_config,
            here,
            &[
                "token",
                "create",
                "--packages-all",
                permission,
                &format!("--password={PASSWORD}"),
            ],
        )
        .await;
    let ci_config = alice.config_with("ci", &created_token(&made));
    let mut last_step = None;
    let enrolled = enable_2fa(
        registry.addr,
        &alice_session,
        TfaMode::AuthOnly,
        &mut last_step,
    )
    .await;

    // Staging asks for no code, even with 2FA on.
    let v11 = package_dir(&here.join("v11"), "staged-cli", "1.1.0");
    let staged = alice.ok(&ci_config, &v11, &["stage", "publish"]).await;
    let id = staged_id(&staged);
    if npm_major() >= 12 {
        let v12 = package_dir(&here.join("v12"), "staged-cli", "1.2.0");
        let refused = alice.fails(&ci_config, &v12, &["publish"]).await;
        assert!(refused.contains("stage the change instead"), "{refused}");
    }

    let versions = alice
        .ok(
            anonymous,
            here,
            &["view", "staged-cli", "versions", "--json"],
        )
        .await;
    assert!(
        versions.contains("1.0.0") && !versions.contains("1.1.0"),
        "{versions}"
    );
    let project = here.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"project","version":"1.0.0"}"#,
    )
    .unwrap();
    let not_installable = alice
        .fails(anonymous, &project, &["install", "staged-cli@1.1.0"])
        .await;
    assert!(
        not_installable.contains("ETARGET") || not_installable.contains("No matching version"),
        "{not_installable}"
    );

    let listed = alice
        .ok(alice_config, here, &["stage", "list", "staged-cli"])
        .await;
    assert!(listed.contains(&id) && listed.contains("1.1.0"), "{listed}");
    let viewed = alice.ok(alice_config, here, &["stage", "view", &id]).await;
    assert!(
        viewed.contains("1.1.0") && viewed.contains("alice"),
        "{viewed}"
    );
    let downloads = here.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    alice
        .ok(alice_config, &downloads, &["stage", "download", &id])
        .await;
    assert!(
        downloads
            .join(format!("staged-cli-1.1.0-{id}.tgz"))
            .is_file()
    );
    let hidden = bob.fails(bob_config, here, &["stage", "view", &id]).await;
    assert!(hidden.contains("404"), "{hidden}");
    let none = bob.ok(bob_config, here, &["stage", "list"]).await;
    assert!(!none.contains(&id), "{none}");

    let no_code = alice
        .fails(alice_config, here, &["stage", "approve", &id])
        .await;
    assert!(
        no_code.contains("EOTP") || no_code.contains("one-time"),
        "{no_code}"
    );
    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    alice
        .ok(
            alice_config,
            here,
            &["stage", "approve", &id, &format!("--otp={code}")],
        )
        .await;
    alice
        .ok(anonymous, &project, &["install", "staged-cli@1.1.0"])
        .await;

    // A rejected stage frees its version.
    let v13 = package_dir(&here.join("v13"), "staged-cli", "1.3.0");
    let rejected = staged_id(&alice.ok(&ci_config, &v13, &["stage", "publish"]).await);
    let code = support::fresh_code(&enrolled.secret, &mut last_step).await;
    alice
        .ok(
            alice_config,
            here,
            &["stage", "reject", &rejected, &format!("--otp={code}")],
        )
        .await;
    alice
        .fails(alice_config, here, &["stage", "view", &rejected])
        .await;
    let again = staged_id(&alice.ok(&ci_config, &v13, &["stage", "publish"]).await);
    assert_ne!(again, rejected);
}

/// A trusted publisher allowed to stage only (`npm trust github … --allow-stage-publish`):
/// the CI job's `npm stage publish` exchanges its ID token and stages, its `npm publish`
/// is refused with the message to stage, and the maintainer approves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_publisher_that_may_only_stage_through_the_real_npm_cli() {
    if !npm_ready("the stage-only trusted-publishing npm CLI test") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let here = work.path();
    use support::issuer::{Issuer, github_claims};
    let issuer = Issuer::start(github_claims("acme/tool", "release.yml")).await;
    let (registry, alice, session) = registry_trusting(here, "github", &issuer, "ci-staged").await;
    alice
        .ok(
            &session,
            here,
            &[
                "trust",
                "github",
                "ci-staged",
                "--repo",
                "acme/tool",
                "--file",
                "release.yml",
                "--allow-stage-publish",
                "--yes",
            ],
        )
        .await;

    let ci = here.join("ci.npmrc");
    std::fs::write(&ci, "").unwrap();
    let env = issuer.github_actions_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let v11 = package_dir(&here.join("v11"), "ci-staged", "1.1.0");
    let (ok, staged) = alice.run_with(&ci, &v11, &["stage", "publish"], &env).await;
    assert!(ok, "the job stages:\n{staged}");
    let id = staged_id(&staged);
    let v12 = package_dir(&here.join("v12"), "ci-staged", "1.2.0");
    let (ok, refused) = alice.run_with(&ci, &v12, &["publish"], &env).await;
    assert!(!ok, "the job publishes nothing directly:\n{refused}");
    assert!(refused.contains("stage the change instead"), "{refused}");

    let viewed = alice.ok(&session, here, &["stage", "view", &id]).await;
    assert!(viewed.contains("trusted-publisher"), "{viewed}");
    alice.ok(&session, here, &["stage", "approve", &id]).await;
    let read = http(registry.addr, "GET", "/ci-staged", &[], b"").await;
    assert!(
        read.json()["versions"]["1.1.0"].is_object(),
        "{}",
        read.body
    );
    registry.stop().await;
}

/// `npm trust gitlab` with an environment, and publishes from a simulated GitLab CI job,
/// which hands npm its ID token in `NPM_ID_TOKEN`: the trusted project and environment
/// publish; another environment or project does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_publishing_from_gitlab_through_the_real_npm_cli() {
    use support::issuer::{Issuer, gitlab_claims};
    if !npm_ready("the GitLab trusted-publishing npm CLI test") {
        return;
    }
    let issuer = Issuer::start(serde_json::json!({})).await;
    let work = tempfile::tempdir().unwrap();
    let here = work.path();
    let (registry, alice, session) =
        registry_trusting(here, "gitlab", &issuer, "gitlab-tool").await;
    let added = alice
        .ok(
            &session,
            here,
            &[
                "trust",
                "gitlab",
                "gitlab-tool",
                "--project",
                "acme/tool",
                "--file",
                ".gitlab-ci.yml",
                "--env",
                "production",
                "--allow-publish",
                "--yes",
            ],
        )
        .await;
    assert!(added.contains("acme/tool"), "{added}");

    let ci = here.join("ci.npmrc");
    std::fs::write(&ci, "").unwrap();
    let audience = format!("npm:{}", registry.addr.ip());
    struct Job {
        what: &'static str,
        claims: serde_json::Value,
        publishes: bool,
        says: &'static str,
    }
    let jobs = [
        Job {
            what: "the trusted project, deploying to production",
            claims: gitlab_claims(issuer.host(), "acme/tool", "production"),
            publishes: true,
            says: "Successfully retrieved and set token",
        },
        Job {
            what: "the same project, deploying to staging",
            claims: gitlab_claims(issuer.host(), "acme/tool", "staging"),
            publishes: false,
            says: "no trusted publisher of gitlab-tool matches this ID token",
        },
        Job {
            what: "another project",
            claims: gitlab_claims(issuer.host(), "acme/fork", "production"),
            publishes: false,
            says: "no trusted publisher of gitlab-tool matches this ID token",
        },
    ];
    for (n, job) in jobs.into_iter().enumerate() {
        issuer.set_claims(job.claims);
        let env = Issuer::gitlab_ci_env(issuer.mint(&audience, |_| {}));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let tool = package_dir(here, "gitlab-tool", &format!("1.0.{}", n + 1));
        let (ok, out) = alice
            .run_with(&ci, &tool, &["publish", "--loglevel=verbose"], &env)
            .await;
        assert_eq!(ok, job.publishes, "{}:\n{out}", job.what);
        assert!(out.contains(job.says), "{}:\n{out}", job.what);
    }
    let read = http(registry.addr, "GET", "/gitlab-tool", &[], b"").await;
    assert_eq!(
        read.json()["versions"]["1.0.1"]["_npmUser"]["name"],
        "alice"
    );
    assert!(read.json()["versions"]["1.0.2"].is_null(), "{}", read.body);
    registry.stop().await;
}

/// An `.npmrc` in `dir`, as a CI checkout has one: this registry, and the token from the
/// environment's `NPM_TOKEN`.
fn token_from_environment(dir: &Path, registry: &str) {
    let host = registry.trim_start_matches("http:");
    std::fs::write(
        dir.join(".npmrc"),
        format!("registry={registry}\n{host}:_authToken=${{NPM_TOKEN}}\n"),
    )
    .unwrap();
}

/// The token npm's login left in `config`.
fn session_token(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    text.lines()
        .find_map(|line| line.split_once(":_authToken=").map(|(_, token)| token))
        .unwrap_or_else(|| panic!("no token in {}", config.display()))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_and_teams_through_the_real_npm_cli() {
    if !npm_ready("the organisation npm CLI test") {
        return;
    }
    let scene = TwoUsers::start().await;
    let TwoUsers {
        registry,
        alice,
        bob,
        alice_session,
        bob_session,
        anonymous,
        ..
    } = &scene;
    let here = scene.work.path();
    let password = format!("--password={PASSWORD}");

    // The registry's own call makes the organisation; alice owns it and publishes into it.
    let auth = format!("Bearer {}", session_token(alice_session));
    let made = http(
        registry.addr,
        "PUT",
        "/-/org/acme",
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let tool = package_dir(here, "@acme/tool", "1.0.0");
    alice
        .ok(alice_session, &tool, &["publish", "--access=restricted"])
        .await;

    let added = alice
        .ok(
            alice_session,
            here,
            &["org", "set", "acme", "bob", "developer"],
        )
        .await;
    assert!(added.contains("Added bob as developer to acme"), "{added}");
    let roster = alice
        .ok(bob_session, here, &["org", "ls", "acme", "--json"])
        .await;
    let roster: serde_json::Value = serde_json::from_str(&roster).unwrap();
    assert_eq!(
        roster,
        serde_json::json!({ "alice": "owner", "bob": "developer" })
    );
    // A developer cannot remove an owner.
    let refused = bob
        .fails(bob_session, here, &["org", "rm", "acme", "alice"])
        .await;
    assert!(refused.contains("E403"), "{refused}");

    // bob reads @acme/tool through the team `readers` only.
    for args in [
        &["team", "create", "acme:readers"][..],
        &["team", "add", "acme:readers", "bob"],
        &["team", "rm", "acme:developers", "bob"],
        &["access", "grant", "read-only", "acme:readers", "@acme/tool"],
    ] {
        alice.ok(alice_session, here, args).await;
    }
    let teams = alice.ok(alice_session, here, &["team", "ls", "acme"]).await;
    assert!(
        teams.contains("acme:developers") && teams.contains("acme:readers"),
        "{teams}"
    );
    let members = alice
        .ok(alice_session, here, &["team", "ls", "acme:readers"])
        .await;
    assert!(members.contains("bob"), "{members}");
    let packages = alice
        .ok(
            alice_session,
            here,
            &["access", "list", "packages", "acme:readers", "--json"],
        )
        .await;
    assert!(packages.contains("@acme/tool"), "{packages}");
    let everything = alice
        .ok(
            alice_session,
            here,
            &["access", "list", "packages", "acme", "--json"],
        )
        .await;
    assert!(everything.contains("@acme/tool"), "{everything}");
    let collaborators = alice
        .ok(
            alice_session,
            here,
            &["access", "list", "collaborators", "@acme/tool", "--json"],
        )
        .await;
    let collaborators: serde_json::Value = serde_json::from_str(&collaborators).unwrap();
    assert_eq!(collaborators["bob"], "read-only", "{collaborators}");
    let one = alice
        .ok(alice_session, here, &["org", "ls", "acme", "bob", "--json"])
        .await;
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one, serde_json::json!({ "bob": "developer" }));
    for args in [
        &["team", "create", "acme:short-lived"][..],
        &["team", "destroy", "acme:short-lived"],
    ] {
        alice.ok(alice_session, here, args).await;
    }
    let teams = alice.ok(alice_session, here, &["team", "ls", "acme"]).await;
    assert!(!teams.contains("short-lived"), "{teams}");

    let token = |permission: &'static str| {
        let password = password.clone();
        async move {
            let made = bob
                .ok(
                    bob_session,
                    here,
                    &[
                        "token",
                        "create",
                        &password,
                        &format!("--packages-and-scopes-permission={permission}"),
                    ],
                )
                .await;
            created_token(&made)
        }
    };
    let read_only = token("read-only").await;
    let reader = bob.config_with("bob-reader", &read_only);
    let writer = bob.config_with("bob-writer", &token("read-write").await);
    // CI: the read-only token from the environment, through the project's .npmrc.
    let project = here.join("bob-project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"0.0.0"}"#,
    )
    .unwrap();
    token_from_environment(&project, &registry.url);
    let env = [("NPM_TOKEN", read_only.as_str())];
    let (ok, output) = bob
        .run_with(anonymous, &project, &["install", "@acme/tool"], &env)
        .await;
    assert!(
        ok,
        "a read-only member installs with a read-only token: {output}"
    );
    assert!(project.join("node_modules/@acme/tool/index.js").exists());
    let newer = package_dir(&here.join("bob"), "@acme/tool", "1.0.1");
    let refused = bob.fails(&writer, &newer, &["publish"]).await;
    assert!(
        refused.contains("E403"),
        "a read-only team does not publish: {refused}"
    );

    // read-write: bob publishes; then out of the team, both stop, tokens untouched.
    alice
        .ok(
            alice_session,
            here,
            &[
                "access",
                "grant",
                "read-write",
                "acme:readers",
                "@acme/tool",
            ],
        )
        .await;
    bob.ok(&writer, &newer, &["publish"]).await;
    alice
        .ok(alice_session, here, &["team", "rm", "acme:readers", "bob"])
        .await;
    let refused = bob.fails(&reader, here, &["view", "@acme/tool"]).await;
    assert!(refused.contains("E404"), "{refused}");
    let newest = package_dir(&here.join("bob-again"), "@acme/tool", "1.0.2");
    let refused = bob.fails(&writer, &newest, &["publish"]).await;
    assert!(
        refused.contains("E403") || refused.contains("E404"),
        "{refused}"
    );
    let listed = bob.ok(bob_session, here, &["token", "list"]).await;
    assert_eq!(listed.matches("npm_").count(), 2, "not revoked: {listed}");

    // An --orgs token manages the organisation and publishes nothing; others cannot manage.
    let orgs = created_token(
        &alice
            .ok(
                alice_session,
                here,
                &[
                    "token",
                    "create",
                    &password,
                    "--orgs=acme",
                    "--orgs-permission=read-write",
                ],
            )
            .await,
    );
    let orgs = alice.config_with("alice-orgs", &orgs);
    alice
        .ok(&orgs, here, &["team", "add", "acme:readers", "bob"])
        .await;
    let later = package_dir(&here.join("alice-orgs"), "@acme/tool", "2.0.0");
    let refused = alice.fails(&orgs, &later, &["publish"]).await;
    assert!(refused.contains("E403"), "{refused}");
    let packages_only = created_token(
        &alice
            .ok(
                alice_session,
                here,
                &[
                    "token",
                    "create",
                    &password,
                    "--packages-and-scopes-permission=read-write",
                ],
            )
            .await,
    );
    let packages_only = alice.config_with("alice-packages", &packages_only);
    let refused = alice
        .fails(&packages_only, here, &["team", "rm", "acme:readers", "bob"])
        .await;
    assert!(refused.contains("E403"), "{refused}");
    alice
        .ok(
            alice_session,
            here,
            &["access", "revoke", "acme:readers", "@acme/tool"],
        )
        .await;

    // bob maintains @acme/tool while a member; out of the organisation he is off its
    // maintainers, and only a member can be put back on.
    alice
        .ok(alice_session, here, &["owner", "add", "bob", "@acme/tool"])
        .await;
    alice
        .ok(alice_session, here, &["org", "rm", "acme", "bob"])
        .await;
    let owners = alice
        .ok(alice_session, here, &["owner", "ls", "@acme/tool"])
        .await;
    assert!(
        owners.contains("alice") && !owners.contains("bob"),
        "{owners}"
    );
    let refused = alice
        .fails(alice_session, here, &["owner", "add", "bob", "@acme/tool"])
        .await;
    assert!(
        refused.contains("bob is not a member of the organisation acme"),
        "{refused}"
    );

    // Out of the organisation, bob cannot tell that @acme has private packages (not even
    // the one he maintained): each command answers as for an organisation and a package
    // that do not exist.
    for args in [
        &["view", "@acme/tool"][..],
        &["access", "list", "collaborators", "@acme/tool"],
        &["org", "ls", "acme"],
        &["team", "ls", "acme"],
    ] {
        let refused = bob.fails(bob_session, here, args).await;
        assert!(refused.contains("E404"), "{args:?}: {refused}");
    }
    let listed = bob
        .run(
            bob_session,
            here,
            &["access", "list", "packages", "acme", "--json"],
        )
        .await;
    assert!(!listed.1.contains("@acme/tool"), "{listed:?}");
    let found = bob
        .ok(bob_session, here, &["search", "acme", "--json"])
        .await;
    assert!(!found.contains("@acme/tool"), "{found}");
}
