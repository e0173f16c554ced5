//! HTTP under load: the same hyper server with and without the layer, driven over
//! loopback by a small keep-alive client for a bounded time. Prints requests/s and
//! latency percentiles for both, and their ratio. Run with `cargo bench --bench http_load`;
//! `TOKENGATE_LOAD_SECONDS` sets each run's length (default 5).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokengate::store::MemoryStore;
use tokengate::{NewToken, TokenAuthLayer, Tokens};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceBuilder, service_fn};

const CONNECTIONS: usize = 32;

async fn handler(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// Serves on a free loopback port until the runtime is dropped; `layer` or not.
async fn serve(layer: Option<TokenAuthLayer<MemoryStore>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let layer = layer.clone();
            tokio::spawn(async move {
                let with_peer = move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    request
                };
                let io = TokioIo::new(stream);
                let builder = hyper::server::conn::http1::Builder::new();
                let _ = match layer {
                    Some(layer) => {
                        let service = ServiceBuilder::new()
                            .map_request(with_peer)
                            .layer(layer)
                            .service(service_fn(handler));
                        builder
                            .serve_connection(io, TowerToHyperService::new(service))
                            .await
                    }
                    None => {
                        let service = ServiceBuilder::new()
                            .map_request(with_peer)
                            .service(service_fn(handler));
                        builder
                            .serve_connection(io, TowerToHyperService::new(service))
                            .await
                    }
                };
            });
        }
    });
    addr
}

struct Run {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

/// `CONNECTIONS` keep-alive connections sending GETs with the token for `length`.
async fn drive(addr: SocketAddr, authorization: String, length: Duration) -> Run {
    let start = Instant::now();
    let deadline = start + length;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let authorization = authorization.clone();
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let request = Request::get("/")
                        .header("host", "bench")
                        .header("authorization", &authorization)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let sent = Instant::now();
                    sender.ready().await.unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    response.into_body().collect().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    Run {
        requests: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

fn main() {
    let seconds: u64 = std::env::var("TOKENGATE_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let length = Duration::from_secs(seconds);
    // One core's worth of threads for the servers, one for the client.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let tokens = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let (bare, gated, authorization) = servers.block_on(async {
        let created = tokens.create("load", NewToken::read_only()).await.unwrap();
        let authorization = format!("Bearer {}", created.token.expose_secret());
        let bare = serve(None).await;
        let gated = serve(Some(TokenAuthLayer::new(tokens.clone()))).await;
        (bare, gated, authorization)
    });

    println!("http_load: {CONNECTIONS} keep-alive connections, {seconds} s per run, loopback");
    // Warm both, then alternate so that drift on a shared machine hits both alike.
    for addr in [bare, gated] {
        client.block_on(drive(addr, authorization.clone(), Duration::from_secs(1)));
    }
    let mut runs: Vec<(&str, Run)> = Vec::new();
    for _ in 0..2 {
        for (name, addr) in [("bare", bare), ("layer", gated)] {
            runs.push((
                name,
                client.block_on(drive(addr, authorization.clone(), length)),
            ));
        }
    }
    let mut totals = std::collections::BTreeMap::<&str, Run>::new();
    for (name, run) in runs {
        let total = totals.entry(name).or_insert(Run {
            requests: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
        });
        total.requests += run.requests;
        total.elapsed += run.elapsed;
        total.latencies.extend(run.latencies);
    }
    let mut summary = Vec::new();
    for (name, run) in totals.iter_mut() {
        let (p50, p99) = (run.percentile(0.50), run.percentile(0.99));
        println!(
            "http_load {name:<5}: {:>9.0} requests/s   p50 {:>7.1} µs   p99 {:>7.1} µs   ({} requests)",
            run.per_second(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            run.requests
        );
        summary.push((run.per_second(), p99));
    }
    let (bare_rate, bare_p99) = summary[0];
    let (layer_rate, layer_p99) = summary[1];
    println!(
        "http_load ratio: layer keeps {:.1}% of the bare server's requests/s; p99 ×{:.2}",
        100.0 * layer_rate / bare_rate,
        layer_p99.as_secs_f64() / bare_p99.as_secs_f64()
    );
    drop(client);
    drop(servers);
}
