//! Runs the example registry (`examples/registry`) as a child process on loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The registry binary, which cargo builds for this package's tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_registry"))
}

pub struct Registry {
    child: Child,
    /// What the registry logged (stderr), line by line; also copied to the test's stderr.
    log: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    pub addr: std::net::SocketAddr,
}

impl Registry {
    /// Starts the registry on `listen` (port 0 for any) with its data in `data`.
    pub async fn start(listen: &str, data: &Path) -> Self {
        Self::start_with(listen, data, &[]).await
    }

    /// [`Registry::start`] with more flags.
    pub async fn start_with(listen: &str, data: &Path, flags: &[&str]) -> Self {
        let mut child = Command::new(binary())
            .args(["--listen", listen, "--data"])
            .arg(data)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the example registry starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the registry says where it listens within 30 s")
            .unwrap()
            .expect("the registry printed its address");
        let url = first
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("{line}");
                kept.lock().unwrap().push(line);
            }
        });
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        Self {
            child,
            log,
            url,
            addr,
        }
    }

    /// How many lines the registry has logged so far that contain `text`.
    pub fn logged(&self, text: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|line| line.contains(text)).count()
    }

    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A response: status, headers (lower-cased names), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as sent (a tarball's bytes).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    /// Asserts that the answer is `status` and that its body says `says`.
    #[track_caller]
    pub fn assert_says(&self, status: u16, says: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(says), "{:?} not in {}", says, self.body);
    }
}

/// A connection to `addr` from the loopback address `source` (such as 127.0.0.2, another
/// client as far as the registry can tell: all of 127.0.0.0/8 is this machine).
pub async fn connect_from(source: std::net::IpAddr, addr: std::net::SocketAddr) -> TcpStream {
    let socket = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .unwrap();
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .unwrap_or_else(|e| panic!("cannot bind a client socket to {source}: {e}"));
    socket.connect(addr).await.unwrap()
}

/// The client address 127.0.0.`n`: this machine, but a client of its own as far as the
/// registry can tell (every address in 127.0.0.0/8 is loopback).
pub fn loopback(n: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, n])
}

/// Pings on fresh connections from `source` until one is served, for five seconds at
/// most (a place frees up once the server sees a connection close); answers the last
/// status line, or `None` when none was served.
pub async fn ping_until_served(
    source: std::net::IpAddr,
    addr: std::net::SocketAddr,
) -> Option<String> {
    for _ in 0..100 {
        let mut stream = BufReader::new(connect_from(source, addr).await);
        if let Some(served) = ping(&mut stream).await {
            return Some(served);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Sends a ping on a kept-alive connection; answers the status line, or `None` when the
/// server closed the connection without answering.
pub async fn ping(stream: &mut BufReader<TcpStream>) -> Option<String> {
    const PING: &[u8] = b"GET /-/ping HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.get_mut().write_all(PING).await.ok()?;
    let mut status = String::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_line(&mut status))
        .await
        .expect("the server neither answered nor closed the connection");
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            // Drain the rest of the small response so the next ping starts clean.
            let mut line = String::new();
            let mut length = 0;
            while stream.read_line(&mut line).await.unwrap() > 2 {
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                line.clear();
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            Some(status.trim_end().to_owned())
        }
    }
}

/// One HTTP/1.1 request on a fresh connection, `Connection: close`.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    http_on(stream, addr, method, path, headers, body).await
}

/// [`http`] from the loopback address `source` (see [`connect_from`]).
pub async fn http_from(
    source: std::net::IpAddr,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let stream = connect_from(source, addr).await;
    http_on(stream, addr, method, path, headers, body).await
}

async fn http_on(
    mut stream: TcpStream,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413, 4xx) before reading a large body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the registry answers within 30 s")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let bytes = raw[split + 4..].to_vec();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
        bytes,
    }
}

/// Makes `user` (password [`PASSWORD`], an email of their own) with the CouchDB login npm
/// uses, and answers its session token.
pub async fn add_user(addr: std::net::SocketAddr, user: &str) -> String {
    let body = serde_json::json!({
        "name": user, "password": PASSWORD, "email": format!("{user}@example.com")
    });
    let reply = http(
        addr,
        "PUT",
        &format!("/-/user/org.couchdb.user:{user}"),
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery";

/// Two-factor authentication just turned on: what the user's authenticator app holds,
/// and the recovery codes shown once.
pub struct Enrolled {
    pub secret: tokengate::TotpSecret,
    pub recovery: Vec<String>,
}

/// When a user's second factor is asked for (`npm profile enable-2fa <mode>`).
#[derive(Clone, Copy, Debug)]
pub enum TfaMode {
    AuthOnly,
    AuthAndWrites,
}

/// Turns on 2FA in `mode` for the user whose session this is, as `npm profile
/// enable-2fa` does. `last_step` records the code it used.
pub async fn enable_2fa(
    addr: std::net::SocketAddr,
    session: &str,
    mode: TfaMode,
    last_step: &mut Option<u64>,
) -> Enrolled {
    let mode = match mode {
        TfaMode::AuthOnly => "auth-only",
        TfaMode::AuthAndWrites => "auth-and-writes",
    };
    let auth = format!("Bearer {session}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let begin = serde_json::json!({ "tfa": { "password": PASSWORD, "mode": mode } });
    let path = "/-/npm/v1/user";
    let begun = http(addr, "POST", path, &headers, begin.to_string().as_bytes()).await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let secret = super::totp_from_url(begun.json()["tfa"].as_str().unwrap());
    let confirm = serde_json::json!({ "tfa": [super::fresh_code(&secret, last_step).await] });
    let confirmed = http(addr, "POST", path, &headers, confirm.to_string().as_bytes()).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let shown = confirmed.json();
    let recovery = shown["tfa"].as_array().unwrap().iter();
    let recovery = recovery
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    Enrolled { secret, recovery }
}

/// Everything the registry's database in `data` holds, as text (its file and write-ahead
/// log, lossily decoded): for checking what is, and what is not, on disk.
pub fn database_text(data: &std::path::Path) -> String {
    ["registry.db", "registry.db-wal"]
        .iter()
        .filter_map(|file| std::fs::read(data.join(file)).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect()
}
