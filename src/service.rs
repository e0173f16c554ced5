//! [`TokenAuth`]: the tower `Service` that checks each request's token.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower::Service;

use crate::bearer::{Credentials, credentials};
use crate::client_ip::{client_ip, peer_addr};
use crate::future::ResponseFuture;
use crate::layer::Config;
use crate::reject::{Reason, Rejection};
use crate::store::TokenStore;

/// The service made by [`TokenAuthLayer`](crate::TokenAuthLayer).
pub struct TokenAuth<S, St> {
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
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
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

        // Everything up to the SHA-256 happens here, without allocating: missing and
        // malformed tokens are answered before any future is boxed.
        let presented = match credentials(request.headers()) {
            Ok(Credentials::Bearer(token)) => config.tokens.parse(token),
            Ok(Credentials::None | Credentials::OtherScheme) if config.optional => {
                request.extensions_mut().insert(GateRan);
                return ResponseFuture::call(inner.call(request));
            }
            Ok(Credentials::None | Credentials::OtherScheme) => {
                Err(Rejection::new(Reason::MissingToken, None))
            }
            Err(problem) => Err(Rejection::new(Reason::MalformedHeader(problem), None)),
        };
        let presented = match presented {
            Ok(presented) => presented,
            Err(rejection) => return ResponseFuture::refused(refuse(config, &rejection)),
        };

        let is_write = (config.is_write)(request.method());

        // A cached token is answered here, synchronously: nothing boxed, nothing awaited.
        let client = || {
            client_ip(
                peer_addr(request.extensions()),
                request.headers(),
                &config.trusted_proxies,
            )
        };
        match config.tokens.authorize_cached(presented, client, is_write) {
            Some(Ok(authenticated)) => {
                request.extensions_mut().insert(authenticated);
                return ResponseFuture::call(inner.call(request));
            }
            Some(Err(rejection)) => return ResponseFuture::refused(refuse(config, &rejection)),
            None => {}
        }

        let client = client();
        let config = Arc::clone(config);
        ResponseFuture::check(
            async move {
                match config
                    .tokens
                    .authorize_from_store(presented, client, is_write)
                    .await
                {
                    Ok(authenticated) => {
                        request.extensions_mut().insert(authenticated);
                        Ok(request)
                    }
                    Err(rejection) => Err(refuse(&config, &rejection)),
                }
            },
            inner,
        )
    }
}

/// Logs a refusal (the token id when known, never the token) and writes its response.
fn refuse<St>(config: &Config<St>, rejection: &Rejection) -> Response<Bytes> {
    let reason = rejection.reason();
    let token_id = rejection.token_id().map(tracing::field::display);
    match reason {
        Reason::MissingToken => tracing::debug!(?reason, "request refused"),
        Reason::StoreUnavailable => tracing::warn!(token_id, ?reason, "request refused"),
        _ => tracing::info!(token_id, ?reason, "request refused"),
    }
    config.respond.to(rejection)
}
