//! Loading certificates and keys from PEM files, and building the rustls configurations a node
//! uses on each port.
//!
//! - peer server: mutual TLS; the client must present a certificate the cluster CA signed
//!   (which node it is, is checked per request against the id the request claims);
//! - peer client: presents the node certificate and accepts only a server whose certificate
//!   names the node id it meant to reach (`node-<id>.statusmesh`);
//! - admin server: the admin certificate; client certificates from the operator CA are
//!   accepted (optional: a token also authenticates);
//! - public server: HTTPS when a public certificate is configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::identity;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{what}: {message}")]
    Config { what: String, message: String },
    #[error("{name:?} is not a valid TLS server name: {source}")]
    ServerName {
        name: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The crypto provider every configuration is built with (never the process default, which
/// is ambiguous when several providers are compiled in).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1). The error never shows key bytes.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|_| file_error(path, "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"))
}

/// A root store holding every certificate of a PEM file.
pub fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The files a node's TLS comes from. `admin_*` default to the node certificate; the public
/// port serves HTTPS only when `public_*` are set; operator client certificates are accepted
/// on the admin port only when `operator_ca` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub admin_cert: Option<PathBuf>,
    pub admin_key: Option<PathBuf>,
    pub operator_ca: Option<PathBuf>,
    pub public_cert: Option<PathBuf>,
    pub public_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file, for change detection.
    pub fn all(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![&self.ca_cert, &self.cert, &self.key];
        for p in [
            &self.admin_cert,
            &self.admin_key,
            &self.operator_ca,
            &self.public_cert,
            &self.public_key,
        ]
        .into_iter()
        .flatten()
        {
            v.push(p);
        }
        v
    }
}

/// The rustls configurations of one node, built from one reading of its files.
#[derive(Debug)]
pub struct NodeTls {
    /// Verifies a client certificate against the cluster CA alone (the admin port's client
    /// verifier also trusts the operator CA): see [`NodeTls::cluster_node`].
    pub cluster_verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    pub peer_server: Arc<ServerConfig>,
    pub peer_client: Arc<ClientConfig>,
    pub admin_server: Arc<ServerConfig>,
    /// For forwarding to another node's admin port: trusts the cluster CA and, when set, the
    /// operator CA; presents the node certificate (a token, when the caller used one, travels
    /// as well).
    pub admin_client: Arc<ClientConfig>,
    pub public_server: Option<Arc<ServerConfig>>,
    /// Serial of the node certificate in use (for logs and tests).
    pub node_serial: String,
    /// Earliest expiry among the certificates in use, seconds since the epoch.
    pub expires_at: Option<i64>,
}

fn server_with_cert(
    builder: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| file_error(key_path, format!("does not match its certificate: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn pair(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    what: &str,
) -> Result<Option<(PathBuf, PathBuf)>, TlsError> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some((c.clone(), k.clone()))),
        (None, None) => Ok(None),
        _ => Err(TlsError::Config {
            what: format!("tls.{what}_cert / tls.{what}_key"),
            message: "set both or neither".into(),
        }),
    }
}

