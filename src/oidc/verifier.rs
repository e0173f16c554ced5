//! The ID-token verifier: header, issuer, key, signature, claims, single use, in that
//! order, each refusal typed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::algorithm::SigningAlgorithm;
use super::claims::{Payload, ProviderClaims, VerifiedIdToken};
use super::error::{Refusal, VerifyError, sanitise};
use super::fetch::HttpFetch;
use super::issuer::{IssuerUrl, MAX_CIRCLECI_ORGS, Provider, TrustedIssuer};
use super::keys::{FetchRules, IssuerKeys, Lookup};
use super::replay::{ReplayGuard, ReplayKey};
use crate::clock::{Clock, SystemClock};

/// The longest ID token looked at; a longer one is refused before any parsing.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

/// The default cap on a discovery document or key set.
pub const DEFAULT_MAX_DOCUMENT_LEN: usize = 256 * 1024;

/// The audience ID tokens must name exactly (`aud`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Audience(String);

/// Why an audience was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an audience is 1 to 255 printable ASCII characters without spaces")]
pub struct InvalidAudience;

impl Audience {
    /// Any audience (1 to 255 printable ASCII characters, no spaces).
    pub fn new(audience: impl Into<String>) -> Result<Self, InvalidAudience> {
        let audience = audience.into();
        let ok =
            (1..=255).contains(&audience.len()) && audience.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(audience))
        } else {
            Err(InvalidAudience)
        }
    }

    /// npm's audience for a registry: `npm:<host>`, where `host` is the hostname of the
    /// registry's public URL (npm asks GitHub for `npm:registry.npmjs.org`).
    pub fn npm(host: &str) -> Result<Self, InvalidAudience> {
        Self::new(format!("npm:{host}"))
    }

    /// The audience as tokens name it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Verifies CI providers' OIDC ID tokens for one audience.
///
/// A token is accepted when, in this order: it is at most [`MAX_ID_TOKEN_LEN`] bytes;
/// it is a compact JWS whose header names an asymmetric algorithm ([`SigningAlgorithm`];
/// `none` and `HS*` are refused), no `crit` extension, and a `kid`; its `iss` is exactly
/// one of the trusted issuers; the issuer's key set (found by discovery, cached by `kid`,
/// fetched again for an unknown `kid` at most once per refetch interval) has that key,
/// for that algorithm; the signature verifies; `aud` is exactly the audience; `exp` has
/// not passed, `nbf` (when present) and `iat` are not in the future, each with the
/// leeway; the provider's claims are present; and the [`ReplayGuard`] records its `jti`
/// as used for the first time. An issuer whose keys cannot be fetched, or a guard that
/// errs, is [`VerifyError::is_unavailable`]: never an accept.
///
/// ```no_run
/// use tokengate::oidc::{
///     Audience, HyperFetch, IdTokenVerifier, MemoryReplayGuard, TrustPolicy, TrustedIssuer,
///     GitHubPolicy, TrustedActions, match_policies,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = IdTokenVerifier::builder(
///     Audience::npm("registry.example.com")?,
///     HyperFetch::new()?,
///     MemoryReplayGuard::new(),
/// )
/// .issuer(TrustedIssuer::github_actions())
/// .issuer(TrustedIssuer::gitlab_com())
/// .build();
///
/// # let bearer = "";
/// // The exchange request's bearer is the provider's ID token.
/// let verified = match verifier.verify(bearer).await {
///     Ok(verified) => verified,
///     Err(e) if e.is_unavailable() => return Ok(()), // 503
///     Err(e) => return Err(e.into()),                // 401, with e's message
/// };
///
/// // The package's trusted publishers, as the registry keeps them.
/// let policies = [TrustPolicy::GitHub(
///     GitHubPolicy::new("acme/tool", "release.yml")?.allow(TrustedActions::PUBLISH),
/// )];
/// let (index, matched) = match_policies(&policies, &verified)?;
/// if let Some(pin) = matched.pin() {
///     // First exchange: store these ids with policies[index].
///     # let _ = (index, pin);
/// }
/// println!("exchange by {:?}", verified.provenance());
/// # Ok(())
/// # }
/// ```
pub struct IdTokenVerifier<F, R> {
    inner: Arc<Inner<F, R>>,
}

