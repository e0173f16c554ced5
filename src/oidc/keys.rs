//! An issuer's signing keys: discovery, the key set, and the cache by `kid` with its
//! refetch rule (an unknown `kid` refetches, at most once per interval per issuer).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::algorithm::{KeyType, SigningAlgorithm};
use super::fetch::{FetchError, HttpFetch};
use super::issuer::{IssuerUrl, check_url};
use crate::clock::Clock;

/// The most keys kept from one key set (GitHub publishes a handful).
const MAX_KEYS: usize = 64;
/// The shortest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;

/// One verification key and the one algorithm it may be used with.
pub(crate) struct PublicKey {
    pub(crate) key: DecodingKey,
    pub(crate) algorithm: SigningAlgorithm,
}

/// How the cache fetches, shared by every issuer of one verifier.
pub(crate) struct FetchRules<'a, F> {
    pub(crate) fetcher: &'a F,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) timeout: Duration,
    pub(crate) max_document_len: usize,
    pub(crate) refetch_interval: Duration,
    pub(crate) max_key_age: Duration,
}

/// What the cache knows of a `kid`.
pub(crate) enum Lookup {
    Found(Arc<PublicKey>),
    /// The issuer's current key set (fetched now or within the refetch interval) lacks it.
    Unknown,
}

/// The keys of one issuer.
pub(crate) struct IssuerKeys {
    issuer: IssuerUrl,
    state: RwLock<State>,
    /// Held while fetching, so that concurrent misses make one fetch.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<PublicKey>>,
    /// When a fetch was last started, successful or not: the refetch interval counts from it.
    last_attempt: Option<SystemTime>,
    /// When the keys were last fetched successfully.
    fetched_at: Option<SystemTime>,
    /// Why the last fetch failed, while it is the latest word on this issuer.
    last_error: Option<FetchError>,
}

