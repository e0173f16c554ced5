//! [`TokenAuthLayer`]: the tower `Layer` that puts the gate in front of a service, and the
//! builder of its configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, Method, Response};
use tower::Layer;

use super::limit::FailureLimit;
use super::respond::{Respond, ResponseStyle};
use super::service::{Config, Mode, RequestHead, TokenAuth};
use super::source::CookieSource;
use super::summary::RefusalSummary;
use crate::access::{Action, Resource};
use crate::client_ip::TrustedProxies;
use crate::reason::Rejection;
use crate::second_factor::{OTP_HEADER, SecondFactorRequest, SecondFactorVerdict, boxed_check};
use crate::store::DynStore;
use crate::tokens::Tokens;

/// Puts a bearer-token gate in front of a service.
///
/// For every request: read `Authorization: Bearer <token>`, check it with [`Tokens`]
/// (format, cache or store, constant-time digest, revocation, expiry, allow-list,
/// read-only against writes), and either call the inner service with
/// [`Authenticated`](crate::Authenticated) in the request extensions or answer with a
/// refusal. Refusals are responses, never errors, so axum needs no `HandleErrorLayer`.
///
/// With axum, prefer `Router::route_layer` to `Router::layer` in required mode: `layer`
/// also wraps the fallback, so a request for a path that does not exist is answered 401
/// instead of 404.
///
/// Cheap to clone: the configuration sits behind one `Arc`.
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use tokengate::{Authenticated, TokenAuthLayer, Tokens, store::MemoryStore};
///
/// # fn main() -> Result<(), tokengate::InvalidPrefix> {
/// let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();
///
/// async fn whoami(Extension(who): Extension<Authenticated>) -> String {
///     who.owner().to_owned()
/// }
///
/// let app: Router = Router::new()
///     .route("/-/whoami", get(whoami))
///     .route_layer(TokenAuthLayer::new(tokens.clone()));
///
/// // Public routes go outside the layer, or under `.optional()`.
/// let public: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .route_layer(TokenAuthLayer::new(tokens).optional());
/// # let _ = (app, public);
/// # Ok(())
/// # }
/// ```
pub struct TokenAuthLayer<St = DynStore> {
    config: Arc<Config<St>>,
}