impl<F, R> Clone for IdTokenVerifier<F, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<F, R> {
    audience: Audience,
    issuers: Vec<TrustedIssuer>,
    /// Keys of the exact issuers, made at build time.
    exact: HashMap<String, Arc<IssuerKeys>>,
    /// Keys of issuers admitted by a template (CircleCI organisations), made on demand.
    orgs: Mutex<HashMap<String, Arc<IssuerKeys>>>,
    fetcher: F,
    guard: R,
    clock: Arc<dyn Clock>,
    leeway: Duration,
    fetch_timeout: Duration,
    refetch_interval: Duration,
    max_key_age: Duration,
    max_document_len: usize,
}

/// Sets up an [`IdTokenVerifier`].
pub struct IdTokenVerifierBuilder<F, R> {
    audience: Audience,
    issuers: Vec<TrustedIssuer>,
    fetcher: F,
    guard: R,
    clock: Arc<dyn Clock>,
    leeway: Duration,
    fetch_timeout: Duration,
    refetch_interval: Duration,
    max_key_age: Duration,
    max_document_len: usize,
}

impl<F: HttpFetch, R: ReplayGuard> IdTokenVerifier<F, R> {
    /// A verifier for `audience` that fetches keys with `fetcher` and records uses in
    /// `guard`; it trusts no issuer until [`issuer`](IdTokenVerifierBuilder::issuer) adds one.
    pub fn builder(audience: Audience, fetcher: F, guard: R) -> IdTokenVerifierBuilder<F, R> {
        IdTokenVerifierBuilder {
            audience,
            issuers: Vec::new(),
            fetcher,
            guard,
            clock: Arc::new(SystemClock),
            leeway: IdTokenVerifierBuilder::<F, R>::DEFAULT_LEEWAY,
            fetch_timeout: IdTokenVerifierBuilder::<F, R>::DEFAULT_FETCH_TIMEOUT,
            refetch_interval: IdTokenVerifierBuilder::<F, R>::DEFAULT_REFETCH_INTERVAL,
            max_key_age: IdTokenVerifierBuilder::<F, R>::DEFAULT_MAX_KEY_AGE,
            max_document_len: DEFAULT_MAX_DOCUMENT_LEN,
        }
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &Audience {
        &self.inner.audience
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> &[TrustedIssuer] {
        &self.inner.issuers
    }

    /// The replay guard.
    pub fn replay_guard(&self) -> &R {
        &self.inner.guard
    }

    /// Verifies `token` (the exchange request's bearer): see the type's documentation for
    /// every check. Errors never contain the token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedIdToken, VerifyError> {
        let inner = &*self.inner;
        if token.len() > MAX_ID_TOKEN_LEN {
            return Err(Refusal::TooLarge {
                len: token.len(),
                max: MAX_ID_TOKEN_LEN,
            }
            .into());
        }
        let jws = Compact::split(token)?;
        let header = json_object(&jws.header, "the header is not a JSON object")?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            _ => return Err(Refusal::Malformed("the header has no alg").into()),
        };
        let algorithm =
            SigningAlgorithm::from_jose(alg).ok_or_else(|| Refusal::Algorithm(sanitise(alg)))?;
        if header.contains_key("crit") {
            return Err(Refusal::CriticalHeader.into());
        }
        if jws.signature.is_empty() {
            return Err(Refusal::Malformed("no signature").into());
        }
        let kid = match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => kid.as_str(),
            _ => return Err(Refusal::MissingKeyId.into()),
        };
        let payload = json_object(&jws.payload, "the claims are not a JSON object")?;
        let iss = match payload.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            _ => return Err(Refusal::MissingClaim("iss").into()),
        };
        let (trusted, issuer) = inner
            .issuers
            .iter()
            .find_map(|t| t.admit(iss).map(|url| (t, url)))
            .ok_or_else(|| Refusal::UntrustedIssuer(sanitise(iss)))?;
        let keys = inner.keys_of(trusted, issuer);
        let rules = FetchRules {
            fetcher: &inner.fetcher,
            clock: &*inner.clock,
            timeout: inner.fetch_timeout,
            max_document_len: inner.max_document_len,
            refetch_interval: inner.refetch_interval,
            max_key_age: inner.max_key_age,
        };
        let key = match keys.key(kid, &rules).await {
            Ok(Lookup::Found(key)) => key,
            Ok(Lookup::Unknown) => {
                return Err(Refusal::UnknownKeyId {
                    issuer: keys.issuer().to_string(),
                    kid: sanitise(kid),
                }
                .into());
            }
            Err(source) => {
                return Err(VerifyError::IssuerUnavailable {
                    issuer: keys.issuer().to_string(),
                    source,
                });
            }
        };
        if key.algorithm != algorithm {
            return Err(Refusal::AlgorithmNotDeclared {
                token: algorithm,
                key: key.algorithm,
                kid: sanitise(kid),
            }
            .into());
        }
        let verified = jsonwebtoken::crypto::verify(
            jws.signature,
            jws.signing_input.as_bytes(),
            &key.key,
            algorithm.to_jsonwebtoken(),
        );
        if !matches!(verified, Ok(true)) {
            return Err(Refusal::BadSignature.into());
        }

        // Signed by the issuer: now the claims.
        let issuer = keys.issuer().clone();
        self.check_audience(&payload)?;
        let now = inner.clock.now();
        let expires_at = time_claim(&payload, "exp")?.ok_or(Refusal::MissingClaim("exp"))?;
        let issued_at = time_claim(&payload, "iat")?.ok_or(Refusal::MissingClaim("iat"))?;
        let not_before = time_claim(&payload, "nbf")?;
        if now > expires_at + inner.leeway {
            return Err(Refusal::Expired {
                expired_at: expires_at,
            }
            .into());
        }
        if let Some(not_before) = not_before
            && not_before > now + inner.leeway
        {
            return Err(Refusal::NotYetValid { not_before }.into());
        }
        if issued_at > now + inner.leeway {
            return Err(Refusal::IssuedInFuture { issued_at }.into());
        }
        let claims = Payload(&payload);
        let jti = claims.required("jti")?;
        let subject = claims.optional("sub")?;
        let provider_claims = match trusted.provider() {
            Provider::GitHub => ProviderClaims::GitHub(claims.github()?),
            Provider::GitLab => ProviderClaims::GitLab(claims.gitlab()?),
            Provider::CircleCi => ProviderClaims::CircleCi(claims.circleci(&issuer)?),
        };

        // Last: single use. Remembered through the leeway past `exp`, as long as the
        // token could be accepted.
        let replay_key = ReplayKey::new(issuer.as_str(), jti.as_str());
        match inner
            .guard
            .first_use(&replay_key, expires_at + inner.leeway, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(Refusal::Replayed.into()),
            Err(error) => return Err(VerifyError::ReplayGuardUnavailable(error)),
        }
        Ok(VerifiedIdToken {
            issuer,
            subject,
            jti,
            issued_at,
            expires_at,
            claims: provider_claims,
        })
    }

    fn check_audience(&self, payload: &Map<String, Value>) -> Result<(), Refusal> {
        let expected = self.inner.audience.as_str();
        let found = match payload.get("aud") {
            None | Some(Value::Null) => return Err(Refusal::MissingClaim("aud")),
            Some(Value::String(aud)) if aud == expected => return Ok(()),
            Some(Value::Array(auds)) if auds.len() == 1 && auds[0].as_str() == Some(expected) => {
                return Ok(());
            }
            Some(Value::String(aud)) => sanitise(aud),
            Some(other) => sanitise(&other.to_string()),
        };
        Err(Refusal::WrongAudience {
            expected: expected.to_owned(),
            found,
        })
    }
}

