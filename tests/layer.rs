//! The layer through a bare `ServiceBuilder` (peer address as a plain `SocketAddr`
//! extension, as hyper users insert it) and, with the `axum` feature, through an axum
//! `Router` with `MockConnectInfo`: every request is sent both ways and must get the same
//! answer.

mod support;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use support::TestStore;
use tokengate::{Authenticated, Grants, ManualClock, NewToken, Permission, TokenAuthLayer, Tokens};
use tower::{ServiceBuilder, ServiceExt, service_fn};

type Body = Full<Bytes>;

fn tokens(store: TestStore) -> Tokens<TestStore> {
    Tokens::builder(store)
        .prefix("npm")
        .unwrap()
        .clock(ManualClock::new(SystemTime::now()))
        .build()
}

/// The inner service: says who called, and checks what it was handed.
async fn echo<B>(request: Request<B>) -> Result<Response<Body>, Infallible> {
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        assert!(
            value.is_sensitive(),
            "the inner service sees a sensitive header"
        );
    }
    let who = match request.extensions().get::<Authenticated>() {
        Some(who) => format!("{} {:?}", who.owner(), who.grants().broadest()),
        None => "anonymous".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(who))))
}

#[derive(Debug, PartialEq)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    content_type: Option<String>,
    body: String,
}

