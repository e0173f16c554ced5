//! [`TokenAuth`]: the tower `Service` that checks each request's token, and the
//! configuration it runs with.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderName, Method, Request, Response, Uri};
use tower::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::limit::FailureLimit;
use super::respond::Respond;
use super::source::{CookieSource, same_origin};
use super::summary::RefusalSummary;
use crate::access::{Action, Resource};
use crate::bearer::Credentials;
use crate::client_ip::{TrustedProxies, peer_addr};
use crate::reason::{Reason, Rejection};
use crate::second_factor::{
    OneTimeCode, SecondFactorCheck, SecondFactorRequest, SecondFactorVerdict,
};
use crate::store::{DynStore, TokenStore};
use crate::tokens::{Authenticated, TokenEvent, Tokens};

/// Whether a request must carry a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No token, no entry.
    Required,
    /// No token: let through without `Authenticated`. A bad token is still refused.
    Optional,
}

pub(crate) type ActionOf = dyn Fn(&RequestHead<'_>) -> Action + Send + Sync;
pub(crate) type ResourceOf = dyn Fn(&RequestHead<'_>) -> Option<Resource> + Send + Sync;
pub(crate) type TokenFrom = dyn Fn(&RequestHead<'_>) -> Option<String> + Send + Sync;

/// What a resource resolver sees of a request: its head, before any body is read.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI, as the client sent it (paths still percent-encoded).
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The extensions: what layers and the router put there before the gate ran (with
    /// axum's `Router::layer`, the matched route, so that a resolver reads the resource
    /// from exactly the path segments the router matched).
    pub extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    fn of<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }
}

/// What a [`TokenAuth`] runs with; built by [`TokenAuthLayer`](crate::TokenAuthLayer).
pub(crate) struct Config<St> {
    pub(crate) tokens: Tokens<St>,
    pub(crate) mode: Mode,
    pub(crate) action_of: Arc<ActionOf>,
    pub(crate) resource_of: Option<Arc<ResourceOf>>,
    pub(crate) second_factor: Option<SecondFactorCheck>,
    pub(crate) otp_header: HeaderName,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) respond: Respond,
    /// A cookie the token may come from, when there is no bearer token.
    pub(crate) cookie: Option<CookieSource>,
    /// The application's own place for a token, asked when there is no bearer token.
    pub(crate) token_from: Option<Arc<TokenFrom>>,
    pub(crate) failures: Option<FailureLimit>,
    pub(crate) summary: Arc<RefusalSummary>,
}

impl<St> Clone for Config<St> {
    fn clone(&self) -> Self {
        Self {
            tokens: self.tokens.clone(),
            mode: self.mode,
            action_of: Arc::clone(&self.action_of),
            resource_of: self.resource_of.clone(),
            second_factor: self.second_factor.clone(),
            otp_header: self.otp_header.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            respond: self.respond.clone(),
            cookie: self.cookie.clone(),
            token_from: self.token_from.clone(),
            failures: self.failures.clone(),
            summary: Arc::clone(&self.summary),
        }
    }
}

impl<St> fmt::Debug for Config<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthLayer")
            .field("tokens", &self.tokens)
            .field("mode", &self.mode)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

/// The service made by [`TokenAuthLayer`](crate::TokenAuthLayer): checks each request's
/// token, then calls the inner service with [`Authenticated`] in the request extensions,
/// or answers with the refusal.
pub struct TokenAuth<S, St = DynStore> {
    inner: S,
    config: Arc<Config<St>>,
}

/// Put into the request extensions when the gate, in optional mode, lets a request through
/// without a token, so that extractors can tell "no token" from "no gate". (A request let
/// through with a token carries `Authenticated`, which says as much.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct GateRan;

impl<S, St> TokenAuth<S, St> {
    pub(crate) fn new(inner: S, config: Arc<Config<St>>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, St> Clone for TokenAuth<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for TokenAuth<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for TokenAuth<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    St: TokenStore,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, Request<ReqBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone may not be ready; the service that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = &self.config;
        if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
            value.set_sensitive(true);
        }

        if config.cookie.is_some() {
            // The cookie header carries a session: keep it out of logs too.
            for (name, value) in request.headers_mut().iter_mut() {
                if name == http::header::COOKIE {
                    value.set_sensitive(true);
                }
            }
        }

        // Everything up to the SHA-256 happens here, without allocating: missing and
        // malformed tokens are answered before any future is boxed. The bearer header wins
        // over the cookie; a token from the cookie is a browser's, and its writes must come
        // from the site's own pages.
        let credentials = Credentials::from_headers(request.headers());
        // The application's own source, asked only when there is no bearer token.
        let supplied = match (&credentials, &config.token_from) {
            (Ok(Credentials::None | Credentials::OtherScheme), Some(token_from)) => {
                token_from(&RequestHead::of(&request))
            }
            _ => None,
        };
        let source = match credentials {
            Ok(Credentials::Bearer(token)) => Ok(Some((token, false))),
            Ok(Credentials::None | Credentials::OtherScheme) => {
                Ok(supplied.as_deref().map(|token| (token, false)).or_else(|| {
                    config
                        .cookie
                        .as_ref()
                        .and_then(|cookie| cookie.token(request.headers()))
                        .map(|token| (token, true))
                }))
            }
            Err(problem) => Err(Rejection::new(Reason::MalformedHeader(problem), None)),
        };
        let action = (config.action_of)(&RequestHead::of(&request));
        let presented = match source {
            Ok(Some((_, true)))
                if action.changes()
                    && !config
                        .cookie
                        .as_ref()
                        .is_some_and(|cookie| same_origin(request.headers(), &cookie.origins)) =>
            {
                Err(Rejection::new(Reason::CrossSiteRequest, None))
            }
            Ok(Some((token, _))) => config.tokens.parse(token),
            Ok(None) if config.mode == Mode::Optional => {
                request.extensions_mut().insert(GateRan);
                return ResponseFuture::call(inner.call(request));
            }
            Ok(None) => Err(Rejection::new(Reason::MissingToken, None)),
            Err(rejection) => Err(rejection),
        };
        let presented = match presented {
            Ok(presented) => presented,
            Err(rejection) => return ResponseFuture::refused(refuse(config, &rejection, request)),
        };
        let resource = config
            .resource_of
            .as_ref()
            .and_then(|resource_of| resource_of(&RequestHead::of(&request)));

        // A cached token is answered here, synchronously: nothing boxed, nothing awaited.
        let client = || {
            config
                .trusted_proxies
                .client_ip(peer_addr(request.extensions()), request.headers())
        };
        // Only writes ask the application for a second factor; reads never wait on it.
        let second_factor = match action {
            Action::Write => config.second_factor.clone(),
            _ => None,
        };
        let cached = config
            .tokens
            .authorize_cached(presented, client, action, resource.as_ref());
        let authenticated = match (cached, second_factor) {
            (Some(Ok(authenticated)), None) => {
                admit(&mut request, authenticated);
                return ResponseFuture::call(inner.call(request));
            }
            (Some(Err(rejection)), _) => {
                return ResponseFuture::refused(refuse(config, &rejection, request));
            }
            (Some(Ok(authenticated)), Some(_)) => Some(authenticated),
            (None, _) => None,
        };

        let client = authenticated.is_none().then(client).flatten();
        // About to ask the store: an address that has failed too often is told to wait.
        if authenticated.is_none() {
            if let Some(failures) = config.failures.as_ref() {
                if failures.exhausted(client) {
                    let rejection = Rejection::new(Reason::TooManyFailures, Some(presented.id))
                        .retry_after_secs(failures.retry_after());
                    return ResponseFuture::refused(refuse(config, &rejection, request));
                }
            }
        }
        let config = Arc::clone(config);
        let check = Box::pin(async move {
            let authenticated = match authenticated {
                Some(authenticated) => authenticated,
                None => match config
                    .tokens
                    .authorize_from_store(presented, client, action, resource.as_ref())
                    .await
                {
                    Ok(authenticated) => authenticated,
                    Err(rejection) => return Err(refuse(&config, &rejection, request)),
                },
            };
            if let Some(check) = config
                .second_factor
                .as_ref()
                .filter(|_| action == Action::Write)
            {
                let asked = SecondFactorRequest {
                    who: authenticated.clone(),
                    action,
                    resource: resource.clone(),
                    code: one_time_code(&mut request, &config.otp_header),
                };
                let refused = match check(asked).await {
                    SecondFactorVerdict::Pass => None,
                    SecondFactorVerdict::CodeRequired => Some(Reason::SecondFactorRequired),
                    SecondFactorVerdict::CodeRejected => Some(Reason::SecondFactorRejected),
                    SecondFactorVerdict::Unresolved => Some(Reason::UnresolvedWrite),
                    _ => Some(Reason::SecondFactorUnavailable),
                };
                if let Some(reason) = refused {
                    let rejection = Rejection::new(reason, Some(authenticated.token_id()));
                    return Err(refuse(&config, &rejection, request));
                }
            }
            admit(&mut request, authenticated);
            Ok(request)
        });
        ResponseFuture::check(check, inner)
    }
}

