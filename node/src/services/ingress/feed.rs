//! Feed subscribers: builders and keypers reading the admitted-ciphertext feed.

use std::sync::Arc;

use tokio::sync::watch;
use veil_mempool::pool::{FeedBatch, FeedCursor};

use super::Shared;

/// Reads the feed from a cursor, waiting for new durable transactions when it is caught up.
pub struct FeedSubscriber {
    shared: Arc<Shared>,
    cursor: FeedCursor,
    updates: watch::Receiver<FeedCursor>,
}

impl std::fmt::Debug for FeedSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSubscriber").field("cursor", &self.cursor).finish_non_exhaustive()
    }
}

impl FeedSubscriber {
    pub(super) fn new(shared: Arc<Shared>, cursor: FeedCursor) -> FeedSubscriber {
        let updates = shared.feed_tx.subscribe();
        FeedSubscriber { shared, cursor, updates }
    }

    /// Where the next read starts; save it to resume after a restart.
    #[must_use]
    pub fn cursor(&self) -> FeedCursor {
        self.cursor
    }

    /// The next batch of up to `max` items if there is one now, without waiting.
    pub fn try_next(&mut self, max: usize) -> Option<FeedBatch> {
        let batch = self.shared.pool().feed(self.cursor, max.max(1));
        if batch.items.is_empty() && batch.skipped == 0 {
            return None;
        }
        self.cursor = batch.next;
        Some(batch)
    }

    /// The next batch of up to `max` items (at least one item, or a non-zero `skipped`),
    /// waiting until there is one. Returns `None` once the ingress has shut down.
    pub async fn next(&mut self, max: usize) -> Option<FeedBatch> {
        loop {
            let batch = self.shared.pool().feed(self.cursor, max.max(1));
            if !batch.items.is_empty() || batch.skipped > 0 {
                self.cursor = batch.next;
                return Some(batch);
            }
            self.updates.changed().await.ok()?;
        }
    }
}
