//! The composition root of a statusmesh node: typed configuration, `serve` (store, Raft, the
//! peer, admin and public ports, the scheduler, ordered shutdown) and the local demo cluster.
//!
//! Architecture invariant: this crate wires the others together and owns process concerns
//! (ports, signals, child processes); it holds no domain or consensus logic of its own.

pub mod config;
pub mod demo;
pub mod fds;
pub mod metrics;
pub mod observe;
pub mod public_port;
pub mod recover;
pub mod restore;
pub mod serve;

pub use config::Config;
pub use serve::{serve, shutdown_signal};
