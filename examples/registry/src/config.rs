//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: registry [--listen ADDR] [--data DIR | --memory]

  --listen ADDR   address to listen on (default 127.0.0.1:4873)
  --data DIR      where tokens (SQLite) and packages are kept (default ./registry-data)
  --memory        keep nothing on disk
  --help          this text";

#[derive(Debug, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None` with `--memory`.
    pub data: Option<PathBuf>,
}

impl Config {
    /// The configuration, `None` for `--help`, or what is wrong with the flags.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 4873));
        let mut data = Some(PathBuf::from("registry-data"));
        let (mut saw_data, mut saw_memory) = (false, false);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "--listen" => {
                    let text = value("--listen")?;
                    listen = text.parse().map_err(|_| {
                        format!("--listen: {text:?} is not an address like 127.0.0.1:4873")
                    })?;
                }
                "--data" => {
                    data = Some(PathBuf::from(value("--data")?));
                    saw_data = true;
                }
                "--memory" => {
                    data = None;
                    saw_memory = true;
                }
                "--help" | "-h" => return Ok(None),
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if saw_data && saw_memory {
            return Err("--data and --memory cannot be used together".into());
        }
        Ok(Some(Self { listen, data }))
    }
}
