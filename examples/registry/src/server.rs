//! Accepting connections with limits: a header must arrive within a deadline, a request
//! (its body included) must be handled within another, and only so many connections are
//! served at once, and only so many from one client address. A connection that sends half
//! a header, or declares a body and trickles it, is closed instead of held forever.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The limits, from the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    /// Connections served at once from one client address (an IPv6 client's /64); at
    /// most `max_connections`.
    pub max_connections_per_address: usize,
}

/// Serves `app` on `listener` until Ctrl-C. Connections from `proxies` are counted against
/// the total only: a reverse proxy carries many clients' requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    proxies: tokengate::TrustedProxies,
) -> std::io::Result<()> {
    // 408 for a request, body included, that takes longer than its deadline.
    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::new(limits.max_connections_per_address);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder.http1_only());
    let mut refused = RefusedConnections::new(
        "connections refused: too many open connections (see --max-connections)",
    );
    let mut refused_per_address = RefusedConnections::new(
        "connections refused: too many open connections from one address \
         (see --max-connections-per-address)",
    );
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: too many open connections");
            refused.count(peer);
            continue; // dropped: closed at once
        };
        let counted = if proxies.contains(peer.ip()) {
            None
        } else {
            match per_address.enter(peer.ip()) {
                Some(counted) => Some(counted),
                None => {
                    tracing::debug!(%peer, "connection refused: too many from its address");
                    refused_per_address.count(peer);
                    continue; // dropped, and its place in the total with it
                }
            }
        };
        // A streamed body (a tarball) leaves in more than one write after its head; with
        // Nagle's algorithm each later write would wait for the client's delayed ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let _permit = (permit, counted);
            let service = TowerToHyperService::new(service.map_request(
                |request: hyper::Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
            ));
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended");
            }
        });
    }
}

/// Open connections by client address (an IPv4 address, an IPv6 client's /64), each at
/// most `max`. The accept loop enters; the connection's task leaves when it ends.
struct PerAddress {
    open: Arc<Mutex<HashMap<tokengate::ClientBucket, usize>>>,
    max: usize,
}

/// One open connection counted against its address, given back when dropped.
struct Counted {
    open: Arc<Mutex<HashMap<tokengate::ClientBucket, usize>>>,
    address: tokengate::ClientBucket,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max,
        }
    }

    /// Counts a connection from `ip`, or `None` when its address already has `max` open.
    fn enter(&self, ip: IpAddr) -> Option<Counted> {
        let address = tokengate::ClientBucket::from(ip);
        // A poisoned map is still a map of counts: keep counting rather than refuse all.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Counted {
            open: Arc::clone(&self.open),
            address,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Connections refused at a limit: each at DEBUG, and a WARN at most once a minute with
/// the count, so that a flood of connections does not become a flood of log lines.
struct RefusedConnections {
    warning: &'static str,
    since_warning: u64,
    warned_at: Option<Instant>,
}

impl RefusedConnections {
    const EVERY: Duration = Duration::from_secs(60);

    fn new(warning: &'static str) -> Self {
        Self {
            warning,
            since_warning: 0,
            warned_at: None,
        }
    }

    fn count(&mut self, peer: SocketAddr) {
        self.since_warning += 1;
        if self.warned_at.is_none_or(|at| at.elapsed() >= Self::EVERY) {
            tracing::warn!(
                refused = self.since_warning,
                last_peer = %peer,
                "{}",
                self.warning
            );
            self.since_warning = 0;
            self.warned_at = Some(Instant::now());
        }
    }
}
