//! npm in a sandbox: its own home, cache and config files, nothing from the machine.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

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

    /// The config `npm adduser` writes to.
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
