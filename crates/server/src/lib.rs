//! The composition root of a statusmesh node: typed configuration, `serve` (store, Raft, the
//! peer, admin and public ports, the scheduler, ordered shutdown) and the local demo cluster.
//!
//! Architecture invariant: this crate wires the others together and owns process concerns
//! (ports, signals, child processes); it holds no domain or consensus logic of its own.

pub mod config;
pub mod demo;
mod drill;
pub mod fds;
pub mod metrics;
pub mod observe;
pub mod public_port;
pub mod recover;
pub mod restore;
pub mod run;

pub use config::Config;
pub use run::{serve, shutdown_signal};
