//! The registry's web pages in a real browser: headless Chromium driven through WebDriver
//! (chromedriver, fantoccini), with the real npm CLI using what the pages make.
//!
//! Runs when `TOKENGATE_REQUIRE_BROWSER=1` (as `.ci/run` sets it), and then fails loudly if
//! Chromium, chromedriver or npm is missing; otherwise (or with
//! `TOKENGATE_NPM_TESTS_RUN_ELSEWHERE=1`, another step runs it) says that it skipped. Saves
//! screenshots of each page at phone and at desktop width under `target/screenshots/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use support::npm::Npm;
use support::registry::{PASSWORD, Registry, TfaMode, add_user, enable_2fa, http};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

fn program(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn chromium() -> PathBuf {
    program("TOKENGATE_CHROMIUM", "/usr/bin/chromium")
}

fn chromedriver() -> PathBuf {
    program("TOKENGATE_CHROMEDRIVER", "/usr/bin/chromedriver")
}

fn runs(program: &Path, arg: &str) -> bool {
    std::process::Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether to run: only with `TOKENGATE_REQUIRE_BROWSER=1`, and then everything must be here.
fn browser_ready() -> bool {
    if support::runs_elsewhere("the browser test", "TOKENGATE_REQUIRE_BROWSER") {
        return false;
    }
    if std::env::var("TOKENGATE_REQUIRE_BROWSER").as_deref() != Ok("1") {
        // Past the harness's capture (which `eprintln!` is not), so that the skip is seen.
        support::skipped(
            "the browser tests run with TOKENGATE_REQUIRE_BROWSER=1 (and Debian's chromium, \
             chromium-driver and npm installed)",
        );
        return false;
    }
    for (path, what) in [
        (chromium(), "chromium (apt-get install chromium)"),
        (
            chromedriver(),
            "chromedriver (apt-get install chromium-driver)",
        ),
        (PathBuf::from("npm"), "npm"),
    ] {
        assert!(
            runs(&path, "--version"),
            "TOKENGATE_REQUIRE_BROWSER=1 but {} does not run: install {what}",
            path.display()
        );
    }
    true
}

/// Window sizes: a phone's, which the walk runs at (the layout is tightest there), and a
/// desktop's, which each screenshot also looks at.
const PHONE: (u32, u32) = (412, 915);
const DESKTOP: (u32, u32) = (1280, 900);

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// chromedriver in a process group of its own, which the Chromium it starts joins: dropped,
/// it ends the whole group, so that a test that fails midway (and never closes its session)
/// leaves no Chromium running behind it.
struct Driver {
    child: Child,
    group: u32,
}

impl Driver {
    fn spawn(port: u16) -> Self {
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let group = child.id().expect("chromedriver has a process id");
        Self { child, group }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's process id (`process_group(0)`).
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.start_kill();
    }
}

/// Chromium under chromedriver, on loopback, with a profile of its own.
struct Browser {
    client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    async fn start() -> Self {
        let port = free_port().await;
        let driver = Driver::spawn(port);
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("chromedriver starts a Chromium session");
        let browser = Self {
            client,
            _driver: driver,
            _profile: profile,
            shots: screenshots_dir(),
        };
        // Not `--window-size`: headless Chromium widens that to at least 500 px.
        browser.resize(PHONE).await;
        browser
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Saves the page as it is now at both widths, `phone-{name}.png` and
    /// `desktop-{name}.png`, checks its layout at each ([`Browser::check_layout`]), and
    /// goes on at phone width.
    async fn shot(&self, name: &str) {
        let mut layouts = Vec::new();
        for (width, size) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.resize(size).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{width}-{name}.png")), png).unwrap();
            layouts.push((width, self.layout().await));
        }
        self.resize(PHONE).await;
        // After both screenshots, so that a failure has them to look at.
        for (width, layout) in layouts {
            layout.check(
                &format!("{width}-{name}"),
                if width == "phone" { 2 } else { 1 },
            );
        }
    }

    /// How the page is laid out at the window's width now.
    async fn layout(&self) -> Layout {
        let found = self
            .client
            .execute(LAYOUT_SCRIPT, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("the layout script failed: {e}"));
        serde_json::from_value(found.clone()).unwrap_or_else(|e| panic!("{e}: {found}"))
    }

    async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    async fn fill(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no field #{id}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Submits the page's main form.
    async fn submit(&self) {
        self.click("main form button[type=submit]").await;
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    async fn value(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits until the page's heading says `heading`.
    async fn wait_heading(&self, heading: &str) {
        for _ in 0..100 {
            if let Ok(h1) = self.client.find(Locator::Css("h1")).await
                && h1.text().await.is_ok_and(|text| text == heading)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the page never said {heading:?}: {}",
            self.text("body").await
        );
    }

    async fn log_in(&self, registry: &str, user: &str) {
        self.goto(&format!("{registry}-/web/login")).await;
        self.fill("username", user).await;
        self.fill("password", PASSWORD).await;
        self.submit().await;
        self.wait_heading("Your tokens").await;
    }

    /// Fills and submits the Generate form; `fields` are (id, text) and `choose` the ids
    /// of radio buttons and check boxes to click.
    async fn generate(&self, registry: &str, fields: &[(&str, &str)], choose: &[&str]) {
        self.goto(&format!("{registry}-/web/tokens/new")).await;
        for (id, text) in fields {
            self.fill(id, text).await;
        }
        for id in choose {
            self.click(&format!("#{id}")).await;
        }
        self.fill("password", PASSWORD).await;
        self.submit().await;
    }

    /// The token on the page that shows a new one.
    async fn shown_token(&self) -> String {
        self.wait_heading("Your new token").await;
        let token = self.text("#new-token").await;
        assert!(token.starts_with("npm_"), "{token}");
        token
    }
}

/// What [`LAYOUT_SCRIPT`] measures.
#[derive(serde::Deserialize, Debug)]
struct Layout {
    /// The page's width with what sticks out of it, and the width the window shows
    /// (without its scroll bar): more than that scrolls the whole page sideways.
    scroll_width: u32,
    client_width: u32,
    /// Elements that stick out of the page (not out of a box that scrolls or clips).
    sticking_out: Vec<String>,
    /// The rows of text the header takes.
    header_rows: u32,
}

impl Layout {
    /// No page scrolls sideways as a whole (long things wrap, or scroll in a box of their
    /// own), and the header takes at most `rows` rows.
    fn check(&self, page: &str, rows: u32) {
        assert!(
            self.scroll_width <= self.client_width,
            "{page}: the page scrolls sideways, {} px wide in a {} px window; sticking out: {:?}",
            self.scroll_width,
            self.client_width,
            self.sticking_out
        );
        assert!(
            self.header_rows <= rows,
            "{page}: the header takes {} rows (at most {rows})",
            self.header_rows
        );
    }
}

/// Measures the page for [`Layout`]. The header's rows are counted from its text's line
/// boxes: a piece of text whose middle is below the row so far starts another row.
const LAYOUT_SCRIPT: &str = r#"
const page = document.documentElement;
const width = page.clientWidth;
// Whether a box that scrolls or clips holds `element`; not one inside the containing block
// of an absolutely positioned element (or of a fixed one: the window), which it escapes.
const inBox = (element) => {
  const position = getComputedStyle(element).position;
  let escaping = position === 'absolute' || position === 'fixed';
  for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
    const style = getComputedStyle(up);
    if (escaping && position === 'absolute' && style.position !== 'static') escaping = false;
    if (!escaping && style.overflowX !== 'visible') return true;
  }
  return false;
};
const name = (element) => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
  + [...element.classList].map((c) => '.' + c).join('');
const sticking_out = [...document.body.querySelectorAll('*')]
  .filter((element) => element.getBoundingClientRect().right > width + 0.5 && !inBox(element))
  .slice(0, 8)
  .map((element) => name(element) + ' to ' + Math.round(element.getBoundingClientRect().right) + ' px');
const lines = [];
const header = document.querySelector('body > header');
if (header) {
  const texts = document.createTreeWalker(header, NodeFilter.SHOW_TEXT);
  for (let text = texts.nextNode(); text; text = texts.nextNode()) {
    if (!text.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(text);
    lines.push(...[...range.getClientRects()].filter((rect) => rect.width > 0));
  }
}
lines.sort((a, b) => a.top - b.top);
let header_rows = 0, bottom = -Infinity;
for (const line of lines) {
  if ((line.top + line.bottom) / 2 > bottom) { header_rows += 1; bottom = line.bottom; }
  else { bottom = Math.max(bottom, line.bottom); }
}
return { scroll_width: page.scrollWidth, client_width: width, sticking_out, header_rows };
"#;

/// A page on another origin (another port of the same host: the same *site*, so a
/// `SameSite=Strict` cookie still goes along) that makes the browser post a form to the
/// registry as soon as it loads.
async fn forging_site(target: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let page = format!(
        "<!DOCTYPE html><html><body><form id=f method=post action=\"{target}-/web/tokens/new\">\
         <input name=name value=forged><input name=permission value=read-write>\
         <input name=password value=\"{PASSWORD}\"></form>\
         <script>document.getElementById('f').submit()</script></body></html>"
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_pages_in_a_real_browser() {
    if !browser_ready() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let registry = Registry::start("127.0.0.1:0", data.path()).await;
    let url = registry.url.clone();
    let root = tempfile::tempdir().unwrap();
    let npm = Npm::new(root.path(), &url);
    let alice_session = add_user(registry.addr, "alice").await;
    let alice_cli = npm.config_with("alice-session", &alice_session);
    let browser = Browser::start().await;

    // Logging in, without 2FA.
    browser.goto(&format!("{url}-/web/login")).await;
    browser.shot("01-login").await;
    browser.fill("username", "alice").await;
    browser.fill("password", "not the password").await;
    browser.submit().await;
    browser.wait_heading("Log in").await;
    assert!(
        browser
            .text("#form-error")
            .await
            .contains("incorrect user name or password")
    );
    assert_eq!(
        browser.value("username").await,
        "alice",
        "what was typed is kept"
    );
    assert_eq!(
        browser.value("password").await,
        "",
        "a password is never sent back"
    );
    browser.log_in(&url, "alice").await;
    browser.shot("02-tokens-empty").await;
    let cookie = browser.client.get_named_cookie("tg_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");

    // A read-only token made on the page, used with npm, listed by npm.
    browser.goto(&format!("{url}-/web/tokens/new")).await;
    browser.shot("03-new-token-form").await;
    browser
        .generate(&url, &[("name", "web read-only")], &["perm-ro"])
        .await;
    let read_only = browser.shown_token().await;
    browser.shot("04-token-shown-once").await;
    // The `.npmrc` line, whole (it may wrap on a phone, but it copies as one line).
    assert_eq!(
        browser.text("#npmrc").await,
        format!(
            "{}:_authToken=${{NPM_TOKEN}}",
            url.trim_start_matches("http:")
        )
    );
    assert!(
        browser
            .text(".warning")
            .await
            .contains("It will not be shown again")
    );
    browser.client.refresh().await.unwrap();
    browser.wait_heading("Token already shown").await;
    assert!(!browser.source().await.contains(&read_only));
    browser.shot("05-token-not-shown-again").await;
    let read_only_cli = npm.config_with("read-only", &read_only);
    let (ok, said) = npm.run(&read_only_cli, &npm.root, &["whoami"]).await;
    assert!(ok && said.contains("alice"), "{said}");
    let (ok, listed) = npm.run(&alice_cli, &npm.root, &["token", "list"]).await;
    assert!(ok && listed.contains("web read-only"), "{listed}");

    // Back from the new token to its form: what was typed comes back, but not the
    // password (`autocomplete` and `no-store` do not stop Chromium restoring it).
    browser
        .generate(&url, &[("name", "web back")], &["perm-ro"])
        .await;
    browser.shown_token().await;
    browser.client.back().await.unwrap();
    browser.wait_heading("Generate new token").await;
    assert_eq!(
        browser.value("name").await,
        "web back",
        "Back restores the form (or there is nothing to check)"
    );
    assert_eq!(
        browser.value("password").await,
        "",
        "a password comes back with the form"
    );

    // An invalid CIDR entry: the CLI's message next to the field, what was typed kept.
    browser
        .generate(
            &url,
            &[("name", "bad cidr"), ("cidr", "10.0.0.0/8, 10.1.2.3/99")],
            &[],
        )
        .await;
    browser.wait_heading("Generate new token").await;
    let error = browser.text("#cidr-error").await;
    assert_eq!(
        error,
        "CIDR whitelist contains invalid CIDR entry: 10.1.2.3/99"
    );
    assert_eq!(browser.value("cidr").await, "10.0.0.0/8, 10.1.2.3/99");
    assert_eq!(browser.value("name").await, "bad cidr");
    assert!(
        browser
            .text("main .error")
            .await
            .contains("invalid CIDR entry")
    );
    browser.shot("06-invalid-cidr-summary").await;
    // The summary links to the field, for keyboards and small screens.
    browser.click("main .error a[href='#cidr']").await;
    browser.shot("06-invalid-cidr-field").await;

    // A CIDR token: npm is refused from outside its range (this is 127.0.0.1).
    browser
        .generate(
            &url,
            &[("name", "web cidr"), ("cidr", "10.0.0.0/8")],
            &["perm-rw"],
        )
        .await;
    let cidr_token = browser.shown_token().await;
    let cidr_cli = npm.config_with("cidr", &cidr_token);
    let (ok, said) = npm.run(&cidr_cli, &npm.root, &["whoami"]).await;
    assert!(!ok && said.contains("IP address"), "{said}");

    // The list: newest first, as npm token list shows tokens.
    browser.goto(&format!("{url}-/web/tokens")).await;
    let page = browser.text("main").await;
    let (newest, older) = (
        page.find("web cidr").unwrap(),
        page.find("web read-only").unwrap(),
    );
    assert!(newest < older, "newest first: {page}");
    assert!(
        page.contains("10.0.0.0/8") && page.contains("read-only"),
        "{page}"
    );
    assert!(!page.contains(&read_only) && !page.contains(&cidr_token));
    browser.shot("07-tokens").await;

    // Revoked on the page, after a confirmation: npm is refused.
    let read_only_id = token_id(&npm, &alice_cli, "web read-only").await;
    browser
        .click(&format!("a[href='/-/web/tokens/{read_only_id}/revoke']"))
        .await;
    browser.wait_heading("Revoke token").await;
    browser.shot("08-revoke-confirm").await;
    browser.submit().await;
    browser.wait_heading("Your tokens").await;
    assert!(browser.text(".notice").await.contains("was revoked"));
    // The notice names it; the list no longer holds it.
    assert!(browser.text(".notice").await.contains("web read-only"));
    assert!(!browser.text("table").await.contains("web read-only"));
    browser.shot("09-revoked").await;
    let (ok, said) = npm.run(&read_only_cli, &npm.root, &["whoami"]).await;
    assert!(!ok, "a token revoked on the page still works: {said}");

    // Revoked with the CLI: gone from the page on reload.
    let cidr_id = token_id(&npm, &alice_cli, "web cidr").await;
    let (ok, said) = npm
        .run(&alice_cli, &npm.root, &["token", "revoke", &cidr_id])
        .await;
    assert!(ok, "{said}");
    browser.client.refresh().await.unwrap();
    browser.wait_heading("Your tokens").await;
    assert!(!browser.text("main").await.contains(&cidr_id));

    // A trusted publisher added on a package's settings page (reached from the Packages
    // page), seen by npm trust's route, and removed again.
    let auth = format!("Bearer {alice_session}");
    let json = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let body = support::client::publish_body("@alice/tool", "1.0.0", serde_json::json!(null));
    let published = http(
        registry.addr,
        "PUT",
        "/@alice%2Ftool",
        &json,
        body.as_bytes(),
    )
    .await;
    assert!(published.status < 300, "{}", published.body);
    let trusted = || async {
        let path = "/-/package/@alice%2Ftool/trust";
        let listed = http(registry.addr, "GET", path, &json, b"").await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        listed.json().as_array().unwrap().clone()
    };
    browser.click("header a[href='/-/web/packages']").await;
    browser.wait_heading("Your packages").await;
    browser.shot("10-packages").await;
    browser
        .click("a[href='/-/web/packages/@alice%2Ftool']")
        .await;
    browser.wait_heading("@alice/tool").await;
    browser.fill("github_repository", "acme/tool").await;
    browser.fill("github_workflow", "release.yml").await;
    browser.fill("github_environment", "prod").await;
    browser.shot("11-trusted-publisher-form").await;
    browser.click("#add-publisher button[type=submit]").await;
    browser.wait_heading("@alice/tool").await;
    assert!(browser.text(".notice").await.contains("added"));
    let card = browser.text(".publisher").await;
    assert!(
        card.contains("acme/tool") && card.contains("release.yml") && card.contains("prod"),
        "{card}"
    );
    browser.shot("12-trusted-publisher-added").await;
    let listed = trusted().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["claims"]["repository"], "acme/tool");
    browser.click(".publisher button.danger").await;
    browser.wait_heading("@alice/tool").await;
    assert!(browser.text(".notice").await.contains("removed"));
    assert!(
        browser
            .text("main")
            .await
            .contains("No trusted publishers yet.")
    );
    assert!(trusted().await.is_empty());

    // An organisation, made from the Packages page, and a team made on its own page.
    browser.goto(&format!("{url}-/web/packages")).await;
    browser.click("a[href='/-/web/new-organisation']").await;
    browser.wait_heading("New organisation").await;
    browser.fill("name", "acme").await;
    browser.submit().await;
    browser.wait_heading("@acme").await;
    browser.fill("team-name", "readers").await;
    browser.fill("team-description", "they read").await;
    browser.click("form[action$='/teams'] button").await;
    browser.wait_heading("@acme").await;
    let page = browser.text("main").await;
    assert!(
        page.contains("acme:readers") && page.contains("they read"),
        "{page}"
    );
    browser.shot("12b-organisation").await;
    browser.goto(&format!("{url}-/web/stages")).await;
    browser.wait_heading("Staged releases").await;
    browser.shot("12c-staged-releases").await;

    // A forged cross-site POST (another port: same site, so the cookie goes along) is
    // refused by the gate, and makes nothing.
    let forger = forging_site(url.clone()).await;
    browser.goto(&forger).await;
    browser.wait_heading("Refused").await;
    assert!(browser.text("main").await.contains("cross-site"));
    browser.shot("13-cross-site-refused").await;
    let (ok, listed) = npm.run(&alice_cli, &npm.root, &["token", "list"]).await;
    assert!(ok && !listed.contains("forged"), "{listed}");
    // And without a browser: the session cookie, no Origin, no Sec-Fetch-Site.
    let cookie_header = format!("tg_session={}", cookie.value());
    let forged = http(
        registry.addr,
        "POST",
        "/-/web/tokens/new",
        &[
            ("cookie", cookie_header.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("name=forged&password={PASSWORD}").as_bytes(),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    // Logging out revokes the session: the cookie's token is refused from then on.
    browser.goto(&format!("{url}-/web/tokens")).await;
    browser.click("header button[type=submit]").await;
    browser.wait_heading("Log in").await;
    let after = http(
        registry.addr,
        "GET",
        "/-/web/tokens",
        &[("cookie", cookie_header.as_str())],
        b"",
    )
    .await;
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/-/web/login"));

    // npm login (npm 11's web login): npm prints the URL, the user logs in on the page,
    // npm receives a session token.
    let login_config = root.path().join("web-login.npmrc");
    std::fs::write(&login_config, "").unwrap();
    let login = npm.web_login(&login_config).await;
    browser.goto(&login.url).await;
    browser.wait_heading("Log in to npm").await;
    // The page says where npm login ran, this browser's address, and how long it waits.
    assert_eq!(browser.text("#npm-from").await, "127.0.0.1");
    assert_eq!(browser.text("#npm-browser").await, "127.0.0.1");
    assert!(browser.text("#npm-expires").await.contains("5 minutes"));
    // It says when as the other pages do: a `<time>`, in the reader's own zone and terms.
    let started = browser.text("#npm-started time[datetime]").await;
    assert!(
        !started.contains("UTC"),
        "not in the reader's terms: {started}"
    );
    browser.shot("14-npm-login").await;
    browser.fill("username", "alice").await;
    browser.fill("password", PASSWORD).await;
    browser.submit().await;
    browser.wait_heading("npm is logged in").await;
    browser.shot("15-npm-logged-in").await;
    let (ok, rest) = login.finish().await;
    assert!(ok, "npm login failed: {rest}");
    let saved = std::fs::read_to_string(&login_config).unwrap();
    assert!(saved.contains(":_authToken=npm_"), "{saved}");
    let (ok, said) = npm.run(&login_config, &npm.root, &["whoami"]).await;
    assert!(ok && said.contains("alice"), "{said}");

    // Logging in with 2FA: the password, then a one-time password.
    let bob_session = add_user(registry.addr, "bob").await;
    let mut last_step = None;
    let secret = enable_2fa(
        registry.addr,
        &bob_session,
        TfaMode::AuthOnly,
        &mut last_step,
    )
    .await
    .secret;
    browser.goto(&format!("{url}-/web/login")).await;
    browser.fill("username", "bob").await;
    browser.fill("password", PASSWORD).await;
    browser.submit().await;
    browser.wait_heading("Log in").await;
    browser.client.find(Locator::Id("otp")).await.unwrap();
    assert_eq!(
        browser.text("#otp-error").await,
        "a one-time password is needed"
    );
    // The password step is kept: the page asks for the code alone.
    assert_eq!(browser.text("#password-passed").await, "Password checked.");
    browser.shot("16-login-2fa").await;
    browser.fill("otp", "000000").await;
    browser.submit().await;
    browser.wait_heading("Log in").await;
    assert!(
        browser
            .text("#otp-error")
            .await
            .contains("one-time password"),
        "a wrong code is refused next to its field"
    );
    let code = support::fresh_code(&secret, &mut last_step).await;
    browser.fill("otp", &code).await;
    browser.submit().await;
    browser.wait_heading("Your tokens").await;
    assert!(browser.text("header").await.contains("bob"));

    browser.client.close().await.unwrap();
    registry.stop().await;
}

/// The id `npm token list` shows for the token named `name`.
async fn token_id(npm: &Npm, config: &Path, name: &str) -> String {
    let (ok, listed) = npm
        .run(config, &npm.root, &["token", "list", "--json"])
        .await;
    assert!(ok, "{listed}");
    let start = listed.find('[').unwrap_or(0);
    let tokens: serde_json::Value = serde_json::from_str(&listed[start..])
        .unwrap_or_else(|e| panic!("npm token list --json: {e}: {listed}"));
    tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["name"] == name)
        .unwrap_or_else(|| panic!("no token named {name} in {listed}"))["key"]
        .as_str()
        .unwrap()
        .to_owned()
}
