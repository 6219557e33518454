//! Request counts by route (or gRPC method) and result code, with a latency histogram per
//! route. Routes beyond the cap are counted under [`OTHER_ROUTE`], so a client inventing paths
//! cannot grow the exposition.
//!
//! The public port resolves its routes once ([`RequestMetrics::route`]) and then records with
//! no lock and no shared reference count: each route's figures are allocated once and never
//! freed (at most `max_routes + 1` per instance, and a node makes three instances), codes live
//! in fixed slots claimed by compare-and-swap, and each thread records into its own shard of
//! the counters. A recorded request costs three relaxed atomic additions on cache lines other
//! threads rarely touch. Recording by name ([`RequestMetrics::record`], the gRPC ports) adds a
//! read-locked map lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::histogram::{bucket_of, cumulative, micros};
use crate::{HistogramSnapshot, LATENCY_BUCKETS};

/// The route label of requests past the cap.
pub const OTHER_ROUTE: &str = "other";

/// Distinct codes per route (17 gRPC codes; the HTTP statuses one server answers with).
const CODE_SLOTS: usize = 24;

/// Copies of each route's counters; a thread records into one, so the runtime's worker threads
/// do not pull the same cache lines back and forth. Merged when rendered.
const SHARDS: usize = 4;

/// One thread group's counters for a route, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    /// Latency buckets ([`LATENCY_BUCKETS`], then `+Inf` only) and the sum in microseconds.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    /// `code + 1` (0: free slot) and its count.
    codes: [(AtomicU32, AtomicU64); CODE_SLOTS],
    /// Requests whose code found no free slot.
    other_codes: AtomicU64,
}

impl Shard {
    fn new() -> Self {
        Shard {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            codes: std::array::from_fn(|_| (AtomicU32::new(0), AtomicU64::new(0))),
            other_codes: AtomicU64::new(0),
        }
    }

