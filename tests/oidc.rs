//! The ID-token verifier against a loopback issuer of the test's own: discovery and key
//! set served by hyper on 127.0.0.1, ID tokens signed with RSA and EC keys generated here.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokengate::oidc::{
    Audience, FetchError, HyperFetch, IdTokenVerifier, IssuerUrl, MAX_ID_TOKEN_LEN,
    MemoryReplayGuard, Provider, ProviderClaims, Refusal, ReplayGuard, ReplayKey, SigningAlgorithm,
    TrustedIssuer, VerifyError,
};
use tokengate::store::StoreError;
use tokengate::{Clock, ManualClock};

const AUDIENCE: &str = "npm:registry.example.test";
const ORG: &str = "0f3a7c1e-5b7d-4c1e-9a2b-3c4d5e6f7a8b";

// ---- keys ------------------------------------------------------------------------------

enum Key {
    Rsa(rsa::PrivateKey),
    Ec(p256::ecdsa::SigningKey),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_key() -> rsa::PrivateKey {
    rsa::PrivateKey::new(&mut getrandom_04::SysRng, 2048).expect("an RSA key")
}

/// Keys shared by the tests of this binary (RSA generation takes a moment).
fn keys() -> &'static (Key, Key, Key) {
    static KEYS: OnceLock<(Key, Key, Key)> = OnceLock::new();
    KEYS.get_or_init(|| {
        use p256::elliptic_curve::Generate as _;
        (
            Key::Rsa(rsa_key()),
            Key::Ec(p256::ecdsa::SigningKey::generate()),
            Key::Rsa(rsa_key()),
        )
    })
}

fn rsa1() -> &'static Key {
    &keys().0
}
fn ec1() -> &'static Key {
    &keys().1
}
fn rsa2() -> &'static Key {
    &keys().2
}

impl Key {
    /// The public JWK, declaring `alg` (or none).
    fn jwk(&self, kid: &str, alg: Option<&str>) -> Value {
        let mut jwk = match self {
            Key::Rsa(key) => {
                use rsa::traits::PublicKeyParts as _;
                json!({
                    "kty": "RSA", "use": "sig", "kid": kid,
                    "n": b64(&key.n().to_be_bytes_trimmed_vartime()),
                    "e": b64(&key.e().to_be_bytes_trimmed_vartime()),
                })
            }
            Key::Ec(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                json!({
                    "kty": "EC", "use": "sig", "kid": kid, "crv": "P-256",
                    "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
                })
            }
        };
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    fn jwk_declared(&self, kid: &str) -> Value {
        let alg = match self {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        };
        self.jwk(kid, Some(alg))
    }

    fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        match (self, alg) {
            (Key::Rsa(key), "RS256") => key.pkcs1v15_sign::<rsa::sha2::Sha256>(input).unwrap(),
            (Key::Rsa(key), "RS384") => key.pkcs1v15_sign::<rsa::sha2::Sha384>(input).unwrap(),
            (Key::Ec(key), "ES256") => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            _ => panic!("no such signer: {alg}"),
        }
    }
}

/// A compact JWS of `header` and `claims`, signed by `key` with the header's `alg`.
fn jws(header: &Value, claims: &Value, key: &Key) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(header["alg"].as_str().unwrap(), input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use rsa::sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

// ---- the issuer ----------------------------------------------------------------------

#[derive(Default)]
struct IssuerState {
    base: OnceLock<String>,
    jwks: Mutex<Value>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    down: AtomicBool,
    hang: AtomicBool,
    oversized: AtomicBool,
}

struct TestIssuer {
    state: Arc<IssuerState>,
}

impl TestIssuer {
    /// An issuer on 127.0.0.1 (random port) publishing `keys`.
    async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(IssuerState::default());
        *state.jwks.lock().unwrap() = json!({ "keys": keys });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        state.base.set(format!("http://{addr}")).unwrap();
        let serving = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { state }
    }

    fn url(&self) -> String {
        self.state.base.get().unwrap().clone()
    }

    fn issuer(&self) -> TrustedIssuer {
        TrustedIssuer::exact(Provider::GitHub, IssuerUrl::parse(self.url()).unwrap())
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }
}

