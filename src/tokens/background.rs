//! The tasks a [`Tokens`](crate::Tokens) runs beside the requests: following the store's
//! change feed into the cache, and writing last-used times.

use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime};

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

/// The whole cache is dropped at most this often. Anyone who can `NOTIFY` on the channel (or
/// outrun the feed) could otherwise empty every node's cache as fast as they can send.
const MIN_FULL_DROP_INTERVAL: Duration = Duration::from_secs(1);

/// Applies the store's change feed to the cache until the feed or the manager ends.
/// Revocations are applied one by one at once; calls to drop everything are coalesced, at
/// most one per [`MIN_FULL_DROP_INTERVAL`], and never skipped.
pub(crate) async fn follow_changes<S: TokenStore>(
    inner: Weak<Inner<S>>,
    mut feed: broadcast::Receiver<StoreChange>,
) {
    let mut last_full_drop: Option<Instant> = None;
    loop {
        let change = feed.recv().await;
        let full_drop = match change {
            Ok(StoreChange::Revoked(id)) => {
                let Some(inner) = inner.upgrade() else { return };
                inner.cache.forget(id);
                continue;
            }
            Ok(StoreChange::OwnerRightsChanged(owner)) => {
                let Some(inner) = inner.upgrade() else { return };
                inner.forget_owner_rights(&owner);
                continue;
            }
            Ok(StoreChange::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => true,
            Err(broadcast::error::RecvError::Closed) => {
                if let Some(inner) = inner.upgrade() {
                    inner.forget_all();
                }
                return;
            }
        };
        if full_drop {
            if let Some(wait) = last_full_drop
                .map(|at| MIN_FULL_DROP_INTERVAL.saturating_sub(at.elapsed()))
                .filter(|wait| !wait.is_zero())
            {
                tokio::time::sleep(wait).await;
            }
            // Everything queued meanwhile is covered by the one drop below.
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = feed.try_recv() {}
            let Some(inner) = inner.upgrade() else { return };
            inner.forget_all();
            last_full_drop = Some(Instant::now());
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