impl NodeTls {
    /// Reads every file and builds the configurations. The node certificate must name
    /// `node_id`: a node started with another node's certificate would be refused by every peer.
    pub fn load(files: &TlsFiles, node_id: u64) -> Result<NodeTls, TlsError> {
        let provider = provider();
        let versions = rustls::DEFAULT_VERSIONS;
        let roots = load_roots(&files.ca_cert)?;
        let certs = load_certs(&files.cert)?;
        let named = identity::node_id(&certs[0]).map_err(|e| file_error(&files.cert, e))?;
        if named != node_id {
            return Err(file_error(
                &files.cert,
                format!("is the certificate of node {named}, but this is node {node_id}"),
            ));
        }
        let node_serial = identity::serial(&certs[0]);
        let mut expires_at = identity::not_after(&certs[0]);
        let key = load_key(&files.key)?;

        let tls_error = |what: &str| {
            let what = what.to_owned();
            move |e: rustls::Error| TlsError::Config {
                what: what.clone(),
                message: e.to_string(),
            }
        };
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Config {
                    what: "tls.ca_cert".into(),
                    message: e.to_string(),
                })?;
        let peer_server = server_with_cert(
            ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)
                .map_err(tls_error("peer server"))?
                .with_client_cert_verifier(client_verifier.clone()),
            certs.clone(),
            key.clone_key(),
            &files.key,
            &[b"h2"],
        )?;

        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Config {
                    what: "tls.ca_cert".into(),
                    message: e.to_string(),
                })?;
        let mut peer_client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(tls_error("peer client"))?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| file_error(&files.key, format!("does not match its certificate: {e}")))?;
        peer_client.alpn_protocols = vec![b"h2".to_vec()];

        let (admin_certs, admin_key, admin_key_path) =
            match pair(&files.admin_cert, &files.admin_key, "admin")? {
                Some((c, k)) => {
                    let certs = load_certs(&c)?;
                    expires_at = min_opt(expires_at, identity::not_after(&certs[0]));
                    (certs, load_key(&k)?, k)
                }
                None => (certs.clone(), key.clone_key(), files.key.clone()),
            };
        let admin_builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(tls_error("admin server"))?;
        let mut admin_roots = RootCertStore::empty();
        admin_roots.roots.extend(roots.roots.iter().cloned());
        let admin_builder = match &files.operator_ca {
            Some(path) => {
                let operator_roots = load_roots(path)?;
                admin_roots
                    .roots
                    .extend(operator_roots.roots.iter().cloned());
                // Operators' certificates, and other nodes' (which forward a certificate-
                // authenticated operator's membership call to the leader).
                let mut client_roots = RootCertStore::empty();
                client_roots
                    .roots
                    .extend(operator_roots.roots.iter().cloned());
                client_roots.roots.extend(roots.roots.iter().cloned());
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(client_roots),
                    provider.clone(),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| file_error(path, e))?;
                admin_builder.with_client_cert_verifier(verifier)
            }
            None => admin_builder.with_no_client_auth(),
        };
        let admin_server = server_with_cert(
            admin_builder,
            admin_certs,
            admin_key,
            &admin_key_path,
            &[b"h2"],
        )?;
        let mut admin_client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(tls_error("admin client"))?
            .with_root_certificates(Arc::new(admin_roots))
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| file_error(&files.key, format!("does not match its certificate: {e}")))?;
        admin_client.alpn_protocols = vec![b"h2".to_vec()];

        let public_server = match pair(&files.public_cert, &files.public_key, "public")? {
            Some((c, k)) => {
                let certs = load_certs(&c)?;
                expires_at = min_opt(expires_at, identity::not_after(&certs[0]));
                Some(server_with_cert(
                    ServerConfig::builder_with_provider(provider)
                        .with_protocol_versions(versions)
                        .map_err(tls_error("public server"))?
                        .with_no_client_auth(),
                    certs,
                    load_key(&k)?,
                    &k,
                    // The public port speaks HTTP/1.1 only (its server enforces header-read
                    // and write-stall timeouts per HTTP/1.1 connection).
                    &[b"http/1.1"],
                )?)
            }
            None => None,
        };
        Ok(NodeTls {
            cluster_verifier: client_verifier,
            peer_server,
            peer_client: Arc::new(peer_client),
            admin_server,
            admin_client: Arc::new(admin_client),
            public_server,
            node_serial,
            expires_at,
        })
    }
}

impl NodeTls {
    /// The node a presented chain (leaf first) proves to be: a node certificate issued by the
    /// cluster CA. A `node-N.statusmesh` certificate from any other CA (the operator CA, say)
    /// proves nothing.
    pub fn cluster_node(&self, chain: &[CertificateDer<'static>]) -> Option<u64> {
        let (leaf, intermediates) = chain.split_first()?;
        self.cluster_verifier
            .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
            .ok()?;
        identity::node_id(leaf).ok()
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
