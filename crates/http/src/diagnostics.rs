//! The figures a public request shows that cost a walk over the whole state: the state
//! digest of `/api/cluster` and the outbox counts of `/api/cluster` and `/metrics`.
//!
//! Invariant: a public request never walks or hashes the state. It reads the last published
//! [`Figures`] and, when they are behind the applied index, asks for a refresh; at most one
//! refresh runs at a time, at most one per [`REFRESH_EVERY`], on a blocking thread. The
//! replica's read lock is held only to clone the state (no encoding, no hashing under it), so
//! however many clients ask, apply and heartbeats wait for at most one clone per interval.
//! Figures name the index they were computed at, so a reader can tell how old they are.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use statusmesh_model::outbox::OutboxStats;
use statusmesh_store::Replica;
use tokio::sync::watch;

/// The most often the figures are recomputed, however often they are asked for.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The whole-state figures at one applied index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub index: u64,
    pub digest: String,
    pub outbox: OutboxStats,
}

/// The cache shared by the public routes and `/metrics`.
#[derive(Debug)]
pub struct Diagnostics {
    replica: Arc<Replica>,
    published: watch::Sender<Option<Arc<Figures>>>,
    refreshing: AtomicBool,
    last_started: Mutex<Option<Instant>>,
}

impl Diagnostics {
    pub fn new(replica: Arc<Replica>) -> Arc<Self> {
        Arc::new(Diagnostics {
            replica,
            published: watch::Sender::new(None),
            refreshing: AtomicBool::new(false),
            last_started: Mutex::new(None),
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
        let (index, state) = {
            let data = self.replica.read();
            (data.last_applied.map_or(0, |l| l.index), data.state.clone())
        };
        Figures {
            index,
            digest: state.digest(),
            outbox: state.outbox.stats(&state.subscribers),
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
