//! Request counts by route (or gRPC method) and result code, with a latency histogram per
//! route. Routes beyond the cap are counted under [`OTHER_ROUTE`], so a client inventing paths
//! cannot grow the exposition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::Histogram;

/// The route label of requests past the cap.
pub const OTHER_ROUTE: &str = "other";

#[derive(Debug, Default)]
struct RouteStats {
    latency: Histogram,
    /// (code, count); a handful per route, so a vector beats a map.
    codes: RwLock<Vec<(u16, AtomicU64)>>,
}

impl RouteStats {
    fn record(&self, code: u16, elapsed: Duration) {
        self.latency.observe(elapsed);
        {
            let codes = self.codes.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, n)) = codes.iter().find(|(c, _)| *c == code) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        match codes.iter().find(|(c, _)| *c == code) {
            Some((_, n)) => {
                n.fetch_add(1, Ordering::Relaxed);
            }
            None => codes.push((code, AtomicU64::new(1))),
        }
    }
}

#[derive(Debug)]
pub struct RequestMetrics {
    routes: RwLock<HashMap<String, Arc<RouteStats>>>,
    max_routes: usize,
}

/// One route's figures when rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSnapshot {
    pub route: String,
    /// (code, requests), ordered by code.
    pub codes: Vec<(u16, u64)>,
    pub latency: crate::HistogramSnapshot,
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
        let found = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
            .cloned();
        let stats = match found {
            Some(s) => s,
            None => {
                let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
                let key = if routes.len() >= self.max_routes && !routes.contains_key(route) {
                    OTHER_ROUTE
                } else {
                    route
                };
                routes.entry(key.to_owned()).or_default().clone()
            }
        };
        stats.record(code, elapsed);
    }

    /// Every route, ordered by name.
    pub fn snapshot(&self) -> Vec<RouteSnapshot> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<RouteSnapshot> = routes
            .iter()
            .map(|(route, s)| {
                let mut codes: Vec<(u16, u64)> = s
                    .codes
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
                    .collect();
                codes.sort_unstable();
                RouteSnapshot {
                    route: route.clone(),
                    codes,
                    latency: s.latency.snapshot(),
                }
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
        assert_eq!(s[0].codes, vec![(200, 2), (404, 1)]);
        assert_eq!(s[0].latency.count, 3);
        assert_eq!(s[1].codes, vec![(500, 1)]);
    }

    #[test]
    fn routes_past_the_cap_are_other() {
        let m = RequestMetrics::new(2);
        for i in 0..100 {
            m.record(&format!("/r{i}"), 200, Duration::ZERO);
        }
        m.record("/r0", 200, Duration::ZERO);
        let s = m.snapshot();
        let names: Vec<&str> = s.iter().map(|r| r.route.as_str()).collect();
        assert_eq!(names, vec!["/r0", "/r1", OTHER_ROUTE]);
        assert_eq!(s[0].codes, vec![(200, 2)]);
        assert_eq!(s[2].codes, vec![(200, 98)]);
    }
}