/// The one-time password the request carries, its header marked sensitive on the way.
fn one_time_code<B>(request: &mut Request<B>, header: &HeaderName) -> Option<OneTimeCode> {
    let value = request.headers_mut().get_mut(header)?;
    value.set_sensitive(true);
    let code = value.to_str().ok()?.trim();
    (!code.is_empty()).then(|| OneTimeCode::new(code))
}

/// Hands the accepted token to the inner service, and names it on the current span (for
/// `TraceLayer` spans that declare `token_id` and `owner`).
fn admit<B>(request: &mut Request<B>, authenticated: Authenticated) {
    if tracing::dispatcher::has_been_set() {
        let span = tracing::Span::current();
        span.record(
            "token_id",
            tracing::field::display(authenticated.token_id()),
        );
        span.record("owner", authenticated.owner());
    }
    request.extensions_mut().insert(authenticated);
}

/// Logs a refusal (the token id when known, never the token), tells the event hook, and
/// writes the response.
fn refuse<St, B>(
    config: &Config<St>,
    rejection: &Rejection,
    request: Request<B>,
) -> Response<bytes::Bytes> {
    let (parts, _body) = request.into_parts();
    // Worked out once, and only for the limiter, a log line or an event hook that reads it.
    let client_ip = std::cell::OnceCell::new();
    let client = || {
        *client_ip.get_or_init(|| {
            config
                .trusted_proxies
                .client_ip(peer_addr(&parts.extensions), &parts.headers)
        })
    };
    // A failure from a client that has used up its failures is told to wait, whatever it
    // failed on: a malformed token or a cached answer as much as one the store gave.
    let limited;
    let rejection = match &config.failures {
        Some(failures) if counts_as_failure(rejection.reason()) => {
            if failures.exhausted(client()) {
                limited = Rejection::new(Reason::TooManyFailures, rejection.token_id())
                    .retry_after_secs(failures.retry_after());
                &limited
            } else {
                failures.record(client());
                rejection
            }
        }
        _ => rejection,
    };
    let reason = rejection.reason();
    let token_id = rejection.token_id().map(tracing::field::display);
    // Some clients put a whole token in a path (npm's logout does): never log it. Built
    // only for a log line or an event hook that will read it (the macros evaluate their
    // fields only when enabled): a flood of refusals is cheap to refuse.
    let shown_path = std::cell::OnceCell::new();
    let path = || {
        shown_path
            .get_or_init(|| logged_path(parts.uri.path(), config.tokens.prefix().as_str()))
            .as_ref()
    };
    config.summary.count(reason);
    if reason == Reason::StoreUnavailable {
        tracing::warn!(token_id, ?reason, client = ?client(), method = %parts.method, path = %path(), "request refused");
    } else {
        tracing::debug!(token_id, ?reason, client = ?client(), method = %parts.method, path = %path(), "request refused");
    }
    config.tokens.emit(|| TokenEvent::Refused {
        rejection,
        client: client(),
        method: Some(&parts.method),
        path: Some(path()),
    });
    config.respond.to(rejection, &parts)
}

