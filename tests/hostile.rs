//! A catalogue of hostile input, each with its expected outcome: the status, whether the
//! store was consulted, and that nothing logged contains the token.

mod support;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use support::TestStore;
use tokengate::{NewToken, TokenAuthLayer, Tokens};
use tower::{ServiceBuilder, ServiceExt, service_fn};

type Body = Full<Bytes>;

struct Bench {
    store: TestStore,
    tokens: Tokens<TestStore>,
    layer: TokenAuthLayer<TestStore>,
    /// A read-only token, usable from anywhere.
    read_only: String,
    /// A read-write token bound to 198.51.100.0/24.
    office: String,
}

async fn bench() -> Bench {
    let store = TestStore::new();
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .build();
    let read_only = tokens.create("alice", NewToken::read_only()).await.unwrap();
    let office = tokens
        .create(
            "alice",
            NewToken::read_write().allow_cidrs(["198.51.100.0/24"]),
        )
        .await
        .unwrap();
    let layer = TokenAuthLayer::new(tokens.clone())
        .trusted_proxies(tokengate::TrustedProxies::parse(["10.0.0.0/8", "fd00::/8"]).unwrap());
    Bench {
        store,
        tokens,
        layer,
        read_only: read_only.token.expose_secret().to_owned(),
        office: office.token.expose_secret().to_owned(),
    }
}

/// One request: method, peer, and raw header values (bytes, so that anything `http`
/// accepts can be sent).
struct Case {
    label: String,
    method: Method,
    peer: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    status: StatusCode,
    /// Whether the store may be asked (a well-formed token) or must not be.
    store_asked: bool,
}

fn case(
    label: impl Into<String>,
    headers: Vec<(&'static str, Vec<u8>)>,
    status: u16,
    store_asked: bool,
) -> Case {
    Case {
        label: label.into(),
        method: Method::GET,
        peer: "203.0.113.5",
        headers,
        status: StatusCode::from_u16(status).unwrap(),
        store_asked,
    }
}

fn auth(value: impl AsRef<[u8]>) -> Vec<(&'static str, Vec<u8>)> {
    vec![("authorization", value.as_ref().to_vec())]
}

async fn run(bench: &Bench, case: &Case) {
    let service = ServiceBuilder::new()
        .layer(bench.layer.clone())
        .service(service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::default()))
        }));
    let mut request = Request::builder().method(case.method.clone());
    for (name, value) in &case.headers {
        request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    let mut request = request.body(Body::default()).unwrap();
    let peer: IpAddr = case.peer.parse().unwrap();
    request.extensions_mut().insert(SocketAddr::new(peer, 5000));
    bench.tokens.invalidate_all();
    let gets = bench.store.gets();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), case.status, "{}", case.label);
    if !case.store_asked {
        assert_eq!(
            bench.store.gets(),
            gets,
            "{}: the store was asked",
            case.label
        );
    }
}