async fn answer(
    state: Arc<IssuerState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if state.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if state.down.load(Ordering::SeqCst) {
        return Ok(Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Full::default())
            .unwrap());
    }
    let base = state.base.get().unwrap();
    let path = req.uri().path();
    let body = if path == "/jwks" {
        state.jwks_hits.fetch_add(1, Ordering::SeqCst);
        if state.oversized.load(Ordering::SeqCst) {
            json!({ "keys": [], "padding": "x".repeat(300 * 1024) }).to_string()
        } else {
            state.jwks.lock().unwrap().to_string()
        }
    } else if let Some(issuer_path) = path.strip_suffix("/.well-known/openid-configuration") {
        state.discovery_hits.fetch_add(1, Ordering::SeqCst);
        json!({ "issuer": format!("{base}{issuer_path}"), "jwks_uri": format!("{base}/jwks") })
            .to_string()
    } else {
        return Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::default())
            .unwrap());
    };
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

// ---- tokens --------------------------------------------------------------------------

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

static JTI: AtomicUsize = AtomicUsize::new(0);

/// GitHub Actions claims for `acme/tool`'s `release.yml`, issued now by `issuer`.
fn github_claims(issuer: &str, now: SystemTime) -> Value {
    let now = secs(now);
    json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "repo:acme/tool:ref:refs/heads/main",
        "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::SeqCst)),
        "iat": now, "nbf": now, "exp": now + 300,
        "repository": "acme/tool", "repository_id": "74", "repository_owner": "acme",
        "repository_owner_id": "65", "repository_visibility": "private",
        "workflow_ref": "acme/tool/.github/workflows/release.yml@refs/heads/main",
        "event_name": "push", "ref": "refs/heads/main", "sha": "0123abcd", "run_id": "42",
        "run_attempt": "1", "actor": "octocat", "runner_environment": "github-hosted",
    })
}

fn header(alg: &str, kid: &str) -> Value {
    json!({ "alg": alg, "kid": kid, "typ": "JWT" })
}

struct Setup {
    issuer: TestIssuer,
    clock: ManualClock,
    verifier: IdTokenVerifier<HyperFetch, MemoryReplayGuard>,
}

impl Setup {
    async fn new(keys: Vec<Value>) -> Self {
        let issuer = TestIssuer::start(keys).await;
        let clock = ManualClock::new(SystemTime::now());
        let verifier = IdTokenVerifier::builder(
            Audience::new(AUDIENCE).unwrap(),
            HyperFetch::new().unwrap(),
            MemoryReplayGuard::new(),
        )
        .issuer(issuer.issuer())
        .clock(clock.clone())
        .fetch_timeout(Duration::from_millis(500))
        .build();
        Self {
            issuer,
            clock,
            verifier,
        }
    }

    fn claims(&self) -> Value {
        github_claims(&self.issuer.url(), self.clock.now())
    }

    fn token(&self, alg: &str, kid: &str, key: &Key) -> String {
        jws(&header(alg, kid), &self.claims(), key)
    }

