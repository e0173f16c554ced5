//! The whole layer on a request built from fuzz input. Never panics, and never lets a
//! request through unless it carries, in its single Authorization header, exactly one of
//! the tokens issued here, allowed for that method and client address.
#![no_main]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tokengate::store::{MemoryStore};
use tokengate::{Authenticated, NewToken, TokenAuthLayer, Tokens};
use tower::{ServiceBuilder, ServiceExt, service_fn};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    layer: TokenAuthLayer<MemoryStore>,
    /// (token, read-only, restricted to 10.0.0.0/8)
    issued: Vec<(String, bool, bool)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tokens = Tokens::builder(MemoryStore::new())
            .prefix("npm")
            .unwrap()
            .build();
        let mut issued = Vec::new();
        runtime.block_on(async {
            for (read_only, restricted) in [(false, false), (true, false), (false, true)] {
                let mut options = if read_only {
                    NewToken::read_only()
                } else {
                    NewToken::read_write()
                };
                if restricted {
                    options = options.allow_cidrs(["10.0.0.0/8"]);
                }
                let created = tokens.create("fuzz", options).await.unwrap();
                issued.push((
                    created.token.expose_secret().to_owned(),
                    read_only,
                    restricted,
                ));
            }
        });
        let layer =
            TokenAuthLayer::new(tokens).trusted_proxies(tokengate::TrustedProxies::parse(["127.0.0.0/8"]).unwrap());
        Fixture {
            runtime,
            layer,
            issued,
        }
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: Vec<u8>,
    peer: Option<IpAddr>,
    /// Authorization values; `Some(i)` in `use_token` splices issued token `i` in.
    authorization: Vec<Vec<u8>>,
    use_token: Option<(u8, bool)>,
    forwarded: Vec<Vec<u8>>,
}

fuzz_target!(|input: Input| {
    let fixture = fixture();
    let Ok(method) = Method::from_bytes(&input.method) else {
        return;
    };
    let mut request = Request::builder().method(method.clone());
    let mut values = input.authorization.clone();
    if let Some((which, lower)) = input.use_token {
        let (token, _, _) = &fixture.issued[usize::from(which) % fixture.issued.len()];
        let scheme = if lower { "bearer " } else { "Bearer " };
        values.push(format!("{scheme}{token}").into_bytes());
    }
    for value in &values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request = request.header("authorization", value);
        }
    }
    for value in &input.forwarded {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request = request.header("x-forwarded-for", value);
        }
    }
    let Ok(mut request) = request.body(Full::<Bytes>::default()) else {
        return;
    };
    if let Some(peer) = input.peer {
        request.extensions_mut().insert(SocketAddr::new(peer, 1));
    }
    let headers = request.headers().clone();
    let service = ServiceBuilder::new()
        .layer(fixture.layer.clone())
        .service(service_fn(|request: Request<Full<Bytes>>| async move {
            let mut response = Response::new(Full::<Bytes>::default());
            if request.extensions().get::<Authenticated>().is_none() {
                *response.status_mut() = StatusCode::IM_A_TEAPOT;
            }
            Ok::<_, Infallible>(response)
        }));
    let response = fixture.runtime.block_on(service.oneshot(request)).unwrap();
    assert_ne!(
        response.status(),
        StatusCode::IM_A_TEAPOT,
        "let through without a token"
    );
    if response.status() != StatusCode::OK {
        return;
    }
    // Let through: exactly one Authorization header holding an issued token it allows.
    let all: Vec<_> = headers.get_all("authorization").iter().collect();
    assert_eq!(all.len(), 1);
    let value = all[0].to_str().unwrap();
    let presented = value[6..].trim_start_matches(' ');
    let (_, read_only, restricted) = fixture
        .issued
        .iter()
        .find(|(token, _, _)| token == presented)
        .expect("let through with a token that was never issued");
    let is_write = !matches!(
        method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    assert!(!(*read_only && is_write), "a read-only token wrote");
    if *restricted {
        assert!(
            input.peer.is_some(),
            "a restricted token passed without an address"
        );
    }
});
