//! Writing the Prometheus text format (version 0.0.4).

use std::fmt::Write as _;

use crate::{HistogramSnapshot, RouteSnapshot};

/// The exposition being written. Each family is declared (`# HELP`, `# TYPE`) once, before its
/// samples.
#[derive(Debug, Default)]
pub struct Exposition(String);

impl Exposition {
    pub fn new() -> Self {
        Exposition(String::with_capacity(8192))
    }

    pub fn finish(self) -> String {
        self.0
    }

    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"");
                for ch in v.chars() {
                    match ch {
                        '\\' => self.0.push_str("\\\\"),
                        '"' => self.0.push_str("\\\""),
                        '\n' => self.0.push_str("\\n"),
                        c => self.0.push(c),
                    }
                }
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }

    /// A histogram's samples (`_bucket`, `_sum`, `_count`) under `labels`; declare the family
    /// first.
    pub fn histogram_samples(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        h: &HistogramSnapshot,
    ) {
        let bucket = format!("{name}_bucket");
        let bounds: Vec<String> = h.buckets.iter().map(|(le, _)| le.to_string()).collect();
        let counts = h.buckets.iter().map(|(_, c)| *c).chain([h.count]);
        let les = bounds.iter().map(String::as_str).chain(["+Inf"]);
        for (le, c) in les.zip(counts) {
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            self.sample(&bucket, &with_le, c as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    /// A histogram family without labels.
    pub fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) {
        self.family(name, "histogram", help);
        self.histogram_samples(name, &[], h);
    }

    /// Two families from [`crate::RequestMetrics`]: `{prefix}_requests_total{route_label, code}`
    /// and `{prefix}_request_duration_seconds{route_label}`; `code` names each code (codes past
    /// the slots are `other`).
    pub fn requests(
        &mut self,
        prefix: &str,
        what: &str,
        route_label: &str,
        fixed: &[(&str, &str)],
        routes: &[RouteSnapshot],
        code: impl Fn(u16) -> String,
    ) {
        let total = format!("{prefix}_requests_total");
        self.family(
            &total,
            "counter",
            &format!("{what} answered, by {route_label} and code."),
        );
        for r in routes {
            for (c, n) in &r.codes {
                let c = c.map_or_else(|| "other".to_owned(), &code);
                let mut labels = fixed.to_vec();
                labels.push((route_label, &r.route));
                labels.push(("code", &c));
                self.sample(&total, &labels, *n as f64);
            }
        }
        let duration = format!("{prefix}_request_duration_seconds");
        self.family(
            &duration,
            "histogram",
            &format!("{what}: time from arrival to the end of the answer, by {route_label}."),
        );
        for r in routes {
            let mut labels = fixed.to_vec();
            labels.push((route_label, &r.route));
            self.histogram_samples(&duration, &labels, &r.latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Histogram, RequestMetrics};
    use std::time::Duration;

    #[test]
    fn escapes_label_values() {
        let mut e = Exposition::new();
        e.sample("m", &[("a", "x\"y\\z\nw")], 1.0);
        assert_eq!(e.finish(), "m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
    }

    #[test]
    fn histogram_has_inf_sum_and_count() {
        let h = Histogram::latency();
        h.observe(Duration::from_millis(2));
        let mut e = Exposition::new();
        e.histogram("x_seconds", "X.", &h.snapshot());
        let text = e.finish();
        assert!(text.contains("# TYPE x_seconds histogram\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("x_seconds_count 1\n"));
    }

    #[test]
    fn requests_families() {
        let m = RequestMetrics::new(4);
        m.record("/x", 200, Duration::from_millis(1));
        let mut e = Exposition::new();
        e.requests("p_http", "Requests", "route", &[], &m.snapshot(), |c| {
            c.to_string()
        });
        let text = e.finish();
        assert!(text.contains("p_http_requests_total{route=\"/x\",code=\"200\"} 1\n"));
        assert!(text.contains("p_http_request_duration_seconds_count{route=\"/x\"} 1\n"));
    }
}
