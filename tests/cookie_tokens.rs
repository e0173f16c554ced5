//! Tokens from a cookie, through the layer: reads need nothing more, writes must come from
//! the site's own pages (`Sec-Fetch-Site: same-origin`, or an `Origin` that is the site's),
//! the bearer header wins over the cookie, and a refused write never reaches the service.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::header::COOKIE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokengate::store::MemoryStore;
use tokengate::{Authenticated, NewToken, Reason, TokenAuthLayer, Tokens};
use tower::{ServiceBuilder, ServiceExt, service_fn};

type Body = Full<Bytes>;

struct Fixture {
    tokens: Tokens<MemoryStore>,
    session: String,
    other: String,
    calls: Arc<AtomicUsize>,
}

async fn fixture() -> Fixture {
    let tokens = Tokens::builder(MemoryStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let session = tokens.create("alice", NewToken::session()).await.unwrap();
    let other = tokens.create("bob", NewToken::read_write()).await.unwrap();
    Fixture {
        tokens,
        session: session.token.expose_secret().to_owned(),
        other: other.token.expose_secret().to_owned(),
        calls: Arc::new(AtomicUsize::new(0)),
    }
}

/// Sends one request through `layer`; answers the status and body.
async fn send(
    fixture: &Fixture,
    layer: &TokenAuthLayer<MemoryStore>,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let calls = Arc::clone(&fixture.calls);
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(move |request: Request<Body>| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if let Some(cookie) = request.headers().get(COOKIE) {
                    assert!(cookie.is_sensitive(), "the cookie is marked sensitive");
                }
                let who = request
                    .extensions()
                    .get::<Authenticated>()
                    .map_or("anonymous".to_owned(), |who| who.owner().to_owned());
                Ok::<_, Infallible>(Response::new(Body::new(Bytes::from(who))))
            }
        }));
    let mut request = Request::builder()
        .method(method)
        .uri("/-/web/tokens")
        .header("host", "127.0.0.1:4873");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = service
        .oneshot(request.body(Body::default()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn cookie_writes_pass_only_from_the_sites_own_pages() {
    let f = fixture().await;
    let layer = TokenAuthLayer::new(f.tokens.clone())
        .cookie_token("tg_session")
        .allowed_origin("http://127.0.0.1:4873");
    let cookie = format!("theme=dark; tg_session={}", f.session);
    let refused = Reason::CrossSiteRequest.json_body();
    type Case<'a> = (
        &'a str,
        Method,
        Vec<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "read, no origin",
            Method::GET,
            vec![],
            StatusCode::OK,
            "alice",
        ),
        (
            "read, cross-site",
            Method::GET,
            vec![("sec-fetch-site", "cross-site")],
            StatusCode::OK,
            "alice",
        ),
        (
            "write, same-origin fetch",
            Method::POST,
            vec![("sec-fetch-site", "same-origin")],
            StatusCode::OK,
            "alice",
        ),
        (
            "write, own origin",
            Method::POST,
            vec![("origin", "http://127.0.0.1:4873")],
            StatusCode::OK,
            "alice",
        ),
        (
            "write, other origin",
            Method::POST,
            vec![("origin", "https://evil.example")],
            StatusCode::FORBIDDEN,
            refused,
        ),
        (
            "write, cross-site fetch with a forged origin",
            Method::DELETE,
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:4873"),
            ],
            StatusCode::FORBIDDEN,
            refused,
        ),
        (
            "write, same-site is not same-origin",
            Method::PUT,
            vec![("sec-fetch-site", "same-site")],
            StatusCode::FORBIDDEN,
            refused,
        ),
        (
            "write, nothing says where from",
            Method::POST,
            vec![],
            StatusCode::FORBIDDEN,
            refused,
        ),
        (
            "write, opaque origin",
            Method::POST,
            vec![("origin", "null")],
            StatusCode::FORBIDDEN,
            refused,
        ),
    ];
    for (label, method, extra, status, body) in cases {
        let before = f.calls.load(Ordering::SeqCst);
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(extra);
        let got = send(&f, &layer, method, &headers).await;
        assert_eq!(got, (status, body.to_owned()), "{label}");
        let ran = f.calls.load(Ordering::SeqCst) - before;
        assert_eq!(
            ran,
            usize::from(status == StatusCode::OK),
            "{label}: inner ran {ran}"
        );
    }
}

#[tokio::test]
async fn the_bearer_header_wins_and_needs_no_origin() {
    let f = fixture().await;
    let layer = TokenAuthLayer::new(f.tokens.clone()).cookie_token("tg_session");
    let cookie = format!("tg_session={}", f.session);
    let bearer = format!("Bearer {}", f.other);
    // Both: the header's token is the one used, and a header is no browser's.
    let got = send(
        &f,
        &layer,
        Method::POST,
        &[("cookie", &cookie), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(got, (StatusCode::OK, "bob".to_owned()));
    // A bad bearer token is refused even with a good cookie beside it.
    let got = send(
        &f,
        &layer,
        Method::GET,
        &[("cookie", &cookie), ("authorization", "Bearer npm_nope")],
    )
    .await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_configured_origins_the_host_is_the_origin() {
    let f = fixture().await;
    let layer = TokenAuthLayer::new(f.tokens.clone()).cookie_token("tg_session");
    let cookie = format!("tg_session={}", f.session);
    for (origin, status) in [
        ("http://127.0.0.1:4873", StatusCode::OK),
        ("http://127.0.0.1:9999", StatusCode::FORBIDDEN),
        ("http://localhost:4873", StatusCode::FORBIDDEN),
    ] {
        let headers = [("cookie", cookie.as_str()), ("origin", origin)];
        let got = send(&f, &layer, Method::POST, &headers).await;
        assert_eq!(got.0, status, "{origin}");
    }
}

#[tokio::test]
async fn cookies_count_only_where_asked_and_bad_ones_are_refused() {
    let f = fixture().await;
    let cookie = format!("tg_session={}", f.session);
    // A layer that reads no cookie ignores it.
    let plain = TokenAuthLayer::new(f.tokens.clone());
    let got = send(&f, &plain, Method::GET, &[("cookie", &cookie)]).await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED);
    let optional = TokenAuthLayer::new(f.tokens.clone())
        .optional()
        .cookie_token("tg_session");
    let got = send(&f, &optional, Method::GET, &[("cookie", "theme=dark")]).await;
    assert_eq!(got, (StatusCode::OK, "anonymous".to_owned()));
    // A revoked session in the cookie is refused, in optional mode too.
    f.tokens.revoke(&f.session).await.unwrap();
    let got = send(&f, &optional, Method::GET, &[("cookie", &cookie)]).await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED);
    assert!(!got.1.contains(&f.session), "the token is never echoed");
}