impl IssuerKeys {
    pub(crate) fn new(issuer: IssuerUrl) -> Self {
        Self {
            issuer,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn issuer(&self) -> &IssuerUrl {
        &self.issuer
    }

    /// When the last fetch was started (for choosing which cached issuer to drop).
    pub(crate) fn last_attempt(&self) -> Option<SystemTime> {
        self.read().last_attempt
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cached key that is not yet due for a refresh.
    fn fresh(&self, kid: &str, now: SystemTime, max_age: Duration) -> Option<Arc<PublicKey>> {
        let state = self.read();
        let fresh = state
            .fetched_at
            .is_some_and(|at| elapsed(at, now) < max_age);
        fresh.then(|| state.keys.get(kid).cloned()).flatten()
    }

    /// The key named `kid`. An unknown `kid` (or keys older than `max_key_age`) fetches
    /// the key set again unless a fetch started within `refetch_interval`; a failed fetch
    /// is an error unless the key is still cached (then it is used, and logged).
    pub(crate) async fn key<F: HttpFetch>(
        &self,
        kid: &str,
        rules: &FetchRules<'_, F>,
    ) -> Result<Lookup, FetchError> {
        if let Some(key) = self.fresh(kid, rules.clock.now(), rules.max_key_age) {
            return Ok(Lookup::Found(key));
        }
        let _refreshing = self.refresh.lock().await;
        let now = rules.clock.now();
        // Another request may have refreshed while this one waited.
        if let Some(key) = self.fresh(kid, now, rules.max_key_age) {
            return Ok(Lookup::Found(key));
        }
        {
            let state = self.read();
            let recent = state
                .last_attempt
                .is_some_and(|at| elapsed(at, now) < rules.refetch_interval);
            if recent {
                return match (state.keys.get(kid), &state.last_error) {
                    (Some(key), _) => Ok(Lookup::Found(key.clone())),
                    (None, Some(error)) => Err(error.clone()),
                    (None, None) => Ok(Lookup::Unknown),
                };
            }
        }
        self.write().last_attempt = Some(now);
        let fetched = tokio::time::timeout(rules.timeout, fetch_keys(&self.issuer, rules))
            .await
            .unwrap_or(Err(FetchError::Timeout(rules.timeout)));
        let mut state = self.write();
        match fetched {
            Ok(keys) => {
                state.keys = keys;
                state.fetched_at = Some(now);
                state.last_error = None;
                Ok(match state.keys.get(kid) {
                    Some(key) => Lookup::Found(key.clone()),
                    None => Lookup::Unknown,
                })
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                match state.keys.get(kid) {
                    Some(key) => {
                        tracing::warn!(issuer = %self.issuer, %error, "cannot refresh the issuer's keys; using the cached key");
                        Ok(Lookup::Found(key.clone()))
                    }
                    None => {
                        tracing::warn!(issuer = %self.issuer, %error, "cannot fetch the issuer's keys");
                        Err(error)
                    }
                }
            }
        }
    }
}

/// Time from `then` to `now`; a clock that went back counts as a long time, so that it
/// cannot stop refreshes for as long as it went back.
fn elapsed(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::MAX)
}

/// Discovery, then the key set.
async fn fetch_keys<F: HttpFetch>(
    issuer: &IssuerUrl,
    rules: &FetchRules<'_, F>,
) -> Result<HashMap<String, Arc<PublicKey>>, FetchError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let body = get(rules, &issuer.discovery_url()).await?;
    let discovery: Discovery = serde_json::from_slice(&body)
        .map_err(|e| FetchError::Document(format!("openid-configuration: {e}")))?;
    if discovery.issuer != issuer.as_str() {
        return Err(FetchError::Document(format!(
            "openid-configuration names issuer {:?}, not {:?}",
            truncate(&discovery.issuer),
            issuer.as_str()
        )));
    }
    let jwks_uri = discovery.jwks_uri;
    if check_url(&jwks_uri).is_err()
        || (jwks_uri.starts_with("http://") && !issuer.is_loopback_http())
    {
        return Err(FetchError::Url(truncate(&jwks_uri).to_owned()));
    }
    let body = get(rules, &jwks_uri).await?;
    parse_key_set(&body)
}

async fn get<F: HttpFetch>(
    rules: &FetchRules<'_, F>,
    url: &str,
) -> Result<bytes::Bytes, FetchError> {
    let body = rules.fetcher.get(url, rules.max_document_len).await?;
    if body.len() > rules.max_document_len {
        return Err(FetchError::TooLarge(rules.max_document_len));
    }
    Ok(body)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(120) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The usable keys of a JWK Set (RFC 7517): RSA keys of 2048 bits or more and EC keys on
/// P-256 or P-384, each with a `kid`, for signing (`use` absent or `sig`, `key_ops`
/// absent or with `verify`), with the one algorithm it declares (`alg`) or else the one
/// its type implies. Symmetric (`oct`) keys and anything else are skipped; a set with no
/// usable key is an error.
pub(crate) fn parse_key_set(body: &[u8]) -> Result<HashMap<String, Arc<PublicKey>>, FetchError> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        kid: Option<String>,
        #[serde(rename = "use")]
        key_use: Option<String>,
        key_ops: Option<Vec<String>>,
        alg: Option<String>,
        crv: Option<String>,
        n: Option<String>,
        e: Option<String>,
        x: Option<String>,
        y: Option<String>,
    }
    let set: Set =
        serde_json::from_slice(body).map_err(|e| FetchError::Document(format!("jwks: {e}")))?;
    let mut keys = HashMap::new();
    for value in set.keys.into_iter().take(MAX_KEYS) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.kid.filter(|k| !k.is_empty()) else {
            continue;
        };
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig")
            || jwk
                .key_ops
                .as_ref()
                .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            continue;
        }
        let decoded =
            |part: &Option<String>| part.as_deref().and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
        let (kty, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                let (Some(n), Some(e)) = (decoded(&jwk.n), decoded(&jwk.e)) else {
                    continue;
                };
                let n = strip_leading_zeros(&n);
                if n.len() < MIN_RSA_MODULUS || e.is_empty() {
                    continue;
                }
                (KeyType::Rsa, DecodingKey::from_rsa_raw_components(n, &e))
            }
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (kty, len) = if crv == "P-256" {
                    (KeyType::P256, 32)
                } else {
                    (KeyType::P384, 48)
                };
                match (decoded(&jwk.x), decoded(&jwk.y)) {
                    (Some(x), Some(y)) if x.len() == len && y.len() == len => {}
                    _ => continue,
                }
                let (Some(x), Some(y)) = (jwk.x.as_deref(), jwk.y.as_deref()) else {
                    continue;
                };
                match DecodingKey::from_ec_components(x, y) {
                    Ok(key) => (kty, key),
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        let algorithm = match jwk.alg.as_deref() {
            None => kty.implied_algorithm(),
            Some(alg) => match SigningAlgorithm::from_jose(alg) {
                Some(alg) if alg.fits(kty) => alg,
                _ => continue,
            },
        };
        keys.insert(kid, Arc::new(PublicKey { key, algorithm }));
    }
    if keys.is_empty() {
        return Err(FetchError::Document(
            "the key set has no usable signing key".into(),
        ));
    }
    Ok(keys)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Answers each URL with a fixed body.
    struct Canned(Vec<(&'static str, String)>);

    impl HttpFetch for Canned {
        async fn get(&self, url: &str, _limit: usize) -> Result<bytes::Bytes, FetchError> {
            self.0
                .iter()
                .find(|(u, _)| *u == url)
                .map(|(_, body)| bytes::Bytes::from(body.clone()))
                .ok_or(FetchError::Status(404))
        }
    }

    async fn fetch_with(discovery: serde_json::Value) -> Result<usize, FetchError> {
        let jwks = serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "k", "n": b64(&[0xc5; 256]), "e": "AQAB" }
        ]});
        let fetcher = Canned(vec![
            (
                "https://issuer.example/.well-known/openid-configuration",
                discovery.to_string(),
            ),
            ("https://issuer.example/jwks", jwks.to_string()),
            ("http://issuer.example/jwks", jwks.to_string()),
        ]);
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let rules = FetchRules {
            fetcher: &fetcher,
            clock: &clock,
            timeout: Duration::from_secs(1),
            max_document_len: 1 << 16,
            refetch_interval: Duration::from_secs(60),
            max_key_age: Duration::from_secs(3600),
        };
        let issuer = IssuerUrl::parse("https://issuer.example").unwrap();
        fetch_keys(&issuer, &rules).await.map(|keys| keys.len())
    }

    #[tokio::test]
    async fn discovery_must_name_the_issuer_and_an_https_key_set() {
        let ok = serde_json::json!({ "issuer": "https://issuer.example", "jwks_uri": "https://issuer.example/jwks" });
        assert_eq!(fetch_with(ok).await, Ok(1));
        let other_issuer = serde_json::json!({ "issuer": "https://evil.example", "jwks_uri": "https://issuer.example/jwks" });
        assert!(matches!(
            fetch_with(other_issuer).await,
            Err(FetchError::Document(_))
        ));
        let plain_http = serde_json::json!({ "issuer": "https://issuer.example", "jwks_uri": "http://issuer.example/jwks" });
        assert!(matches!(
            fetch_with(plain_http).await,
            Err(FetchError::Url(_))
        ));
        let no_jwks = serde_json::json!({ "issuer": "https://issuer.example" });
        assert!(matches!(
            fetch_with(no_jwks).await,
            Err(FetchError::Document(_))
        ));
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn key_sets_keep_only_usable_signing_keys() {
        let n = b64(&[0xc5; 256]);
        let short_n = b64(&[0xc5; 128]);
        let xy = b64(&[7; 32]);
        let body = serde_json::json!({ "keys": [
            { "kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB" },
            { "kty": "RSA", "kid": "rsa-no-alg", "n": n, "e": "AQAB" },
            { "kty": "RSA", "kid": "rsa-enc", "use": "enc", "n": n, "e": "AQAB" },
            { "kty": "RSA", "kid": "rsa-short", "n": short_n, "e": "AQAB" },
            { "kty": "RSA", "kid": "rsa-es", "alg": "ES256", "n": n, "e": "AQAB" },
            { "kty": "RSA", "kid": "rsa-hs", "alg": "HS256", "n": n, "e": "AQAB" },
            { "kty": "RSA", "n": n, "e": "AQAB" },
            { "kty": "oct", "kid": "secret", "alg": "HS256", "k": "c2VjcmV0" },
            { "kty": "EC", "kid": "ec", "crv": "P-256", "x": xy, "y": xy },
            { "kty": "EC", "kid": "ec-bad-len", "crv": "P-384", "x": xy, "y": xy },
            { "kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": xy },
            "not an object"
        ]});
        let keys = parse_key_set(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["ec", "rsa", "rsa-no-alg"]);
        assert_eq!(keys["rsa-no-alg"].algorithm, SigningAlgorithm::Rs256);
        assert_eq!(keys["ec"].algorithm, SigningAlgorithm::Es256);

        let only_secret =
            serde_json::json!({ "keys": [{ "kty": "oct", "kid": "s", "k": "c2VjcmV0" }] });
        assert!(matches!(
            parse_key_set(only_secret.to_string().as_bytes()),
            Err(FetchError::Document(_))
        ));
    }
}
