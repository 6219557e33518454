//! The node's Prometheus instruments: lock-free histograms and counters that the crates doing
//! the work record into (store, cluster, webhook, server), and the text exposition (format
//! 0.0.4) the server renders them with. No dependencies: every crate may use it.
//!
//! Invariants: label values come either from a fixed set chosen by the code or pass through a
//! [`RequestMetrics`] whose number of distinct routes is capped, so no client can grow the
//! exposition without bound.

mod dispatch;
mod exposition;
mod histogram;
mod requests;

pub use dispatch::DispatchStats;
pub use exposition::Exposition;
pub use histogram::{Histogram, HistogramSnapshot, LAG_BUCKETS, LATENCY_BUCKETS};
pub use requests::{RequestMetrics, Route, RouteSnapshot, OTHER_ROUTE};
