//! Named timing profiles. In openraft 0.9 every AppendEntries RPC times out after the
//! heartbeat interval, so the heartbeat must exceed the worst round trip plus a follower's
//! fsync; a follower campaigns after `election_timeout_max` plus its own random timeout, so
//! failover takes roughly 1.5-2x `election_timeout_max`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::UnknownProfile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingProfile {
    /// Loopback or one data center (tests, demo): heartbeat 100 ms, election 400-800 ms.
    /// Expect a new leader about 0.8-1.3 s after the old one dies.
    #[default]
    Lan,
    /// Regions on different continents: heartbeat 500 ms, election 2-4 s, snapshot install
    /// timeout 30 s. Tolerates 300 ms RTT without election churn; expect failover in about 4-5 s.
    Wan,
}

/// The timing values a profile stands for.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    pub install_snapshot_timeout: Duration,
    /// How long one proposal may wait for a commit before it is retried (same key).
    pub propose_attempt: Duration,
    /// Connect timeout for peer channels.
    pub connect_timeout: Duration,
}

impl TimingProfile {
    pub fn timings(self) -> Timings {
        match self {
            TimingProfile::Lan => Timings {
                heartbeat: Duration::from_millis(100),
                election_min: Duration::from_millis(400),
                election_max: Duration::from_millis(800),
                install_snapshot_timeout: Duration::from_secs(10),
                propose_attempt: Duration::from_secs(2),
                connect_timeout: Duration::from_millis(500),
            },
            TimingProfile::Wan => Timings {
                heartbeat: Duration::from_millis(500),
                election_min: Duration::from_millis(2000),
                election_max: Duration::from_millis(4000),
                install_snapshot_timeout: Duration::from_secs(30),
                propose_attempt: Duration::from_secs(8),
                connect_timeout: Duration::from_secs(3),
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimingProfile::Lan => "lan",
            TimingProfile::Wan => "wan",
        }
    }
}

impl fmt::Display for TimingProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimingProfile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, UnknownProfile> {
        match s {
            "lan" => Ok(TimingProfile::Lan),
            "wan" => Ok(TimingProfile::Wan),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

/// The most entries one AppendEntries carries. With every entry at most
/// [`MAX_ENTRY_BYTES`](statusmesh_model::limits::MAX_ENTRY_BYTES), a full batch stays well
/// under the peer transport's message limit, and small enough to cross within the
/// AppendEntries timeout (the heartbeat) even when a follower catches up over large entries.
pub const MAX_PAYLOAD_ENTRIES: u64 = 32;

const _: () = assert!(
    MAX_PAYLOAD_ENTRIES as usize * statusmesh_model::limits::MAX_ENTRY_BYTES
        <= crate::network::MAX_PEER_MESSAGE / 4
);

/// The openraft configuration for a profile, with snapshot and purge policy.
pub fn raft_config(
    profile: TimingProfile,
    snapshot_every: u64,
) -> Result<openraft::Config, Box<openraft::ConfigError>> {
    let t = profile.timings();
    let config = openraft::Config {
        cluster_name: "statusmesh".into(),
        heartbeat_interval: t.heartbeat.as_millis() as u64,
        election_timeout_min: t.election_min.as_millis() as u64,
        election_timeout_max: t.election_max.as_millis() as u64,
        install_snapshot_timeout: t.install_snapshot_timeout.as_millis() as u64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
        // Keep some log behind the snapshot so a briefly lagging follower catches up by log.
        max_in_snapshot_log_to_keep: snapshot_every.min(500),
        // Purge in batches no larger than half a snapshot interval, so the log really shrinks.
        purge_batch_size: (snapshot_every / 2).clamp(1, 256),
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        ..Default::default()
    };
    config.validate().map_err(Box::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_by_name_and_name_what_is_wrong() {
        for p in [TimingProfile::Lan, TimingProfile::Wan] {
            assert_eq!(p.as_str().parse::<TimingProfile>(), Ok(p));
        }
        let e = "metro".parse::<TimingProfile>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"metro\" is not a timing profile (lan or wan)"
        );
    }

    #[test]
    fn every_profile_gives_a_valid_raft_configuration() {
        for p in [TimingProfile::Lan, TimingProfile::Wan] {
            let t = p.timings();
            // A heartbeat well inside the election timeout, or followers campaign needlessly.
            assert!(t.heartbeat * 3 <= t.election_min, "{p}");
            assert!(t.election_min < t.election_max, "{p}");
            let c = raft_config(p, 1000).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(c.heartbeat_interval, t.heartbeat.as_millis() as u64);
            assert_eq!(c.max_payload_entries, MAX_PAYLOAD_ENTRIES);
            // The log kept behind a snapshot and the purge batches follow the interval.
            assert_eq!(c.max_in_snapshot_log_to_keep, 500);
            assert_eq!(c.purge_batch_size, 256);
        }
        let small = raft_config(TimingProfile::Lan, 10).unwrap();
        assert_eq!(small.max_in_snapshot_log_to_keep, 10);
        assert_eq!(small.purge_batch_size, 5);
    }
}
