//! The public face of a node, served from the local replica: the Statuspage v2 JSON API, the
//! HTML status page with incident and history pages, Atom and RSS feeds, SVG badges, and the
//! health and cluster endpoints.
//!
//! Architecture invariant: public reads never touch RocksDB, never ask the leader and never
//! re-serialise state per request. Representations are rendered once per applied index
//! ([`view::spawn_renderer`]) and served from memory with strong ETags and precompressed
//! bodies; every response says which node served it and how fresh its replica is.

pub mod badge;
pub mod client;
pub mod diagnostics;
pub mod feeds;
pub mod headers;
pub mod html;
pub mod routes;
pub mod subscribe;
pub mod table;
pub mod uptime;
pub mod view;

pub use client::{ClientAddr, TrustedProxies};
pub use diagnostics::Diagnostics;
pub use routes::{router, MetricsRenderer, PublicOptions};
pub use table::{route_index, route_labels, UNMATCHED};
pub use view::{spawn_renderer, View};