impl<F, R> Inner<F, R> {
    /// The key cache of an admitted issuer: built at start for exact issuers, on demand
    /// for organisations' (at most [`MAX_CIRCLECI_ORGS`]; the least recently fetched goes).
    fn keys_of(&self, trusted: &TrustedIssuer, issuer: IssuerUrl) -> Arc<IssuerKeys> {
        if !trusted.is_template()
            && let Some(keys) = self.exact.get(issuer.as_str())
        {
            return keys.clone();
        }
        let mut orgs = self.orgs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = orgs.get(issuer.as_str()) {
            return keys.clone();
        }
        if orgs.len() >= MAX_CIRCLECI_ORGS {
            let oldest = orgs
                .iter()
                .min_by_key(|(_, keys)| keys.last_attempt())
                .map(|(iss, _)| iss.clone());
            if let Some(oldest) = oldest {
                orgs.remove(&oldest);
            }
        }
        let keys = Arc::new(IssuerKeys::new(issuer.clone()));
        orgs.insert(issuer.as_str().to_owned(), keys.clone());
        keys
    }
}

impl<F: HttpFetch, R: ReplayGuard> IdTokenVerifierBuilder<F, R> {
    /// The default leeway on `exp`, `nbf` and `iat`: clocks differ by this much.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
    /// The default time for fetching an issuer's keys (discovery and key set together).
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default shortest time between two fetches of one issuer's keys.
    pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
    /// The default age after which cached keys are fetched again on their next use (a
    /// key the issuer withdrew stops working then).
    pub const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(60 * 60);

