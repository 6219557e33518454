//! TLS for every port, with rustls: certificate loading and reloading, the accept loop, the
//! dialler tonic uses for peers, who a certificate names, and a small CA (`statusmesh certs`).
//!
//! Invariant: a node certificate names exactly one node id (`node-<id>.statusmesh`); a peer
//! connection is only trusted for the id its verified certificate names.

pub mod admission;
pub mod client;
pub mod identity;
pub mod material;
pub mod pki;
pub mod reload;
pub mod server;

pub use admission::{Admission, Admitted, TcpIncoming};
pub use client::TlsConnector;
pub use identity::{node_dns_name, node_id, operator_subject, OperatorSubject};
pub use material::{NodeTls, TlsError, TlsFiles};
pub use reload::ReloadingTls;
pub use server::{accept_tls, TlsIncoming};
