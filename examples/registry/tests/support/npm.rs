//! npm in a sandbox: its own home, cache and config files, nothing from the machine.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

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

    pub async fn fails(&self, config: &Path, cwd: &Path, args: &[&str]) -> String {
        let (ok, text) = self.run(config, cwd, args).await;
        assert!(!ok, "npm {args:?} should have failed:\n{text}");
        text
    }
}