/// Most bytes of a request's path that reach a log line or an event hook; the rest is cut,
/// and the cut says how many bytes it took.
const MAX_LOGGED_PATH: usize = 256;

/// How many times a segment is percent-decoded when looking for a token in it: a path
/// encoded twice over (`npm%255F…`) still holds one.
const DECODE_ROUNDS: usize = 3;

/// `path` as it may be logged: every segment that holds a token cut out
/// ([`without_tokens`]), then at most [`MAX_LOGGED_PATH`] bytes of it.
fn logged_path<'a>(path: &'a str, prefix: &str) -> Cow<'a, str> {
    match without_tokens(path, prefix) {
        Cow::Borrowed(path) => bounded(path).map_or(Cow::Borrowed(path), Cow::Owned),
        Cow::Owned(path) => Cow::Owned(bounded(&path).unwrap_or(path)),
    }
}

/// `path` cut to at most [`MAX_LOGGED_PATH`] bytes at a character boundary, with a marker
/// saying how many bytes were cut; `None` when it is short enough as it is.
fn bounded(path: &str) -> Option<String> {
    if path.len() <= MAX_LOGGED_PATH {
        return None;
    }
    let end = (0..=MAX_LOGGED_PATH)
        .rev()
        .find(|&end| path.is_char_boundary(end))
        .unwrap_or(0);
    let cut = path.len() - end;
    Some(format!("{}…[{cut} more bytes]", &path[..end]))
}

