//! The `[tls]` table.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// TLS (`[tls]`): where this node's certificates and keys are. Files are re-read when they
/// change (checked every 2 s) or on SIGHUP; connections made afterwards use the new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM of the cluster CA. Peers must present certificates it signed.
    pub ca_cert: PathBuf,
    /// This node's certificate (must name `node-<node_id>.statusmesh`; `statusmesh certs node`
    /// issues one). Used for peer traffic both ways, and for the admin port unless
    /// `admin_cert` is set.
    pub cert: PathBuf,
    /// The private key of `cert`.
    pub key: PathBuf,
    /// Admin port server certificate and key, if not the node certificate.
    #[serde(default)]
    pub admin_cert: Option<PathBuf>,
    #[serde(default)]
    pub admin_key: Option<PathBuf>,
    /// Accept operator client certificates signed by this CA on the admin port (the subject
    /// common name is the operator, the organizational unit the role). Tokens work either way.
    #[serde(default)]
    pub operator_ca: Option<PathBuf>,
    /// Serve the public port over HTTPS with this certificate and key (leave unset behind a
    /// TLS-terminating proxy or CDN).
    #[serde(default)]
    pub public_cert: Option<PathBuf>,
    #[serde(default)]
    pub public_key: Option<PathBuf>,
}

impl TlsConfig {
    pub fn files(&self) -> statusmesh_tls::TlsFiles {
        statusmesh_tls::TlsFiles {
            ca_cert: self.ca_cert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            admin_cert: self.admin_cert.clone(),
            admin_key: self.admin_key.clone(),
            operator_ca: self.operator_ca.clone(),
            public_cert: self.public_cert.clone(),
            public_key: self.public_key.clone(),
        }
    }
}
