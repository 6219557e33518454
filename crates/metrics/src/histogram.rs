//! A fixed-bucket histogram, recorded with two relaxed atomic additions (the value's bucket and
//! the sum); cumulative counts and the total are computed when rendered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, for request and proposal latencies (1 ms to 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Upper bounds, in seconds, for lags that include retries (50 ms to 6 h).
pub const LAG_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];

#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, then one for values above the last (`+Inf` only).
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

/// A reading: `(upper bound, cumulative count)` per bucket, then the total count (the `+Inf`
/// bucket) and the sum in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// `bounds` must be increasing; values above the last fall only into `+Inf`.
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn latency() -> Self {
        Self::new(LATENCY_BUCKETS)
    }

    pub fn observe(&self, d: Duration) {
        self.buckets[bucket_of(self.bounds, d)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros(d), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        cumulative(
            self.bounds,
            self.buckets.iter().map(|b| b.load(Ordering::Relaxed)),
            self.sum_micros.load(Ordering::Relaxed),
        )
    }
}

/// The index of `d`'s bucket under `bounds` (`bounds.len()`: above the last, `+Inf` only).
pub(crate) fn bucket_of(bounds: &[f64], d: Duration) -> usize {
    let secs = d.as_secs_f64();
    bounds
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(bounds.len())
}

/// `d` in whole microseconds, for the sum.
pub(crate) fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// A snapshot from per-bucket counts (one per bound, then the `+Inf`-only one).
pub(crate) fn cumulative(
    bounds: &[f64],
    counts: impl IntoIterator<Item = u64>,
    sum_micros: u64,
) -> HistogramSnapshot {
    let mut acc = 0;
    let mut buckets = Vec::with_capacity(bounds.len());
    let mut counts = counts.into_iter();
    for (b, c) in bounds.iter().zip(counts.by_ref()) {
        acc += c;
        buckets.push((*b, acc));
    }
    HistogramSnapshot {
        buckets,
        count: acc + counts.sum::<u64>(),
        sum_seconds: sum_micros as f64 / 1e6,
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::latency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_overflow_only_counts() {
        let h = Histogram::latency();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.buckets[0], (0.001, 1));
        assert_eq!(s.buckets[5], (0.05, 2));
        assert_eq!(s.buckets.last().map(|b| b.1), Some(2)); // 60 s is only in +Inf
        assert_eq!(s.count, 3);
        assert_eq!(h.count(), 3);
        assert!((s.sum_seconds - 60.0305).abs() < 1e-6);
    }

    #[test]
    fn custom_bounds() {
        let h = Histogram::new(LAG_BUCKETS);
        h.observe(Duration::from_secs(120));
        let s = h.snapshot();
        assert_eq!(s.buckets.len(), LAG_BUCKETS.len());
        assert_eq!(s.buckets.iter().find(|b| b.0 == 60.0).map(|b| b.1), Some(0));
        assert_eq!(
            s.buckets.iter().find(|b| b.0 == 300.0).map(|b| b.1),
            Some(1)
        );
    }
}
