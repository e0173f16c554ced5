//! [`TokensError`]: why a token could not be created, listed or revoked.

use crate::new_token::InvalidNewToken;
use crate::store::StoreError;
use crate::token::RandomError;

/// Why a token could not be created, listed or revoked.
///
/// With the `axum` feature it is a response: 400 for bad input, 503 when the store cannot
/// be reached, 500 otherwise, each with a JSON body `{"error": "…"}` that names nothing
/// internal (the detail is logged).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// An option of the new token is invalid; nothing was stored.
    #[error(transparent)]
    InvalidNewToken(#[from] InvalidNewToken),
    /// Revoke was given something that is neither a token id nor a token of this
    /// application.
    #[error("not a token id or a token issued here")]
    InvalidReference,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// [`Tokens::exchange`](crate::Tokens::exchange) minted nothing: the trust policy
    /// matched does not allow publishing, or the package name cannot be a grant
    /// (feature `oidc`).
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    #[error(transparent)]
    Exchange(#[from] crate::tokens::ExchangeRefusal),
    /// The operating system's random generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for TokensError {
    fn into_response(self) -> axum::response::Response {
        use http::StatusCode;
        let (status, message) = match &self {
            TokensError::InvalidNewToken(_) | TokensError::InvalidReference => {
                (StatusCode::BAD_REQUEST, self.to_string())
            }
            #[cfg(feature = "oidc")]
            TokensError::Exchange(_) => (StatusCode::FORBIDDEN, self.to_string()),
            TokensError::Store(error) if error.is_unavailable() => {
                tracing::warn!(%error, "token store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the token store is unavailable; try again shortly".to_owned(),
                )
            }
            TokensError::Store(error) => {
                tracing::error!(%error, "token store failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the token store failed".to_owned(),
                )
            }
            TokensError::Random(error) => {
                tracing::error!(%error, "cannot generate a token");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot generate a token".to_owned(),
                )
            }
        };
        let body = crate::json::error_body(&message);
        (
            status,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
