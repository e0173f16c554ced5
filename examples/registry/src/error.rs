//! Errors as npm reads them (`{"error": "…"}`), and a JSON body extractor whose failures
//! are such errors too.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A refusal with a message a person can act on.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// What few refusals carry, apart so that every `Result` stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    /// `WWW-Authenticate` for a 401, when it is not the usual bearer challenge.
    challenge: Option<axum::http::HeaderValue>,
    /// `Retry-After`, for a 429 or 503.
    retry_after: Option<axum::http::HeaderValue>,
    /// A machine-readable code: the body is then `{"error": code, "message": message}`.
    code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The refusal with a code, answered as `{"error": code, "message": …}` (the shape
    /// npm logs from the trusted-publishing exchange).
    pub fn coded(mut self, code: &'static str) -> Self {
        self.extra().code = Some(code);
        self
    }

    /// Sends this `WWW-Authenticate` with the refusal (npm reads `OTP` as "ask for a
    /// one-time password").
    pub fn challenge(&mut self, challenge: axum::http::HeaderValue) {
        self.extra().challenge = Some(challenge);
    }

    /// Sends `Retry-After` with the refusal.
    pub fn retry_after(&mut self, seconds: axum::http::HeaderValue) {
        self.extra().retry_after = Some(seconds);
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// Something on our side failed; the details go to the log, not the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}; see the server log"),
        )
    }

    /// A wrong password for a signed-in user's change.
    pub fn incorrect_password() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "incorrect password")
    }

    /// No token, or one that was not accepted: npm then tells the user to log in.
    pub fn needs_login() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication required: log in with `npm adduser` or `npm login`",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|extra| *extra).unwrap_or_default();
        let body = match extra.code {
            Some(code) => serde_json::json!({ "error": code, "message": self.message }),
            None => serde_json::json!({ "error": self.message }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = extra.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = extra
                .challenge
                .unwrap_or(axum::http::HeaderValue::from_static(
                    "Bearer realm=\"registry\"",
                ));
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<tokengate::TokensError> for ApiError {
    fn from(error: tokengate::TokensError) -> Self {
        use tokengate::TokensError::*;
        match error {
            Store(store) if store.is_unavailable() => {
                tracing::warn!(error = %store, "token store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the token store is unavailable; try again shortly",
                )
            }
            Store(store) => ApiError::internal("the token store failed", store),
            Random(random) => ApiError::internal("cannot create a token", random),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// `axum::Json`, with malformed, mistyped or oversized bodies answered as [`ApiError`]s.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    // A body whose fields are wrong is a bad request, as npm's registry answers it (axum
    // says 422).
    let status = match &rejection {
        JsonRejection::JsonDataError(_) => StatusCode::BAD_REQUEST,
        _ => rejection.status(),
    };
    let message = match &rejection {
        JsonRejection::JsonDataError(_) => {
            format!("invalid request body: {}", rejection.body_text())
        }
        JsonRejection::JsonSyntaxError(_) => "invalid request body: not valid JSON".to_owned(),
        JsonRejection::MissingJsonContentType(_) => {
            "invalid request body: expected `Content-Type: application/json`".to_owned()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "request body too large: it is over the registry's limit".to_owned()
        }
        _ => format!("invalid request body: {}", rejection.body_text()),
    };
    ApiError::new(status, message)
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        if error.is_conflict() {
            return Self::new(
                StatusCode::CONFLICT,
                format!(
                    "cannot {}: it changed while this request was being answered (another \
                     request, or another registry process, changed it first); try again",
                    error.doing()
                ),
            );
        }
        if error.is_timed_out() {
            tracing::warn!(%error, "a database statement reached its time limit");
            let mut busy = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "cannot {}: it took longer than the registry allows; try again in a few \
                     seconds, or with fewer or longer words",
                    error.doing()
                ),
            );
            busy.retry_after(axum::http::HeaderValue::from(5u32));
            return busy;
        }
        Self::internal(&format!("cannot {}", error.doing()), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn a_statement_cut_off_at_its_time_limit_is_503_with_retry_after() {
        let error = ApiError::from(crate::db::DbError::timed_out("search", "57014"));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            error.message().starts_with("cannot search: "),
            "{}",
            error.message()
        );
        let response = error.into_response();
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "5");
    }
}
