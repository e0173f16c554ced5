//! Accepting connections with limits: a header must arrive within a deadline, a request
//! (its body included) must be handled within another, and only so many connections are
//! served at once. A connection that sends half a header, or declares a body and trickles
//! it, is closed instead of held forever.

use std::net::SocketAddr;
use std::sync::Arc;
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
}

/// Serves `app` on `listener` until Ctrl-C.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) -> std::io::Result<()> {
    // 408 for a request, body included, that takes longer than its deadline.
    let app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder.http1_only());
    let mut refused = RefusedConnections::default();
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
            let _permit = permit;
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

/// Connections refused at the limit: each at DEBUG, and a WARN at most once a minute with
/// the count, so that a flood of connections does not become a flood of log lines.
#[derive(Default)]
struct RefusedConnections {
    since_warning: u64,
    warned_at: Option<Instant>,
}

impl RefusedConnections {
    const EVERY: Duration = Duration::from_secs(60);

    fn count(&mut self, peer: SocketAddr) {
        self.since_warning += 1;
        if self.warned_at.is_none_or(|at| at.elapsed() >= Self::EVERY) {
            tracing::warn!(
                refused = self.since_warning,
                last_peer = %peer,
                "connections refused: too many open connections (see --max-connections)"
            );
            self.since_warning = 0;
            self.warned_at = Some(Instant::now());
        }
    }
}
