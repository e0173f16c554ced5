//! [`Authenticated`] as an axum extractor (feature `axum`).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::service::GateRan;
use crate::tokens::Authenticated;

/// The extractor found no [`TokenAuthLayer`](crate::TokenAuthLayer) in front of the
/// handler: a wiring mistake, answered with 500 so that it is not mistaken for a client
/// error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no `Authenticated` in the request extensions: is TokenAuthLayer installed in front \
     of this route (and in required mode, for a non-optional extractor)?"
)]
pub struct MissingAuthentication;

impl IntoResponse for MissingAuthentication {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// The token that the layer accepted for this request.
///
/// ```
/// use axum::{Router, routing::put};
/// use tokengate::{Authenticated, MemoryStore, TokenAuthLayer, Tokens};
///
/// async fn publish(who: Authenticated) -> String {
///     format!("published by {}", who.owner())
/// }
///
/// let tokens = Tokens::new(MemoryStore::new());
/// let app: Router = Router::new()
///     .route("/{package}", put(publish))
///     .layer(TokenAuthLayer::new(tokens));
/// # let _ = app;
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = MissingAuthentication;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or(MissingAuthentication)
    }
}

/// `Option<Authenticated>`: `None` for an anonymous request let through by a layer in
/// optional mode; still a [`MissingAuthentication`] when no layer ran at all.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = MissingAuthentication;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(authenticated) => Ok(Some(authenticated.clone())),
            None if parts.extensions.get::<GateRan>().is_some() => Ok(None),
            None => Err(MissingAuthentication),
        }
    }
}
