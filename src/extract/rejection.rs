//! [`AuthenticatedRejection`]: why the [`Authenticated`](crate::Authenticated) extractor
//! found nothing.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};

use crate::reason::Reason;

/// Why the [`Authenticated`](crate::Authenticated) extractor found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthenticatedRejection {
    /// No [`TokenAuthLayer`](crate::TokenAuthLayer) ran for this request: a wiring
    /// mistake, answered 500 so that it is not mistaken for the client's.
    #[error(
        "no `Authenticated` in the request extensions: is TokenAuthLayer installed in front \
         of this route?"
    )]
    GateMissing,
    /// The layer runs in optional mode and the request carried no token: 401, as in
    /// required mode.
    #[error("{}", Reason::MissingToken.message())]
    TokenMissing,
}

impl IntoResponse for AuthenticatedRejection {
    fn into_response(self) -> Response {
        match self {
            AuthenticatedRejection::GateMissing => {
                tracing::error!("{self}");
                let body = crate::json::error_body(&self.to_string());
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            AuthenticatedRejection::TokenMissing => (
                StatusCode::UNAUTHORIZED,
                [
                    (CONTENT_TYPE, "application/json"),
                    (WWW_AUTHENTICATE, "Bearer"),
                ],
                Reason::MissingToken.json_body(),
            )
                .into_response(),
        }
    }
}
