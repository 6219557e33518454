//! Counters the node keeps for Prometheus: proposal latency and leader changes. Rendering is the
//! server's job (`statusmesh_server::metrics`); these are lock-free to record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the proposal latency buckets, in seconds.
pub const PROPOSAL_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A fixed-bucket histogram (cumulative counts are computed when rendered).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; PROPOSAL_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = PROPOSAL_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// (upper bound, cumulative count) per bucket, then the total count and sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0;
        let buckets = PROPOSAL_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| {
                acc += c.load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect();
        (
            buckets,
            self.count.load(Ordering::Relaxed),
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Admin writes from arrival to commit (successful or not), forwarding included.
    pub proposal_seconds: Histogram,
    /// Writes that failed (no quorum, refused as invalid, fatal).
    pub proposal_failures: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let (b, count, sum) = h.snapshot();
        assert_eq!(b[0], (0.001, 1));
        assert_eq!(b[5], (0.05, 2));
        assert_eq!(b.last().unwrap().1, 2); // 60 s is only in +Inf
        assert_eq!(count, 3);
        assert!((sum - 60.0305).abs() < 1e-6);
    }
}
