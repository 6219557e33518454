//! 90-day uptime per component, from its status log.
//!
//! Uptime counts a major outage as fully down and a partial outage as 30 % down (the weighting
//! hosted status pages use); degraded performance and maintenance count as up. Time before the
//! component existed is not counted.

use chrono::{NaiveDate, TimeZone as _};
use chrono_tz::Tz;
use statusmesh_model::{Component, ComponentStatus, Timestamp};

pub const DAYS: i64 = 90;
const PARTIAL_WEIGHT: f64 = 0.3;

/// One day of one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    /// The worst status seen that day; `None` before the component existed.
    pub worst: Option<ComponentStatus>,
    pub major_ms: i64,
    pub partial_ms: i64,
    pub degraded_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Uptime {
    /// Oldest first, `DAYS` entries ending today (in the page's time zone).
    pub days: Vec<Day>,
    /// Percentage over the observed part of the window.
    pub percent: f64,
}

fn day_start(date: NaiveDate, tz: Tz) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&naive)
        .earliest()
        .map_or(0, |d| d.timestamp_millis())
}

pub fn uptime(c: &Component, now: Timestamp, tz: Tz) -> Uptime {
    let today = now.to_datetime().with_timezone(&tz).date_naive();
    let mut days = Vec::with_capacity(DAYS as usize);
    let (mut observed, mut down) = (0i64, 0f64);
    for back in (0..DAYS).rev() {
        let date = today - chrono::Duration::days(back);
        let start = day_start(date, tz);
        let end = day_start(date + chrono::Duration::days(1), tz)
            .min(now.0)
            .max(start);
        let mut day = Day {
            date,
            worst: None,
            major_ms: 0,
            partial_ms: 0,
            degraded_ms: 0,
        };
        for (i, change) in c.status_log.iter().enumerate() {
            let from = change.at.0.max(start).max(c.created_at.0);
            let until = c.status_log.get(i + 1).map_or(now.0, |n| n.at.0).min(end);
            if until <= from {
                continue;
            }
            let span = until - from;
            day.worst = day.worst.max(Some(change.status));
            match change.status {
                ComponentStatus::MajorOutage => day.major_ms += span,
                ComponentStatus::PartialOutage => day.partial_ms += span,
                ComponentStatus::DegradedPerformance => day.degraded_ms += span,
                _ => {}
            }
            observed += span;
        }
        down += day.major_ms as f64 + PARTIAL_WEIGHT * day.partial_ms as f64;
        days.push(day);
    }
    let percent = if observed == 0 {
        100.0
    } else {
        100.0 * (1.0 - down / observed as f64)
    };
    Uptime { days, percent }
}

/// A short human duration: "2h 10m", "45m", "30s".
pub fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statusmesh_model::{Id, StatusChange};

    const DAY_MS: i64 = 24 * 60 * 60 * 1000;

    #[test]
    fn outages_reduce_uptime_with_partial_weighting() {
        let now = Timestamp(1_800_000_000_000);
        let created = Timestamp(now.0 - 10 * DAY_MS);
        let c = Component {
            id: Id::parse("id", "api").unwrap_or_else(|_| Id::pending()),
            name: "API".into(),
            description: None,
            position: 1,
            status: ComponentStatus::Operational,
            group_id: None,
            is_group: false,
            showcase: true,
            only_show_if_degraded: false,
            created_at: created,
            updated_at: now,
            status_log: vec![
                StatusChange {
                    at: created,
                    status: ComponentStatus::Operational,
                },
                StatusChange {
                    at: Timestamp(now.0 - 2 * DAY_MS),
                    status: ComponentStatus::MajorOutage,
                },
                StatusChange {
                    at: Timestamp(now.0 - 2 * DAY_MS + 3_600_000),
                    status: ComponentStatus::PartialOutage,
                },
                StatusChange {
                    at: Timestamp(now.0 - 2 * DAY_MS + 2 * 3_600_000),
                    status: ComponentStatus::Operational,
                },
            ],
        };
        let u = uptime(&c, now, Tz::UTC);
        assert_eq!(u.days.len(), 90);
        assert!(
            u.days[0].worst.is_none(),
            "no data before the component existed"
        );
        let bad: Vec<&Day> = u
            .days
            .iter()
            .filter(|d| d.major_ms > 0 || d.partial_ms > 0)
            .collect();
        assert!(!bad.is_empty());
        let (major, partial): (i64, i64) = u
            .days
            .iter()
            .fold((0, 0), |a, d| (a.0 + d.major_ms, a.1 + d.partial_ms));
        assert_eq!(major, 3_600_000);
        assert_eq!(partial, 3_600_000);
        let expected = 100.0 * (1.0 - 1.3 * 3_600_000.0 / (10.0 * DAY_MS as f64));
        assert!(
            (u.percent - expected).abs() < 1e-6,
            "{} vs {expected}",
            u.percent
        );
        assert_eq!(human_ms(7_800_000), "2h 10m");
    }
}
