//! The registry's web pages over plain HTTP (no browser): cookies, same-origin writes,
//! the create form's checks and messages, showing a token once, paging, revoking, logging
//! out, npm's browser login protocol, and packages' trusted publishers. `tests/browser.rs` drives the same pages in
//! Chromium.

mod support;

use std::net::IpAddr;

use support::registry::{
    Enrolled, PASSWORD, Registry, Reply, TfaMode, add_user, enable_2fa, http, http_from, loopback,
};

/// The address the tests' browser and npm come from unless they say otherwise.
const HERE: [u8; 4] = [127, 0, 0, 1];

/// An npm browser login that `POST /-/v1/login` started.
struct NpmLogin {
    /// The page's address (`loginUrl` without the origin) and the id in it.
    page: String,
    id: String,
    /// What npm polls (`doneUrl` without the origin).
    done: String,
}

struct Site {
    registry: Registry,
    origin: String,
    _data: tempfile::TempDir,
}

impl Site {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Site::start`] with the registry's `flags`.
    async fn start_with(flags: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let registry = Registry::start_with("127.0.0.1:0", data.path(), flags).await;
        let origin = registry.url.trim_end_matches('/').to_owned();
        Self {
            registry,
            origin,
            _data: data,
        }
    }

    /// Creates `user` with npm's CouchDB login; answers the session token.
    async fn add_user(&self, user: &str) -> String {
        add_user(self.registry.addr, user).await
    }

    /// A form POST from the site's own page (`Origin` is the site's) unless `origin` says
    /// otherwise.
    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &str,
    ) -> Reply {
        self.post_from(HERE.into(), path, cookie, origin, form)
            .await
    }

    /// [`Site::post`] from the browser at `source`.
    async fn post_from(
        &self,
        source: IpAddr,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &str,
    ) -> Reply {
        let cookie = cookie.map(|c| format!("tg_session={c}"));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie));
        }
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let addr = self.registry.addr;
        http_from(source, addr, "POST", path, &headers, form.as_bytes()).await
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.get_from(HERE.into(), path, cookie).await
    }

    /// [`Site::get`] from the browser at `source`.
    async fn get_from(&self, source: IpAddr, path: &str, cookie: Option<&str>) -> Reply {
        let cookie = cookie.map(|c| format!("tg_session={c}"));
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        http_from(source, self.registry.addr, "GET", path, &headers, b"").await
    }

    /// `POST /-/v1/login` as npm sends it, from a terminal at `source`.
    async fn start_npm_login(&self, source: IpAddr) -> Reply {
        start_npm_login(self.registry.addr, source).await
    }

    /// [`Site::start_npm_login`], which must be accepted.
    async fn npm_login(&self, source: IpAddr) -> NpmLogin {
        let reply = self.start_npm_login(source).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let urls = reply.json();
        let page = urls["loginUrl"].as_str().unwrap();
        let done = urls["doneUrl"].as_str().unwrap();
        assert!(page.starts_with(&format!("{}/-/web/login?npm=", self.origin)));
        assert!(done.starts_with(&format!("{}/-/v1/done?session=", self.origin)));
        let page = page.trim_start_matches(&self.origin).to_owned();
        NpmLogin {
            id: page.rsplit('=').next().unwrap().to_owned(),
            page,
            done: done.trim_start_matches(&self.origin).to_owned(),
        }
    }

    /// The form the login page posts for `user`, for the npm login `id`.
    fn login_form(user: &str, id: &str) -> String {
        format!(
            "username={user}&password={}&npm={id}",
            PASSWORD.replace(' ', "+")
        )
    }

    /// Turns on 2FA (for logins) for the user whose session this is.
    /// Logs `user` in with the password and `code` (their account has 2FA); the session
    /// cookie.
    async fn log_in_with_code(&self, user: &str, code: &str) -> String {
        let form = format!(
            "username={user}&password={}&otp={code}",
            PASSWORD.replace(' ', "+")
        );
        let reply = self
            .post("/-/web/login", None, Some(&self.origin), &form)
            .await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        session_of(&reply)
    }

    async fn enable_2fa(&self, session: &str, last_step: &mut Option<u64>) -> Enrolled {
        enable_2fa(self.registry.addr, session, TfaMode::AuthOnly, last_step).await
    }

    /// Logs in on the page; answers the session in the cookie.
    async fn log_in(&self, user: &str) -> String {
        let reply = self
            .post(
                "/-/web/login",
                None,
                Some(&self.origin),
                &format!("username={user}&password={}", PASSWORD.replace(' ', "+")),
            )
            .await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert_eq!(reply.header("location"), Some("/-/web/tokens"));
        let cookie = reply.header("set-cookie").unwrap();
        assert!(
            cookie.ends_with("; Path=/-/web; HttpOnly; SameSite=Strict"),
            "{cookie}"
        );
        session_of(&reply)
    }

    /// Sends the organisation form from `origin`.
    async fn make_org(&self, cookie: &str, origin: Option<&str>, form: &str) -> Reply {
        self.post("/-/web/new-organisation", Some(cookie), origin, form)
            .await
    }

    /// Creates a token on the page; answers the created page's address.
    async fn create(&self, cookie: &str, form: &str) -> Reply {
        let form = format!("{form}&password={}", PASSWORD.replace(' ', "+"));
        self.post("/-/web/tokens/new", Some(cookie), Some(&self.origin), &form)
            .await
    }

    /// The owner's tokens through npm's API.
    async fn api_tokens(&self, session: &str) -> Vec<serde_json::Value> {
        let auth = format!("Bearer {session}");
        let reply = http(
            self.registry.addr,
            "GET",
            "/-/npm/v1/tokens?perPage=1000",
            &[("authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["objects"].as_array().unwrap().clone()
    }
}

/// `POST /-/v1/login` as npm sends it, from a terminal at `source`.
async fn start_npm_login(addr: std::net::SocketAddr, source: IpAddr) -> Reply {
    let headers = [("content-type", "application/json")];
    http_from(source, addr, "POST", "/-/v1/login", &headers, b"{}").await
}

/// The session in the cookie a login sets.
fn session_of(login: &Reply) -> String {
    let cookie = login.header("set-cookie").expect("a session cookie");
    let cookie = cookie.strip_prefix("tg_session=").unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The text inside the element with this id, up to its first tag.
fn text_of(body: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = body.find(&marker)? + marker.len();
    let rest = &body[start..];
    Some(rest[rest.find('>')? + 1..].split('<').next()?.to_owned())
}

/// The text of the element with this id (its first text node), as the page has it.
fn field_error(body: &str, field: &str) -> Option<String> {
    let marker = format!("id=\"{field}-error\" role=\"alert\">");
    let start = body.find(&marker)? + marker.len();
    Some(body[start..].split('<').next()?.to_owned())
}

#[tokio::test]
async fn logging_in_and_out() {
    let site = Site::start().await;
    let session = site.add_user("alice").await;

    // Pages need a session: without one, the login page.
    let reply = site.get("/-/web/tokens", None).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/-/web/login"));
    // npm's own session is a bearer token, and the pages' gate reads cookies only here.
    let reply = site.get("/-/web/tokens", Some("npm_garbage")).await;
    assert_eq!(reply.status, 303, "a bad cookie goes to the login page");

    let login = site.get("/-/web/login", None).await;
    assert_eq!(login.status, 200);
    for header in [
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(login.header(header).is_some(), "{header}");
    }
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert!(login.body.contains("<label for=\"username\">"));

    // Wrong password: said, the name kept, the password never sent back.
    let reply = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            "username=alice&password=hunter22-secret",
        )
        .await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("incorrect user name or password"));
    assert!(reply.body.contains("value=\"alice\""));
    assert!(!reply.body.contains("hunter22-secret"));
    // A bad user name is named.
    let reply = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            "username=Bad%20Name&password=x",
        )
        .await;
    assert!(
        field_error(&reply.body, "username")
            .unwrap()
            .starts_with("invalid user name")
    );
    // A login posted from another site is refused.
    let reply = site
        .post(
            "/-/web/login",
            None,
            Some("https://evil.example"),
            "username=alice&password=correct+horse+battery",
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(reply.header("set-cookie").is_none());

    // Over HTTPS (behind a proxy that says so), the cookie is Secure.
    let reply = http(
        site.registry.addr,
        "POST",
        "/-/web/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", &site.origin.replace("http:", "https:")),
            ("x-forwarded-proto", "https"),
        ],
        b"username=alice&password=correct+horse+battery",
    )
    .await;
    assert!(reply.header("set-cookie").unwrap().contains("; Secure"));

    let cookie = site.log_in("alice").await;
    let page = site.get("/-/web/tokens", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Signed in as </span><strong>alice</strong>")
    );
    // Web sessions are sessions: never listed.
    assert!(site.api_tokens(&session).await.is_empty());

    // Logging out: only from the site's pages; it revokes the session.
    let forged = site.post("/-/web/logout", Some(&cookie), None, "").await;
    assert_eq!(forged.status, 403);
    let out = site
        .post("/-/web/logout", Some(&cookie), Some(&site.origin), "")
        .await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = site.get("/-/web/tokens", Some(&cookie)).await;
    assert_eq!(after.status, 303, "a logged-out session is refused");
}

#[tokio::test]
async fn creating_tokens_with_the_clis_checks() {
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    let cookie = site.log_in("alice").await;

    let cases: &[(&str, &str, &str)] = &[
        (
            "permission=read-write&expires=soon",
            "expires",
            "expires is a number of days from 1 to 3650",
        ),
        (
            "permission=read-write&expires=9999",
            "expires",
            "expires is a number of days from 1 to 3650",
        ),
        (
            "permission=granular&scopes=%40Bad!",
            "scopes",
            "scopes: \"@Bad!\" is not a scope such as @alice",
        ),
        (
            "permission=granular",
            "packages",
            "name at least one package or scope, or choose a permission on every package",
        ),
        (
            "permission=read-write&cidr=10.0.0.0/8,300.1.1.1/8",
            "cidr",
            "CIDR whitelist contains invalid CIDR entry: 300.1.1.1/8",
        ),
        (
            "permission=sideways",
            "permission",
            "choose read-only, read and write, or granular",
        ),
    ];
    for (form, field, message) in cases {
        let reply = site
            .create(&cookie, &format!("name=%3Cb%3Ekept%3C%2Fb%3E&{form}"))
            .await;
        assert_eq!(reply.status, 400, "{form}");
        let error =
            field_error(&reply.body, field).unwrap_or_else(|| panic!("{form}: no {field} error"));
        assert!(
            error.starts_with(&message.replace('"', "&quot;")),
            "{form}: {error}"
        );
        // What was typed is kept, escaped; the password is not.
        assert!(
            reply.body.contains("value=\"&lt;b&gt;kept&lt;/b&gt;\""),
            "{form}"
        );
        assert!(!reply.body.contains(PASSWORD), "{form}");
    }
    let reply = site
        .post(
            "/-/web/tokens/new",
            Some(&cookie),
            Some(&site.origin),
            "name=x",
        )
        .await;
    assert_eq!(
        field_error(&reply.body, "password").as_deref(),
        Some("password is required to create a token")
    );
    let reply = site
        .post(
            "/-/web/tokens/new",
            Some(&cookie),
            Some(&site.origin),
            "name=x&permission=read-only&password=wrong-password",
        )
        .await;
    assert_eq!(
        field_error(&reply.body, "password").as_deref(),
        Some("incorrect password")
    );
    assert!(
        site.api_tokens(&session).await.is_empty(),
        "nothing was made"
    );

    // A granular token: shown once after a redirect, listed by npm's API as the CLI's are.
    let reply = site
        .create(
            &cookie,
            "name=deploy&permission=granular&packages=left-pad&scopes=%40alice&granular_permission=read-write&cidr=127.0.0.1%2F32&expires=30&bypass_2fa=on",
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let shown_at = reply.header("location").unwrap().to_owned();
    assert!(shown_at.starts_with("/-/web/tokens/created/"));
    let shown = site.get(&shown_at, Some(&cookie)).await;
    assert_eq!(shown.status, 200);
    let token = shown
        .body
        .split("id=\"new-token\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert!(token.starts_with("npm_"), "{token}");
    let again = site.get(&shown_at, Some(&cookie)).await;
    assert_eq!(again.status, 410);
    assert!(!again.body.contains(&token));
    let listed = site.api_tokens(&session).await;
    assert_eq!(listed.len(), 1);
    let listed = &listed[0];
    assert_eq!(listed["name"], "deploy");
    assert_eq!(listed["packages"], serde_json::json!(["left-pad"]));
    assert_eq!(listed["scopes"], serde_json::json!(["@alice"]));
    assert_eq!(listed["packages_and_scopes_permission"], "read-write");
    assert_eq!(
        listed["cidr_whitelist"],
        serde_json::json!(["127.0.0.1/32"])
    );
    assert_eq!(listed["bypass_2fa"], true);
    assert!(listed["expires"].is_string());
    assert!(token.starts_with(listed["token"].as_str().unwrap()));

    // Another user cannot see it, even with its address.
    site.add_user("bob").await;
    let bob = site.log_in("bob").await;
    let page = site.get("/-/web/tokens", Some(&bob)).await;
    assert!(!page.body.contains("deploy"));

    // Revoking: a confirmation page, then only a same-origin POST revokes.
    let id = listed["key"].as_str().unwrap();
    let confirm = site
        .get(&format!("/-/web/tokens/{id}/revoke"), Some(&cookie))
        .await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Revoke this token?"));
    let bobs_try = site
        .post(
            &format!("/-/web/tokens/{id}/revoke"),
            Some(&bob),
            Some(&site.origin),
            "",
        )
        .await;
    assert_eq!(bobs_try.status, 404);
    let forged = site
        .post(
            &format!("/-/web/tokens/{id}/revoke"),
            Some(&cookie),
            Some("http://evil.example"),
            "",
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(site.api_tokens(&session).await.len(), 1);
    let revoked = site
        .post(
            &format!("/-/web/tokens/{id}/revoke"),
            Some(&cookie),
            Some(&site.origin),
            "",
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert!(site.api_tokens(&session).await.is_empty());
}

#[tokio::test]
async fn the_tokens_page_is_newest_first_and_paged() {
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    let cookie = site.log_in("alice").await;
    let auth = format!("Bearer {session}");
    for n in 0..23 {
        let body = serde_json::json!({
            "password": PASSWORD, "packages_and_scopes_permission": "read-write",
            "name": format!("token-{n:02}")
        });
        let reply = http(
            site.registry.addr,
            "POST",
            "/-/npm/v1/tokens",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let names = |body: &str| -> Vec<String> {
        body.match_indices(">token-")
            .map(|(at, _)| body[at + 1..at + 9].to_owned())
            .collect()
    };
    let first = site.get("/-/web/tokens", Some(&cookie)).await;
    assert!(
        first.body.contains("23 tokens, page 1 of 2."),
        "{}",
        first.body
    );
    let first_names = names(&first.body);
    assert_eq!(first_names.len(), 20);
    assert_eq!(first_names[0], "token-22");
    assert_eq!(first_names[19], "token-03");
    assert!(first.body.contains("href=\"/-/web/tokens?page=1\""));
    let second = site.get("/-/web/tokens?page=1", Some(&cookie)).await;
    assert_eq!(names(&second.body), ["token-02", "token-01", "token-00"]);
}

#[tokio::test]
async fn npm_browser_login_protocol() {
    let site = Site::start().await;
    site.add_user("alice").await;
    let login = site.npm_login(HERE.into()).await;
    let (login_id, done_path) = (login.id.clone(), login.done.clone());
    assert_ne!(
        login_id,
        done_path.rsplit('=').next().unwrap(),
        "the page never learns npm's id"
    );

    let waiting = site.get(&done_path, None).await;
    assert_eq!(waiting.status, 202);
    assert_eq!(waiting.header("retry-after"), Some("1"));
    assert_eq!(waiting.json(), serde_json::json!({}));

    // The page says when and where npm login ran, and how long it waits; from the same
    // address as the terminal, it asks the person to go on only if that was them, and
    // the password alone finishes it.
    let page = site.get(&login.page, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Log in to npm"));
    assert_eq!(
        text_of(&page.body, "npm-from").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        text_of(&page.body, "npm-browser").as_deref(),
        Some("127.0.0.1")
    );
    let started = text_of(&page.body, "npm-started").unwrap();
    assert_eq!(started, "This login was started by ");
    let started_at = page.body.split("</strong> on ").nth(1).unwrap();
    // A `<time>`, as every page shows times (the page's script puts it in the reader's zone).
    assert!(
        started_at.starts_with("<time datetime=\"") && started_at.contains(" UTC</time>, "),
        "{started_at}"
    );
    let expires = text_of(&page.body, "npm-expires").unwrap();
    assert!(
        expires.starts_with("npm logins wait 5 minutes at most: this one expires in "),
        "{expires}"
    );
    assert!(page.body.contains("Go on only if you ran"));
    assert!(!page.body.contains("id=\"confirm_npm\""));
    let done = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("username=alice&password=correct+horse+battery&npm={login_id}"),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("npm is now logged in"));
    assert!(done.body.contains("at 127.0.0.1"), "{}", done.body);
    let token = site.get(&done_path, None).await;
    assert_eq!(token.status, 200);
    let token = token.json()["token"].as_str().unwrap().to_owned();
    let whoami = http(
        site.registry.addr,
        "GET",
        "/-/whoami",
        &[("authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await;
    assert_eq!(whoami.json()["username"], "alice");
    // The token is handed over once; the login cannot be finished twice.
    assert_eq!(site.get(&done_path, None).await.status, 404);
    let again = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("username=alice&password=correct+horse+battery&npm={login_id}"),
        )
        .await;
    assert!(again.body.contains("run npm login again"));
    // A finished (or expired, or unknown) login has no page.
    let gone = site.get(&login.page, None).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert!(gone.body.contains("run npm login again"), "{}", gone.body);

    // npm adduser asks for web sign-up; the registry sends it to the password prompt.
    let create = http(
        site.registry.addr,
        "POST",
        "/-/v1/login",
        &[("content-type", "application/json")],
        br#"{"create":true}"#,
    )
    .await;
    assert_eq!(create.status, 404);
}

#[tokio::test]
async fn an_npm_login_started_elsewhere_needs_a_separate_confirmation() {
    // RFC 8628, section 5.4: someone at 127.0.0.2 starts npm login and sends the genuine
    // loginUrl to alice, whose browser is at 127.0.0.1.
    let site = Site::start().await;
    site.add_user("alice").await;
    let login = site.npm_login(loopback(2)).await;

    // The page says plainly that the login came from elsewhere, and from where.
    let page = site.get(&login.page, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        text_of(&page.body, "npm-from").as_deref(),
        Some("127.0.0.2")
    );
    assert_eq!(
        text_of(&page.body, "npm-browser").as_deref(),
        Some("127.0.0.1")
    );
    assert!(
        page.body
            .contains("This login was started from another address than this browser's."),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"confirm_npm\""), "{}", page.body);

    // The user name and password alone do not finish it, nor start a web session: the
    // page asks for the box, and npm keeps waiting.
    let form = Site::login_form("alice", &login.id);
    let plain = site
        .post("/-/web/login", None, Some(&site.origin), &form)
        .await;
    assert_eq!(plain.status, 401, "{}", plain.body);
    assert_eq!(
        field_error(&plain.body, "confirm_npm").as_deref(),
        Some(
            "this npm login was started from another address: tick the box to confirm that \
             you started it yourself, or close this page"
        )
    );
    assert!(plain.header("set-cookie").is_none());
    assert_eq!(site.get(&login.done, None).await.status, 202);
    // A box with another value is not the box.
    let forged = format!("{form}&confirm_npm=on");
    let forged = site
        .post("/-/web/login", None, Some(&site.origin), &forged)
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(site.get(&login.done, None).await.status, 202);

    // Ticking the box, a separate and stated confirmation, finishes it (the person who
    // ran npm login over SSH on another machine, say).
    let confirmed = format!("{form}&confirm_npm=yes");
    let confirmed = site
        .post("/-/web/login", None, Some(&site.origin), &confirmed)
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert!(confirmed.body.contains("npm is now logged in"));
    assert!(
        confirmed.body.contains("at 127.0.0.2"),
        "{}",
        confirmed.body
    );
    let token = site.get(&login.done, None).await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert!(token.json()["token"].as_str().unwrap().starts_with("npm_"));

    // From the terminal's own address, the same page needs no box.
    let login = site.npm_login(loopback(2)).await;
    let page = site.get_from(loopback(2), &login.page, None).await;
    assert!(!page.body.contains("id=\"confirm_npm\""), "{}", page.body);
    let form = Site::login_form("alice", &login.id);
    let done = site
        .post_from(loopback(2), "/-/web/login", None, Some(&site.origin), &form)
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(site.get(&login.done, None).await.status, 200);
}

#[tokio::test]
async fn npm_logins_waiting_are_limited_per_address() {
    let site = Site::start().await;
    site.add_user("alice").await;
    let busy = loopback(2);
    // At the limit: five logins waiting from one address.
    let mut waiting = Vec::new();
    for n in 0..5 {
        let reply = site.start_npm_login(busy).await;
        assert_eq!(reply.status, 200, "login {n}: {}", reply.body);
        waiting.push(reply);
    }
    // One past it: refused, saying why and for how long (npm then offers its password
    // prompt instead).
    let refused = site.start_npm_login(busy).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        refused.json()["error"],
        "too many npm logins are waiting from your address (at most 5, each for 5 minutes): \
         finish one in the browser or wait for it to expire"
    );
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "Retry-After: {retry}");
    // Another address still gets through, and so does this one.
    assert_eq!(site.start_npm_login(loopback(3)).await.status, 200);
    assert_eq!(site.start_npm_login(HERE.into()).await.status, 200);
    // A login finished and collected by npm frees its place.
    let first = site.npm_login(loopback(4)).await;
    for _ in 0..4 {
        site.npm_login(loopback(4)).await;
    }
    assert_eq!(site.start_npm_login(loopback(4)).await.status, 429);
    let form = Site::login_form("alice", &first.id);
    let done = site
        .post_from(loopback(4), "/-/web/login", None, Some(&site.origin), &form)
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(site.get(&first.done, None).await.status, 200);
    assert_eq!(site.start_npm_login(loopback(4)).await.status, 200);
}

#[tokio::test]
async fn one_address_cannot_fill_the_npm_login_table() {
    let site = Site::start().await;
    // The flood: a thousand logins started from one address, at once.
    let mut accepted = 0;
    for n in 0..1000 {
        match site.start_npm_login(loopback(2)).await.status {
            200 => accepted += 1,
            429 => {}
            other => panic!("start {n}: {other}"),
        }
    }
    assert_eq!(
        accepted, 5,
        "one address kept more than five logins waiting"
    );
    // The table of a thousand is still open to everyone else: 199 more addresses fill it
    // to the limit, five each...
    let addr = site.registry.addr;
    let mut others = tokio::task::JoinSet::new();
    for n in 3..=201 {
        others.spawn(async move {
            for attempt in 0..5 {
                let reply = start_npm_login(addr, loopback(n)).await;
                assert_eq!(
                    reply.status, 200,
                    "127.0.0.{n}, login {attempt}: {}",
                    reply.body
                );
            }
        });
    }
    while let Some(finished) = others.join_next().await {
        finished.unwrap();
    }
    // ...and one past it is refused, whoever asks, until a place frees.
    let full = site.start_npm_login(loopback(202)).await;
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(
        full.json()["error"],
        "too many npm logins are in progress; try again shortly"
    );
    assert!(full.header("retry-after").is_some());
}

#[tokio::test]
async fn two_factor_accounts_give_a_code_on_the_page() {
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    let mut last_step = None;
    let enrolled = site.enable_2fa(&session, &mut last_step).await;
    let secret = enrolled.secret;

    // Logging in: the password alone asks for a code; a recovery-code-sized guess is refused.
    let form = "username=alice&password=correct+horse+battery";
    let reply = site
        .post("/-/web/login", None, Some(&site.origin), form)
        .await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("id=\"otp\""));
    assert_eq!(
        field_error(&reply.body, "otp").as_deref(),
        Some("a one-time password is needed")
    );
    assert!(reply.header("set-cookie").is_none());
    let reply = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("{form}&otp=123"),
        )
        .await;
    assert!(
        field_error(&reply.body, "otp")
            .unwrap()
            .starts_with("this operation requires a one-time password")
    );

    // A recovery code logs in (as at npm's prompt); then the create form asks for a code.
    let recovery = enrolled.recovery[0].clone();
    let reply = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("{form}&otp={recovery}"),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let cookie = session_of(&reply);
    let page = site.get("/-/web/tokens/new", Some(&cookie)).await;
    assert!(page.body.contains("<label for=\"otp\">"));
    let reply = site.create(&cookie, "name=ci&permission=read-only").await;
    assert_eq!(reply.status, 400);
    assert!(
        field_error(&reply.body, "otp")
            .unwrap()
            .contains("one-time password")
    );
    let code = support::fresh_code(&secret, &mut last_step).await;
    let reply = site
        .create(&cookie, &format!("name=ci&permission=read-only&otp={code}"))
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);

    // Revoking asks for a code too, as npm token revoke does.
    let id = site.api_tokens(&session).await[0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = site
        .post(
            &format!("/-/web/tokens/{id}/revoke"),
            Some(&cookie),
            Some(&site.origin),
            "",
        )
        .await;
    assert_eq!(reply.status, 401);
    assert!(field_error(&reply.body, "otp").is_some());
    assert_eq!(site.api_tokens(&session).await.len(), 1);

    // An npm login started elsewhere: the box ticked with the password stays ticked while
    // the page asks for the code, and the code then finishes it.
    let login = site.npm_login(loopback(2)).await;
    let form = format!("{}&confirm_npm=yes", Site::login_form("alice", &login.id));
    let reply = site
        .post("/-/web/login", None, Some(&site.origin), &form)
        .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(field_error(&reply.body, "otp").is_some(), "{}", reply.body);
    assert!(
        reply
            .body
            .contains("name=\"confirm_npm\" value=\"yes\" checked"),
        "{}",
        reply.body
    );
    let recovery = &enrolled.recovery[1];
    let reply = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("{form}&otp={recovery}"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(site.get(&login.done, None).await.status, 200);
}

#[tokio::test]
async fn an_address_guessing_passwords_is_stopped_across_accounts() {
    let site = Site::start().await;
    let accounts = ["alice", "bob", "carol", "dave"];
    for user in accounts {
        site.add_user(user).await;
    }
    // 30 wrong passwords from one address, under each account's own limit of 10.
    for attempt in 0..30 {
        let user = accounts[attempt % accounts.len()];
        let form = format!("username={user}&password=a+wrong+password");
        let reply = site
            .post("/-/web/login", None, Some(&site.origin), &form)
            .await;
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.body);
    }
    // The address is told to wait, even with the right password of an account.
    let form = format!("username=dave&password={}", PASSWORD.replace(' ', "+"));
    let reply = site
        .post("/-/web/login", None, Some(&site.origin), &form)
        .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(
        reply.body.contains("too many wrong passwords"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_new_password_ends_the_web_sessions_too() {
    let site = Site::start().await;
    let npm_session = site.add_user("alice").await;
    let web_session = site.log_in("alice").await;
    let reply = site.get("/-/web/tokens", Some(&web_session)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // `npm profile set password`, from npm's own session.
    let auth = format!("Bearer {npm_session}");
    let change = serde_json::json!({
        "password": { "old": support::registry::PASSWORD, "new": "a brand new password" }
    });
    let reply = http(
        site.registry.addr,
        "POST",
        "/-/npm/v1/user",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        change.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Whoever logged in on the page with the old password is logged out.
    let reply = site.get("/-/web/tokens", Some(&web_session)).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/-/web/login"));
}

/// The `passed` key a login's first step left in its form, if it did.
fn passed_key(body: &str) -> Option<String> {
    let after = body.split("name=\"passed\" value=\"").nth(1)?;
    Some(after.split('"').next()?.to_owned())
}

#[tokio::test]
async fn a_two_factor_login_asks_for_the_password_once() {
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    site.add_user("bob").await;
    let mut last_step = None;
    let enrolled = site.enable_2fa(&session, &mut last_step).await;
    let first = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            "username=alice&password=correct+horse+battery",
        )
        .await;
    assert_eq!(first.status, 401);
    // The second step asks for the code alone: no password field the browser would
    // refuse to submit empty.
    assert!(!first.body.contains("id=\"password\""), "{}", first.body);
    assert!(first.body.contains("Password checked."), "{}", first.body);
    let key = passed_key(&first.body).expect("the first step's key");

    // The key is alice's, not bob's; a wrong code keeps the step, with a new key.
    let as_bob = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("username=bob&passed={key}&otp=123456"),
        )
        .await;
    assert_eq!(as_bob.status, 401);
    assert!(
        as_bob.body.contains("the password step is over"),
        "{}",
        as_bob.body
    );
    let first = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            "username=alice&password=correct+horse+battery",
        )
        .await;
    let key = passed_key(&first.body).unwrap();
    let wrong = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("username=alice&passed={key}&otp=000000"),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let retry = passed_key(&wrong.body).expect("a new key after a wrong code");
    assert_ne!(retry, key, "a key is good once");
    let recovery = &enrolled.recovery[0];
    let done = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("username=alice&passed={retry}&otp={recovery}"),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let reused = site
        .post(
            "/-/web/login",
            None,
            Some(&site.origin),
            &format!("username=alice&passed={retry}&otp={}", enrolled.recovery[1]),
        )
        .await;
    assert_eq!(reused.status, 401, "a key is good once: {}", reused.body);
}

// ---------------------------------------------------------------------------------------
// Packages and their trusted publishers

/// The registry's flags for trusted publishing from GitHub Actions and GitLab.com (built
/// in) but not CircleCI, so that a provider it does not trust can be asked for.
const TRUSTING: [&str; 2] = ["--oidc-issuer", "circleci=off"];

/// A GitHub publisher as the add form sends it.
const GITHUB_FORM: &str = "provider=github&github_repository=acme%2Ftool&github_workflow=release.yml&github_environment=prod";

impl Site {
    /// Publishes `name` 1.0.0 with `token` (so that its owner maintains it).
    async fn publish(&self, token: &str, name: &str) {
        let auth = format!("Bearer {token}");
        let body = support::client::publish_body(name, "1.0.0", serde_json::json!(null));
        let path = format!("/{}", name.replace('/', "%2F"));
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let reply = http(self.registry.addr, "PUT", &path, &headers, body.as_bytes()).await;
        assert!(reply.status < 300, "{}", reply.body);
    }

    /// The package's trusted publishers as `npm trust list` gets them.
    async fn api_publishers(&self, token: &str, package: &str) -> Vec<serde_json::Value> {
        let auth = format!("Bearer {token}");
        let path = format!("/-/package/{}/trust", package.replace('/', "%2F"));
        let reply = http(
            self.registry.addr,
            "GET",
            &path,
            &[("authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json().as_array().unwrap().clone()
    }

    /// Posts the add form for `package`'s settings page.
    async fn add_publisher(&self, cookie: &str, package: &str, form: &str) -> Reply {
        let path = format!("/-/web/packages/{}/trust", package.replace('/', "%2F"));
        self.post(&path, Some(cookie), Some(&self.origin), form)
            .await
    }

    /// Presses publisher `id`'s remove button on `package`'s settings page.
    async fn remove_publisher(&self, cookie: &str, package: &str, id: &str, form: &str) -> Reply {
        let path = format!(
            "/-/web/packages/{}/trust/{id}/remove",
            package.replace('/', "%2F")
        );
        self.post(&path, Some(cookie), Some(&self.origin), form)
            .await
    }
}

/// The id a redirect after adding a publisher names.
fn added_id(reply: &Reply) -> String {
    assert_eq!(reply.status, 303, "{}", reply.body);
    let location = reply.header("location").unwrap();
    location.split_once("?added=").unwrap().1.to_owned()
}

#[tokio::test]
async fn maintainers_list_add_and_remove_trusted_publishers() {
    let site = Site::start_with(&TRUSTING).await;
    let session = site.add_user("alice").await;
    site.publish(&session, "@alice/tool").await;
    site.publish(&session, "plain").await;
    let cookie = site.log_in("alice").await;

    // The Packages page, linked beside Tokens, links each package's settings page (a
    // scoped name's `/` escaped).
    let tokens = site.get("/-/web/tokens", Some(&cookie)).await;
    assert!(
        tokens
            .body
            .contains("<a href=\"/-/web/packages\">Packages</a>")
    );
    let packages = site.get("/-/web/packages", Some(&cookie)).await;
    assert_eq!(packages.status, 200, "{}", packages.body);
    assert!(
        packages
            .body
            .contains("<a href=\"/-/web/packages/@alice%2Ftool\">@alice/tool</a>"),
        "{}",
        packages.body
    );
    assert!(
        packages
            .body
            .contains("<a href=\"/-/web/packages/plain\">plain</a>")
    );
    let page = site
        .get("/-/web/packages/@alice%2Ftool", Some(&cookie))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No trusted publishers yet."));
    assert!(!page.body.contains("id=\"otp\""), "no 2FA, no code asked");

    // Adding one: the page lists what it names, and npm trust list shows the same.
    let github = added_id(
        &site
            .add_publisher(&cookie, "@alice/tool", GITHUB_FORM)
            .await,
    );
    let listed = site.api_publishers(&session, "@alice/tool").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], github.as_str());
    assert_eq!(listed[0]["type"], "github");
    assert_eq!(listed[0]["claims"]["repository"], "acme/tool");
    assert_eq!(listed[0]["claims"]["workflow_ref"]["file"], "release.yml");
    assert_eq!(listed[0]["claims"]["environment"], "prod");
    let page = site
        .get(
            &format!("/-/web/packages/@alice%2Ftool?added={github}"),
            Some(&cookie),
        )
        .await;
    for shown in [
        format!("Trusted publisher {github} added."),
        "<h3>GitHub Actions</h3>".to_owned(),
        "<dt>Repository</dt><dd><code>acme/tool</code></dd>".to_owned(),
        "<dt>Workflow</dt><dd><code>release.yml</code></dd>".to_owned(),
        "<dt>Environment</dt><dd><code>prod</code></dd>".to_owned(),
        "<dt>May</dt><dd>publish</dd>".to_owned(),
        "<dt>Pinned ids</dt><dd>not yet (at the first publish from it)</dd>".to_owned(),
        format!("<dt>ID</dt><dd><code>{github}</code></dd>"),
        format!("action=\"/-/web/packages/@alice%2Ftool/trust/{github}/remove\""),
    ] {
        assert!(page.body.contains(&shown), "{shown} in {}", page.body);
    }
    let gitlab = added_id(
        &site
            .add_publisher(
                &cookie,
                "@alice/tool",
                "provider=gitlab&gitlab_project=acme%2Fsub%2Fcli&gitlab_ci_file=.gitlab-ci.yml",
            )
            .await,
    );
    let page = site
        .get("/-/web/packages/@alice%2Ftool", Some(&cookie))
        .await;
    assert!(
        page.body
            .contains("<dt>Project</dt><dd><code>acme/sub/cli</code></dd>")
    );
    assert!(page.body.contains("<dt>Environment</dt><dd>any</dd>"));
    assert_eq!(
        site.api_publishers(&session, "plain").await,
        Vec::<serde_json::Value>::new()
    );

    // Removing one: gone from the page and from npm trust list; the other stays.
    let reply = site
        .remove_publisher(&cookie, "@alice/tool", &github, "")
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(
        reply.header("location"),
        Some(format!("/-/web/packages/@alice%2Ftool?removed={github}").as_str())
    );
    let listed = site.api_publishers(&session, "@alice/tool").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], gitlab.as_str());
    let page = site
        .get("/-/web/packages/@alice%2Ftool", Some(&cookie))
        .await;
    assert!(!page.body.contains(&github));
    // Once more: said, not done twice.
    let again = site
        .remove_publisher(&cookie, "@alice/tool", &github, "")
        .await;
    assert_eq!(again.status, 404);
    assert!(
        again.body.contains("it may have been removed already"),
        "{}",
        again.body
    );
}

/// A form the add form refuses, and what it says next to which field.
struct Refusal {
    what: &'static str,
    form: &'static str,
    field: &'static str,
    says: &'static str,
}

#[tokio::test]
async fn the_settings_page_refuses_what_npm_trust_refuses_and_says_why() {
    let site = Site::start_with(&TRUSTING).await;
    let session = site.add_user("alice").await;
    site.publish(&session, "tool").await;
    let cookie = site.log_in("alice").await;

    let refusals = [
        Refusal {
            what: "no repository",
            form: "provider=github&github_workflow=release.yml",
            field: "github_repository",
            says: "the repository (owner/repo) is required",
        },
        Refusal {
            what: "a repository without its owner",
            form: "provider=github&github_repository=tool&github_workflow=release.yml",
            field: "github_repository",
            says: "a GitHub repository is owner/repo",
        },
        Refusal {
            what: "a workflow that is not a YAML file",
            form: "provider=github&github_repository=acme%2Ftool&github_workflow=release",
            field: "github_workflow",
            says: "a workflow is a file name ending in .yml or .yaml",
        },
        Refusal {
            what: "an environment with a control character",
            form: "provider=github&github_repository=acme%2Ftool&github_workflow=release.yml&github_environment=pr%07od",
            field: "github_environment",
            says: "an environment name is 1 to 255 characters",
        },
        Refusal {
            what: "a GitLab project without its group",
            form: "provider=gitlab&gitlab_project=cli&gitlab_ci_file=.gitlab-ci.yml",
            field: "gitlab_project",
            says: "a GitLab project path is group[/subgroup…]/project",
        },
        Refusal {
            what: "a provider the registry does not trust",
            form: "provider=circleci&circleci_org=0b5b9a2e-6a55-4d1f-9d8e-3f3a8a1c2b3d&circleci_project=1b5b9a2e-6a55-4d1f-9d8e-3f3a8a1c2b3d&circleci_pipeline=2b5b9a2e-6a55-4d1f-9d8e-3f3a8a1c2b3d",
            field: "provider",
            says: "this registry does not accept CircleCI's ID tokens",
        },
        Refusal {
            what: "no such provider",
            form: "provider=jenkins",
            field: "provider",
            says: "\"jenkins\" is not a CI provider",
        },
        Refusal {
            what: "a field the form does not have",
            form: "provider=github&github_repository=acme%2Ftool&github_workflow=release.yml&stage=yes",
            field: "general",
            says: "the form sent a field this page does not have (\"stage\")",
        },
        Refusal {
            what: "a field twice",
            form: "provider=github&provider=gitlab&github_repository=acme%2Ftool&github_workflow=release.yml",
            field: "general",
            says: "the form could not be read (",
        },
    ];
    for refusal in &refusals {
        let reply = site.add_publisher(&cookie, "tool", refusal.form).await;
        assert_eq!(reply.status, 400, "{}: {}", refusal.what, reply.body);
        let said = field_error(&reply.body, refusal.field).unwrap_or_else(|| {
            panic!(
                "{}: no error on {} in {}",
                refusal.what, refusal.field, reply.body
            )
        });
        assert!(
            said.starts_with(&refusal.says.replace('"', "&quot;")),
            "{}: {said}",
            refusal.what
        );
        assert!(
            site.api_publishers(&session, "tool").await.is_empty(),
            "{}",
            refusal.what
        );
    }
    // What was typed stays on the form.
    let reply = site.add_publisher(&cookie, "tool", refusals[1].form).await;
    assert!(
        reply
            .body
            .contains("name=\"github_repository\" value=\"tool\""),
        "{}",
        reply.body
    );

    // At most ten, as npm trust: the eleventh is refused with a message, nothing stored.
    for n in 0..10 {
        let form = format!(
            "provider=github&github_repository=acme%2Ftool&github_workflow=release-{n}.yml"
        );
        added_id(&site.add_publisher(&cookie, "tool", &form).await);
    }
    let reply = site.add_publisher(&cookie, "tool", GITHUB_FORM).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        field_error(&reply.body, "general").as_deref(),
        Some(
            "this package has 10 trusted publishers, the most a package may have is 10: remove one first"
        )
    );
    assert_eq!(site.api_publishers(&session, "tool").await.len(), 10);
}

#[tokio::test]
async fn a_two_factor_account_gives_a_code_to_change_trusted_publishers() {
    let site = Site::start_with(&TRUSTING).await;
    let session = site.add_user("alice").await;
    site.publish(&session, "tool").await;
    let mut last_step = None;
    let enrolled = site.enable_2fa(&session, &mut last_step).await;
    let [login, add, remove, ..] = enrolled.recovery.as_slice() else {
        panic!("recovery codes");
    };
    let cookie = site.log_in_with_code("alice", login).await;

    // The form asks for a code, and without one nothing is added.
    let page = site.get("/-/web/packages/tool", Some(&cookie)).await;
    assert!(
        page.body
            .contains("<label for=\"otp\">One-time password</label>")
    );
    let reply = site.add_publisher(&cookie, "tool", GITHUB_FORM).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(
        field_error(&reply.body, "otp")
            .unwrap()
            .contains("one-time password"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("No trusted publishers yet."));
    let id = added_id(
        &site
            .add_publisher(&cookie, "tool", &format!("{GITHUB_FORM}&otp={add}"))
            .await,
    );

    // Removing asks for one too.
    let reply = site.remove_publisher(&cookie, "tool", &id, "").await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(
        field_error(&reply.body, &format!("otp-{id}")).is_some(),
        "{}",
        reply.body
    );
    let reply = site
        .remove_publisher(&cookie, "tool", &id, &format!("otp={remove}"))
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
}

#[tokio::test]
async fn only_maintainers_have_a_settings_page_and_only_from_its_own_pages() {
    let site = Site::start_with(&TRUSTING).await;
    let alice = site.add_user("alice").await;
    site.add_user("bob").await;
    site.publish(&alice, "tool").await;
    let alices = site.log_in("alice").await;
    let id = added_id(&site.add_publisher(&alices, "tool", GITHUB_FORM).await);
    let bobs = site.log_in("bob").await;

    // Bob sees the public package, but its settings page is the 404 of no package at all,
    // and so is every change he posts to it.
    let missing = site.get("/-/web/packages/nothing", Some(&bobs)).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .body
            .contains("package &quot;nothing&quot; not found"),
        "{}",
        missing.body
    );
    let packages = site.get("/-/web/packages", Some(&bobs)).await;
    assert!(!packages.body.contains("/-/web/packages/tool"));
    let answers = [
        site.get("/-/web/packages/tool", Some(&bobs)).await,
        site.add_publisher(&bobs, "tool", GITHUB_FORM).await,
        site.remove_publisher(&bobs, "tool", &id, "").await,
    ];
    for answer in &answers {
        assert_eq!(answer.status, 404, "{}", answer.body);
        assert_eq!(
            answer.body,
            missing.body.replace("nothing", "tool"),
            "the same page as for no package"
        );
    }
    assert_eq!(site.api_publishers(&alice, "tool").await.len(), 1);

    // Alice's own changes, posted from another site or with no origin at all, are refused
    // before they are read.
    let path = "/-/web/packages/tool/trust";
    let remove = format!("/-/web/packages/tool/trust/{id}/remove");
    for (what, path, origin) in [
        (
            "an add from another site",
            path,
            Some("https://evil.example"),
        ),
        ("an add without an origin", path, None),
        (
            "a removal from another site",
            remove.as_str(),
            Some("https://evil.example"),
        ),
        ("a removal without an origin", remove.as_str(), None),
    ] {
        let reply = site.post(path, Some(&alices), origin, GITHUB_FORM).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.body);
    }
    let listed = site.api_publishers(&alice, "tool").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
}

#[tokio::test]
async fn the_settings_page_shows_the_ids_pinned_at_the_first_exchange() {
    let issuer =
        support::issuer::Issuer::start(support::issuer::github_claims("acme/tool", "release.yml"))
            .await;
    let flag = format!("github={}", issuer.url);
    let site = Site::start_with(&["--oidc-issuer", &flag]).await;
    let session = site.add_user("alice").await;
    site.publish(&session, "tool").await;
    let cookie = site.log_in("alice").await;
    let form = "provider=github&github_repository=acme%2Ftool&github_workflow=release.yml";
    added_id(&site.add_publisher(&cookie, "tool", form).await);

    // A CI job of that workflow exchanges its ID token: the publisher is pinned to the
    // repository's and owner's ids, and the page says so.
    let auth = format!("Bearer {}", issuer.mint("npm:127.0.0.1", |_| {}));
    let path = "/-/npm/v1/oidc/token/exchange/package/tool";
    let exchanged = http(
        site.registry.addr,
        "POST",
        path,
        &[("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(exchanged.status, 201, "{}", exchanged.body);
    let page = site.get("/-/web/packages/tool", Some(&cookie)).await;
    assert!(
        page.body
            .contains("<dt>Pinned ids</dt><dd>repository 74, owner 65</dd>"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_circleci_publisher_is_named_by_its_ids() {
    // CircleCI's cloud is trusted out of the box.
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    site.publish(&session, "tool").await;
    let cookie = site.log_in("alice").await;
    let org = "0b5b9a2e-6a55-4d1f-9d8e-3f3a8a1c2b3d";
    let ids = format!(
        "provider=circleci&circleci_org={org}&circleci_project=1b5b9a2e-6a55-4d1f-9d8e-3f3a8a1c2b3d&circleci_pipeline=2b5b9a2e-6a55-4d1f-9d8e-3f3a8a1c2b3d"
    );

    let reply = site
        .add_publisher(&cookie, "tool", &ids.replace(org, "acme"))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        field_error(&reply.body, "circleci_org").as_deref(),
        Some("the organisation id is a UUID")
    );
    let reply = site
        .add_publisher(
            &cookie,
            "tool",
            &format!("{ids}&circleci_vcs_origin=https://github.com/acme/tool"),
        )
        .await;
    assert_eq!(
        field_error(&reply.body, "circleci_vcs_origin").as_deref(),
        Some("a VCS origin is provider/owner/repo, without a scheme")
    );

    let form = format!("{ids}&circleci_vcs_origin=github.com/acme/tool");
    added_id(&site.add_publisher(&cookie, "tool", &form).await);
    let page = site.get("/-/web/packages/tool", Some(&cookie)).await;
    for shown in [
        "<h3>CircleCI</h3>".to_owned(),
        format!("<dt>Organisation id</dt><dd><code>{org}</code></dd>"),
        "<dt>VCS origin</dt><dd><code>github.com/acme/tool</code></dd>".to_owned(),
    ] {
        assert!(page.body.contains(&shown), "{shown} in {}", page.body);
    }
    let listed = site.api_publishers(&session, "tool").await;
    assert_eq!(listed[0]["type"], "circleci", "{listed:?}");
}

#[tokio::test]
async fn an_organisations_page_shows_its_members_and_teams_to_members_only() {
    let site = Site::start().await;
    let alice = site.add_user("alice").await;
    site.add_user("bob").await;
    site.add_user("dave").await;
    let auth = format!("Bearer {alice}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let steps = [
        ("PUT", "/-/org/acme", ""),
        (
            "PUT",
            "/-/org/acme/user",
            r#"{"user":"bob","role":"admin"}"#,
        ),
        (
            "PUT",
            "/-/org/acme/team",
            r#"{"name":"readers","description":"they read"}"#,
        ),
    ];
    for (method, path, body) in steps {
        let reply = http(site.registry.addr, method, path, &headers, body.as_bytes()).await;
        assert!(reply.status < 300, "{path}: {}", reply.body);
    }
    let bob = site.log_in("bob").await;
    let page = site.get("/-/web/orgs/acme", Some(&bob)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "alice",
        "owner",
        "admin",
        "acme:developers",
        "acme:readers",
        "they read",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    let dave = site.log_in("dave").await;
    let hidden = site.get("/-/web/orgs/acme", Some(&dave)).await;
    let missing = site.get("/-/web/orgs/nothing", Some(&dave)).await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    assert_eq!(
        hidden.body.replace("acme", "nothing"),
        missing.body,
        "as for an organisation that does not exist"
    );
    let anonymous = site.get("/-/web/orgs/acme", None).await;
    assert!(
        !anonymous.body.contains("acme:readers"),
        "{}",
        anonymous.body
    );
}

#[tokio::test]
async fn an_organisation_is_made_on_its_page_by_any_user() {
    let site = Site::start().await;
    site.add_user("alice").await;
    let alice = site.log_in("alice").await;
    let form = site.get("/-/web/new-organisation", Some(&alice)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let made = site.make_org(&alice, Some(&site.origin), "name=acme").await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.header("location"), Some("/-/web/orgs/acme"));
    let page = site.get("/-/web/orgs/acme", Some(&alice)).await;
    assert!(page.body.contains("owner"), "{}", page.body);
    // Her packages page leads to it, and to making another.
    let packages = site.get("/-/web/packages", Some(&alice)).await;
    for shown in [
        "<a href=\"/-/web/orgs/acme\">@acme</a>",
        "(owner)",
        "href=\"/-/web/new-organisation\"",
    ] {
        assert!(packages.body.contains(shown), "{shown}: {}", packages.body);
    }

    struct Case {
        name: &'static str,
        form: &'static str,
        says: &'static str,
    }
    let refused = [
        Case {
            name: "taken",
            form: "name=acme",
            says: "is taken",
        },
        Case {
            name: "a user's",
            form: "name=alice",
            says: "is taken",
        },
        Case {
            name: "not a scope",
            form: "name=Not+A+Scope",
            says: "cannot be an organisation",
        },
    ];
    for case in refused {
        let reply = site.make_org(&alice, Some(&site.origin), case.form).await;
        assert_eq!(reply.status, 400, "{}: {}", case.name, reply.body);
        assert!(
            reply.body.contains(case.says),
            "{}: {}",
            case.name,
            reply.body
        );
    }
    // From another site: refused before anything is made.
    let forged = site
        .make_org(&alice, Some("https://evil.example"), "name=evil")
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let none = site.get("/-/web/orgs/evil", Some(&alice)).await;
    assert_eq!(none.status, 404);
}

#[tokio::test]
async fn owners_and_admins_change_members_and_teams_on_the_page() {
    let site = Site::start().await;
    let alice_api = site.add_user("alice").await;
    site.add_user("bob").await;
    let auth = format!("Bearer {alice_api}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    for (path, body) in [
        ("/-/org/acme", ""),
        ("/-/org/acme/team", r#"{"name":"readers"}"#),
    ] {
        let reply = http(site.registry.addr, "PUT", path, &headers, body.as_bytes()).await;
        assert!(reply.status < 300, "{path}: {}", reply.body);
    }
    let alice = site.log_in("alice").await;
    let from_here = |path: &'static str, form: &'static str| {
        let alice = alice.clone();
        let site = &site;
        async move {
            site.post(path, Some(&alice), Some(&site.origin), form)
                .await
        }
    };
    let steps = [
        ("/-/web/orgs/acme/members", "user=bob&role=developer"),
        ("/-/web/orgs/acme/teams/readers/add", "user=bob"),
    ];
    for (path, form) in steps {
        let reply = from_here(path, form).await;
        assert_eq!(reply.status, 303, "{path}: {}", reply.body);
        assert_eq!(reply.header("location"), Some("/-/web/orgs/acme"));
    }
    let roster = http(
        site.registry.addr,
        "GET",
        "/-/team/acme/readers/user",
        &headers,
        b"",
    )
    .await;
    assert_eq!(roster.json(), serde_json::json!(["bob"]));

    // bob, a developer, sees no forms, and his posts are refused.
    let bob = site.log_in("bob").await;
    let page = site.get("/-/web/orgs/acme", Some(&bob)).await;
    assert!(
        !page.body.contains("action=\"/-/web/orgs/acme/"),
        "{}",
        page.body
    );
    let refused = site
        .post(
            "/-/web/orgs/acme/members/remove",
            Some(&bob),
            Some(&site.origin),
            "user=alice",
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("you are a developer"),
        "{}",
        refused.body
    );
    // From another site, even alice's session changes nothing.
    let forged = site
        .post(
            "/-/web/orgs/acme/members/remove",
            Some(&alice),
            Some("https://evil.example"),
            "user=bob",
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    for (path, form) in [
        ("/-/web/orgs/acme/teams/readers/remove", "user=bob"),
        ("/-/web/orgs/acme/members/remove", "user=bob"),
    ] {
        let reply = from_here(path, form).await;
        assert_eq!(reply.status, 303, "{path}: {}", reply.body);
    }
    let members = http(site.registry.addr, "GET", "/-/org/acme/user", &headers, b"").await;
    assert_eq!(members.json(), serde_json::json!({ "alice": "owner" }));
}

#[tokio::test]
async fn admins_change_teams_and_their_packages_and_owners_remove_the_organisation_on_the_page() {
    use support::client::publish_body;
    let site = Site::start().await;
    let alice_api = site.add_user("alice").await;
    let auth = format!("Bearer {alice_api}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let api = |method: &'static str, path: String, body: String| {
        let addr = site.registry.addr;
        async move { http(addr, method, &path, &headers, body.as_bytes()).await }
    };
    let made = api("PUT", "/-/org/acme".into(), String::new()).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let body = publish_body("@acme/tool", "1.0.0", serde_json::json!("restricted"));
    let published = api("PUT", "/@acme%2ftool".into(), body).await;
    assert_eq!(published.status, 201, "{}", published.body);
    let alice = site.log_in("alice").await;
    let page = site.get("/-/web/orgs/acme", Some(&alice)).await;
    for form in [
        "/teams\"",
        "/grant\"",
        "/revoke\"",
        "/settings\"",
        "/remove\"",
    ] {
        assert!(page.body.contains(form), "{form}: {}", page.body);
    }

    struct Step {
        name: &'static str,
        path: &'static str,
        form: &'static str,
        status: u16,
        says: &'static str,
    }
    let steps = [
        Step {
            name: "make a team",
            path: "/-/web/orgs/acme/teams",
            form: "name=Readers&description=they+read",
            status: 303,
            says: "",
        },
        Step {
            name: "give it a package",
            path: "/-/web/orgs/acme/teams/readers/grant",
            form: "package=%40acme%2Ftool&permissions=read-only",
            status: 303,
            says: "",
        },
        Step {
            name: "a package of another scope",
            path: "/-/web/orgs/acme/teams/readers/grant",
            form: "package=%40other%2Ftool&permissions=read-only",
            status: 400,
            says: "is not a package of the organisation acme",
        },
        Step {
            name: "a package nobody published",
            path: "/-/web/orgs/acme/teams/readers/grant",
            form: "package=%40acme%2Fnothing&permissions=read-write",
            status: 404,
            says: "",
        },
        Step {
            name: "an access npm does not have",
            path: "/-/web/orgs/acme/teams/readers/grant",
            form: "package=%40acme%2Ftool&permissions=admin",
            status: 400,
            says: "read-only or read-write",
        },
        Step {
            name: "what developers get on new packages",
            path: "/-/web/orgs/acme/settings",
            form: "developers_on_new_packages=none",
            status: 303,
            says: "",
        },
        Step {
            name: "remove it without typing its name",
            path: "/-/web/orgs/acme/remove",
            form: "confirm=acne",
            status: 400,
            says: "type acme to confirm",
        },
        Step {
            name: "remove it while @acme has a package",
            path: "/-/web/orgs/acme/remove",
            form: "confirm=acme",
            status: 409,
            says: "has packages (1)",
        },
    ];
    for step in steps {
        let reply = site
            .post(step.path, Some(&alice), Some(&site.origin), step.form)
            .await;
        assert_eq!(reply.status, step.status, "{}: {}", step.name, reply.body);
        assert!(
            reply.body.contains(step.says),
            "{}: {}",
            step.name,
            reply.body
        );
    }
    let granted = api("GET", "/-/team/acme/readers/package".into(), String::new()).await;
    assert_eq!(
        granted.json(),
        serde_json::json!({ "@acme/tool": "read-only" })
    );
    let shown = api("GET", "/-/org/acme".into(), String::new()).await;
    assert_eq!(shown.json()["developers_on_new_packages"], "none");
    let page = site.get("/-/web/orgs/acme", Some(&alice)).await;
    assert!(page.body.contains("they read"), "{}", page.body);
    assert!(
        page.body.contains("<option value=\"none\" selected>"),
        "{}",
        page.body
    );

    for (path, form) in [
        (
            "/-/web/orgs/acme/teams/readers/revoke",
            "package=%40acme%2Ftool",
        ),
        ("/-/web/orgs/acme/teams/readers/destroy", ""),
    ] {
        let reply = site
            .post(path, Some(&alice), Some(&site.origin), form)
            .await;
        assert_eq!(reply.status, 303, "{path}: {}", reply.body);
    }
    let teams = api("GET", "/-/org/acme/team".into(), String::new()).await;
    assert_eq!(teams.json(), serde_json::json!(["acme:developers"]));

    let rev = api("GET", "/@acme%2ftool".into(), String::new())
        .await
        .json()["_rev"]
        .as_str()
        .unwrap()
        .to_owned();
    let unpublished = api("DELETE", format!("/@acme%2ftool/-rev/{rev}"), String::new()).await;
    assert_eq!(unpublished.status, 200, "{}", unpublished.body);
    let removed = site
        .post(
            "/-/web/orgs/acme/remove",
            Some(&alice),
            Some(&site.origin),
            "confirm=acme",
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(removed.header("location"), Some("/-/web/new-organisation"));
    let gone = site.get("/-/web/orgs/acme", Some(&alice)).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[tokio::test]
async fn the_staged_releases_page_approves_and_rejects_with_the_code() {
    use support::client::publish_body;
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    let auth = format!("Bearer {session}");
    let json = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let send = |method: &'static str, path: String, body: String| {
        let addr = site.registry.addr;
        async move { http(addr, method, &path, &json, body.as_bytes()).await }
    };
    let first = send(
        "PUT",
        "/web-staged".into(),
        publish_body("web-staged", "1.0.0", serde_json::Value::Null),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let stage = |version: &'static str| {
        send(
            "POST",
            "/-/stage/package/web-staged".into(),
            publish_body("web-staged", version, serde_json::Value::Null),
        )
    };
    let kept = stage("1.1.0").await.json()["stageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let dropped = stage("1.2.0").await.json()["stageId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed in before 2FA is turned on: the session stays, and decisions ask for codes.
    let cookie = site.log_in("alice").await;
    let mut last = None;
    let enrolled = enable_2fa(site.registry.addr, &session, TfaMode::AuthOnly, &mut last).await;

    let page = site.get("/-/web/stages", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("2 staged releases."), "{}", page.body);
    assert!(page.body.contains("web-staged@1.1.0") && page.body.contains(&kept));
    assert!(
        page.body.contains("href=\"/-/web/stages\""),
        "the header links the page"
    );
    let tarball = site
        .get(&format!("/-/web/stages/{kept}/tarball"), Some(&cookie))
        .await;
    assert_eq!((tarball.status, tarball.body.as_str()), (200, "hello"));

    let approve = format!("/-/web/stages/{kept}/approve");
    let no_code = site
        .post(&approve, Some(&cookie), Some(&site.origin), "otp=")
        .await;
    assert_eq!(no_code.status, 401, "{}", no_code.body);
    assert!(
        field_error(&no_code.body, &format!("otp-{kept}")).is_some(),
        "{}",
        no_code.body
    );
    let forged = site
        .post(
            &approve,
            Some(&cookie),
            Some("https://evil.example"),
            "otp=",
        )
        .await;
    assert_eq!(forged.status, 403, "a cross-site approval is refused");
    let code = support::fresh_code(&enrolled.secret, &mut last).await;
    let approved = site
        .post(
            &approve,
            Some(&cookie),
            Some(&site.origin),
            &format!("otp={code}"),
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let code = support::fresh_code(&enrolled.secret, &mut last).await;
    let rejected = site
        .post(
            &format!("/-/web/stages/{dropped}/reject"),
            Some(&cookie),
            Some(&site.origin),
            &format!("otp={code}"),
        )
        .await;
    assert_eq!(rejected.status, 303, "{}", rejected.body);
    let after = site.get("/-/web/stages", Some(&cookie)).await;
    assert!(after.body.contains("0 staged releases."), "{}", after.body);
    let packument = http(site.registry.addr, "GET", "/web-staged", &[], b"")
        .await
        .json();
    assert!(packument["versions"]["1.1.0"].is_object());
    assert!(packument["versions"]["1.2.0"].is_null());
}

#[tokio::test]
async fn a_maintainer_requires_staging_from_the_settings_page_with_their_code() {
    let site = Site::start().await;
    let session = site.add_user("alice").await;
    site.add_user("bob").await;
    site.publish(&session, "tool").await;
    let mut last_step = None;
    let enrolled = site.enable_2fa(&session, &mut last_step).await;
    let [login, code, ..] = enrolled.recovery.as_slice() else {
        panic!("recovery codes");
    };
    let cookie = site.log_in_with_code("alice", login).await;
    let rule = || async {
        http(
            site.registry.addr,
            "GET",
            "/-/package/tool/staging",
            &[],
            b"",
        )
        .await
        .json()["required"]
            .clone()
    };
    let page = site.get("/-/web/packages/tool", Some(&cookie)).await;
    assert!(
        page.body
            .contains("<input id=\"required\" type=\"checkbox\" name=\"required\" value=\"on\">"),
        "unticked: {}",
        page.body
    );

    struct Case {
        what: &'static str,
        form: String,
        status: u16,
        says: &'static str,
    }
    for case in [
        Case {
            what: "no code",
            form: "required=on".into(),
            status: 401,
            says: "one-time password",
        },
        Case {
            what: "a field the form does not have",
            form: format!("required=on&otp={code}&everyone=on"),
            status: 400,
            says: "(&quot;everyone&quot;)",
        },
        Case {
            what: "a checkbox value the page never sends",
            form: format!("required=yes&otp={code}"),
            status: 400,
            says: "&quot;yes&quot;",
        },
    ] {
        let reply = site
            .post(
                "/-/web/packages/tool/staging",
                Some(&cookie),
                Some(&site.origin),
                &case.form,
            )
            .await;
        assert_eq!(reply.status, case.status, "{}: {}", case.what, reply.body);
        assert!(
            reply.body.contains(case.says),
            "{}: {}",
            case.what,
            reply.body
        );
        assert_eq!(rule().await, false, "{}: nothing changed", case.what);
    }

    let reply = site
        .post(
            "/-/web/packages/tool/staging",
            Some(&cookie),
            Some(&site.origin),
            &format!("required=on&otp={code}"),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let location = reply.header("location").unwrap().to_owned();
    assert_eq!(location, "/-/web/packages/tool?staging=required");
    assert_eq!(rule().await, true);
    let page = site.get(&location, Some(&cookie)).await;
    assert!(
        page.body
            .contains("Every release of this package must now be staged.")
    );
    assert!(page.body.contains("value=\"on\" checked"), "{}", page.body);
    let body = support::client::publish_body("tool", "1.0.1", serde_json::json!(null));
    let auth = format!("Bearer {session}");
    let direct = http(
        site.registry.addr,
        "PUT",
        "/tool",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(direct.status, 403, "{}", direct.body);
    assert!(
        direct.body.contains("requires every release to be staged"),
        "{}",
        direct.body
    );

    // Someone who does not maintain it gets the page of a package that does not exist.
    let bobs = site.log_in("bob").await;
    let reply = site
        .post(
            "/-/web/packages/tool/staging",
            Some(&bobs),
            Some(&site.origin),
            "",
        )
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(rule().await, true);
}

#[tokio::test]
async fn the_grant_form_tells_outsiders_nothing_about_whether_a_package_exists() {
    use support::client::publish_body;
    let site = Site::start().await;
    let alice_api = site.add_user("alice").await;
    site.add_user("dave").await;
    let auth = format!("Bearer {alice_api}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let made = http(site.registry.addr, "PUT", "/-/org/acme", &headers, b"").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let body = publish_body("@acme/tool", "1.0.0", serde_json::json!("restricted"));
    let published = http(
        site.registry.addr,
        "PUT",
        "/@acme%2ftool",
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(published.status, 201, "{}", published.body);
    let dave = site.log_in("dave").await;
    let grant = |package: &'static str| {
        let form = format!("package={package}&permissions=read-only");
        let (site, dave) = (&site, &dave);
        async move {
            site.post(
                "/-/web/orgs/acme/teams/developers/grant",
                Some(dave),
                Some(&site.origin),
                &form,
            )
            .await
        }
    };
    let (private, missing) = (
        grant("%40acme%2Ftool").await,
        grant("%40acme%2Fnothing").await,
    );
    assert_eq!(
        (private.status, private.body.replace("tool", "nothing")),
        (missing.status, missing.body.clone()),
        "the same page for a private package as for one that does not exist"
    );
    assert_eq!(private.status, 404, "{}", private.body);
}

#[tokio::test]
async fn a_token_limited_to_some_packages_sees_no_others_on_the_pages() {
    // alice maintains the private @alice/secret (with a staged release) and the public
    // @alice/open, and is in the organisation acme; her CI token may read @alice/open alone.
    let (client, _data) = support::client::start().await;
    let alice = client.session("alice").await;
    for (name, access) in [("@alice/secret", "restricted"), ("@alice/open", "public")] {
        let body = support::client::publish_body(name, "1.0.0", serde_json::json!(access));
        let path = format!("/{}", name.replace('/', "%2F"));
        let published = client.send("PUT", &path, Some(&alice), &body).await;
        assert_eq!(published.status, 201, "{}", published.body);
    }
    let body = support::client::publish_body("@alice/secret", "1.1.0", serde_json::json!(null));
    let staged = client
        .send(
            "POST",
            "/-/stage/package/@alice%2Fsecret",
            Some(&alice),
            &body,
        )
        .await;
    assert_eq!(staged.status, 201, "{}", staged.body);
    let made = client.send("PUT", "/-/org/acme", Some(&alice), "").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let narrow = client
        .token(
            &alice,
            serde_json::json!({ "password": PASSWORD, "packages": ["@alice/open"],
                                "packages_and_scopes_permission": "read-only" }),
        )
        .await;
    // What the API tells that token: neither the private package, nor its stage.
    let listed = client
        .send("GET", "/-/user/alice/package", Some(&narrow), "")
        .await;
    assert_eq!(
        listed.json(),
        serde_json::json!({ "@alice/open": "read-write" })
    );
    let stages = client.send("GET", "/-/stage", Some(&narrow), "").await;
    assert_eq!(
        stages.json()["items"],
        serde_json::json!([]),
        "{}",
        stages.body
    );

    // The pages, with the same token, say no more.
    let packages = client
        .send("GET", "/-/web/packages", Some(&narrow), "")
        .await;
    assert_eq!(packages.status, 200, "{}", packages.body);
    assert!(packages.body.contains("@alice/open"), "{}", packages.body);
    assert!(
        !packages.body.contains("@alice/secret"),
        "{}",
        packages.body
    );
    assert!(
        !packages.body.contains("/-/web/orgs/acme"),
        "nor her organisations, which it may not read: {}",
        packages.body
    );
    let stages = client.send("GET", "/-/web/stages", Some(&narrow), "").await;
    assert_eq!(stages.status, 200, "{}", stages.body);
    assert!(!stages.body.contains("@alice/secret"), "{}", stages.body);
    // Her session sees them all.
    let packages = client
        .send("GET", "/-/web/packages", Some(&alice), "")
        .await;
    assert!(packages.body.contains("@alice/secret"), "{}", packages.body);
    assert!(
        packages.body.contains("/-/web/orgs/acme"),
        "{}",
        packages.body
    );
    let stages = client.send("GET", "/-/web/stages", Some(&alice), "").await;
    assert!(stages.body.contains("@alice/secret"), "{}", stages.body);
}