#[tokio::test]
async fn the_catalogue() {
    let logs = support::captured_logs();

    let bench = bench().await;
    let good = bench.read_only.clone();
    let stranger = Tokens::builder(TestStore::new())
        .prefix("npm")
        .unwrap()
        .build();
    let foreign = stranger
        .create("eve", NewToken::read_write())
        .await
        .unwrap();
    let other_prefix = Tokens::builder(TestStore::new())
        .prefix("ghp")
        .unwrap()
        .build();
    let other_prefix = other_prefix
        .create("eve", NewToken::read_write())
        .await
        .unwrap();

    let mut cases = vec![
        // Headers.
        case("no header", vec![], 401, false),
        case("empty value", auth(""), 401, false),
        case("Bearer alone", auth("Bearer"), 401, false),
        case("Bearer and spaces", auth("Bearer    "), 401, false),
        case(
            "several spaces",
            auth(format!("Bearer     {good}")),
            200,
            true,
        ),
        case(
            "tab after the scheme",
            auth(format!("Bearer\t{good}")),
            401,
            false,
        ),
        case(
            "lower-case scheme",
            auth(format!("bearer {good}")),
            200,
            true,
        ),
        case(
            "mixed-case scheme",
            auth(format!("bEaReR {good}")),
            200,
            true,
        ),
        case("Basic", auth("Basic YWxpY2U6c2VjcmV0"), 401, false),
        case(
            "Basic carrying the token",
            auth(format!("Basic {good}")),
            401,
            false,
        ),
        case(
            "non-ASCII bytes",
            auth(b"Bearer npm_\xc3\xa9\xff"),
            401,
            false,
        ),
        case(
            "8 KiB",
            auth(format!("Bearer {}", "a".repeat(8 * 1024))),
            401,
            false,
        ),
        case(
            "100 KiB",
            auth(format!("Bearer {}", "a".repeat(100 * 1024))),
            401,
            false,
        ),
        case(
            "trailing space",
            auth(format!("Bearer {good} ")),
            401,
            false,
        ),
        case("= padding", auth(format!("Bearer {good}=")), 401, false),
        case("== padding", auth(format!("Bearer {good}==")), 401, false),
        case(
            "two tokens",
            auth(format!("Bearer {good} {good}")),
            401,
            false,
        ),
        case(
            "comma list",
            auth(format!("Bearer {good}, Bearer {good}")),
            401,
            false,
        ),
        case(
            "two Authorization headers",
            vec![
                ("authorization", format!("Bearer {good}").into_bytes()),
                ("authorization", format!("Bearer {good}").into_bytes()),
            ],
            401,
            false,
        ),
        // Tokens.
        case(
            "another prefix",
            auth(format!("Bearer {}", other_prefix.token.expose_secret())),
            401,
            false,
        ),
        case(
            "valid for another Tokens",
            auth(format!("Bearer {}", foreign.token.expose_secret())),
            401,
            true,
        ),
        case("prefix only", auth("Bearer npm_"), 401, false),
        case(
            "upper-case prefix",
            auth(format!("Bearer NPM_{}", &good[4..])),
            401,
            false,
        ),
    ];
    for cut in 1..good.len() {
        cases.push(case(
            format!("cut to {cut}"),
            auth(format!("Bearer {}", &good[..cut])),
            401,
            false,
        ));
    }
    for position in 4..good.len() {
        let mut changed = good.clone().into_bytes();
        changed[position] = if changed[position] == b'Z' {
            b'Y'
        } else {
            b'Z'
        };
        let changed = String::from_utf8(changed).unwrap();
        cases.push(case(
            format!("changed at {position}"),
            auth(format!("Bearer {changed}")),
            401,
            false,
        ));
    }

    // Addresses, with the CIDR-bound token (198.51.100.0/24) and trusted proxies 10/8, fd00::/8.
    let office = format!("Bearer {}", bench.office);
    let from = |label: &str, peer: &'static str, forwarded: &[&str], status: u16| {
        let mut headers = auth(&office);
        headers.extend(
            forwarded
                .iter()
                .map(|f| ("x-forwarded-for", f.as_bytes().to_vec())),
        );
        Case {
            peer,
            ..case(label, headers, status, true)
        }
    };
    cases.extend([
        from("direct, inside", "198.51.100.7", &[], 200),
        from(
            "direct, IPv4-mapped inside",
            "::ffff:198.51.100.7",
            &[],
            200,
        ),
        from("direct, outside", "203.0.113.5", &[], 403),
        from(
            "untrusted peer forging XFF",
            "203.0.113.5",
            &["198.51.100.7"],
            403,
        ),
        from("proxy, client inside", "10.0.0.1", &["198.51.100.7"], 200),
        from("proxy, IPv6 proxy", "fd00::1", &["198.51.100.7"], 200),
        from("proxy, ip:port", "10.0.0.1", &["198.51.100.7:5555"], 200),
        from(
            "proxy, [v6]:port outside",
            "10.0.0.1",
            &["[2001:db8::1]:443"],
            403,
        ),
        from(
            "proxy, mapped client",
            "10.0.0.1",
            &["::ffff:198.51.100.7"],
            200,
        ),
        from(
            "proxy, forged leftmost hop",
            "10.0.0.1",
            &["198.51.100.7, 203.0.113.66"],
            403,
        ),
        from(
            "proxy, forged leftmost in another header",
            "10.0.0.1",
            &["198.51.100.7", "203.0.113.66"],
            403,
        ),
        from("proxy, zone id", "10.0.0.1", &["fe80::1%eth0"], 403),
        from("proxy, garbage", "10.0.0.1", &["not-an-ip"], 403),
        from("proxy, empty entry", "10.0.0.1", &["198.51.100.7,"], 403),
        from(
            "proxy, chain longer than the trust",
            "10.0.0.1",
            &["198.51.100.7, 203.0.113.66, 10.0.0.2, 10.0.0.3"],
            403,
        ),
        from(
            "proxy, trusted chain to the client",
            "10.0.0.1",
            &["203.0.113.66, 198.51.100.7, 10.0.0.2, 10.0.0.3"],
            200,
        ),
    ]);

    // Methods, with the read-only token.
    let read_only = format!("Bearer {good}");
    for (method, status) in [
        ("GET", 200),
        ("HEAD", 200),
        ("PURGE", 403),
        ("BREW", 403),
        ("PROPFIND", 403),
        ("PUT", 403),
    ] {
        cases.push(Case {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            ..case(format!("method {method}"), auth(&read_only), status, true)
        });
    }
    for (method, overridden, status) in [("POST", "GET", 403), ("GET", "DELETE", 200)] {
        let mut headers = auth(&read_only);
        headers.push(("x-http-method-override", overridden.as_bytes().to_vec()));
        headers.push(("x-method-override", overridden.as_bytes().to_vec()));
        cases.push(Case {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            ..case(
                format!("{method} overridden as {overridden}"),
                headers,
                status,
                true,
            )
        });
    }

    for case in &cases {
        run(&bench, case).await;
    }

    let logs = logs.text();
    assert!(logs.contains("request refused"), "refusals are logged");
    for secret in [&bench.read_only, &bench.office] {
        let secret_part = &secret[secret.len() - 28..secret.len() - 6];
        assert!(!logs.contains(secret_part), "a token reached the logs");
    }
}

