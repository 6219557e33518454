//! The figures a public request shows that cost a walk over the whole state: the state
//! digest of `/api/cluster` and the outbox counts of `/api/cluster` and `/metrics`.
//!
//! Invariant: a public request never walks or hashes the state. It reads the last published
//! [`Figures`] and, when they are behind the applied index, asks for a refresh; at most one
//! refresh runs at a time, at most one per [`REFRESH_EVERY`], on a blocking thread. A refresh
//! counts the outbox under the replica's read lock (a walk, no allocation); at most once per
//! [`DIGEST_EVERY`] it also clones the state there and hashes the clone off the lock (the
//! digest encodes the whole state, by far the dearest figure). However many clients ask,
//! apply and heartbeats wait for at most one count per second and one clone per interval.
//! Figures name the indexes they were computed at, so a reader can tell how old they are.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use statusmesh_model::outbox::OutboxStats;
use statusmesh_store::Replica;
use tokio::sync::watch;

/// The most often the figures are recomputed, however often they are asked for.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// The most often the state digest is recomputed.
pub const DIGEST_EVERY: Duration = Duration::from_secs(10);

/// The whole-state figures at one applied index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// The index the outbox counts are for.
    pub index: u64,
    pub outbox: OutboxStats,
    /// The index the digest is for (at most [`DIGEST_EVERY`] older than `index`).
    pub digest_index: u64,
    pub digest: String,
}

/// The cache shared by the public routes and `/metrics`.
#[derive(Debug)]
pub struct Diagnostics {
    replica: Arc<Replica>,
    published: watch::Sender<Option<Arc<Figures>>>,
    refreshing: AtomicBool,
    last_started: Mutex<Option<Instant>>,
    /// When the published digest was computed.
    digest_at: Mutex<Option<Instant>>,
}

impl Diagnostics {
    pub fn new(replica: Arc<Replica>) -> Arc<Self> {
        Arc::new(Diagnostics {
            replica,
            published: watch::Sender::new(None),
            refreshing: AtomicBool::new(false),
            last_started: Mutex::new(None),
            digest_at: Mutex::new(None),
        })
    }

    /// The latest figures, refreshed in the background if they are behind; waits only for
    /// the very first computation.
    pub async fn figures(self: &Arc<Self>) -> Arc<Figures> {
        self.refresh_if_due();
        let mut rx = self.published.subscribe();
        let figures = match rx.wait_for(Option::is_some).await {
            Ok(f) => f.clone().unwrap_or_default(),
            // The sender lives as long as `self`: unreachable, but never panic a request.
            Err(_) => Arc::default(),
        };
        figures
    }

    /// Starts a refresh unless the figures are current, one is running, or the last one
    /// started less than [`REFRESH_EVERY`] ago.
    fn refresh_if_due(self: &Arc<Self>) {
        let applied = self.replica.applied_index();
        if let Some(f) = self.published.borrow().as_ref() {
            if f.index >= applied {
                return;
            }
        }
        {
            let mut last = self
                .last_started
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                return;
            }
            if self.refreshing.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Some(Instant::now());
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let figures = this.compute();
            this.published.send_replace(Some(Arc::new(figures)));
            this.refreshing.store(false, Ordering::Release);
        });
    }

    fn compute(&self) -> Figures {
        let previous = self.published.borrow().clone();
        let digest_due = {
            let at = self
                .digest_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            previous.is_none() || at.is_none_or(|t| t.elapsed() >= DIGEST_EVERY)
        };
        let (index, outbox, clone) = {
            let data = self.replica.read();
            let index = data.last_applied.map_or(0, |l| l.index);
            let outbox = data.state.outbox.stats(&data.state.subscribers);
            let stale = previous.as_ref().is_none_or(|p| p.digest_index < index);
            (
                index,
                outbox,
                (digest_due && stale).then(|| data.state.clone()),
            )
        };
        let (digest_index, digest) = match (clone, previous) {
            (Some(state), _) => {
                *self
                    .digest_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                (index, state.digest())
            }
            (None, Some(p)) => (p.digest_index, p.digest.clone()),
            (None, None) => (0, String::new()),
        };
        Figures {
            index,
            outbox,
            digest_index,
            digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn figures_are_computed_once_and_name_their_index() {
        let replica = Arc::new(Replica::default());
        let d = Diagnostics::new(replica.clone());
        let first = d.figures().await;
        assert_eq!(first.index, 0);
        assert_eq!(first.digest, statusmesh_model::State::default().digest());
        // Nothing applied since: the same figures, not a recomputation.
        let again = d.figures().await;
        assert!(Arc::ptr_eq(&first, &again));
    }
}