    async fn refusal(&self, token: &str) -> Refusal {
        match self.verifier.verify(token).await {
            Err(VerifyError::Refused(refusal)) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

// ---- tests ---------------------------------------------------------------------------

#[tokio::test]
async fn tokens_signed_with_rsa_and_ec_keys_are_accepted_with_their_claims() {
    let setup = Setup::new(vec![
        rsa1().jwk_declared("rsa-1"),
        ec1().jwk(
            "ec-1", None, // a key that declares no alg is used with the one its curve implies
        ),
    ])
    .await;
    for (alg, kid, key) in [("RS256", "rsa-1", rsa1()), ("ES256", "ec-1", ec1())] {
        let verified = setup
            .verifier
            .verify(&setup.token(alg, kid, key))
            .await
            .unwrap();
        assert_eq!(verified.provider(), Provider::GitHub);
        assert_eq!(verified.issuer().as_str(), setup.issuer.url());
        let ProviderClaims::GitHub(claims) = verified.claims() else {
            panic!("GitHub claims")
        };
        assert_eq!(claims.repository, "acme/tool");
        assert_eq!(claims.repository_id, "74");
        let provenance = verified.provenance();
        assert_eq!(provenance.source, "acme/tool");
        assert_eq!(
            provenance.workflow.as_deref(),
            Some("acme/tool/.github/workflows/release.yml@refs/heads/main")
        );
        assert_eq!(provenance.run_id.as_deref(), Some("42"));
        assert_eq!(provenance.commit_sha.as_deref(), Some("0123abcd"));
        assert_eq!(provenance.jti, verified.jti());
    }
    assert_eq!(
        (setup.issuer.discovery_hits(), setup.issuer.jwks_hits()),
        (1, 1),
        "keys cached"
    );
}

#[tokio::test]
async fn hostile_tokens_are_refused() {
    let setup = Setup::new(vec![
        rsa1().jwk_declared("rsa-1"),
        ec1().jwk_declared("ec-1"),
    ])
    .await;
    let iss = setup.issuer.url();
    let now = secs(setup.clock.now());
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut claims = setup.claims();
        edit(&mut claims);
        jws(&header("RS256", "rsa-1"), &claims, rsa1())
    };
    let Key::Rsa(rsa_private) = rsa1() else {
        unreachable!()
    };
    let public_der = {
        use rsa::traits::PublicKeyParts as _;
        let jwk = rsa1().jwk_declared("rsa-1");
        let n = rsa_private.n().to_be_bytes_trimmed_vartime();
        (jwk.to_string().into_bytes(), n.to_vec())
    };
    let hs256 = |secret: &[u8]| {
        let h = header("HS256", "rsa-1");
        let claims = setup.claims();
        let input = format!(
            "{}.{}",
            b64(h.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!("{input}.{}", b64(&hmac_sha256(secret, input.as_bytes())))
    };
    let replayed = setup.token("RS256", "rsa-1", rsa1());
    setup.verifier.verify(&replayed).await.unwrap();
    let tampered = {
        let token = setup.token("RS256", "rsa-1", rsa1());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = setup.claims();
        claims["repository"] = json!("evil/tool");
        parts[1] = b64(claims.to_string().as_bytes());
        parts.join(".")
    };
    let attacker = jws(&header("RS256", "rsa-1"), &setup.claims(), rsa2());
    let with_crit = jws(
        &json!({ "alg": "RS256", "kid": "rsa-1", "crit": ["exp"] }),
        &setup.claims(),
        rsa1(),
    );

    let cases: Vec<(&str, String, Refusal)> = vec![
        (
            "alg none, no signature",
            unsigned(&header("none", "rsa-1"), &setup.claims(), b""),
            Refusal::Algorithm("none".into()),
        ),
        (
            "alg none, a signature",
            unsigned(&header("none", "rsa-1"), &setup.claims(), b"sig"),
            Refusal::Algorithm("none".into()),
        ),
        (
            "HS256 keyed with the public JWK",
            hs256(&public_der.0),
            Refusal::Algorithm("HS256".into()),
        ),
        (
            "HS256 keyed with the modulus",
            hs256(&public_der.1),
            Refusal::Algorithm("HS256".into()),
        ),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now - 900);
                c["nbf"] = json!(now - 900);
                c["exp"] = json!(now - 120)
            }),
            Refusal::Expired {
                expired_at: SystemTime::UNIX_EPOCH + Duration::from_secs(now - 120),
            },
        ),
        (
            "nbf in the future",
            with(&|c| c["nbf"] = json!(now + 600)),
            Refusal::NotYetValid {
                not_before: SystemTime::UNIX_EPOCH + Duration::from_secs(now + 600),
            },
        ),
        (
            "iat in the future",
            with(&|c| {
                c["iat"] = json!(now + 600);
                c["nbf"] = json!(now)
            }),
            Refusal::IssuedInFuture {
                issued_at: SystemTime::UNIX_EPOCH + Duration::from_secs(now + 600),
            },
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("npm:registry.npmjs.org")),
            Refusal::WrongAudience {
                expected: AUDIENCE.into(),
                found: "npm:registry.npmjs.org".into(),
            },
        ),
        (
            "a second audience",
            with(&|c| c["aud"] = json!([AUDIENCE, "other"])),
            Refusal::WrongAudience {
                expected: AUDIENCE.into(),
                found: format!("[\"{AUDIENCE}\",\"other\"]"),
            },
        ),
        (
            "no audience",
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            Refusal::MissingClaim("aud"),
        ),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://token.actions.githubusercontent.com")),
            Refusal::UntrustedIssuer("https://token.actions.githubusercontent.com".into()),
        ),
        (
            "issuer with a trailing slash",
            with(&|c| c["iss"] = json!(format!("{iss}/"))),
            Refusal::UntrustedIssuer(format!("{iss}/")),
        ),
        ("replayed jti", replayed.clone(), Refusal::Replayed),
        (
            "unknown kid",
            setup.token("RS256", "rsa-9", rsa2()),
            Refusal::UnknownKeyId {
                issuer: iss.clone(),
                kid: "rsa-9".into(),
            },
        ),
        (
            "no kid",
            jws(&json!({ "alg": "RS256" }), &setup.claims(), rsa1()),
            Refusal::MissingKeyId,
        ),
        (
            "a 1 MB token",
            "a".repeat(1 << 20),
            Refusal::TooLarge {
                len: 1 << 20,
                max: MAX_ID_TOKEN_LEN,
            },
        ),
        (
            "RS384, the key declares RS256",
            setup.token("RS384", "rsa-1", rsa1()),
            Refusal::AlgorithmNotDeclared {
                token: SigningAlgorithm::Rs384,
                key: SigningAlgorithm::Rs256,
                kid: "rsa-1".into(),
            },
        ),
        (
            "ES256 naming an RSA key",
            setup.token("ES256", "rsa-1", ec1()),
            Refusal::AlgorithmNotDeclared {
                token: SigningAlgorithm::Es256,
                key: SigningAlgorithm::Rs256,
                kid: "rsa-1".into(),
            },
        ),
        (
            "signed by another key under a known kid",
            attacker,
            Refusal::BadSignature,
        ),
        (
            "claims changed after signing",
            tampered,
            Refusal::BadSignature,
        ),
        (
            "critical header extension",
            with_crit,
            Refusal::CriticalHeader,
        ),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Refusal::MissingClaim("jti"),
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Refusal::MissingClaim("exp"),
        ),
        (
            "no workflow_ref",
            with(&|c| {
                c.as_object_mut().unwrap().remove("workflow_ref");
            }),
            Refusal::MissingClaim("workflow_ref"),
        ),
        (
            "two parts",
            "abc.def".into(),
            Refusal::Malformed("not three dot-separated parts"),
        ),
        (
            "not base64url",
            "a+b.c.d".into(),
            Refusal::Malformed("the header is not base64url"),
        ),
    ];
    for (name, token, expected) in cases {
        let refusal = setup.refusal(&token).await;
        assert_eq!(refusal, expected, "{name}");
        let message = VerifyError::Refused(refusal.clone()).to_string();
        let debug = format!("{refusal:?}");
        if token.len() > 40 {
            for part in token.split('.').filter(|p| p.len() > 20) {
                assert!(
                    !message.contains(part) && !debug.contains(part),
                    "{name}: the token is echoed"
                );
            }
        }
    }
    assert_eq!(
        setup.issuer.jwks_hits(),
        1,
        "no case refetched within the minute"
    );
}

