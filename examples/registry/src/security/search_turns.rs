//! Searches take turns, so that a flood of anonymous searches cannot take every core
//! from installs and publishes.

use crate::error::ApiError;

/// Searches run at once. Most are answered from the index, but a term shorter than its
/// trigrams (and, on PostgreSQL without `pg_trgm`, every term) reads the packages table,
/// so anonymous searches sent in a flood take turns here instead of taking every core from
/// installs and publishes; one that waits longer than [`SEARCH_WAIT`] is told to retry.
pub const SEARCHES_AT_ONCE: usize = 2;
pub const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The turns searches take.
pub struct SearchTurns(std::sync::Arc<tokio::sync::Semaphore>);

impl Default for SearchTurns {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(
            SEARCHES_AT_ONCE,
        )))
    }
}

impl SearchTurns {
    /// A turn, or 503 with `Retry-After` when none came within `wait`. The turn is owned,
    /// so that it goes with the query into the database ([`crate::db::Metadata::search`])
    /// and ends when the query does: a client that disconnects does not end it early.
    pub async fn take(
        &self,
        wait: std::time::Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(wait, std::sync::Arc::clone(&self.0).acquire_owned()).await {
            Ok(Ok(turn)) => Ok(turn),
            _ => {
                let mut busy = ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "search is busy; try again in a few seconds",
                );
                busy.retry_after(axum::http::HeaderValue::from(5u32));
                Err(busy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn searches_past_the_ones_running_wait_their_turn_then_are_told_to_retry() {
        let turns = SearchTurns::default();
        let wait = std::time::Duration::from_millis(50);
        let running = turns_held(&turns, wait).await;
        assert_eq!(running.len(), SEARCHES_AT_ONCE, "two run at once");
        let busy = turns.take(wait).await.unwrap_err();
        assert_eq!(busy.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        drop(running);
        assert!(
            turns.take(wait).await.is_ok(),
            "a turn ended, so another starts"
        );
    }

    async fn turns_held(
        turns: &SearchTurns,
        wait: std::time::Duration,
    ) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        let mut held = Vec::new();
        for _ in 0..SEARCHES_AT_ONCE {
            held.push(turns.take(wait).await.unwrap());
        }
        held
    }
}
