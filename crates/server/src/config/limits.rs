//! The `[limits]` table: how many connections each port holds at once and how long a public
//! client may take. See `crate::fds` for how the caps meet the process's file limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// Connection caps and timeouts (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Connections the public port holds at once; more are closed as they arrive. Lowered at
    /// start-up to what the file limit leaves once the other ports and RocksDB have theirs.
    /// Default 10000.
    pub public_connections: usize,
    /// Connections the admin port holds at once. Default 128.
    pub admin_connections: usize,
    /// Connections the peer port holds at once (a few per member). Default 32.
    pub peer_connections: usize,
    /// A public request's headers must arrive within this long of the server waiting for
    /// them; it also closes keep-alive connections idle that long. ms, default 10000.
    pub header_read_timeout_ms: u64,
    /// A public connection whose writes make no progress for this long is closed. ms,
    /// default 30000.
    pub write_stall_timeout_ms: u64,
    /// A leader stamps a write at most this far ahead of the state's time (plus the real time
    /// since) unless a majority of voters' clocks confirm its own; otherwise the stamp is
    /// clamped to the quorum's time. ms, default 300000.
    pub max_clock_jump_ms: u64,
    /// The load balancers or proxies in front of the public port (addresses or CIDR ranges):
    /// for a connection from one of them, the per-client limits (the subscription form's)
    /// count the address its `X-Forwarded-For` names. Default none: the connection's peer.
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            public_connections: 10_000,
            admin_connections: 128,
            peer_connections: 32,
            header_read_timeout_ms: 10_000,
            write_stall_timeout_ms: 30_000,
            max_clock_jump_ms: 300_000,
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// The proxies whose `X-Forwarded-For` is believed (checked by `validate`).
    pub fn trusted_proxies(&self) -> statusmesh_http::TrustedProxies {
        statusmesh_http::TrustedProxies::parse(&self.trusted_proxies).unwrap_or_default()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("limits.{k}");
        if let Err(e) = statusmesh_http::TrustedProxies::parse(&self.trusted_proxies) {
            return Err(invalid(&key("trusted_proxies"), e));
        }
        for (k, v, range) in [
            (
                "public_connections",
                self.public_connections,
                16..=1_000_000,
            ),
            ("admin_connections", self.admin_connections, 4..=10_000),
            ("peer_connections", self.peer_connections, 4..=1_000),
        ] {
            if !range.contains(&v) {
                return Err(invalid(
                    &key(k),
                    format!("{v} is outside {}..={}", range.start(), range.end()),
                ));
            }
        }
        for (k, v) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("write_stall_timeout_ms", self.write_stall_timeout_ms),
        ] {
            if !(100..=600_000).contains(&v) {
                return Err(invalid(&key(k), format!("{v} is outside 100..=600000")));
            }
        }
        if !(1_000..=86_400_000).contains(&self.max_clock_jump_ms) {
            return Err(invalid(
                &key("max_clock_jump_ms"),
                format!("{} is outside 1000..=86400000", self.max_clock_jump_ms),
            ));
        }
        Ok(())
    }

    pub fn max_clock_jump(&self) -> Duration {
        Duration::from_millis(self.max_clock_jump_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn write_stall_timeout(&self) -> Duration {
        Duration::from_millis(self.write_stall_timeout_ms)
    }
}