    /// Trusts `issuer` as well.
    pub fn issuer(mut self, issuer: TrustedIssuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The clock for the time claims and the refetch interval (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The leeway on time claims (default [`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY)),
    /// at most five minutes.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(Duration::from_secs(300));
        self
    }

    /// How long fetching one issuer's keys may take (default
    /// [`DEFAULT_FETCH_TIMEOUT`](Self::DEFAULT_FETCH_TIMEOUT)).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The shortest time between two fetches of one issuer's keys (default
    /// [`DEFAULT_REFETCH_INTERVAL`](Self::DEFAULT_REFETCH_INTERVAL)).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// How old cached keys may grow before their next use fetches them again (default
    /// [`DEFAULT_MAX_KEY_AGE`](Self::DEFAULT_MAX_KEY_AGE)). If that fetch fails, the
    /// cached keys go on being used.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// The cap on a fetched document (default [`DEFAULT_MAX_DOCUMENT_LEN`]).
    pub fn max_document_len(mut self, len: usize) -> Self {
        self.max_document_len = len;
        self
    }

    /// The verifier.
    pub fn build(self) -> IdTokenVerifier<F, R> {
        let exact = self
            .issuers
            .iter()
            .filter(|t| !t.is_template())
            .map(|t| {
                let url = t.url().clone();
                (url.as_str().to_owned(), Arc::new(IssuerKeys::new(url)))
            })
            .collect();
        IdTokenVerifier {
            inner: Arc::new(Inner {
                audience: self.audience,
                issuers: self.issuers,
                exact,
                orgs: Mutex::new(HashMap::new()),
                fetcher: self.fetcher,
                guard: self.guard,
                clock: self.clock,
                leeway: self.leeway,
                fetch_timeout: self.fetch_timeout,
                refetch_interval: self.refetch_interval,
                max_key_age: self.max_key_age,
                max_document_len: self.max_document_len,
            }),
        }
    }
}

impl<F, R> fmt::Debug for IdTokenVerifier<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("audience", &self.inner.audience)
            .field("issuers", &self.inner.issuers)
            .field("leeway", &self.inner.leeway)
            .finish_non_exhaustive()
    }
}

impl<F, R> fmt::Debug for IdTokenVerifierBuilder<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifierBuilder")
            .field("audience", &self.audience)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

/// A compact JWS split into its parts, the header and claims decoded.
struct Compact<'a> {
    header: Vec<u8>,
    payload: Vec<u8>,
    signature: &'a str,
    signing_input: &'a str,
}

impl<'a> Compact<'a> {
    fn split(token: &'a str) -> Result<Self, Refusal> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed("not three dot-separated parts"));
        };
        // An empty signature (as `alg: none` has) is refused once the header's algorithm
        // has been, so that the refusal names the algorithm.
        if header.is_empty() || payload.is_empty() {
            return Err(Refusal::Malformed("an empty part"));
        }
        let decode = |part: &str, what| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| Refusal::Malformed(what))
        };
        Ok(Self {
            header: decode(header, "the header is not base64url")?,
            payload: decode(payload, "the claims are not base64url")?,
            signature,
            signing_input: &token[..header.len() + 1 + payload.len()],
        })
    }
}

fn json_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, Refusal> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Malformed(what)),
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional).
fn time_claim(
    payload: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<SystemTime>, Refusal> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12);
            secs.map(|s| Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s)))
                .ok_or(Refusal::InvalidClaim(name))
        }
        Some(_) => Err(Refusal::InvalidClaim(name)),
    }
}
