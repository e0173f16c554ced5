//! What stands between the registry and guessers, floods and readers of its disk.

pub mod passwords;
pub mod sealer;
pub mod search_turns;
pub mod wrong_codes;

/// The 429 for a client past the gates' failure limit (`limit`), with when to try again;
/// `None` while it may go on.
pub fn failures_exhausted(
    limit: &tokengate::FailureLimit,
    client: Option<std::net::IpAddr>,
) -> Option<crate::error::ApiError> {
    if !limit.exhausted(client) {
        return None;
    }
    let mut error = crate::error::ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too many failed attempts from your address; wait before trying again",
    );
    error.retry_after(axum::http::HeaderValue::from(limit.retry_after()));
    Some(error)
}
