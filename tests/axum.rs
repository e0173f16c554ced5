//! The layer in an axum `Router`: `MockConnectInfo`, the extractor, public and protected
//! parts of one app, npm-style refusals, and what ends up in logs.
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::routing::{get, put};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use support::TestStore;
use tokengate::{Authenticated, NewToken, TokenAuthLayer, Tokens};
use tower::ServiceExt;

fn manager() -> Tokens<TestStore> {
    Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build()
}

async fn whoami(who: Authenticated) -> String {
    who.owner().to_owned()
}

async fn maybe(who: Option<Authenticated>) -> String {
    who.map_or("anonymous".to_owned(), |w| w.owner().to_owned())
}

/// A public part (optional mode) and a protected part (required mode) in one router.
fn app(tokens: &Tokens<TestStore>, peer: &str) -> Router {
    let protected = Router::new()
        .route("/-/whoami", get(whoami))
        .route("/{package}", put(whoami))
        .layer(TokenAuthLayer::new(tokens.clone()).npm_responses("registry"));
    let public = Router::new()
        .route("/", get(maybe))
        .layer(TokenAuthLayer::new(tokens.clone()).optional());
    let peer: SocketAddr = peer.parse().unwrap();
    public.merge(protected).layer(MockConnectInfo(peer))
}

async fn call(
    app: Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn public_and_protected_routes() {
    let tokens = manager();
    let full = tokens
        .create("alice", NewToken::read_write())
        .await
        .unwrap();
    let token = full.token.expose_secret();
    let app = app(&tokens, "192.0.2.1:5000");

    assert_eq!(
        call(app.clone(), Method::GET, "/", None).await.2,
        "anonymous"
    );
    assert_eq!(
        call(app.clone(), Method::GET, "/", Some(token)).await.2,
        "alice"
    );
    assert_eq!(
        call(app.clone(), Method::GET, "/-/whoami", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, body) = call(app.clone(), Method::GET, "/-/whoami", Some(token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    let (status, _, _) = call(app, Method::PUT, "/left-pad", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn npm_refusals_through_a_router() {
    let tokens = manager();
    let read_only = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let office = tokens
        .create("alice", NewToken::read_write().allow_cidrs(["10.0.0.0/8"]))
        .await
        .unwrap();

    let outside = app(&tokens, "192.0.2.1:5000");
    let (status, headers, body) = call(
        outside.clone(),
        Method::GET,
        "/-/whoami",
        Some(office.token.expose_secret()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "ipaddress");
    assert!(body.contains("IP address"));

    let inside = app(&tokens, "[::ffff:10.9.8.7]:5000");
    let (status, _, body) = call(
        inside,
        Method::GET,
        "/-/whoami",
        Some(office.token.expose_secret()),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));

    let (status, headers, body) = call(
        outside,
        Method::PUT,
        "/left-pad",
        Some(read_only.token.expose_secret()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="registry", error="insufficient_scope""#
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"].as_str().unwrap().contains("read-only"));
}

#[tokio::test]
async fn the_extractor_says_when_the_layer_is_missing() {
    let app: Router = Router::new()
        .route("/required", get(whoami))
        .route("/optional", get(maybe));
    for uri in ["/required", "/optional"] {
        let (status, _, body) = call(app.clone(), Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert!(
            body.contains("is TokenAuthLayer installed"),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn the_token_never_reaches_logs_or_debug_output() {
    let captured = support::captured_logs();

    let tokens = manager();
    let support::Kinds {
        read_only,
        restricted: office,
        revoked,
    } = support::issue_kinds(&tokens, "10.0.0.0/8").await;
    let secrets: Vec<String> = [&read_only, &office, &revoked]
        .iter()
        .map(|c| c.token.expose_secret().to_owned())
        .collect();

    // Handlers that print what they were given.
    let debug_dump = |request: Request<Body>| async move {
        format!(
            "{:?} {:?}",
            request.headers(),
            request.extensions().get::<Authenticated>()
        )
    };
    let layer = TokenAuthLayer::new(tokens.clone());
    let app = Router::new()
        .route("/dump", get(debug_dump).put(debug_dump))
        .layer(layer.clone())
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 5000))));

    let mut seen = format!("{layer:?} {tokens:?} {read_only:?} {office:?}");
    for secret in &secrets {
        for method in [Method::GET, Method::PUT] {
            let (_, _, body) = call(app.clone(), method, "/dump", Some(secret)).await;
            seen.push_str(&body);
        }
    }
    let mut typo = secrets[0].clone();
    typo.replace_range(12..13, if &typo[12..13] == "x" { "y" } else { "x" });
    seen.push_str(&call(app.clone(), Method::GET, "/dump", Some(&typo)).await.2);

    let logs = captured.text();
    assert!(
        logs.contains("request refused"),
        "refusals are logged: {logs}"
    );
    assert!(
        logs.contains(&office.token.id().to_string()),
        "with the token id"
    );
    for secret in secrets.iter().chain([&typo]) {
        let secret_part = &secret[4 + 11..];
        assert!(!logs.contains(secret_part), "token in logs: {logs}");
        assert!(!seen.contains(secret_part), "token in debug output: {seen}");
    }
}