impl<St> TokenAuthLayer<St> {
    /// A gate in required mode: a request without a token is refused with 401. Writes are
    /// every method but GET, HEAD, OPTIONS and TRACE ([`Action::of_method`]); the client
    /// address is the peer's; refusals follow RFC 6750 with the realm `tokengate`.
    pub fn new(tokens: Tokens<St>) -> Self {
        Self {
            config: Arc::new(Config {
                tokens,
                mode: Mode::Required,
                action_of: Arc::new(|request: &RequestHead<'_>| Action::of_method(request.method)),
                resource_of: None,
                second_factor: None,
                otp_header: HeaderName::from_static(OTP_HEADER),
                trusted_proxies: TrustedProxies::none(),
                respond: Respond::Style(ResponseStyle::default()),
                cookie: None,
                token_from: None,
                failures: None,
                summary: Arc::new(RefusalSummary::new(Duration::from_secs(60))),
            }),
        }
    }

    fn edit(mut self, change: impl FnOnce(&mut Config<St>)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Optional mode: a request with no bearer token (no Authorization header, or another
    /// scheme such as `Basic`) reaches the inner service without
    /// [`Authenticated`](crate::Authenticated). A bearer token that is present but not
    /// valid is still refused.
    pub fn optional(self) -> Self {
        self.edit(|c| c.mode = Mode::Optional)
    }

    /// Required mode (the default): no token, no entry.
    pub fn required(self) -> Self {
        self.edit(|c| c.mode = Mode::Required)
    }

    /// Which [`Action`] each method is; writes are refused to read-only tokens. The
    /// default is [`Action::of_method`]. `X-HTTP-Method-Override` and similar headers are
    /// never read: the method is the request's own.
    pub fn actions(self, action_of: impl Fn(&Method) -> Action + Send + Sync + 'static) -> Self {
        self.request_actions(move |request| action_of(request.method))
    }

    /// Which [`Action`] each request is, told from its head (method, path, headers):
    /// for actions no method says by itself, such as [`Action::Stage`] for an upload
    /// that a person later approves. Replaces [`actions`](Self::actions). A
    /// [`Permission::ReadStage`](crate::Permission::ReadStage) grant passes a stage and
    /// is refused a write with 403 saying to stage instead; only writes ask for a second
    /// factor; a stage with a cookie-borne token needs the same-origin check a write
    /// does.
    ///
    /// ```
    /// use tokengate::{Action, TokenAuthLayer, Tokens, store::MemoryStore};
    ///
    /// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new())).request_actions(|request| {
    ///     match Action::of_method(request.method) {
    ///         Action::Write if request.uri.path().starts_with("/-/stage/package/") => Action::Stage,
    ///         action => action,
    ///     }
    /// });
    /// # let _ = layer;
    /// ```
    pub fn request_actions(
        self,
        action_of: impl Fn(&RequestHead<'_>) -> Action + Send + Sync + 'static,
    ) -> Self {
        self.edit(|c| c.action_of = Arc::new(action_of))
    }

    /// Which resource each request touches, so that a token's [`Grants`](crate::Grants)
    /// decide: a request to a resource the token may not touch, or may only read, is
    /// refused with 403 before the inner service runs, naming the resource and the grant.
    /// Without a resolver (or when it answers `None`), a request is held to the token's
    /// broadest grant.
    ///
    /// The resolver sees the request's head only, before any body is read; a handler that
    /// learns the resource from the body checks it with
    /// [`Authenticated::check`](crate::Authenticated::check). Resolve exactly as your
    /// router routes (percent-decoding included), or check again in the handler.
    ///
    /// ```
    /// use tokengate::{Resource, TokenAuthLayer, Tokens, store::MemoryStore};
    ///
    /// // `/<package>` and `/<package>/-/<tarball>`: the package is the resource.
    /// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new())).resources(|request| {
    ///     let path = request.uri.path().strip_prefix('/')?;
    ///     let package = path.split("/-/").next()?;
    ///     (!package.is_empty() && !package.starts_with('-')).then(|| Resource::new(package))
    /// });
    /// # let _ = layer;
    /// ```
    pub fn resources(
        self,
        resource_of: impl Fn(&RequestHead<'_>) -> Option<Resource> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|c| c.resource_of = Some(Arc::new(resource_of)))
    }

    /// Asks `check` before every write a token is accepted for: whether a second factor is
    /// needed and, when the request carries a one-time password (in the `npm-otp` header;
    /// see [`otp_header`](Self::otp_header)), whether it is right. A write that needs a
    /// code and lacks one, or carries a wrong one, is refused with 401 (npm's CLI then asks
    /// for a code); one whose check cannot be made, with 503. Reads never ask, and a
    /// cached read stays answered without awaiting anything.
    ///
    /// The check owns the policy: which owners have a second factor, which writes need it,
    /// whether a token that bypasses it ([`SecondFactorRequest::token_bypasses`]) may skip
    /// it, and that each code is accepted once.
    ///
    /// ```
    /// use tokengate::{SecondFactorVerdict, TokenAuthLayer, Tokens, store::MemoryStore};
    ///
    /// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new())).second_factor(
    ///     |request| async move {
    ///         // Look the owner up; here, everyone has 2FA and the code is always 123456.
    ///         match &request.code {
    ///             _ if request.token_bypasses() => SecondFactorVerdict::Pass,
    ///             None => SecondFactorVerdict::CodeRequired,
    ///             Some(code) if code.expose() == "123456" => SecondFactorVerdict::Pass,
    ///             Some(_) => SecondFactorVerdict::CodeRejected,
    ///         }
    ///     },
    /// );
    /// # let _ = layer;
    /// ```
    pub fn second_factor<F, Fut>(self, check: F) -> Self
    where
        F: Fn(SecondFactorRequest) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = SecondFactorVerdict> + Send + 'static,
    {
        self.edit(|c| c.second_factor = Some(boxed_check(check)))
    }

    /// Answers `429 Too Many Requests` (with `Retry-After`) to a client address that has
    /// made too many failed attempts, before its next attempt reaches the store; see
    /// [`FailureLimit`]. Off unless set.
    pub fn limit_failures(self, limit: FailureLimit) -> Self {
        self.edit(|c| c.failures = Some(limit))
    }

    /// How often refusals are summed up in the log (default every 60 s). Each refusal is
    /// logged at DEBUG; the summary, counts by reason, at INFO, or WARN past 1,000.
    pub fn refusal_summary(self, every: Duration) -> Self {
        self.edit(|c| c.summary = Arc::new(RefusalSummary::new(every)))
    }

    /// The header a one-time password is read from (default `npm-otp`, as npm sends it).
    /// Its value is marked sensitive, so that it does not reach logs.
    pub fn otp_header(self, header: HeaderName) -> Self {
        self.edit(|c| c.otp_header = header)
    }

    /// Where else a token may be, for clients that cannot send `Authorization: Bearer`
    /// (a custom header, say): asked only when the request has no bearer token, before the
    /// cookie. A token found here is held to everything a bearer token is; it is not a
    /// browser's, so its writes need no same-origin check. Make sure what you read is not
    /// something a browser attaches by itself (as it does cookies), or a cross-site page
    /// could write with it.
    ///
    /// ```
    /// use tokengate::{TokenAuthLayer, Tokens, store::MemoryStore};
    ///
    /// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new())).token_from(|request| {
    ///     let value = request.headers.get("x-api-token")?.to_str().ok()?;
    ///     Some(value.trim().to_owned())
    /// });
    /// # let _ = layer;
    /// ```
    pub fn token_from(
        self,
        token_from: impl Fn(&RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|c| c.token_from = Some(Arc::new(token_from)))
    }

    /// Proxies whose `X-Forwarded-For` is believed; see [`TrustedProxies::client_ip`].
    /// The default, [`TrustedProxies::none`], makes the peer address the client address.
    pub fn trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.edit(|c| c.trusted_proxies = proxies)
    }

    /// RFC 6750 refusals naming this realm in `WWW-Authenticate`.
    pub fn realm(self, realm: &str) -> Self {
        self.response_style(ResponseStyle::rfc6750(realm))
    }

    /// Refusals in npm's dialect (see [`ResponseStyle::npm`]).
    pub fn npm_responses(self, realm: &str) -> Self {
        self.response_style(ResponseStyle::npm(realm))
    }

    /// Refusals written in one of the shipped styles.
    pub fn response_style(self, style: ResponseStyle) -> Self {
        self.edit(|c| c.respond = Respond::Style(style))
    }

    /// Refusals written by your own function, which sees why and the refused request's
    /// head: your dialect, your headers, a redirect for browsers.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode, header::LOCATION};
    /// use tokengate::{Reason, TokenAuthLayer, Tokens, store::MemoryStore};
    ///
    /// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new())).respond_with(|rejection, request| {
    ///     let mut response = Response::new(Bytes::new());
    ///     match rejection.reason() {
    ///         Reason::StoreUnavailable => *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
    ///         _ if request.uri.path().starts_with("/account") => {
    ///             *response.status_mut() = StatusCode::SEE_OTHER;
    ///             response.headers_mut().insert(LOCATION, "/login".parse().unwrap());
    ///         }
    ///         _ => *response.status_mut() = StatusCode::NOT_FOUND, // hide that anything is here
    ///     }
    ///     response
    /// });
    /// # let _ = layer;
    /// ```
    pub fn respond_with(
        self,
        respond: impl Fn(&Rejection, &Parts) -> Response<Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|c| c.respond = Respond::With(Arc::new(respond)))
    }

    /// Also reads the token from the cookie `name`, for browsers, when the request has no
    /// bearer token (`Authorization: Bearer` wins when both are present).
    ///
    /// A token from the cookie is a browser's, and a browser sends cookies with requests
    /// that other sites make it send. So every write made with a cookie-borne token must
    /// show that it came from this site's own pages before anything else is checked:
    /// `Sec-Fetch-Site: same-origin`, or else an `Origin` that is this site's (see
    /// [`allowed_origin`](Self::allowed_origin) and [`same_origin`](crate::same_origin)).
    /// A write that shows neither is refused with [`Reason::CrossSiteRequest`](crate::Reason::CrossSiteRequest)
    /// (403), and the inner service never runs. Reads need no check. The `Cookie` header is
    /// marked sensitive, so that it does not reach logs.
    ///
    /// Set the cookie `HttpOnly` and `SameSite=Strict` (and `Secure` over HTTPS): the check
    /// here is the second line of defence, not the only one.
    ///
    /// ```
    /// use axum::{Extension, Router, routing::{get, post}};
    /// use http::{Request, StatusCode};
    /// use tokengate::{Authenticated, NewToken, TokenAuthLayer, Tokens, store::MemoryStore};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();
    /// let session = tokens.create("alice", NewToken::session()).await?.token;
    ///
    /// async fn who(Extension(who): Extension<Authenticated>) -> String {
    ///     who.owner().to_owned()
    /// }
    /// let app: Router = Router::new()
    ///     .route("/account", get(who).post(who))
    ///     .route_layer(
    ///         TokenAuthLayer::new(tokens)
    ///             .cookie_token("tg_session")
    ///             .allowed_origin("http://127.0.0.1:4873"),
    ///     );
    /// let cookie = format!("tg_session={}", session.expose_secret());
    /// let send = |method: &str, origin: Option<&str>| {
    ///     let mut request = Request::builder().method(method).uri("/account").header("cookie", &cookie);
    ///     if let Some(origin) = origin {
    ///         request = request.header("origin", origin);
    ///     }
    ///     app.clone().oneshot(request.body(axum::body::Body::empty()).unwrap())
    /// };
    /// // Reads need no check; writes from the site's own pages pass, forged ones do not.
    /// assert_eq!(send("GET", None).await?.status(), StatusCode::OK);
    /// assert_eq!(send("POST", Some("http://127.0.0.1:4873")).await?.status(), StatusCode::OK);
    /// assert_eq!(send("POST", Some("https://evil.example")).await?.status(), StatusCode::FORBIDDEN);
    /// assert_eq!(send("POST", None).await?.status(), StatusCode::FORBIDDEN);
    /// # Ok(())
    /// # }
    /// ```
    pub fn cookie_token(self, name: &str) -> Self {
        let name = name.to_owned();
        self.edit(|c| match &mut c.cookie {
            Some(cookie) => cookie.name = name,
            None => {
                c.cookie = Some(CookieSource {
                    name,
                    origins: Vec::new(),
                });
            }
        })
    }

    /// An origin (`scheme://host[:port]`, as browsers write `Origin`) whose pages may
    /// write with a cookie-borne token; call it once per origin. Without any, the origin
    /// must name the request's own `Host` (over `http` or `https`). Has no effect without
    /// [`cookie_token`](Self::cookie_token). `Sec-Fetch-Site: same-origin` passes either way.
    pub fn allowed_origin(self, origin: &str) -> Self {
        let origin = origin.trim_end_matches('/').to_owned();
        self.edit(|c| {
            c.cookie
                .get_or_insert_with(|| CookieSource {
                    name: String::new(),
                    origins: Vec::new(),
                })
                .origins
                .push(origin)
        })
    }

    /// The token manager behind this layer.
    pub fn tokens(&self) -> &Tokens<St> {
        &self.config.tokens
    }
}

impl<St> Clone for TokenAuthLayer<St> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<St> fmt::Debug for TokenAuthLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl<S, St> Layer<S> for TokenAuthLayer<St> {
    type Service = TokenAuth<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenAuth::new(inner, Arc::clone(&self.config))
    }
}
