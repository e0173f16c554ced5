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

#[tokio::test]
async fn a_handler_needing_a_token_behind_an_optional_layer_answers_401() {
    let tokens = manager();
    let app = Router::new()
        .route("/needs-token", get(whoami))
        .route_layer(TokenAuthLayer::new(tokens.clone()).optional())
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 5000))));
    let (status, headers, body) = call(app.clone(), Method::GET, "/needs-token", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("authentication required")
    );

    let created = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let token = created.token.expose_secret();
    let (status, _, body) = call(app, Method::GET, "/needs-token", Some(token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
}

#[tokio::test]
async fn tokens_errors_are_responses_without_internals() {
    use axum::extract::State;
    use tokengate::TokensError;

    async fn create(
        State(tokens): State<Tokens<TestStore>>,
        body: String,
    ) -> Result<String, TokensError> {
        let created = tokens
            .create("alice", NewToken::read_only().allow_cidrs([body]))
            .await?;
        Ok(created.listing.id.to_string())
    }
    async fn revoke(
        State(tokens): State<Tokens<TestStore>>,
        body: String,
    ) -> Result<String, TokensError> {
        Ok(tokens.revoke(&body).await?.to_string())
    }

    let tokens = manager();
    let app = Router::new()
        .route("/create", axum::routing::post(create))
        .route("/revoke", axum::routing::post(revoke))
        .with_state(tokens.clone());
    let post = |uri: &'static str, body: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::post(uri).body(Body::from(body)).unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response.headers()["content-type"].clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                content_type,
                String::from_utf8(body.to_vec()).unwrap(),
            )
        }
    };
    struct Case {
        uri: &'static str,
        body: &'static str,
        status: StatusCode,
        error: &'static str,
    }
    let cases = [
        Case {
            uri: "/create",
            body: "10.0.0.300/8",
            status: StatusCode::BAD_REQUEST,
            error: "CIDR whitelist contains invalid CIDR entry: 10.0.0.300/8",
        },
        Case {
            uri: "/revoke",
            body: "not a token \"at\" all",
            status: StatusCode::BAD_REQUEST,
            error: "not a token id or a token issued here",
        },
    ];
    for case in cases {
        let (status, content_type, body) = post(case.uri, case.body).await;
        assert_eq!(status, case.status, "{}: {body}", case.uri);
        assert_eq!(content_type, "application/json");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], case.error);
    }

    tokens.store().set_failing(true);
    let (status, _, body) = post("/create", "10.0.0.0/8").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["error"],
        "the token store is unavailable; try again shortly"
    );
}

#[tokio::test]
async fn accepted_requests_name_their_token_on_the_request_span() {
    let captured = support::captured_logs();
    let tokens = manager();
    let created = tokens
        .create("span-owner", NewToken::read_only())
        .await
        .unwrap();
    let trace =
        tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
            tracing::info_span!(
                "request",
                path = request.uri().path(),
                token_id = tracing::field::Empty,
                owner = tracing::field::Empty,
            )
        });
    let app = Router::new()
        .route(
            "/spanned",
            get(|| async {
                tracing::info!("handler ran");
                "ok"
            }),
        )
        .route_layer(TokenAuthLayer::new(tokens.clone()))
        .layer(trace)
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 5000))));
    let token = created.token.expose_secret();
    let (status, _, _) = call(app, Method::GET, "/spanned", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let logs = captured.text();
    let line = logs
        .lines()
        .find(|line| line.contains("handler ran") && line.contains("/spanned"))
        .unwrap_or_else(|| panic!("the handler's event: {logs}"));
    assert!(
        line.contains(&format!("token_id={}", created.listing.id)),
        "{line}"
    );
    assert!(line.contains("owner=\"span-owner\""), "{line}");
}

#[tokio::test]
async fn refusals_are_summed_up_by_reason() {
    let captured = support::captured_logs();
    let tokens = manager();
    let layer = TokenAuthLayer::new(tokens.clone()).refusal_summary(std::time::Duration::ZERO);
    let app = Router::new()
        .route("/-/whoami", get(whoami))
        .route_layer(layer)
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 9], 5000))));
    for _ in 0..3 {
        call(app.clone(), Method::GET, "/-/whoami", Some("npm_nonsense")).await;
    }
    let logs = captured.text();
    assert!(
        logs.lines()
            .any(|line| line.contains("requests refused lately")
                && line.contains("malformed_token=1")),
        "{logs}"
    );
}