/// NUL cannot even be put in a header by the `http` crate; a client that writes one on
/// the wire is refused by hyper before the layer sees the request.
#[tokio::test]
async fn nul_bytes_never_reach_the_layer() {
    assert!(HeaderValue::from_bytes(b"Bearer npm_\0abc").is_err());

    let bench = bench().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = bench.layer.clone();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer);
                request
            })
            .layer(layer)
            .service(service_fn(|_: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Body::default()))
            }));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .await;
    });
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let gets = bench.store.gets();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer npm_\0abc\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert_eq!(bench.store.gets(), gets);
}

/// Options for a new token that must be refused, by name, with nothing stored: ambiguous
/// allow-list entries, invisible formatting characters, grants that would widen when
/// stored, expiries past what a store can hold.
#[tokio::test]
async fn hostile_token_options_are_refused_and_nothing_stored() {
    use std::time::{Duration, SystemTime};
    use tokengate::{Grant, Grants, Permission, ResourcePattern};

    let store = TestStore::new();
    let tokens = Tokens::builder(store.clone())
        .prefix("npm")
        .unwrap()
        .build();
    struct Case {
        label: &'static str,
        options: NewToken,
        says: &'static str,
    }
    let cases = [
        Case {
            label: "an octal-looking address",
            options: NewToken::read_only().allow_cidrs(["010.0.0.1/32"]),
            says: "invalid CIDR entry: 010.0.0.1/32",
        },
        Case {
            label: "a prefix length with a leading zero",
            options: NewToken::read_only().allow_cidrs(["10.0.0.0/08"]),
            says: "invalid CIDR entry: 10.0.0.0/08",
        },
        Case {
            label: "a right-to-left override in the name",
            options: NewToken::read_only().name("release \u{202E}gnirts"),
            says: "invisible formatting characters",
        },
        Case {
            label: "a zero-width space in the description",
            options: NewToken::read_only().description("ci\u{200B}token"),
            says: "invisible formatting characters",
        },
        Case {
            label: "an expiry past what stores hold",
            options: NewToken::read_only()
                .expires_at(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 1000)),
            says: "too far in the future",
        },
    ];
    for case in cases {
        let error = tokens.create("alice", case.options).await.unwrap_err();
        assert!(
            error.to_string().contains(case.says),
            "{}: {error}",
            case.label
        );
    }
    let widening = Grants::new([Grant::new(
        ResourcePattern::Exact("pkg*".into()),
        Permission::ReadWrite,
    )]);
    assert!(
        widening.is_err(),
        "an exact name with a star would read back as a prefix"
    );
    assert!(store.inner.is_empty(), "a refused token left a record");
}
