//! npm in a sandbox: its own home, cache and config files, nothing from the machine.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The commands npm 12 removed that npm 11 has: the tests run what needs them under npm 11
/// only, and say so under npm 12 (`npm login --auth-type=legacy` makes a user instead of
/// `npm adduser`).
const REMOVED_IN_NPM_12: &[&str] = &["adduser", "star", "unstar", "stars"];

/// The version of the `npm` on PATH, as `npm --version` prints it (asked once); `None` when
/// npm does not run.
pub fn npm_version() -> Option<&'static str> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let output = std::process::Command::new("npm")
                .arg("--version")
                .output()
                .ok()
                .filter(|output| output.status.success())?;
            Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        })
        .as_deref()
}

/// The major version of the `npm` on PATH (11 for 11.19.1); panics when npm does not run.
pub fn npm_major() -> u32 {
    let version = npm_version().expect("npm runs");
    version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("npm --version printed {version:?}"))
}

/// Whether the `npm` on PATH has `npm <command>`.
pub fn npm_has(command: &str) -> bool {
    npm_major() < 12 || !REMOVED_IN_NPM_12.contains(&command)
}

/// Whether `step`, which types `npm <command>` for each of `commands`, can run with the
/// `npm` on PATH; when it cannot, says on stderr that it did not run, and why.
pub fn step_runs(step: &str, commands: &[&str]) -> bool {
    let missing: Vec<String> = commands
        .iter()
        .filter(|command| !npm_has(command))
        .map(|command| format!("`npm {command}`"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    super::skipped(&format!(
        "npm {} has no {} (removed in npm 12), so {step} did not run",
        npm_version().unwrap_or_default(),
        missing.join(", ")
    ));
    false
}

/// `npm login` waiting for the person to log in on the page.
pub struct WebLogin {
    pub child: Child,
    /// The page npm printed (`loginUrl`).
    pub url: String,
    /// The rest of what npm prints.
    pub output: Lines<BufReader<ChildStdout>>,
}

impl WebLogin {
    /// Waits (60 s at most) for npm to end; answers whether it succeeded and what it
    /// printed after the URL.
    pub async fn finish(mut self) -> (bool, String) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("npm login finishes within 60 s after the page")
            .unwrap();
        let mut rest = String::new();
        while let Ok(Some(line)) = self.output.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status.success(), rest)
    }
}

/// A sandbox for npm against one registry.
pub struct Npm {
    pub root: PathBuf,
    pub registry: String,
}

impl Npm {
    pub fn new(root: &Path, registry: &str) -> Self {
        for dir in ["home", "cache"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        Self {
            root: root.to_owned(),
            registry: registry.to_owned(),
        }
    }

    /// A user config that holds `token` for this registry.
    pub fn config_with(&self, name: &str, token: &str) -> PathBuf {
        let path = self.root.join(format!("{name}.npmrc"));
        let host = self.registry.trim_start_matches("http:");
        std::fs::write(&path, format!("{host}:_authToken={token}\n")).unwrap();
        path
    }

    /// The config npm's logins write to, `~/.npmrc`.
    pub fn session_config(&self) -> PathBuf {
        self.root.join("home").join(".npmrc")
    }

    pub fn command(&self, program: &str, config: &Path, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .env("npm_config_userconfig", config)
            .env("npm_config_cache", self.root.join("cache"))
            .env("npm_config_registry", &self.registry)
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_color", "false")
            .current_dir(cwd)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `npm args…` with `config`, in `cwd`; returns stdout and stderr together.
    pub async fn run(&self, config: &Path, cwd: &Path, args: &[&str]) -> (bool, String) {
        self.run_with(config, cwd, args, &[]).await
    }

    /// [`Npm::run`] with these environment variables too.
    pub async fn run_with(
        &self,
        config: &Path,
        cwd: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (bool, String) {
        let mut command = self.command("npm", config, cwd);
        command.args(args).envs(env.iter().copied());
        let output: Output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .unwrap_or_else(|_| panic!("npm {args:?} took over 120 s"))
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    pub async fn ok(&self, config: &Path, cwd: &Path, args: &[&str]) -> String {
        let (ok, text) = self.run(config, cwd, args).await;
        assert!(ok, "npm {args:?} failed:\n{text}");
        text
    }

    /// Starts `npm login` (npm 11's web login) with `config`, and waits for the login page's
    /// address it prints.
    pub async fn web_login(&self, config: &Path) -> WebLogin {
        let mut child = self
            .command("npm", config, &self.root)
            .arg("login")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = output.next_line().await.unwrap() {
                if let Some(at) = line.find("http") {
                    let found = line[at..].trim().to_owned();
                    if found.contains("/-/web/login?npm=") {
                        return found;
                    }
                }
            }
            panic!("npm login printed no login URL")
        })
        .await
        .expect("npm login prints its URL within 60 s");
        WebLogin { child, url, output }
    }

    pub async fn fails(&self, config: &Path, cwd: &Path, args: &[&str]) -> String {
        let (ok, text) = self.run(config, cwd, args).await;
        assert!(!ok, "npm {args:?} should have failed:\n{text}");
        text
    }
}
