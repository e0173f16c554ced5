//! A CI provider's OIDC issuer of the tests' own, on loopback: discovery, its key set, ID
//! tokens signed with an ES256 key made here, and GitHub Actions' token request endpoint
//! (`ACTIONS_ID_TOKEN_REQUEST_URL`), which npm calls with the registry's audience.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use p256::ecdsa::SigningKey;
use serde_json::{Value, json};

/// The bearer GitHub's token request endpoint wants (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
pub const REQUEST_TOKEN: &str = "test-request-token";

/// A running issuer; it stops when dropped.
pub struct Issuer {
    /// `http://127.0.0.1:PORT`, exactly as its tokens' `iss`.
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    url: String,
    /// The key it signs with and publishes, and that key's `kid`.
    key: Mutex<(String, SigningKey)>,
    /// The claims the token request endpoint signs (beside `iss`, `aud`, times, `jti`).
    claims: Mutex<Value>,
    next_jti: AtomicU64,
    /// Requests for the key set, so that tests can tell a cached key from a fetched one.
    key_fetches: AtomicU64,
}

/// GitHub Actions' claims for a push to main of `acme/tool` running `release.yml`, from a
/// private repository (npm would try provenance for a public one, and sigstore is not
/// reachable from here).
pub fn github_claims(repository: &str, workflow: &str) -> Value {
    let owner = repository.split('/').next().unwrap();
    json!({
        "sub": format!("repo:{repository}:ref:refs/heads/main"),
        "repository": repository,
        "repository_id": "74",
        "repository_owner": owner,
        "repository_owner_id": "65",
        "repository_visibility": "private",
        "workflow_ref": format!("{repository}/.github/workflows/{workflow}@refs/heads/main"),
        "ref": "refs/heads/main",
        "event_name": "push",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "run_id": "4242",
        "run_attempt": "1",
        "actor": "octocat",
        "runner_environment": "github-hosted",
    })
}

/// GitLab CI's claims for a pipeline of `project` (private) on the GitLab at `host` (its
/// `ci_config_ref_uri` names the instance), from `.gitlab-ci.yml` on main, deploying to
/// `environment`.
pub fn gitlab_claims(host: &str, project: &str, environment: &str) -> Value {
    json!({
        "sub": format!("project_path:{project}:ref_type:branch:ref:main"),
        "project_path": project,
        "project_id": "83",
        "namespace_id": "61",
        "namespace_path": project.split('/').next().unwrap(),
        "ci_config_ref_uri": format!("{host}/{project}//.gitlab-ci.yml@refs/heads/main"),
        "environment": environment,
        "ref": "main",
        "ref_type": "branch",
        "sha": "89abcdef0123456789abcdef0123456789abcdef",
        "pipeline_id": "5150",
        "job_id": "9000",
        "user_login": "octocat",
        "project_visibility": "private",
    })
}

impl Issuer {
    /// An issuer on 127.0.0.1, whose token endpoint signs `claims`.
    pub async fn start(claims: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        use p256::elliptic_curve::Generate as _;
        let shared = Arc::new(Shared {
            url: url.clone(),
            key: Mutex::new(("key-1".to_owned(), SigningKey::generate())),
            claims: Mutex::new(claims),
            next_jti: AtomicU64::new(1),
            key_fetches: AtomicU64::new(0),
        });
        let server = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let shared = Arc::clone(&shared);
                            async move { Ok::<_, Infallible>(shared.answer(request)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// What the token endpoint signs from now on.
    pub fn set_claims(&self, claims: Value) {
        *self.shared.claims.lock().unwrap() = claims;
    }

    /// An ID token for `audience` with the issuer's claims, edited by `edit` (which sees
    /// `iss`, `aud`, `iat`, `exp` and `jti` too).
    pub fn mint(&self, audience: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.shared.claims_for(audience);
        edit(&mut claims);
        self.shared.sign(&claims)
    }

    /// Rotates its key: tokens are signed with a new key under a new `kid`, and the key
    /// set publishes that key only.
    pub fn rotate_key(&self) {
        use p256::elliptic_curve::Generate as _;
        let mut key = self.shared.key.lock().unwrap();
        let next = key.0.trim_start_matches("key-").parse::<u32>().unwrap() + 1;
        *key = (format!("key-{next}"), SigningKey::generate());
    }

    /// Its host and port, as a GitLab's claims name their instance.
    pub fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// How many times the key set was fetched.
    pub fn key_fetches(&self) -> u64 {
        self.shared.key_fetches.load(Ordering::SeqCst)
    }

    /// The environment of a GitLab CI job given `id_token` (`NPM_ID_TOKEN`, as the job's
    /// `id_tokens:` section would set it).
    pub fn gitlab_ci_env(id_token: String) -> Vec<(&'static str, String)> {
        vec![
            ("GITLAB_CI", "true".to_owned()),
            ("CI", "true".to_owned()),
            ("NPM_ID_TOKEN", id_token),
        ]
    }

    /// The environment of a GitHub Actions job whose ID tokens come from here.
    pub fn github_actions_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("CI", "true".to_owned()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/token?for=npm", self.url),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
        ]
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Shared {
    fn claims_for(&self, audience: &str) -> Value {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut claims = self.claims.lock().unwrap().clone();
        claims["iss"] = json!(self.url);
        claims["aud"] = json!(audience);
        claims["iat"] = json!(now.as_secs());
        claims["nbf"] = json!(now.as_secs());
        claims["exp"] = json!((now + Duration::from_secs(300)).as_secs());
        claims["jti"] = json!(format!(
            "jti-{}",
            self.next_jti.fetch_add(1, Ordering::SeqCst)
        ));
        claims
    }

    fn sign(&self, claims: &Value) -> String {
        use p256::ecdsa::signature::Signer as _;
        let (kid, key) = &*self.key.lock().unwrap();
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    fn jwks(&self) -> Value {
        let (kid, key) = &*self.key.lock().unwrap();
        let point = key.verifying_key().to_sec1_point(false);
        json!({ "keys": [{
            "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }]})
    }

    fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let reply = |status: u16, body: Value| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        };
        match request.uri().path() {
            "/.well-known/openid-configuration" => reply(
                200,
                json!({ "issuer": self.url, "jwks_uri": format!("{}/jwks", self.url) }),
            ),
            "/jwks" => {
                self.key_fetches.fetch_add(1, Ordering::SeqCst);
                reply(200, self.jwks())
            }
            "/token" => {
                let authorized = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some(&format!("Bearer {REQUEST_TOKEN}"));
                let audience = request.uri().query().and_then(|query| {
                    query.split('&').find_map(|pair| {
                        let (key, value) = pair.split_once('=')?;
                        (key == "audience").then(|| value.replace("%3A", ":"))
                    })
                });
                match (authorized, audience) {
                    (true, Some(audience)) => {
                        let claims = self.claims_for(&audience);
                        reply(200, json!({ "value": self.sign(&claims) }))
                    }
                    (false, _) => reply(401, json!({ "message": "bad request token" })),
                    (_, None) => reply(400, json!({ "message": "no audience" })),
                }
            }
            _ => reply(404, json!({ "message": "no such endpoint" })),
        }
    }
}
