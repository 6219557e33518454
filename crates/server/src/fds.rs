//! How a node shares its file descriptors, so that no port can starve the others.
//!
//! At start-up the soft `RLIMIT_NOFILE` is raised to the hard limit, then split: RocksDB's
//! table files ([`statusmesh_store::MAX_OPEN_FILES`]), a fixed allowance for everything else
//! the process opens ([`BASELINE`]: logs, the WAL and manifest, the runtime's own handles,
//! certificate reloads), outbound connections (webhook deliveries and the peers), and the
//! admin and peer ports' caps are reserved first; the public port gets at most what remains.
//! A public flood is then shed at the public port's cap while Raft, operators and RocksDB
//! keep the descriptors they were promised.

use crate::config::LimitsConfig;

/// Descriptors for everything that is not a connection or a table file.
pub const BASELINE: u64 = 128;
/// The public port is never planned below this: a limit that leaves less is refused.
pub const MIN_PUBLIC: usize = 16;

/// The caps each port runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdPlan {
    /// The process's file limit after raising it.
    pub limit: u64,
    /// Reserved for RocksDB, the baseline, outbound connections and the admin and peer caps.
    pub reserved: u64,
    pub public: usize,
    pub admin: usize,
    pub peer: usize,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the file descriptor limit ({limit}) is too low: RocksDB, outbound connections and the \
     admin and peer ports need {reserved}, which leaves {left} for the public port (at least \
     {MIN_PUBLIC}); raise `ulimit -n` (LimitNOFILE= under systemd) or lower \
     limits.admin_connections, limits.peer_connections or webhooks.max_in_flight"
)]
pub struct FdLimitTooLow {
    pub limit: u64,
    pub reserved: u64,
    pub left: u64,
}

/// Splits `limit` descriptors given the configured caps and `outbound` connections the node
/// may open itself.
pub fn plan(limit: u64, limits: &LimitsConfig, outbound: usize) -> Result<FdPlan, FdLimitTooLow> {
    let reserved = statusmesh_store::MAX_OPEN_FILES as u64
        + BASELINE
        + outbound as u64
        + limits.admin_connections as u64
        + limits.peer_connections as u64;
    let left = limit.saturating_sub(reserved);
    if left < MIN_PUBLIC as u64 {
        return Err(FdLimitTooLow {
            limit,
            reserved,
            left,
        });
    }
    Ok(FdPlan {
        limit,
        reserved,
        public: limits
            .public_connections
            .min(usize::try_from(left).unwrap_or(usize::MAX)),
        admin: limits.admin_connections,
        peer: limits.peer_connections,
    })
}

/// Raises the soft file limit to the hard one and returns it.
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        // No limit to read: plan as if it were the common default.
        Err(_) => 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_port_gets_what_the_others_leave() {
        let limits = LimitsConfig::default();
        let p = plan(1_048_576, &limits, 300).unwrap();
        assert_eq!(p.public, limits.public_connections);
        let p = plan(2_000, &limits, 300).unwrap();
        assert_eq!(p.reserved, 256 + 128 + 300 + 128 + 32);
        assert_eq!(p.public as u64, 2_000 - p.reserved);
        assert_eq!((p.admin, p.peer), (128, 32));
    }

    #[test]
    fn a_limit_that_leaves_nothing_for_the_public_port_is_refused_with_the_figures() {
        let err = plan(600, &LimitsConfig::default(), 300).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("(600)") && text.contains("need 844"),
            "{text}"
        );
    }
}
