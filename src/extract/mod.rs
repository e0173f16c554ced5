//! [`Authenticated`] as an axum extractor (feature `axum`).

mod rejection;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

pub use rejection::AuthenticatedRejection;

use crate::gate::GateRan;
use crate::tokens::Authenticated;

/// The token that the layer accepted for this request.
///
/// Without a token it is rejected with [`AuthenticatedRejection::TokenMissing`] (401) when
/// the layer runs in optional mode, and with [`AuthenticatedRejection::GateMissing`] (500)
/// when no layer ran at all. `Option<Authenticated>` is `None` for an anonymous request
/// that an optional layer let through.
///
/// ```
/// use axum::{Router, routing::put};
/// use tokengate::{Authenticated, TokenAuthLayer, Tokens, store::MemoryStore};
///
/// async fn publish(who: Authenticated) -> String {
///     format!("published by {}", who.owner())
/// }
///
/// let tokens = Tokens::new(MemoryStore::new());
/// let app: Router = Router::new()
///     .route("/{package}", put(publish))
///     .route_layer(TokenAuthLayer::new(tokens));
/// # let _ = app;
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthenticatedRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(authenticated) => Ok(authenticated.clone()),
            None if parts.extensions.get::<GateRan>().is_some() => {
                Err(AuthenticatedRejection::TokenMissing)
            }
            None => Err(AuthenticatedRejection::GateMissing),
        }
    }
}

/// `Option<Authenticated>`: `None` for an anonymous request let through by a layer in
/// optional mode; still [`AuthenticatedRejection::GateMissing`] when no layer ran at all.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = AuthenticatedRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(authenticated) => Ok(Some(authenticated.clone())),
            None if parts.extensions.get::<GateRan>().is_some() => Ok(None),
            None => Err(AuthenticatedRejection::GateMissing),
        }
    }
}