#[tokio::test]
async fn a_huge_token_is_refused_before_the_issuer_is_asked() {
    let setup = Setup::new(vec![rsa1().jwk_declared("rsa-1")]).await;
    let mut claims = setup.claims();
    claims["padding"] = json!("x".repeat(MAX_ID_TOKEN_LEN));
    let token = jws(&header("RS256", "rsa-1"), &claims, rsa1());
    assert!(matches!(
        setup.refusal(&token).await,
        Refusal::TooLarge { .. }
    ));
    assert_eq!(setup.issuer.discovery_hits(), 0);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_a_minute_and_a_rotated_key_works() {
    let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
    let minute = Duration::from_secs(61);
    setup
        .verifier
        .verify(&setup.token("RS256", "k1", rsa1()))
        .await
        .unwrap();
    assert_eq!(setup.issuer.jwks_hits(), 1);

    // A minute on, an unknown kid refetches; the issuer has not published it yet.
    setup.clock.advance(minute);
    let k2 = |s: &Setup| s.token("ES256", "k2", ec1());
    assert!(matches!(
        setup.refusal(&k2(&setup)).await,
        Refusal::UnknownKeyId { .. }
    ));
    assert_eq!(setup.issuer.jwks_hits(), 2);

    // The issuer rotates: k2 in, k1 out. Within the minute, no refetch: still unknown.
    setup.issuer.publish(vec![ec1().jwk_declared("k2")]);
    setup.clock.advance(Duration::from_secs(10));
    assert!(matches!(
        setup.refusal(&k2(&setup)).await,
        Refusal::UnknownKeyId { .. }
    ));
    let k3 = setup.token("RS256", "k3", rsa2());
    assert!(matches!(
        setup.refusal(&k3).await,
        Refusal::UnknownKeyId { .. }
    ));
    assert_eq!(
        setup.issuer.jwks_hits(),
        2,
        "a second unknown kid within a minute does not refetch"
    );

    // After the minute, the new key works, and the withdrawn one no longer does.
    setup.clock.advance(minute);
    setup.verifier.verify(&k2(&setup)).await.unwrap();
    assert_eq!(setup.issuer.jwks_hits(), 3);
    assert!(matches!(
        setup.refusal(&setup.token("RS256", "k1", rsa1())).await,
        Refusal::UnknownKeyId { .. }
    ));
    assert_eq!(setup.issuer.jwks_hits(), 3);
}

#[tokio::test]
async fn concurrent_misses_fetch_once() {
    let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
    let tokens: Vec<String> = (0..8).map(|_| setup.token("RS256", "k1", rsa1())).collect();
    let results = futures_join(tokens.iter().map(|t| setup.verifier.verify(t))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        (setup.issuer.discovery_hits(), setup.issuer.jwks_hits()),
        (1, 1)
    );
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    let mut out = Vec::new();
    // Poll them together on one task.
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(Option::unwrap));
    out
}