    fn record(&self, code: u16, elapsed: Duration) {
        self.buckets[bucket_of(LATENCY_BUCKETS, elapsed)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(micros(elapsed), Ordering::Relaxed);
        let tag = u32::from(code) + 1;
        for (slot, count) in &self.codes {
            let current = match slot.load(Ordering::Acquire) {
                0 => match slot.compare_exchange(0, tag, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => tag,
                    Err(other) => other,
                },
                t => t,
            };
            if current == tag {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.other_codes.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct RouteStats {
    shards: [Shard; SHARDS],
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            shards: std::array::from_fn(|_| Shard::new()),
        }
    }

    fn record(&self, code: u16, elapsed: Duration) {
        self.shards[SHARD.with(|s| *s)].record(code, elapsed);
    }

    /// (code, requests) merged over the shards, ordered by code; `None` for codes past the slots.
    fn codes(&self) -> Vec<(Option<u16>, u64)> {
        let mut merged: BTreeMap<Option<u16>, u64> = BTreeMap::new();
        for shard in &self.shards {
            for (slot, n) in &shard.codes {
                let tag = slot.load(Ordering::Acquire);
                if tag != 0 {
                    *merged.entry(u16::try_from(tag - 1).ok()).or_default() +=
                        n.load(Ordering::Relaxed);
                }
            }
            let other = shard.other_codes.load(Ordering::Relaxed);
            if other > 0 {
                *merged.entry(None).or_default() += other;
            }
        }
        merged.into_iter().collect()
    }

    fn latency(&self) -> HistogramSnapshot {
        let mut counts = [0u64; LATENCY_BUCKETS.len() + 1];
        let mut sum_micros = 0;
        for shard in &self.shards {
            for (c, b) in counts.iter_mut().zip(&shard.buckets) {
                *c += b.load(Ordering::Relaxed);
            }
            sum_micros += shard.sum_micros.load(Ordering::Relaxed);
        }
        cumulative(LATENCY_BUCKETS, counts, sum_micros)
    }
}

/// One route's figures, resolved ahead of recording.
#[derive(Debug, Clone, Copy)]
pub struct Route(&'static RouteStats);

impl Route {
    pub fn record(self, code: u16, elapsed: Duration) {
        self.0.record(code, elapsed);
    }
}

/// Hands threads their shard, round robin.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

#[derive(Debug)]
pub struct RequestMetrics {
    routes: RwLock<HashMap<String, &'static RouteStats>>,
    max_routes: usize,
}

/// One route's figures when rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSnapshot {
    pub route: String,
    /// (code, requests), ordered by code; `None` for codes past the slots.
    pub codes: Vec<(Option<u16>, u64)>,
    pub latency: HistogramSnapshot,
}

impl RequestMetrics {
    /// At most `max_routes` distinct routes (plus [`OTHER_ROUTE`]).
    pub fn new(max_routes: usize) -> Self {
        RequestMetrics {
            routes: RwLock::new(HashMap::new()),
            max_routes,
        }
    }

    /// Counts one finished request.
    pub fn record(&self, route: &str, code: u16, elapsed: Duration) {
        self.stats(route).record(code, elapsed);
    }

    /// A route's figures, to record into later (resolved once, when a request arrives).
    pub fn route(&self, route: &str) -> Route {
        Route(self.stats(route))
    }

    /// The route's figures, created under the cap; past it, [`OTHER_ROUTE`]'s.
    fn stats(&self, route: &str) -> &'static RouteStats {
        {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            let capped = routes.len() >= self.max_routes;
            let found = routes
                .get(route)
                .or_else(|| capped.then(|| routes.get(OTHER_ROUTE)).flatten());
            if let Some(s) = found {
                return s;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let key = if routes.contains_key(route) || routes.len() < self.max_routes {
            route
        } else {
            OTHER_ROUTE
        };
        routes
            .entry(key.to_owned())
            .or_insert_with(|| Box::leak(Box::new(RouteStats::new())))
    }

    /// Every route, ordered by name.
    pub fn snapshot(&self) -> Vec<RouteSnapshot> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<RouteSnapshot> = routes
            .iter()
            .map(|(route, s)| RouteSnapshot {
                route: route.clone(),
                codes: s.codes(),
                latency: s.latency(),
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_code() {
        let m = RequestMetrics::new(8);
        m.record("/a", 200, Duration::from_millis(1));
        m.record("/a", 200, Duration::from_millis(2));
        m.record("/a", 404, Duration::from_millis(3));
        m.record("/b", 500, Duration::from_millis(4));
        let s = m.snapshot();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].route, "/a");
        assert_eq!(s[0].codes, vec![(Some(200), 2), (Some(404), 1)]);
        assert_eq!(s[0].latency.count, 3);
        assert_eq!(s[1].codes, vec![(Some(500), 1)]);
    }

    #[test]
    fn routes_past_the_cap_are_other() {
        let m = RequestMetrics::new(2);
        for i in 0..100 {
            m.record(&format!("/r{i}"), 200, Duration::ZERO);
        }
        m.record("/r0", 200, Duration::ZERO);
        m.record("/r50", 200, Duration::ZERO);
        let s = m.snapshot();
        let names: Vec<&str> = s.iter().map(|r| r.route.as_str()).collect();
        assert_eq!(names, vec!["/r0", "/r1", OTHER_ROUTE]);
        assert_eq!(s[0].codes, vec![(Some(200), 2)]);
        assert_eq!(s[2].codes, vec![(Some(200), 99)]);
    }

    #[test]
    fn instances_and_threads_do_not_mix() {
        let a = RequestMetrics::new(8);
        let b = RequestMetrics::new(8);
        a.record("/x", 200, Duration::ZERO);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..10 {
                    b.record("/x", 200, Duration::ZERO);
                    a.record("/x", 503, Duration::ZERO);
                }
            });
        });
        assert_eq!(a.snapshot()[0].codes, vec![(Some(200), 1), (Some(503), 10)]);
        assert_eq!(b.snapshot()[0].codes, vec![(Some(200), 10)]);
    }

    #[test]
    fn codes_past_the_slots_are_counted_apart() {
        let m = RequestMetrics::new(1);
        for code in 0..30u16 {
            m.record("/x", code, Duration::ZERO);
        }
        let s = m.snapshot();
        assert_eq!(s[0].codes.len(), CODE_SLOTS + 1);
        assert_eq!(s[0].codes[0], (None, 6));
    }
}
