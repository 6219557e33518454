//! The `[webhooks]` table: the leader's delivery settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// Webhook delivery (`[webhooks]`). Only the leader delivers, with its own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow subscriber URLs that reach loopback (tests, the demo). Default false.
    pub allow_loopback: bool,
    /// Allow private ranges (RFC 1918, unique-local IPv6, CGNAT). Default false. Cloud
    /// metadata, link-local, multicast and IPv4-embedded IPv6 forms are never allowed.
    pub allow_private: bool,
    /// Refuse plain http:// subscriber URLs. Default false.
    pub https_only: bool,
    /// Per-request timeout, ms. Default 30000.
    pub request_timeout_ms: u64,
    /// Delay before each attempt, in seconds; the first is normally 0. Default (Svix):
    /// [0, 5, 300, 1800, 7200, 18000, 36000, 36000].
    pub retry_schedule_s: Vec<u64>,
    /// Random spread of each delay, in percent. Default 20.
    pub jitter_percent: u32,
    /// `Retry-After` is honoured up to this many seconds. Default 3600.
    pub retry_after_max_s: u64,
    /// After a 429 or a timeout the next attempt waits at least this long, s. Default 10.
    pub throttle_floor_s: u64,
    /// Requests in flight on the leader. Default 256.
    pub max_in_flight: usize,
    /// Requests in flight to one subscriber's endpoint. Default 2.
    pub per_endpoint: usize,
    /// Quarantine a subscriber after this many failed attempts in a row... Default 10.
    pub quarantine_failures: u32,
    /// ...within this window, s. Default 3600.
    pub quarantine_window_s: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_loopback: false,
            allow_private: false,
            https_only: false,
            request_timeout_ms: 30_000,
            retry_schedule_s: vec![0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000],
            jitter_percent: 20,
            retry_after_max_s: 3_600,
            throttle_floor_s: 10,
            max_in_flight: 256,
            per_endpoint: 2,
            quarantine_failures: 10,
            quarantine_window_s: 3_600,
        }
    }
}

impl WebhooksConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("webhooks.{k}");
        if !(100..=120_000).contains(&self.request_timeout_ms) {
            return Err(invalid(
                &key("request_timeout_ms"),
                format!("{} is outside 100..=120000", self.request_timeout_ms),
            ));
        }
        if self.retry_schedule_s.is_empty() || self.retry_schedule_s.len() > 20 {
            return Err(invalid(
                &key("retry_schedule_s"),
                "needs 1 to 20 delays (the first is usually 0)",
            ));
        }
        if let Some(d) = self.retry_schedule_s.iter().find(|d| **d > 7 * 86_400) {
            return Err(invalid(
                &key("retry_schedule_s"),
                format!("{d} s is longer than a week"),
            ));
        }
        if self.jitter_percent > 50 {
            return Err(invalid(&key("jitter_percent"), "at most 50"));
        }
        if !(1..=10_000).contains(&self.max_in_flight) {
            return Err(invalid(&key("max_in_flight"), "must be 1..=10000"));
        }
        if !(1..=64).contains(&self.per_endpoint) {
            return Err(invalid(&key("per_endpoint"), "must be 1..=64"));
        }
        if self.quarantine_failures == 0 {
            return Err(invalid(&key("quarantine_failures"), "must be at least 1"));
        }
        Ok(())
    }

    /// The dispatcher's settings.
    pub fn to_webhook_config(&self) -> statusmesh_webhook::WebhookConfig {
        use statusmesh_model::outbox::QuarantinePolicy;
        statusmesh_webhook::WebhookConfig {
            targets: statusmesh_egress::TargetPolicy {
                allow_loopback: self.allow_loopback,
                allow_private: self.allow_private,
                https_only: self.https_only,
            },
            retry_schedule: self
                .retry_schedule_s
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: f64::from(self.jitter_percent) / 100.0,
            retry_after_max: Duration::from_secs(self.retry_after_max_s),
            throttle_floor: Duration::from_secs(self.throttle_floor_s),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_in_flight: self.max_in_flight,
            per_endpoint: self.per_endpoint,
            quarantine: QuarantinePolicy {
                failures: self.quarantine_failures,
                window_ms: (self.quarantine_window_s as i64).saturating_mul(1000),
            },
            ..statusmesh_webhook::WebhookConfig::default()
        }
    }
}
