//! The notification dispatcher's counters: written by the dispatcher (webhook crate), read by
//! the admin API, `/api/cluster` and `/metrics`. Here, below all three, so that none of them
//! depends on another for them.

use std::sync::atomic::{AtomicBool, AtomicU64};

use crate::{Histogram, LAG_BUCKETS};

/// Counters of this node's dispatcher, for the admin API, `/api/cluster` and `/metrics`.
#[derive(Debug)]
pub struct DispatchStats {
    /// True while this node leads and sends.
    pub dispatching: AtomicBool,
    /// Requests running or awaiting their attempt record.
    pub in_flight: AtomicU64,
    /// Requests sent by this node since it started.
    pub sent_total: AtomicU64,
    /// `RecordAttempts` commands this node proposed (Raft writes spent on attempt records).
    pub record_writes: AtomicU64,
    /// Their encoded bytes (the log spent on delivery progress).
    pub record_bytes: AtomicU64,
    /// How long each request this node sent took, whatever its outcome.
    pub attempt_seconds: Histogram,
    /// For each delivery this node completed (2xx): from the event's commit (leader clock) to
    /// the answer, retries and leader changes included.
    pub delivery_lag_seconds: Histogram,
}

impl Default for DispatchStats {
    fn default() -> Self {
        DispatchStats {
            dispatching: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            sent_total: AtomicU64::new(0),
            record_writes: AtomicU64::new(0),
            record_bytes: AtomicU64::new(0),
            attempt_seconds: Histogram::latency(),
            delivery_lag_seconds: Histogram::new(LAG_BUCKETS),
        }
    }
}
