//! Delivery policy: the retry schedule, how a response is classified, and the dispatcher's
//! bounds. Everything here is node configuration (`[webhooks]` in the node's TOML); the
//! decisions that must agree across replicas travel inside `RecordAttempts`.

use std::time::Duration;

use rand::Rng;
use statusmesh_model::outbox::{AttemptOutcome, QuarantinePolicy};
use statusmesh_model::Timestamp;

use statusmesh_egress::TargetPolicy;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub targets: TargetPolicy,
    /// Delay before each attempt: the first is normally zero ("immediately"); when the last
    /// one fails the schedule is exhausted and the subscriber is quarantined.
    pub retry_schedule: Vec<Duration>,
    /// Each delay is scaled by a random factor in `1 ± jitter`.
    pub jitter: f64,
    /// A `Retry-After` longer than this is cut to it.
    pub retry_after_max: Duration,
    /// After a 429 or a timeout the next attempt waits at least this long.
    pub throttle_floor: Duration,
    pub request_timeout: Duration,
    /// Requests in flight on this node, all subscribers together.
    pub max_in_flight: usize,
    /// Requests in flight to one subscriber's endpoint.
    pub per_endpoint: usize,
    pub quarantine: QuarantinePolicy,
    /// Attempt reports per `RecordAttempts` command, and how long a report may wait for a
    /// batch to fill.
    pub batch_max: usize,
    pub batch_delay: Duration,
}

/// Svix's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub fn svix_schedule() -> Vec<Duration> {
    [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            targets: TargetPolicy::default(),
            retry_schedule: svix_schedule(),
            jitter: 0.2,
            retry_after_max: Duration::from_secs(3_600),
            throttle_floor: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 256,
            per_endpoint: 2,
            quarantine: QuarantinePolicy::default(),
            batch_max: 2_000,
            batch_delay: Duration::from_millis(50),
        }
    }
}

/// What one HTTP attempt came to, before the schedule is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    Timeout,
    /// Connection refused, TLS failure, SSRF refusal, a mail relay's temporary refusal...
    Error,
    /// The mail relay accepted the message.
    Accepted,
    /// The mail relay refused the recipient for good: the subscriber is bounced.
    Refused,
}

impl WebhookConfig {
    /// The outcome of attempt number `attempt` (1-based) that ended at `now`.
    pub fn outcome(&self, attempt: u32, response: &Response, now: Timestamp) -> AttemptOutcome {
        let throttled = match response {
            Response::Status { code, .. } if (200..300).contains(code) => {
                return AttemptOutcome::Delivered
            }
            Response::Status { code: 410, .. } => return AttemptOutcome::Gone,
            Response::Accepted => return AttemptOutcome::Delivered,
            Response::Refused => return AttemptOutcome::Bounced,
            Response::Status { code, .. } => *code == 429,
            Response::Timeout => true,
            Response::Error => false,
        };
        let Some(base) = self.retry_schedule.get(attempt as usize) else {
            return AttemptOutcome::Exhausted;
        };
        let factor = if self.jitter > 0.0 {
            rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter))
        } else {
            1.0
        };
        let mut delay = base.mul_f64(factor);
        if let Response::Status {
            retry_after: Some(ra),
            ..
        } = response
        {
            delay = delay.max((*ra).min(self.retry_after_max));
        }
        if throttled {
            delay = delay.max(self.throttle_floor);
        }
        AttemptOutcome::Retry {
            next_at: Timestamp(now.0 + delay.as_millis() as i64),
        }
    }
}

/// `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - now.0;
    Some(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> WebhookConfig {
        WebhookConfig {
            jitter: 0.0,
            ..WebhookConfig::default()
        }
    }

    fn next(o: AttemptOutcome) -> i64 {
        match o {
            AttemptOutcome::Retry { next_at } => next_at.0,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    const NOW: Timestamp = Timestamp(1_000_000);

    fn status(code: u16) -> Response {
        Response::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn classification_and_schedule() {
        let c = cfg();
        assert_eq!(c.outcome(1, &status(204), NOW), AttemptOutcome::Delivered);
        assert_eq!(c.outcome(1, &status(410), NOW), AttemptOutcome::Gone);
        // 3xx is a failure like 5xx: the second attempt follows after 5 s.
        assert_eq!(next(c.outcome(1, &status(302), NOW)), NOW.0 + 5_000);
        assert_eq!(next(c.outcome(2, &status(500), NOW)), NOW.0 + 300_000);
        assert_eq!(
            next(c.outcome(7, &Response::Error, NOW)),
            NOW.0 + 36_000_000
        );
        assert_eq!(c.outcome(8, &status(500), NOW), AttemptOutcome::Exhausted);
    }

    #[test]
    fn retry_after_within_bounds_and_throttle_floor() {
        let c = cfg();
        let ra = |s| Response::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(next(c.outcome(1, &ra(60), NOW)), NOW.0 + 60_000);
        assert_eq!(next(c.outcome(1, &ra(1), NOW)), NOW.0 + 5_000);
        assert_eq!(next(c.outcome(1, &ra(999_999), NOW)), NOW.0 + 3_600_000);
        assert_eq!(next(c.outcome(1, &status(429), NOW)), NOW.0 + 10_000);
        assert_eq!(next(c.outcome(1, &Response::Timeout, NOW)), NOW.0 + 10_000);
        assert_eq!(
            parse_retry_after("120", NOW),
            Some(Duration::from_secs(120))
        );
        let now = Timestamp(784_111_777_000);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(0))
        );
        assert_eq!(parse_retry_after("soon", NOW), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let c = WebhookConfig::default();
        for _ in 0..200 {
            let d = next(c.outcome(2, &status(500), NOW)) - NOW.0;
            assert!((240_000..=360_000).contains(&d), "{d}");
        }
    }
}
