//! The same gate on plain hyper 1, in front of a service that answers with a boxed body:
//! the server inserts the peer address into each request's extensions itself, and the
//! layer reads it from there.
//!
//! Run with `cargo run --example hyper`, then paste the printed curl lines.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokengate::store::MemoryStore;
use tokengate::{Authenticated, NewToken, TokenAuthLayer, Tokens};
use tower::{ServiceBuilder, service_fn};

async fn handle(
    request: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let who = request
        .extensions()
        .get::<Authenticated>()
        .map_or("nobody", |who| who.owner())
        .to_owned();
    let verb = request.method().clone();
    let body = Full::new(Bytes::from(format!("{verb} accepted for {who}\n")));
    Ok(Response::new(body.boxed()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:3001")
        .parse()?;
    let tokens = Tokens::builder(MemoryStore::new()).prefix("demo")?.build();
    let full = tokens.create("alice", NewToken::read_write()).await?;
    let read_only = tokens.create("alice", NewToken::read_only()).await?;
    let layer = TokenAuthLayer::new(tokens);

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("listening on {base}\n");
    let full = full.token.expose_secret();
    let read_only = read_only.token.expose_secret();
    println!("curl -i -H 'Authorization: Bearer {full}' -X PUT {base}/");
    println!("curl -i -H 'Authorization: Bearer {read_only}' {base}/");
    println!("curl -i -H 'Authorization: Bearer {read_only}' -X PUT {base}/   # 403");
    println!("curl -i {base}/   # 401");

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let service = ServiceBuilder::new()
            // The peer address, where the layer looks for it.
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer);
                request
            })
            .layer(layer.clone())
            .service(service_fn(handle));
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = connection.await {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}
