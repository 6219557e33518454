//! The public face of a node: the Statuspage v2 JSON API, health and cluster endpoints, served
//! from the local replica.
//!
//! Architecture invariant: public reads never touch RocksDB, never ask the leader and never
//! re-serialise state per request. Representations are rendered once per applied index
//! ([`view::spawn_renderer`]) and served from memory with strong ETags and precompressed
//! bodies; every response says which node served it and how fresh its replica is.

pub mod routes;
pub mod statuspage;
pub mod view;

pub use routes::{router, PublicOptions};
pub use view::{spawn_renderer, View};
