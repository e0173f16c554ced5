//! What the bench targets share: the request every variant handles and the trivial inner
//! service.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{Service, service_fn};

pub type Body = Full<Bytes>;

pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);

/// The request every variant handles: a header (or none) and the peer address.
pub fn request(authorization: Option<&HeaderValue>) -> Request<Body> {
    let mut request = Request::new(Body::default());
    if let Some(value) = authorization {
        request.headers_mut().insert(AUTHORIZATION, value.clone());
    }
    request.extensions_mut().insert(PEER);
    request
}

/// The trivial inner service.
pub fn bare()
-> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(|_request: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::default()))
    })
}

pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}
