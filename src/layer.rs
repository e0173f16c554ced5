//! [`TokenAuthLayer`]: the configuration of the gate, and the tower `Layer` that puts it in
//! front of a service.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use tower::Layer;

use crate::cidr::CidrList;
use crate::reject::{Rejection, ResponseStyle};
use crate::service::TokenAuth;
use crate::tokens::Tokens;

type WritePredicate = dyn Fn(&Method) -> bool + Send + Sync;
type RespondFn = dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync;

/// Puts a bearer-token gate in front of a service.
///
/// For every request: read `Authorization: Bearer <token>`, check it with [`Tokens`]
/// (format, cache or store, constant-time digest, revocation, expiry, allow-list,
/// read-only against writes), and either call the inner service with
/// [`Authenticated`](crate::Authenticated) in the request extensions or answer with a
/// refusal. Refusals are responses, never errors, so axum needs no `HandleErrorLayer`.
///
/// Cheap to clone: the configuration sits behind one `Arc`.
///
/// ```
/// use axum::{Router, routing::get, Extension};
/// use tokengate::{Authenticated, MemoryStore, TokenAuthLayer, Tokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = Tokens::builder(MemoryStore::new()).prefix("npm")?.build();
///
/// async fn whoami(Extension(who): Extension<Authenticated>) -> String {
///     who.owner().to_owned()
/// }
///
/// let app: Router = Router::new()
///     .route("/-/whoami", get(whoami))
///     .layer(TokenAuthLayer::new(tokens.clone()));
///
/// // Public routes go outside the layer, or under `.optional()`.
/// let public: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(TokenAuthLayer::new(tokens).optional());
/// # let _ = (app, public);
/// # Ok(())
/// # }
/// ```
pub struct TokenAuthLayer<St> {
    config: Arc<Config<St>>,
}

pub(crate) struct Config<St> {
    pub(crate) tokens: Tokens<St>,
    pub(crate) optional: bool,
    pub(crate) is_write: Arc<WritePredicate>,
    pub(crate) trusted_proxies: CidrList,
    pub(crate) respond: Respond,
}

#[derive(Clone)]
pub(crate) enum Respond {
    Style(ResponseStyle),
    With(Arc<RespondFn>),
}

impl Respond {
    pub(crate) fn to(&self, rejection: &Rejection) -> Response<Bytes> {
        match self {
            Respond::Style(style) => style.respond(rejection),
            Respond::With(respond) => respond(rejection),
        }
    }
}

impl<St> Clone for Config<St> {
    fn clone(&self) -> Self {
        Self {
            tokens: self.tokens.clone(),
            optional: self.optional,
            is_write: Arc::clone(&self.is_write),
            trusted_proxies: self.trusted_proxies.clone(),
            respond: self.respond.clone(),
        }
    }
}

/// Every method except GET, HEAD, OPTIONS and TRACE changes something. Extension methods
/// count as writes: an unknown verb gets the stricter treatment.
pub fn is_write_method(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl<St> TokenAuthLayer<St> {
    /// A gate in required mode: a request without a token is refused with 401. Writes are
    /// every method but GET, HEAD, OPTIONS and TRACE; the client address is the peer's;
    /// refusals follow RFC 6750 with the realm `tokengate`.
    pub fn new(tokens: Tokens<St>) -> Self {
        Self {
            config: Arc::new(Config {
                tokens,
                optional: false,
                is_write: Arc::new(is_write_method),
                trusted_proxies: CidrList::any(),
                respond: Respond::Style(ResponseStyle::default()),
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
        self.edit(|c| c.optional = true)
    }

    /// Required mode (the default): no token, no entry.
    pub fn required(self) -> Self {
        self.edit(|c| c.optional = false)
    }

    /// Which methods are writes, refused to read-only tokens. The default is
    /// [`is_write_method`]. `X-HTTP-Method-Override` and similar headers are never read:
    /// the method is the request's own.
    pub fn write_methods(self, is_write: impl Fn(&Method) -> bool + Send + Sync + 'static) -> Self {
        self.edit(|c| c.is_write = Arc::new(is_write))
    }

    /// Proxies whose `X-Forwarded-For` is believed. Only when the peer is one of these is
    /// the header walked, from the right, to the first address that is not; see
    /// [`client_ip`](crate::client_ip::client_ip). Empty (the default) means the peer
    /// address is the client address.
    pub fn trusted_proxies(self, proxies: CidrList) -> Self {
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

    /// Refusals written by your own function: your dialect, your headers.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use tokengate::{MemoryStore, Reason, TokenAuthLayer, Tokens};
    ///
    /// let layer = TokenAuthLayer::new(Tokens::new(MemoryStore::new())).respond_with(|rejection| {
    ///     let status = match rejection.reason() {
    ///         Reason::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    ///         _ => StatusCode::NOT_FOUND, // hide that anything is here
    ///     };
    ///     let mut response = Response::new(Bytes::new());
    ///     *response.status_mut() = status;
    ///     response
    /// });
    /// # let _ = layer;
    /// ```
    pub fn respond_with(
        self,
        respond: impl Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|c| c.respond = Respond::With(Arc::new(respond)))
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

impl<St> fmt::Debug for Config<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthLayer")
            .field("tokens", &self.tokens)
            .field("optional", &self.optional)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl<S, St> Layer<S> for TokenAuthLayer<St> {
    type Service = TokenAuth<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenAuth::new(inner, Arc::clone(&self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_methods_table() {
        let cases = [
            ("GET", false),
            ("HEAD", false),
            ("OPTIONS", false),
            ("TRACE", false),
            ("POST", true),
            ("PUT", true),
            ("PATCH", true),
            ("DELETE", true),
            ("CONNECT", true),
            ("PURGE", true),
            ("get", true),
        ];
        for (method, write) in cases {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(is_write_method(&method), write, "{method}");
        }
    }
}