/// `path` with every segment that holds `<prefix>_` (the start of one of this manager's
/// tokens), as it is or once percent-decoded (`npm%5F…`, `%6Epm_…`), cut to `…token…`.
fn without_tokens<'a>(path: &'a str, prefix: &str) -> Cow<'a, str> {
    if !path.contains('%') && !holds_token(path.as_bytes(), prefix) {
        return Cow::Borrowed(path);
    }
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if holds_encoded_token(segment, prefix) {
                "…token…"
            } else {
                segment
            }
        })
        .collect();
    let cleaned = segments.join("/");
    if cleaned == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(cleaned)
    }
}

/// Whether `text` holds `<prefix>_` anywhere, overlapping places too: with a prefix such as
/// `aa`, `aaa_…` holds a token from its second byte, which non-overlapping matches skip.
fn holds_token(text: &[u8], prefix: &str) -> bool {
    let prefix = prefix.as_bytes();
    text.windows(prefix.len() + 1)
        .any(|window| window.ends_with(b"_") && window.starts_with(prefix))
}

/// Whether `segment` holds a token as it is, or after up to [`DECODE_ROUNDS`] rounds of
/// percent-decoding.
fn holds_encoded_token(segment: &str, prefix: &str) -> bool {
    let mut text = segment.as_bytes().to_vec();
    for _ in 0..=DECODE_ROUNDS {
        if holds_token(&text, prefix) {
            return true;
        }
        match percent_decoded(&text) {
            Some(decoded) => text = decoded,
            None => return false,
        }
    }
    false
}

/// `text` with each `%` and two hex digits (either case) turned into its byte; other bytes,
/// and a `%` that starts no escape, kept. `None` when there is no escape to decode.
fn percent_decoded(text: &[u8]) -> Option<Vec<u8>> {
    let hex = |byte: u8| char::from(byte).to_digit(16).map(|digit| digit as u8);
    let mut decoded = Vec::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some((&byte, tail)) = rest.split_first() {
        let escape = match tail {
            [high, low, ..] if byte == b'%' => hex(*high).zip(hex(*low)),
            _ => None,
        };
        match escape {
            Some((high, low)) => {
                decoded.push(high << 4 | low);
                changed = true;
                rest = &tail[2..];
            }
            None => {
                decoded.push(byte);
                rest = tail;
            }
        }
    }
    changed.then_some(decoded)
}

