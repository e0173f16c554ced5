//! What the bench targets share: the request every variant handles and the trivial inner
//! service.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tokengate::{Reason, TokenFormatError};
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

/// A bare service that answers every request the way the layer refuses a malformed token:
/// 401, the same headers (`WWW-Authenticate` among them) and a small JSON body.
pub fn bare_refusal()
-> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(|_request: Request<Body>| async {
        // The very body the layer sends for a bad checksum.
        let body = Reason::Malformed(TokenFormatError::BadChecksum).json_body();
        let mut response = Response::new(Body::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = response.headers_mut();
        headers.reserve(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="tokengate", error="invalid_token""#),
        );
        Ok::<_, Infallible>(response)
    })
}

pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}
