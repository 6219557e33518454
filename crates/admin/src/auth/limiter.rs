//! Failed authentications, slowed down per source: one IPv4 address or one IPv6 /64, in a
//! table of at most [`MAX_TRACKED`] sources swept at most once a second; new sources share
//! one overflow entry while it is full. What it counted is reported (summarised) into the
//! audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use statusmesh_model::Timestamp;

/// Failed authentications allowed per address per window before answers slow down.
const FREE_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The slow-down doubles per further failure, from this...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ...up to this.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Sources tracked at once. Past it, new sources share one overflow entry (so a flood from
/// many addresses is slowed down together) until a sweep frees room.
const MAX_TRACKED: usize = 10_000;
/// The table is swept of expired windows at most this often, so a failure costs O(1)
/// amortised however full it is.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Where failures are counted: one IPv4 address, or one IPv6 /64 (what a single host or
/// customer usually holds), or the shared overflow entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    Overflow,
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Source::V6Prefix(prefix)
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::V4(o) => write!(f, "{}", std::net::Ipv4Addr::from(*o)),
            Source::V6Prefix(p) => {
                let mut full = [0u8; 16];
                full[..8].copy_from_slice(p);
                write!(f, "{}/64", std::net::Ipv6Addr::from(full))
            }
            Source::Overflow => f.write_str("other"),
        }
    }
}

/// Failures not yet summarised in the audit log: count, and when the first was seen.
const MAX_UNREPORTED: usize = 1_000;

#[derive(Debug, Default)]
struct Failures {
    unreported: HashMap<Source, (u32, Timestamp)>,
    by_source: HashMap<Source, (u32, Instant)>,
    last_sweep: Option<Instant>,
    sweeps: u64,
}

/// Counts failed authentications per source, in a table of bounded size.
#[derive(Debug, Default)]
pub(super) struct FailureLimiter {
    failures: Mutex<Failures>,
}

impl FailureLimiter {
    /// Records a failure from `ip`; returns how long to wait before answering.
    pub(super) fn fail(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut source = Source::of(ip);
        if f.by_source.len() >= MAX_TRACKED && !f.by_source.contains_key(&source) {
            if f.last_sweep
                .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
            {
                f.by_source
                    .retain(|_, (_, start)| now.duration_since(*start) < FAILURE_WINDOW);
                f.last_sweep = Some(now);
                f.sweeps += 1;
            }
            if f.by_source.len() >= MAX_TRACKED {
                source = Source::Overflow;
            }
        }
        let reported =
            if f.unreported.len() >= MAX_UNREPORTED && !f.unreported.contains_key(&source) {
                Source::Overflow
            } else {
                source
            };
        f.unreported
            .entry(reported)
            .or_insert((0, statusmesh_cluster::now()))
            .0 += 1;
        let entry = f.by_source.entry(source).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        delay_after(entry.0)
    }

    /// The failures counted since the last call, per source (`other` for what is past
    /// `max` sources, merged), most failures first.
    pub(super) fn take_report(&self, max: usize) -> Vec<(String, u32, Timestamp)> {
        let drained: Vec<(Source, (u32, Timestamp))> = {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            f.unreported.drain().collect()
        };
        let mut named: Vec<(Source, (u32, Timestamp))> = drained;
        named.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
        let mut out = Vec::new();
        let mut other: Option<(u32, Timestamp)> = None;
        for (source, (count, since)) in named {
            if source == Source::Overflow || out.len() >= max {
                let o = other.get_or_insert((0, since));
                o.0 += count;
                o.1 = o.1.min(since);
            } else {
                out.push((source.to_string(), count, since));
            }
        }
        if let Some((count, since)) = other {
            out.push((Source::Overflow.to_string(), count, since));
        }
        out
    }

    /// Sources tracked, and sweeps made since start.
    #[cfg(test)]
    pub(super) fn tracked(&self) -> (usize, u64) {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        (f.by_source.len(), f.sweeps)
    }
}

/// The wait after the `n`th failure within one window.
fn delay_after(n: u32) -> Duration {
    if n <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (n - FREE_FAILURES - 1).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_down_after_five_and_cap() {
        assert_eq!(delay_after(5), Duration::ZERO);
        assert_eq!(delay_after(6), Duration::from_millis(100));
        assert_eq!(delay_after(7), Duration::from_millis(200));
        assert_eq!(delay_after(40), MAX_DELAY);
        let l = FailureLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let waits: Vec<Duration> = (0..7).map(|_| l.fail(ip)).collect();
        assert_eq!(waits[4], Duration::ZERO);
        assert_eq!(waits[6], Duration::from_millis(200));
        // Another address is not affected.
        assert_eq!(l.fail("192.0.2.2".parse().unwrap()), Duration::ZERO);
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64_and_mapped_ipv4_is_its_ipv4() {
        let l = FailureLimiter::default();
        for i in 0..6u16 {
            // Six addresses of one /64: the sixth failure is slowed down.
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            let wait = l.fail(ip);
            assert_eq!(wait.is_zero(), i < 5, "{i}");
        }
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert_eq!(l.fail(other), Duration::ZERO);
        assert_eq!(
            Source::of("::ffff:192.0.2.9".parse().unwrap()),
            Source::of("192.0.2.9".parse().unwrap())
        );
    }

    #[test]
    fn failures_are_reported_once_per_source_with_the_rest_as_other() {
        let l = FailureLimiter::default();
        for _ in 0..3 {
            l.fail("192.0.2.1".parse().unwrap());
        }
        l.fail("2001:db8:0:1::5".parse().unwrap());
        l.fail("198.51.100.9".parse().unwrap());
        let report = l.take_report(2);
        let named: Vec<(&str, u32)> = report.iter().map(|(s, n, _)| (s.as_str(), *n)).collect();
        assert_eq!(named[0], ("192.0.2.1", 3));
        assert_eq!(named.len(), 3, "{named:?}");
        assert_eq!(named[2], ("other", 1));
        assert!(named[1].0 == "2001:db8:0:1::/64" || named[1].0 == "198.51.100.9");
        // Reported once: the next report is empty until new failures arrive.
        assert!(l.take_report(2).is_empty());
    }

    #[test]
    fn a_flood_from_many_sources_stays_bounded_and_shares_the_overflow_entry() {
        let l = FailureLimiter::default();
        let started = Instant::now();
        let mut slowed = 0;
        for i in 0..(MAX_TRACKED as u32 + 50_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if !l.fail(ip).is_zero() {
                slowed += 1;
            }
        }
        let (tracked, sweeps) = l.tracked();
        assert!(tracked <= MAX_TRACKED + 1, "{tracked}");
        // Past the table's size the flood shares one entry, which is slowed down.
        assert!(slowed > 49_000, "{slowed}");
        // 50,000 failures past a full table: one sweep per second at most, not one each.
        let allowed = 1 + started.elapsed().as_secs();
        assert!(sweeps <= allowed, "{sweeps} sweeps, {allowed} allowed");
    }
}