#[tokio::test]
async fn an_issuer_that_is_down_is_unavailable_never_an_accept() {
    let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
    setup.issuer.state.down.store(true, Ordering::SeqCst);
    let token = setup.token("RS256", "k1", rsa1());
    let error = setup.verifier.verify(&token).await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        matches!(
            error,
            VerifyError::IssuerUnavailable {
                source: FetchError::Status(503),
                ..
            }
        ),
        "{error:?}"
    );
    // Within the minute it is not asked again, and the answer stays "unavailable".
    let again = setup
        .verifier
        .verify(&setup.token("RS256", "k1", rsa1()))
        .await
        .unwrap_err();
    assert!(again.is_unavailable(), "{again:?}");
    assert_eq!(setup.issuer.discovery_hits(), 0);
    // Back up, a minute later: accepted.
    setup.issuer.state.down.store(false, Ordering::SeqCst);
    setup.clock.advance(Duration::from_secs(61));
    setup
        .verifier
        .verify(&setup.token("RS256", "k1", rsa1()))
        .await
        .unwrap();
}

#[tokio::test]
async fn fetches_time_out_and_documents_are_capped() {
    let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
    setup.issuer.state.hang.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(5),
        setup.verifier.verify(&setup.token("RS256", "k1", rsa1())),
    )
    .await
    .expect("the verifier's own timeout ends the fetch")
    .unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::IssuerUnavailable {
                source: FetchError::Timeout(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
    setup.issuer.state.oversized.store(true, Ordering::SeqCst);
    let error = setup
        .verifier
        .verify(&setup.token("RS256", "k1", rsa1()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::IssuerUnavailable {
                source: FetchError::TooLarge(_),
                ..
            }
        ),
        "{error:?}"
    );

    // Nothing listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let verifier = IdTokenVerifier::builder(
        Audience::new(AUDIENCE).unwrap(),
        HyperFetch::new().unwrap(),
        MemoryReplayGuard::new(),
    )
    .issuer(TrustedIssuer::exact(
        Provider::GitHub,
        IssuerUrl::parse(url.clone()).unwrap(),
    ))
    .build();
    let token = jws(
        &header("RS256", "k1"),
        &github_claims(&url, SystemTime::now()),
        rsa1(),
    );
    assert!(verifier.verify(&token).await.unwrap_err().is_unavailable());
}

struct BrokenGuard;

impl ReplayGuard for BrokenGuard {
    async fn first_use(
        &self,
        _: &ReplayKey,
        _: SystemTime,
        _: SystemTime,
    ) -> Result<bool, StoreError> {
        Err(StoreError::unavailable("down"))
    }
}