fn request(method: &Method, headers: &[(&str, &str)]) -> http::request::Builder {
    let mut request = Request::builder().method(method.clone()).uri("/thing");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

async fn reply<B>(response: Response<B>) -> Reply
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (status, challenge, content_type) = (
        response.status(),
        header(WWW_AUTHENTICATE),
        header(CONTENT_TYPE),
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        challenge,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Through `ServiceBuilder` with the peer as a `SocketAddr` extension.
async fn send_bare(
    layer: &TokenAuthLayer<TestStore>,
    method: &Method,
    peer: Option<SocketAddr>,
    headers: &[(&str, &str)],
) -> Reply {
    let service = ServiceBuilder::new().layer(layer.clone()).service_fn(echo);
    let mut request = request(method, headers).body(Body::default()).unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(peer);
    }
    reply(service.oneshot(request).await.unwrap()).await
}

/// Through an axum `Router` with `MockConnectInfo`.
#[cfg(feature = "axum")]
async fn send_router(
    layer: &TokenAuthLayer<TestStore>,
    method: &Method,
    peer: Option<SocketAddr>,
    headers: &[(&str, &str)],
) -> Reply {
    use axum::extract::connect_info::MockConnectInfo;
    let handler = |request: Request<axum::body::Body>| async move {
        echo(request).await.unwrap().map(axum::body::Body::new)
    };
    let mut app = axum::Router::new().fallback(handler).layer(layer.clone());
    if let Some(peer) = peer {
        app = app.layer(MockConnectInfo(peer));
    }
    let request = request(method, headers)
        .body(axum::body::Body::empty())
        .unwrap();
    reply(app.oneshot(request).await.unwrap()).await
}

async fn send(
    layer: &TokenAuthLayer<TestStore>,
    method: Method,
    peer: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let peer = peer.map(|p| SocketAddr::new(p.parse::<IpAddr>().unwrap(), 40_000));
    let bare = send_bare(layer, &method, peer, headers).await;
    #[cfg(feature = "axum")]
    {
        let mut routed = send_router(layer, &method, peer, headers).await;
        if method == Method::HEAD {
            // axum answers HEAD without a body, as HTTP wants.
            routed.body.clone_from(&bare.body);
        }
        assert_eq!(bare, routed, "ServiceBuilder and Router disagree");
    }
    bare
}

/// Label, method, headers, then the expected status, challenge and words of the message.
type RefusalCase<'a> = (
    &'a str,
    Method,
    Vec<(&'a str, String)>,
    StatusCode,
    Option<&'a str>,
    &'a str,
);

/// The status of a request from an unknown address with this Authorization value.
async fn status_of(layer: &TokenAuthLayer<TestStore>, method: Method, auth: &str) -> StatusCode {
    send(layer, method, None, &[("authorization", auth)])
        .await
        .status
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn method_access_address_matrix() {
    let store = TestStore::new();
    let tokens = tokens(store);
    let layer = TokenAuthLayer::new(tokens.clone());
    let mut cases = Vec::new();
    for access in [Permission::ReadOnly, Permission::ReadWrite] {
        for restricted in [false, true] {
            let cidr: &[&str] = if restricted {
                &["10.0.0.0/8", "2001:db8::/32"]
            } else {
                &[]
            };
            let options =
                NewToken::with_grants(Grants::everything(access)).allow_cidrs(cidr.iter().copied());
            let created = tokens.create("alice", options).await.unwrap();
            cases.push((access, restricted, created.token.expose_secret().to_owned()));
        }
    }
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::from_bytes(b"PURGE").unwrap(),
    ];
    let peers = [
        Some("10.1.2.3"),
        Some("::ffff:10.1.2.3"),
        Some("2001:db8::7"),
        Some("192.0.2.1"),
        None,
    ];
    for (access, restricted, token) in &cases {
        for method in &methods {
            for peer in peers {
                let inside = peer.is_some_and(|p| p != "192.0.2.1");
                let is_write = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE");
                let refused =
                    (*restricted && !inside) || (*access == Permission::ReadOnly && is_write);
                let expected = if refused {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::OK
                };
                let reply = send(
                    &layer,
                    method.clone(),
                    peer,
                    &[("authorization", &bearer(token))],
                )
                .await;
                assert_eq!(
                    reply.status, expected,
                    "{access:?} restricted={restricted} {method} from {peer:?}: {}",
                    reply.body
                );
                if expected == StatusCode::OK {
                    assert_eq!(reply.body, format!("alice {access:?}"));
                }
            }
        }
    }
}

#[tokio::test]
async fn every_refusal_with_status_headers_and_body() {
    let store = TestStore::new();
    let tokens = tokens(store.clone());
    let layer = TokenAuthLayer::new(tokens.clone()).realm("test");
    let support::Kinds {
        read_only,
        restricted,
        revoked,
    } = support::issue_kinds(&tokens, "10.0.0.0/8").await;
    let stranger = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let unknown = stranger
        .create("eve", NewToken::read_write())
        .await
        .unwrap();
    let mut typo = read_only.token.expose_secret().to_owned();
    typo.replace_range(10..11, if &typo[10..11] == "a" { "b" } else { "a" });

    let invalid_token = Some(r#"Bearer realm="test", error="invalid_token""#);
    let invalid_request = Some(r#"Bearer realm="test", error="invalid_request""#);
    let cases: Vec<RefusalCase<'_>> = vec![
        (
            "no header",
            Method::GET,
            vec![],
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer realm="test""#),
            "authentication required",
        ),
        (
            "basic",
            Method::GET,
            vec![("authorization", "Basic dXNlcjpwYXNz".into())],
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer realm="test""#),
            "authentication required",
        ),
        (
            "empty bearer",
            Method::GET,
            vec![("authorization", "Bearer".into())],
            StatusCode::UNAUTHORIZED,
            invalid_request,
            "carries no token",
        ),
        (
            "typo",
            Method::GET,
            vec![("authorization", bearer(&typo))],
            StatusCode::UNAUTHORIZED,
            invalid_token,
            "checksum does not match",
        ),
        (
            "cut short",
            Method::GET,
            vec![("authorization", bearer(&typo[..20]))],
            StatusCode::UNAUTHORIZED,
            invalid_token,
            "wrong length",
        ),
        (
            "other prefix",
            Method::GET,
            vec![("authorization", bearer("ghp_abcdef"))],
            StatusCode::UNAUTHORIZED,
            invalid_token,
            "not issued by this server",
        ),
        (
            "unknown",
            Method::GET,
            vec![("authorization", bearer(unknown.token.expose_secret()))],
            StatusCode::UNAUTHORIZED,
            invalid_token,
            "not valid",
        ),
        (
            "revoked",
            Method::GET,
            vec![("authorization", bearer(revoked.token.expose_secret()))],
            StatusCode::UNAUTHORIZED,
            invalid_token,
            "revoked",
        ),
        (
            "read-only write",
            Method::PUT,
            vec![("authorization", bearer(read_only.token.expose_secret()))],
            StatusCode::FORBIDDEN,
            Some(r#"Bearer realm="test", error="insufficient_scope""#),
            "read-only",
        ),
        (
            "outside",
            Method::GET,
            vec![("authorization", bearer(restricted.token.expose_secret()))],
            StatusCode::FORBIDDEN,
            None,
            "IP address",
        ),
    ];
    for (label, method, headers, status, challenge, message) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = send(&layer, method, Some("192.0.2.1"), &headers).await;
        assert_eq!(reply.status, status, "{label}");
        assert_eq!(reply.challenge.as_deref(), challenge, "{label}");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/json"),
            "{label}"
        );
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{label}: {error}");
        for secret in [
            read_only.token.expose_secret(),
            restricted.token.expose_secret(),
        ] {
            assert!(!reply.body.contains(&secret[4..]), "{label}");
        }
        assert!(
            !reply.body.contains("10.0.0.0"),
            "{label}: the allow-list stays private"
        );
    }

    // Expired: move the manager's clock.
    let clock = ManualClock::new(SystemTime::now());
    let timed = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .clock(clock.clone())
        .build();
    let expiring = timed
        .create(
            "alice",
            NewToken::read_write().expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let reply = send(
        &TokenAuthLayer::new(timed),
        Method::GET,
        None,
        &[("authorization", &bearer(expiring.token.expose_secret()))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body.contains("expired"));

    // Store down: 503, and nothing let through.
    let fresh = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    store.set_failing(true);
    let reply = send(
        &layer,
        Method::GET,
        None,
        &[("authorization", &bearer(fresh.token.expose_secret()))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("unavailable"));
    store.set_failing(false);
    let reply = send(
        &layer,
        Method::GET,
        None,
        &[("authorization", &bearer(fresh.token.expose_secret()))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn header_forms() {
    let store = TestStore::new();
    let tokens = tokens(store.clone());
    let layer = TokenAuthLayer::new(tokens.clone());
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token = created.token.expose_secret();

    for accepted in [
        format!("bearer {token}"),
        format!("BEARER   {token}"),
        format!("Bearer {token}"),
    ] {
        let reply = send(&layer, Method::GET, None, &[("authorization", &accepted)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{accepted}");
    }

    let gets_before = store.gets();
    let huge = format!("Bearer {}", "a".repeat(100 * 1024));
    let twice = [
        ("authorization", bearer(token)),
        ("authorization", bearer(token)),
    ];
    let refused: Vec<Vec<(&str, String)>> = vec![
        vec![("authorization", huge)],
        twice.to_vec(),
        vec![("authorization", format!("Bearer {token} "))],
        vec![("authorization", format!("Bearer {token}="))],
    ];
    for headers in refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = send(&layer, Method::GET, None, &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.gets(), gets_before, "refused before any lookup");
}

#[tokio::test]
async fn optional_mode() {
    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens.clone()).optional();
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();

    let reply = send(&layer, Method::GET, None, &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let reply = send(
        &layer,
        Method::PUT,
        None,
        &[("authorization", "Basic dXNlcjpwYXNz")],
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );

    let good = bearer(created.token.expose_secret());
    let reply = send(&layer, Method::GET, None, &[("authorization", &good)]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice ReadOnly")
    );
    // A token, even in optional mode, is held to every rule.
    let reply = send(&layer, Method::PUT, None, &[("authorization", &good)]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = send(
        &layer,
        Method::GET,
        None,
        &[("authorization", "Bearer npm_junk")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forwarded_addresses() {
    let tokens = tokens(TestStore::new());
    let created = tokens
        .create(
            "alice",
            NewToken::read_write().allow_cidrs(["198.51.100.0/24"]),
        )
        .await
        .unwrap();
    let auth = bearer(created.token.expose_secret());
    let proxies = tokengate::TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
    let behind_proxy = TokenAuthLayer::new(tokens.clone()).trusted_proxies(proxies);
    let direct = TokenAuthLayer::new(tokens.clone());

    #[rustfmt::skip]
    let cases: &[(&TokenAuthLayer<TestStore>, &str, &[&str], StatusCode)] = &[
        // The proxy appended the real client; a forged leftmost entry changes nothing.
        (&behind_proxy, "10.0.0.1", &["198.51.100.7"], StatusCode::OK),
        (&behind_proxy, "10.0.0.1", &["203.0.113.66, 198.51.100.7"], StatusCode::OK),
        (&behind_proxy, "10.0.0.1", &["198.51.100.7, 203.0.113.66"], StatusCode::FORBIDDEN),
        (&behind_proxy, "10.0.0.1", &["198.51.100.7", "203.0.113.66, 10.0.0.5"], StatusCode::FORBIDDEN),
        (&behind_proxy, "::ffff:10.0.0.1", &["::ffff:198.51.100.7"], StatusCode::OK),
        // Garbage where the walk reaches it: address unknown, restricted token refused.
        (&behind_proxy, "10.0.0.1", &["198.51.100.7, nonsense"], StatusCode::FORBIDDEN),
        // From a peer that is not a trusted proxy, the header is ignored.
        (&behind_proxy, "203.0.113.66", &["198.51.100.7"], StatusCode::FORBIDDEN),
        (&direct, "203.0.113.66", &["198.51.100.7"], StatusCode::FORBIDDEN),
        (&direct, "198.51.100.7", &["203.0.113.66"], StatusCode::OK),
        (&direct, "::ffff:198.51.100.7", &[], StatusCode::OK),
    ];
    for (layer, peer, forwarded, status) in cases {
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(forwarded.iter().map(|v| ("x-forwarded-for", *v)));
        let reply = send(layer, Method::GET, Some(peer), &headers).await;
        assert_eq!(reply.status, *status, "peer {peer} xff {forwarded:?}");
    }
}

#[tokio::test]
async fn method_override_headers_are_ignored() {
    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens.clone());
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let auth = bearer(created.token.expose_secret());
    let reply = send(
        &layer,
        Method::POST,
        None,
        &[("authorization", &auth), ("x-http-method-override", "GET")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = send(
        &layer,
        Method::GET,
        None,
        &[
            ("authorization", &auth),
            ("x-http-method-override", "DELETE"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn custom_actions() {
    let tokens = tokens(TestStore::new());
    // A search API where POST only reads.
    let layer = TokenAuthLayer::new(tokens.clone()).actions(|method| match *method {
        Method::POST => tokengate::Action::Read,
        _ => tokengate::Action::of_method(method),
    });
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let auth = bearer(created.token.expose_secret());
    assert_eq!(status_of(&layer, Method::POST, &auth).await, StatusCode::OK);
    assert_eq!(
        status_of(&layer, Method::DELETE, &auth).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn custom_responses() {
    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens).respond_with(|rejection, request| {
        let mut response = Response::new(Bytes::from(format!(
            "nope: {} ({} {})",
            rejection.reason(),
            request.method,
            request.uri.path()
        )));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
    });
    let reply = send(&layer, Method::GET, None, &[]).await;
    assert_eq!(reply.status, StatusCode::IM_A_TEAPOT);
    assert!(reply.body.starts_with("nope: authentication required"));
    assert!(reply.body.ends_with("(GET /thing)"), "{}", reply.body);
}

#[tokio::test]
async fn a_revoke_is_refused_on_the_very_next_request() {
    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens.clone());
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let auth = bearer(created.token.expose_secret());
    assert_eq!(status_of(&layer, Method::GET, &auth).await, StatusCode::OK);
    tokens.revoke(created.token.expose_secret()).await.unwrap();
    assert_eq!(
        status_of(&layer, Method::GET, &auth).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn poll_ready_is_delegated_and_the_ready_service_is_the_one_called() {
    use std::task::{Context, Poll, Waker};
    use tower::Service;
    let tokens = tokens(TestStore::new());
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let mut limited = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens))
        .concurrency_limit(1)
        .service(service_fn(echo));
    let mut cx = Context::from_waker(Waker::noop());
    let request = || {
        Request::builder()
            .header("authorization", bearer(created.token.expose_secret()))
            .body(Body::default())
            .unwrap()
    };

    assert!(matches!(limited.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let in_flight = limited.call(request());
    // The one permit travels with the call in flight, not with the clone left behind.
    assert!(limited.poll_ready(&mut cx).is_pending());
    assert_eq!(in_flight.await.unwrap().status(), StatusCode::OK);
    assert!(matches!(limited.poll_ready(&mut cx), Poll::Ready(Ok(()))));

    // A refusal drops the ready service, and with it the permit.
    let refused = limited.call(Request::new(Body::default()));
    assert!(matches!(limited.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(refused.await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_event_hook_hears_every_kind_of_event() {
    use std::sync::{Arc, Mutex};
    use tokengate::{Action, TokenEvent};

    let heard = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&heard);
    let tokens = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .on_event(move |event| {
            let line = match event {
                TokenEvent::Created { listing } => format!("created {}", listing.owner),
                TokenEvent::Revoked { owner, .. } => format!("revoked {owner:?}"),
                TokenEvent::Used { by, action, .. } => format!("used {} {action:?}", by.owner()),
                TokenEvent::Refused {
                    rejection,
                    client,
                    method,
                    path,
                } => format!(
                    "refused {:?} {client:?} {method:?} {path:?}",
                    rejection.reason()
                ),
                _ => "other".to_owned(),
            };
            log.lock().unwrap().push(line);
        })
        .build();
    let layer = TokenAuthLayer::new(tokens.clone());
    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let auth = bearer(created.token.expose_secret());
    let bare = |method: Method, auth: &str| {
        let headers = [("authorization", auth.to_owned())];
        let layer = layer.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let peer = Some(SocketAddr::from(([192, 0, 2, 7], 4000)));
            send_bare(&layer, &method, peer, &headers).await.status
        }
    };
    assert_eq!(bare(Method::GET, &auth).await, StatusCode::OK);
    assert_eq!(bare(Method::PUT, &auth).await, StatusCode::FORBIDDEN);
    assert!(
        tokens
            .revoke_owned("alice", created.listing.id.as_str())
            .await
            .unwrap()
    );
    let refused = tokens
        .authenticate(created.token.expose_secret(), None, Action::Read)
        .await;
    assert!(refused.is_err());

    let heard = heard.lock().unwrap().clone();
    assert_eq!(
        heard,
        [
            "created alice",
            "used alice Read",
            "refused ReadOnly Some(192.0.2.7) Some(PUT) Some(\"/thing\")",
            "revoked Some(\"alice\")",
            "refused Revoked None None None",
        ]
    );
}

#[tokio::test]
async fn any_inner_body_is_wrapped_a_boxed_one_included() {
    use http_body_util::combinators::BoxBody;

    let tokens = tokens(TestStore::new());
    let created = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let boxed = service_fn(|_request: Request<Body>| async {
        let body: BoxBody<Bytes, Infallible> = Full::new(Bytes::from("boxed")).boxed();
        Ok::<_, Infallible>(Response::new(body))
    });
    let service = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens))
        .service(boxed);
    let accepted = Request::get("/")
        .header(AUTHORIZATION, bearer(created.token.expose_secret()))
        .body(Body::default())
        .unwrap();
    let reply_ok = reply(service.clone().oneshot(accepted).await.unwrap()).await;
    assert_eq!(
        (reply_ok.status, reply_ok.body.as_str()),
        (StatusCode::OK, "boxed")
    );
    let refused = Request::get("/").body(Body::default()).unwrap();
    let reply_refused = reply(service.oneshot(refused).await.unwrap()).await;
    assert_eq!(reply_refused.status, StatusCode::UNAUTHORIZED);
    assert!(reply_refused.body.contains("authentication required"));
}

#[tokio::test]
async fn grants_decide_per_resource_and_refusals_name_it() {
    use tokengate::{Grant, ResourcePattern};

    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens.clone()).resources(support::first_segment);
    let grant = |pattern: &str, permission| {
        Grant::new(ResourcePattern::parse(pattern).unwrap(), permission)
    };
    let grants = Grants::new([
        grant("app-*", Permission::ReadOnly),
        grant("app-web", Permission::ReadWrite),
    ])
    .unwrap();
    let created = tokens
        .create("alice", NewToken::with_grants(grants))
        .await
        .unwrap();
    let auth = format!("Bearer {}", created.token.expose_secret());
    struct Case {
        method: Method,
        path: &'static str,
        status: StatusCode,
        says: &'static str,
    }
    let cases = [
        Case {
            method: Method::PUT,
            path: "/app-web",
            status: StatusCode::OK,
            says: "alice",
        },
        Case {
            method: Method::GET,
            path: "/app-db",
            status: StatusCode::OK,
            says: "alice",
        },
        Case {
            method: Method::PUT,
            path: "/app-db",
            status: StatusCode::FORBIDDEN,
            says: "this token may read app-db but not change it: its grant on app-db is read-only",
        },
        Case {
            method: Method::GET,
            path: "/billing",
            status: StatusCode::FORBIDDEN,
            says: "this token has no access to billing: its grant on billing is no-access",
        },
        // No resource: held to the broadest grant, which writes.
        Case {
            method: Method::POST,
            path: "/-/whoami",
            status: StatusCode::OK,
            says: "alice",
        },
    ];
    for case in cases {
        let service = ServiceBuilder::new().layer(layer.clone()).service_fn(echo);
        let request = Request::builder()
            .method(case.method.clone())
            .uri(case.path)
            .header(AUTHORIZATION, &auth)
            .body(Body::default())
            .unwrap();
        let reply = reply(service.oneshot(request).await.unwrap()).await;
        assert_eq!(reply.status, case.status, "{} {}", case.method, case.path);
        assert!(
            reply.body.contains(case.says),
            "{} {}: {}",
            case.method,
            case.path,
            reply.body
        );
        if case.status == StatusCode::FORBIDDEN {
            assert_eq!(
                reply.challenge.as_deref(),
                Some(r#"Bearer realm="tokengate", error="insufficient_scope""#)
            );
        }
    }
}

#[tokio::test]
async fn handlers_check_resources_the_gate_could_not_see() {
    use tokengate::{Action, Grant, Reason, Resource, ResourcePattern};

    let tokens = tokens(TestStore::new());
    let only_web = Grants::new([Grant::new(
        ResourcePattern::Exact("app-web".into()),
        Permission::ReadWrite,
    )])
    .unwrap();
    let created = tokens
        .create("alice", NewToken::with_grants(only_web))
        .await
        .unwrap();
    let who = tokens
        .authenticate(created.token.expose_secret(), None, Action::Write)
        .await
        .unwrap();
    let web = Resource::new("app-web");
    let db = Resource::new("app-db");
    assert!(who.may(Action::Write, Some(&web)));
    assert!(!who.may(Action::Read, Some(&db)));
    assert!(who.check(Action::Write, &web).is_ok());
    let refused = who.check(Action::Write, &db).unwrap_err();
    assert_eq!(refused.reason(), Reason::NotPermitted(Permission::NoAccess));
    assert_eq!(refused.resource(), Some(&db));
    assert_eq!(
        refused.to_string(),
        "this token has no access to app-db: its grant on app-db is no-access"
    );
}

#[tokio::test]
async fn writes_ask_the_second_factor_check_and_reads_never_do() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokengate::SecondFactorVerdict;

    let tokens = tokens(TestStore::new());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let layer = TokenAuthLayer::new(tokens.clone())
        .npm_responses("registry")
        .second_factor(move |request| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(
                    !format!("{request:?}").contains("654321"),
                    "codes stay out of Debug"
                );
                match &request.code {
                    _ if request.token_bypasses() => SecondFactorVerdict::Pass,
                    None => SecondFactorVerdict::CodeRequired,
                    Some(code) if code.expose() == "654321" => SecondFactorVerdict::Pass,
                    // Stands for a write the application cannot place: it fails closed.
                    Some(code) if code.expose() == "000000" => SecondFactorVerdict::Unresolved,
                    Some(_) => SecondFactorVerdict::CodeRejected,
                }
            }
        });
    let person = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let robot = tokens
        .create("alice", NewToken::read_write().bypass_second_factor())
        .await
        .unwrap();
    let bearer_of = |created: &tokengate::CreatedToken| bearer(created.token.expose_secret());
    struct Case {
        label: &'static str,
        method: Method,
        auth: String,
        otp: Option<&'static str>,
        status: StatusCode,
        challenge: Option<&'static str>,
        asks: bool,
    }
    let cases = [
        Case {
            label: "a read",
            method: Method::GET,
            auth: bearer_of(&person),
            otp: None,
            status: StatusCode::OK,
            challenge: None,
            asks: false,
        },
        Case {
            label: "a write, no code",
            method: Method::PUT,
            auth: bearer_of(&person),
            otp: None,
            status: StatusCode::UNAUTHORIZED,
            challenge: Some("OTP"),
            asks: true,
        },
        Case {
            label: "a write, wrong code",
            method: Method::PUT,
            auth: bearer_of(&person),
            otp: Some("111111"),
            status: StatusCode::UNAUTHORIZED,
            challenge: Some("OTP"),
            asks: true,
        },
        Case {
            label: "a write, right code",
            method: Method::PUT,
            auth: bearer_of(&person),
            otp: Some("654321"),
            status: StatusCode::OK,
            challenge: None,
            asks: true,
        },
        Case {
            label: "a write the check cannot place",
            method: Method::PUT,
            auth: bearer_of(&person),
            otp: Some("000000"),
            status: StatusCode::BAD_REQUEST,
            challenge: None,
            asks: true,
        },
        Case {
            label: "a bypass token's write",
            method: Method::PUT,
            auth: bearer_of(&robot),
            otp: None,
            status: StatusCode::OK,
            challenge: None,
            asks: true,
        },
    ];
    for case in cases {
        let before = asked.load(Ordering::SeqCst);
        let mut headers = vec![("authorization", case.auth.as_str())];
        if let Some(otp) = case.otp {
            headers.push(("npm-otp", otp));
        }
        // Twice: the second time the token is cached, and the answer must not change.
        for _ in 0..2 {
            let reply = send_bare(&layer, &case.method, None, &headers).await;
            assert_eq!(reply.status, case.status, "{}: {}", case.label, reply.body);
            assert_eq!(reply.challenge.as_deref(), case.challenge, "{}", case.label);
            if case.status == StatusCode::UNAUTHORIZED {
                assert!(reply.body.contains("one-time password"), "{}", reply.body);
            }
        }
        let asks = asked.load(Ordering::SeqCst) - before;
        assert_eq!(asks, if case.asks { 2 } else { 0 }, "{}", case.label);
    }
}

/// With `Router::layer`, the gate runs after routing: a resolver reads the route that
/// matched, and so the resource from exactly the segments the router matched.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_resolver_reads_the_route_the_router_matched() {
    use axum::extract::MatchedPath;
    use tokengate::{Grant, Grants, Permission, Resource, ResourcePattern};

    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens.clone()).resources(|request| {
        let route = request.extensions.get::<MatchedPath>()?;
        // `/{name}`: the one segment, whatever it starts with.
        (route.as_str() == "/{name}")
            .then(|| Resource::new(request.uri.path().trim_start_matches('/')))
    });
    let grants = Grants::new([Grant::new(
        ResourcePattern::parse("-mine").unwrap(),
        Permission::ReadWrite,
    )])
    .unwrap();
    let created = tokens
        .create("alice", NewToken::with_grants(grants))
        .await
        .unwrap();
    let auth = bearer(created.token.expose_secret());
    let app = axum::Router::new()
        .route("/{name}", axum::routing::put(|| async { "written" }))
        .layer(layer);
    for (path, status) in [
        ("/-mine", StatusCode::OK),
        ("/-theirs", StatusCode::FORBIDDEN),
    ] {
        let request = request(&Method::PUT, &[("authorization", auth.as_str())])
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
}

#[tokio::test]
async fn a_flood_of_made_up_tokens_costs_its_sender_not_the_store() {
    use tokengate::FailureLimit;

    let store = TestStore::new();
    let tokens = tokens(store.clone());
    let layer = TokenAuthLayer::new(tokens.clone())
        .limit_failures(FailureLimit::new(5, Duration::from_secs(60)));
    let stranger = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let flooder_addr = SocketAddr::from(([127, 0, 0, 2], 4000));
    let flooder = Some(flooder_addr);
    let bystander = Some(SocketAddr::from(([127, 0, 0, 3], 4000)));
    let valid = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let valid = bearer(valid.token.expose_secret());
    // Cached before the flood starts.
    let ok = send_bare(&layer, &Method::GET, flooder, &[("authorization", &valid)]).await;
    assert_eq!(ok.status, StatusCode::OK);

    let before = store.gets();
    let mut statuses = Vec::new();
    for _ in 0..50 {
        // Made-up tokens with a valid checksum: each would cost a store lookup.
        let made_up = stranger.create("eve", NewToken::read_only()).await.unwrap();
        let auth = bearer(made_up.token.expose_secret());
        let reply = send_bare(&layer, &Method::GET, flooder, &[("authorization", &auth)]).await;
        statuses.push(reply.status);
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                reply.body.contains("too many failed attempts"),
                "{}",
                reply.body
            );
        }
    }
    let lookups = store.gets() - before;
    assert!(lookups <= 5, "{lookups} store lookups for a flood of 50");
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        45
    );
    let retry = {
        let service = ServiceBuilder::new().layer(layer.clone()).service_fn(echo);
        let made_up = stranger.create("eve", NewToken::read_only()).await.unwrap();
        let mut request = request(&Method::GET, &[])
            .header(AUTHORIZATION, bearer(made_up.token.expose_secret()))
            .body(Body::default())
            .unwrap();
        request.extensions_mut().insert(flooder_addr);
        let response = service.oneshot(request).await.unwrap();
        response.headers().get("retry-after").cloned()
    };
    assert_eq!(retry.unwrap(), "60");

    // The flooder's cached token still works; other addresses are untouched.
    let ok = send_bare(&layer, &Method::GET, flooder, &[("authorization", &valid)]).await;
    assert_eq!(ok.status, StatusCode::OK);
    let other = tokens.create("bob", NewToken::read_only()).await.unwrap();
    let other = bearer(other.token.expose_secret());
    let ok = send_bare(
        &layer,
        &Method::GET,
        bystander,
        &[("authorization", &other)],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn an_application_supplied_token_source_is_held_to_the_same_checks() {
    let tokens = tokens(TestStore::new());
    let layer = TokenAuthLayer::new(tokens.clone()).token_from(|request| {
        let value = request.headers.get("x-api-token")?.to_str().ok()?;
        Some(value.trim().to_owned())
    });
    let alice = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let bob = tokens.create("bob", NewToken::read_write()).await.unwrap();
    let (alice, bob) = (alice.token.expose_secret(), bob.token.expose_secret());
    let bob_bearer = bearer(bob);
    struct Case<'a> {
        label: &'a str,
        method: Method,
        headers: Vec<(&'a str, &'a str)>,
        status: StatusCode,
        who: &'a str,
    }
    let cases = [
        Case {
            label: "read with the header",
            method: Method::GET,
            headers: vec![("x-api-token", alice)],
            status: StatusCode::OK,
            who: "alice",
        },
        Case {
            label: "a read-only token's write, from the header",
            method: Method::PUT,
            headers: vec![("x-api-token", alice)],
            status: StatusCode::FORBIDDEN,
            who: "",
        },
        Case {
            label: "the bearer header wins",
            method: Method::GET,
            headers: vec![("x-api-token", alice), ("authorization", &bob_bearer)],
            status: StatusCode::OK,
            who: "bob",
        },
        Case {
            label: "junk in the header",
            method: Method::GET,
            headers: vec![("x-api-token", "npm_junk")],
            status: StatusCode::UNAUTHORIZED,
            who: "",
        },
        Case {
            label: "nothing at all",
            method: Method::GET,
            headers: vec![],
            status: StatusCode::UNAUTHORIZED,
            who: "",
        },
    ];
    for case in cases {
        let reply = send(&layer, case.method.clone(), None, &case.headers).await;
        assert_eq!(reply.status, case.status, "{}: {}", case.label, reply.body);
        assert!(
            reply.body.starts_with(case.who),
            "{}: {}",
            case.label,
            reply.body
        );
    }
}

/// Junk of every kind counts against its sender's failure limit and, once the limit is
/// used up, is answered 429 like any other failure: at the limit still 401, one past it
/// 429 with `Retry-After`. The sender's cached token and other senders are untouched.
#[tokio::test]
async fn junk_past_the_failure_limit_is_told_to_wait() {
    use tokengate::FailureLimit;

    const LIMIT: u32 = 5;
    struct Case {
        what: &'static str,
        authorization: String,
    }
    let stranger = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let made_up = stranger.create("eve", NewToken::read_only()).await.unwrap();
    let cases = [
        Case {
            what: "a malformed token",
            authorization: bearer("npm_junk"),
        },
        Case {
            what: "a token of another prefix",
            authorization: bearer("tg_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"),
        },
        Case {
            what: "a bearer header with no token",
            authorization: "Bearer ".to_owned(),
        },
        Case {
            // Unknown the first time, then answered from the cache of unknown ids.
            what: "one made-up token again and again",
            authorization: bearer(made_up.token.expose_secret()),
        },
    ];
    let sender_addr = SocketAddr::from(([127, 0, 0, 2], 4000));
    let sender = Some(sender_addr);
    let bystander = Some(SocketAddr::from(([127, 0, 0, 3], 4000)));
    for case in cases {
        let tokens = tokens(TestStore::new());
        let layer = TokenAuthLayer::new(tokens.clone())
            .limit_failures(FailureLimit::new(LIMIT, Duration::from_secs(60)));
        let valid = tokens.create("alice", NewToken::read_only()).await.unwrap();
        let valid = bearer(valid.token.expose_secret());
        let ok = send_bare(&layer, &Method::GET, sender, &[("authorization", &valid)]).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", case.what);

        let junk = [("authorization", case.authorization.as_str())];
        for attempt in 1..=LIMIT {
            let reply = send_bare(&layer, &Method::GET, sender, &junk).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{}: attempt {attempt} of {LIMIT}",
                case.what
            );
        }
        let past = {
            let service = ServiceBuilder::new().layer(layer.clone()).service_fn(echo);
            let mut request = request(&Method::GET, &junk).body(Body::default()).unwrap();
            request.extensions_mut().insert(sender_addr);
            service.oneshot(request).await.unwrap()
        };
        let retry_after = past.headers().get("retry-after").cloned();
        let past = reply(past).await;
        assert_eq!(
            past.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}: one past the limit: {}",
            case.what,
            past.body
        );
        assert!(
            past.body.contains("too many failed attempts"),
            "{}",
            past.body
        );
        assert_eq!(retry_after.unwrap(), "60", "{}", case.what);

        let ok = send_bare(&layer, &Method::GET, sender, &[("authorization", &valid)]).await;
        assert_eq!(ok.status, StatusCode::OK, "{}: the cached token", case.what);
        let other = send_bare(&layer, &Method::GET, bystander, &junk).await;
        assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{}", case.what);
    }
}

/// 2,000 junk tokens from one address: past the limit, every one is answered 429.
#[tokio::test]
async fn a_flood_of_junk_tokens_is_mostly_told_to_wait() {
    use tokengate::FailureLimit;

    const LIMIT: usize = 20;
    const FLOOD: usize = 2_000;
    let layer = TokenAuthLayer::new(tokens(TestStore::new()))
        .limit_failures(FailureLimit::new(LIMIT as u32, Duration::from_secs(60)));
    let flooder = Some(SocketAddr::from(([127, 0, 0, 2], 4000)));
    let mut unauthorized = 0;
    let mut too_many = 0;
    for i in 0..FLOOD {
        let junk = bearer(&format!("npm_junk{i}"));
        let reply = send_bare(&layer, &Method::GET, flooder, &[("authorization", &junk)]).await;
        match reply.status {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => too_many += 1,
            other => panic!("junk answered {other}"),
        }
    }
    assert_eq!(unauthorized, LIMIT, "401 until the limit");
    assert_eq!(too_many, FLOOD - LIMIT, "429 past it");
}

#[tokio::test]
async fn a_stage_only_token_stages_without_a_code_and_is_told_to_stage_its_writes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokengate::{Action, Resource, SecondFactorVerdict};

    let tokens = tokens(TestStore::new());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    // Uploads to /stage are staged; every live write needs a code.
    let layer = TokenAuthLayer::new(tokens.clone())
        .npm_responses("registry")
        .request_actions(|request| match Action::of_method(request.method) {
            Action::Write if request.uri.path() == "/stage" => Action::Stage,
            action => action,
        })
        .resources(|_| Some(Resource::new("pkg")))
        .second_factor(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { SecondFactorVerdict::CodeRequired }
        });
    let token_with = |permission| {
        let tokens = tokens.clone();
        async move {
            let created = tokens
                .create(
                    "alice",
                    NewToken::with_grants(Grants::everything(permission)),
                )
                .await
                .unwrap();
            bearer(created.token.expose_secret())
        }
    };
    let stage_only = token_with(Permission::ReadStage).await;
    let read_write = token_with(Permission::ReadWrite).await;
    let read_only = token_with(Permission::ReadOnly).await;
    struct Case<'a> {
        label: &'a str,
        method: Method,
        path: &'a str,
        auth: &'a str,
        status: StatusCode,
        says: &'a str,
        asks: bool,
    }
    let cases = [
        Case {
            label: "a stage-only token stages, and no code is asked",
            method: Method::POST,
            path: "/stage",
            auth: &stage_only,
            status: StatusCode::OK,
            says: "alice ReadStage",
            asks: false,
        },
        Case {
            label: "a stage-only token reads",
            method: Method::GET,
            path: "/thing",
            auth: &stage_only,
            status: StatusCode::OK,
            says: "alice ReadStage",
            asks: false,
        },
        Case {
            label: "a stage-only token's live write is told to stage",
            method: Method::PUT,
            path: "/thing",
            auth: &stage_only,
            status: StatusCode::FORBIDDEN,
            says: "may only stage changes to pkg, not make them live (its grant on pkg is read-stage): stage the change instead",
            asks: false,
        },
        Case {
            label: "a read-write token stages too",
            method: Method::POST,
            path: "/stage",
            auth: &read_write,
            status: StatusCode::OK,
            says: "alice ReadWrite",
            asks: false,
        },
        Case {
            label: "a read-write token's live write asks for a code",
            method: Method::PUT,
            path: "/thing",
            auth: &read_write,
            status: StatusCode::UNAUTHORIZED,
            says: "one-time password",
            asks: true,
        },
        Case {
            label: "a read-only token cannot stage",
            method: Method::POST,
            path: "/stage",
            auth: &read_only,
            status: StatusCode::FORBIDDEN,
            says: "read-only",
            asks: false,
        },
    ];
    for case in cases {
        let before = asked.load(Ordering::SeqCst);
        let service = ServiceBuilder::new().layer(layer.clone()).service_fn(echo);
        let request = Request::builder()
            .method(case.method)
            .uri(case.path)
            .header("authorization", case.auth)
            .body(Body::default())
            .unwrap();
        let got = reply(service.oneshot(request).await.unwrap()).await;
        assert_eq!(got.status, case.status, "{}: {}", case.label, got.body);
        assert!(got.body.contains(case.says), "{}: {}", case.label, got.body);
        assert_eq!(
            asked.load(Ordering::SeqCst) > before,
            case.asks,
            "{}",
            case.label
        );
    }
}
