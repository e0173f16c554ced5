//! The tasks a [`Tokens`](crate::Tokens) runs beside the requests: following the store's
//! change feed into the cache, and writing last-used times.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};

use super::Inner;
use crate::store::{StoreChange, TokenStore};
use crate::token::TokenId;

/// A token's use is written to the store at most this often.
pub(crate) const USE_REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// Uses waiting to be written; beyond this they are dropped (the next minute brings more).
pub(crate) const USE_REPORT_BACKLOG: usize = 4096;

/// Where uses are reported.
pub(crate) type UseReports = mpsc::Sender<(TokenId, SystemTime)>;

/// Applies the store's change feed to the cache until the feed or the manager ends.
pub(crate) async fn follow_changes<S: TokenStore>(
    inner: Weak<Inner<S>>,
    mut feed: broadcast::Receiver<StoreChange>,
) {
    loop {
        let change = feed.recv().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match change {
            Ok(StoreChange::Revoked(id)) => inner.cache.forget(id),
            Ok(StoreChange::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                inner.cache.forget_all();
            }
            Err(broadcast::error::RecvError::Closed) => {
                inner.cache.forget_all();
                return;
            }
        }
    }
}

/// Writes reported uses to the store in batches until the manager is dropped.
pub(crate) async fn write_uses<S: TokenStore>(
    inner: Weak<Inner<S>>,
    mut reports: mpsc::Receiver<(TokenId, SystemTime)>,
) {
    let mut batch = Vec::new();
    while reports.recv_many(&mut batch, 256).await > 0 {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = inner.store.record_use(std::mem::take(&mut batch)).await {
            tracing::warn!(%error, "could not record token uses");
        }
    }
}