/// Refusals that look like guessing: they count against the client's [`FailureLimit`].
fn counts_as_failure(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::MalformedHeader(_)
            | Reason::Malformed(_)
            | Reason::UnknownToken
            | Reason::SecretMismatch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_paths_never_reach_the_log() {
        struct Case {
            what: &'static str,
            prefix: &'static str,
            path: String,
            logged: String,
        }
        let case = |what, prefix, path: &str, logged: &str| Case {
            what,
            prefix,
            path: path.to_owned(),
            logged: logged.to_owned(),
        };
        let long = "a".repeat(300);
        let cases = [
            case("a path without a token", "npm", "/-/whoami", "/-/whoami"),
            case(
                "a token as it is",
                "npm",
                "/-/user/token/npm_AbC123secret",
                "/-/user/token/…token…",
            ),
            case(
                "a token after an escape",
                "npm",
                "/x/%20npm_AbC/y",
                "/x/…token…/y",
            ),
            case("the prefix as a word", "npm", "/npm-tools", "/npm-tools"),
            case(
                "a prefix that overlaps itself",
                "aa",
                "/-/user/token/aaa_AbC123secret",
                "/-/user/token/…token…",
            ),
            case(
                "a prefix that overlaps itself twice",
                "abab",
                "/x/ababab_AbC123secret",
                "/x/…token…",
            ),
            case(
                "an escaped underscore",
                "npm",
                "/-/user/token/npm%5FAbC123secret",
                "/-/user/token/…token…",
            ),
            case(
                "an escaped underscore in lower case",
                "npm",
                "/-/user/token/npm%5fAbC123secret",
                "/-/user/token/…token…",
            ),
            case(
                "an escaped prefix",
                "npm",
                "/x/%6Epm_AbC123secret/y",
                "/x/…token…/y",
            ),
            case(
                "everything escaped",
                "npm",
                "/x/%6e%70%6D%5f%41bC123secret",
                "/x/…token…",
            ),
            case(
                "escaped twice",
                "npm",
                "/x/npm%255FAbC123secret",
                "/x/…token…",
            ),
            case(
                "an escape that decodes to no token",
                "npm",
                "/npm%2Dtools/%5F",
                "/npm%2Dtools/%5F",
            ),
            case("a broken escape", "npm", "/x/npm%5/npm%", "/x/npm%5/npm%"),
            case(
                "a path of the longest length kept",
                "npm",
                &format!("/{}", &long[..255]),
                &format!("/{}", &long[..255]),
            ),
            case(
                "a path one byte too long",
                "npm",
                &format!("/{}", &long[..256]),
                &format!("/{}…[1 more bytes]", &long[..255]),
            ),
            case(
                "a long path",
                "npm",
                &format!("/{long}"),
                &format!("/{}…[45 more bytes]", &long[..255]),
            ),
            case(
                "a long path is cut after its tokens",
                "npm",
                &format!("/npm_AbC123secret/{long}"),
                &format!("/…token…/{}…[57 more bytes]", &long[..243]),
            ),
            case(
                "a cut that would split a character",
                "npm",
                &format!("/{}/npm_AbC123secret", &long[..252]),
                &format!("/{}/…[11 more bytes]", &long[..252]),
            ),
        ];
        for case in cases {
            let logged = logged_path(&case.path, case.prefix);
            assert_eq!(logged, case.logged, "{}", case.what);
            assert!(
                logged.len() <= MAX_LOGGED_PATH + "…[999 more bytes]".len(),
                "{}",
                case.what
            );
        }
    }
}