#[tokio::test]
async fn a_replay_guard_that_errs_fails_closed() {
    let issuer = TestIssuer::start(vec![rsa1().jwk_declared("k1")]).await;
    let verifier = IdTokenVerifier::builder(
        Audience::new(AUDIENCE).unwrap(),
        HyperFetch::new().unwrap(),
        BrokenGuard,
    )
    .issuer(issuer.issuer())
    .build();
    let token = jws(
        &header("RS256", "k1"),
        &github_claims(&issuer.url(), SystemTime::now()),
        rsa1(),
    );
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(error, VerifyError::ReplayGuardUnavailable(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn gitlab_and_circleci_tokens_carry_their_claims() {
    let issuer = TestIssuer::start(vec![rsa1().jwk_declared("k1")]).await;
    let base = issuer.url();
    // The guard shared with the application (the verifier takes any Arc of a guard).
    let guard = Arc::new(MemoryReplayGuard::new());
    let verifier = IdTokenVerifier::builder(
        Audience::new(AUDIENCE).unwrap(),
        HyperFetch::new().unwrap(),
        guard.clone(),
    )
    .issuer(TrustedIssuer::exact(
        Provider::GitLab,
        IssuerUrl::parse(format!("{base}/gitlab")).unwrap(),
    ))
    .issuer(TrustedIssuer::circleci_at(
        IssuerUrl::parse(base.clone()).unwrap(),
    ))
    .build();
    let now = secs(SystemTime::now());
    let gitlab = json!({
        "iss": format!("{base}/gitlab"), "aud": AUDIENCE, "jti": "gl-1", "iat": now, "exp": now + 300,
        "project_path": "acme/cli", "project_id": "20", "namespace_id": "72",
        "ci_config_ref_uri": "127.0.0.1/acme/cli//.gitlab-ci.yml@refs/heads/main",
        "environment": "production", "sha": "714a629c", "pipeline_id": "574", "job_id": "302",
    });
    let verified = verifier
        .verify(&jws(&header("RS256", "k1"), &gitlab, rsa1()))
        .await
        .unwrap();
    let ProviderClaims::GitLab(claims) = verified.claims() else {
        panic!("GitLab claims")
    };
    assert_eq!(
        (claims.project_path.as_str(), claims.environment.as_deref()),
        ("acme/cli", Some("production"))
    );
    assert_eq!(verified.provenance().run_id.as_deref(), Some("574"));

    let circle = json!({
        "iss": format!("{base}/org/{ORG}"), "aud": AUDIENCE, "jti": "cc-1", "iat": now, "exp": now + 300,
        "oidc.circleci.com/project-id": "1a2b3c4d-0000-4000-8000-000000000001",
        "oidc.circleci.com/pipeline-definition-id": "1a2b3c4d-0000-4000-8000-000000000002",
        "oidc.circleci.com/context-ids": ["1a2b3c4d-0000-4000-8000-000000000003"],
        "oidc.circleci.com/vcs-origin": "github.com/acme/tool",
    });
    let verified = verifier
        .verify(&jws(&header("RS256", "k1"), &circle, rsa1()))
        .await
        .unwrap();
    let ProviderClaims::CircleCi(claims) = verified.claims() else {
        panic!("CircleCI claims")
    };
    assert_eq!(claims.org_id, ORG);
    assert_eq!(claims.context_ids.len(), 1);

    assert_eq!(guard.len(), 2, "both uses recorded");

    // An organisation id claim that contradicts the issuer is refused.
    let mut lying = circle.clone();
    lying["jti"] = json!("cc-2");
    lying["oidc.circleci.com/org-id"] = json!("99999999-0000-4000-8000-000000000009");
    let refused = verifier
        .verify(&jws(&header("RS256", "k1"), &lying, rsa1()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.refusal(),
        Some(&Refusal::InvalidClaim("oidc.circleci.com/org-id"))
    );
}

#[test]
fn debug_output_holds_no_token() {
    // The verifier never keeps a token; its Debug shows its configuration only.
    let verifier = IdTokenVerifier::builder(
        Audience::new(AUDIENCE).unwrap(),
        BrokenGuardFetch,
        MemoryReplayGuard::new(),
    )
    .issuer(TrustedIssuer::github_actions())
    .build();
    let debug = format!("{verifier:?}");
    assert!(
        debug.contains(AUDIENCE) && debug.contains("token.actions.githubusercontent.com"),
        "{debug}"
    );
}

struct BrokenGuardFetch;

impl tokengate::oidc::HttpFetch for BrokenGuardFetch {
    async fn get(&self, _: &str, _: usize) -> Result<Bytes, FetchError> {
        Err(FetchError::Connect("no network in this test".into()))
    }
}

/// The token store is the verifier's replay guard, through `DynStore` as an application
/// holds it: a replay is refused, and a second verifier on the same store (another node)
/// refuses it too.
#[tokio::test]
async fn the_token_store_is_the_replay_guard_of_every_verifier_on_it() {
    use tokengate::store::{DynStore, MemoryStore};
    let issuer = TestIssuer::start(vec![rsa1().jwk_declared("k1")]).await;
    let store = DynStore::new(MemoryStore::new());
    let verifier = |store: DynStore| {
        IdTokenVerifier::builder(
            Audience::new(AUDIENCE).unwrap(),
            HyperFetch::new().unwrap(),
            store,
        )
        .issuer(issuer.issuer())
        .build()
    };
    let (one, other) = (verifier(store.clone()), verifier(store.clone()));
    let token = jws(
        &header("RS256", "k1"),
        &github_claims(&issuer.url(), SystemTime::now()),
        rsa1(),
    );
    one.verify(&token).await.unwrap();
    for verifier in [&one, &other] {
        let refused = verifier.verify(&token).await.unwrap_err();
        assert!(
            matches!(refused, VerifyError::Refused(Refusal::Replayed)),
            "{refused:?}"
        );
    }
}

// ---- the exchange --------------------------------------------------------------------

mod exchange {
    use super::*;
    use tokengate::oidc::{
        GitHubPolicy, PolicyMatch, Provenance, TrustPolicy, TrustedActions, VerifiedIdToken,
        match_policies,
    };
    use tokengate::store::{MemoryStore, Page};
    use tokengate::{
        Action, ExchangeRefusal, MAX_EXCHANGED_TOKEN_LIFETIME, Permission, Reason, Resource,
        SecondFactor, TokenEvent, TokenKind, Tokens, TokensBuilder, TokensError,
    };

    const OWNER: &str = "trusted-publisher";

    fn package() -> Resource {
        Resource::new("@acme/tool")
    }

    /// A token verified by the loopback issuer, and its match against a policy of
    /// `acme/tool`'s `release.yml` allowing `allows`.
    async fn verified(setup: &Setup, allows: TrustedActions) -> (VerifiedIdToken, PolicyMatch) {
        let verified = setup
            .verifier
            .verify(&setup.token("RS256", "k1", rsa1()))
            .await
            .unwrap();
        let policy = TrustPolicy::GitHub(
            GitHubPolicy::new("acme/tool", "release.yml")
                .unwrap()
                .allow(allows),
        );
        let (_, matched) = match_policies([&policy], &verified).unwrap();
        (verified, matched)
    }

    fn builder(setup: &Setup) -> TokensBuilder<MemoryStore> {
        Tokens::builder(MemoryStore::new())
            .prefix("npm")
            .unwrap()
            .clock(setup.clock.clone())
    }

    #[tokio::test]
    async fn a_minted_token_writes_that_package_only_is_never_listed_and_expires() {
        let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
        let events: Arc<Mutex<Vec<(String, Provenance)>>> = Arc::default();
        let heard = events.clone();
        let tokens = builder(&setup)
            .on_event(move |event| {
                if let TokenEvent::Exchanged {
                    listing,
                    provenance,
                } = event
                {
                    let seen = (listing.id.to_string(), (*provenance).clone());
                    heard.lock().unwrap().push(seen);
                }
            })
            .build();
        let (verified, matched) = verified(&setup, TrustedActions::PUBLISH).await;
        let created = tokens
            .exchange(OWNER, &package(), &verified, &matched)
            .await
            .unwrap();
        let secret = created.token.expose_secret();

        let who = tokens
            .authenticate_on(secret, None, Action::Write, &package())
            .await
            .unwrap();
        assert_eq!(who.kind(), TokenKind::Exchanged);
        assert_eq!(who.owner(), OWNER);
        assert_eq!(who.second_factor(), SecondFactor::Bypassed);
        assert_eq!(who.grants().iter().count(), 1, "one grant");
        assert_eq!(
            who.grants().permission_on("@acme/tool"),
            Permission::ReadWrite
        );
        for other in ["@acme/tool2", "@acme/other", "left-pad", "@acme"] {
            for action in [Action::Write, Action::Read] {
                let refused = tokens
                    .authenticate_on(secret, None, action, &Resource::new(other))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(refused.reason(), Reason::NotPermitted(_)),
                    "{other} {action:?}: {:?}",
                    refused.reason()
                );
            }
        }
        let listed = tokens.list(OWNER, Page::default()).await.unwrap();
        assert_eq!(listed.total, 0, "an exchanged token was listed");

        // The event: provenance from the ID token's claims, never the ID token.
        let events = events.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        let (id, provenance) = &events[0];
        assert_eq!(id, &created.listing.id.to_string());
        assert_eq!(provenance.issuer, setup.issuer.url());
        assert_eq!(provenance.source, "acme/tool");
        assert_eq!(
            provenance.workflow.as_deref(),
            Some("acme/tool/.github/workflows/release.yml@refs/heads/main")
        );
        assert_eq!(provenance.run_id.as_deref(), Some("42"));
        assert_eq!(provenance.commit_sha.as_deref(), Some("0123abcd"));
        assert_eq!(provenance.jti, verified.jti());

        // Fifteen minutes by default, then refused.
        let expires = created.listing.expires_at.unwrap();
        assert_eq!(
            expires.duration_since(created.listing.created_at).unwrap(),
            Duration::from_secs(15 * 60)
        );
        setup.clock.advance(Duration::from_secs(15 * 60 - 1));
        assert!(
            tokens
                .authenticate_on(secret, None, Action::Write, &package())
                .await
                .is_ok()
        );
        setup.clock.advance(Duration::from_secs(2));
        let refused = tokens
            .authenticate_on(secret, None, Action::Write, &package())
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Reason::Expired);
    }

    #[tokio::test]
    async fn a_stage_only_match_mints_a_token_that_stages_and_cannot_publish() {
        let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
        let tokens = builder(&setup).build();
        let (verified, matched) = verified(&setup, TrustedActions::STAGE).await;
        let created = tokens
            .exchange(OWNER, &package(), &verified, &matched)
            .await
            .unwrap();
        let secret = created.token.expose_secret();
        assert!(
            tokens
                .authenticate_on(secret, None, Action::Stage, &package())
                .await
                .is_ok()
        );
        let refused = tokens
            .authenticate_on(secret, None, Action::Write, &package())
            .await
            .unwrap_err();
        assert_eq!(
            refused.reason(),
            Reason::NotPermitted(Permission::ReadStage)
        );
        assert!(
            refused.message().contains("stage the change instead"),
            "{refused}"
        );
        // Stage and publish together: a publish token.
        let (verified, matched) =
            super::exchange::verified(&setup, TrustedActions::PUBLISH | TrustedActions::STAGE)
                .await;
        let created = tokens
            .exchange(OWNER, &package(), &verified, &matched)
            .await
            .unwrap();
        assert!(
            tokens
                .authenticate_on(
                    created.token.expose_secret(),
                    None,
                    Action::Write,
                    &package()
                )
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_match_that_allows_nothing_is_refused_and_nothing_is_stored() {
        let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
        let tokens = builder(&setup).build();
        let (verified, matched) = verified(&setup, TrustedActions::NONE).await;
        let refused = tokens
            .exchange(OWNER, &package(), &verified, &matched)
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                TokensError::Exchange(ExchangeRefusal::NothingAllowed)
            ),
            "{refused:?}"
        );
        assert!(tokens.store().is_empty());
    }

    #[tokio::test]
    async fn the_lifetime_is_at_most_thirty_minutes() {
        let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
        for (asked, lives) in [
            (Duration::from_secs(5 * 60), Duration::from_secs(5 * 60)),
            (Duration::from_secs(24 * 3600), MAX_EXCHANGED_TOKEN_LIFETIME),
            (Duration::ZERO, Duration::from_secs(1)),
        ] {
            let tokens = builder(&setup).exchanged_token_lifetime(asked).build();
            let (verified, matched) = verified(&setup, TrustedActions::PUBLISH).await;
            let created = tokens
                .exchange(OWNER, &package(), &verified, &matched)
                .await
                .unwrap();
            let expires = created.listing.expires_at.unwrap();
            assert_eq!(
                expires.duration_since(created.listing.created_at).unwrap(),
                lives,
                "asked {asked:?}"
            );
        }
        assert_eq!(MAX_EXCHANGED_TOKEN_LIFETIME, Duration::from_secs(30 * 60));
    }

    #[tokio::test]
    async fn a_bad_owner_or_package_name_stores_nothing() {
        let setup = Setup::new(vec![rsa1().jwk_declared("k1")]).await;
        let tokens = builder(&setup).build();
        let (verified, matched) = verified(&setup, TrustedActions::PUBLISH).await;
        let bad_owner = tokens.exchange("", &package(), &verified, &matched).await;
        assert!(matches!(bad_owner, Err(TokensError::InvalidNewToken(_))));
        let wide = tokens
            .exchange(OWNER, &Resource::new("@acme/*"), &verified, &matched)
            .await;
        assert!(
            matches!(
                wide,
                Err(TokensError::Exchange(ExchangeRefusal::Package(_)))
            ),
            "{wide:?}"
        );
        assert!(tokens.store().is_empty());
    }
}
