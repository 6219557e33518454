//! A small certificate authority for small deployments and the demo: `statusmesh certs`.
//!
//! Keys are ECDSA P-256. The CA is valid for ten years by default, leaf certificates for one.
//! Private keys are written with mode 0600, and no existing file is ever overwritten: issuing
//! again under a name that exists is refused, so a certificate in use cannot be lost by a typo.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

use crate::identity::node_dns_name;

/// File names inside a certificate directory.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";

pub fn node_files(dir: &Path, id: u64) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("node-{id}.pem")),
        dir.join(format!("node-{id}.key")),
    )
}

pub fn operator_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("operator-{name}.pem")),
        dir.join(format!("operator-{name}.key")),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; remove it first or issue under another name (nothing was written)"
    )]
    Exists { path: String },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(what: &str, message: impl Into<String>) -> PkiError {
    PkiError::Invalid {
        what: what.into(),
        message: message.into(),
    }
}

/// Operator roles a certificate may carry (the same names `statusctl token create` uses).
pub const ROLES: &[&str] = &["read-only", "operator", "admin"];

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand_bytes();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // rcgen's KeyPair draws from ring's system RNG; reuse the OS source for serials.
    let rng = rustls::crypto::ring::default_provider().secure_random;
    rng.fill(&mut out).expect("the OS random source failed");
    out
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    // Five minutes of slack for clocks that run a little behind.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// Writes `contents` to a new file (refusing to replace one); keys get mode 0600.
fn write_new(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::Exists {
                path: path.display().to_string(),
            }
        } else {
            io(path)(e)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn refuse_existing(paths: &[&Path]) -> Result<(), PkiError> {
    for p in paths {
        if p.exists() {
            return Err(PkiError::Exists {
                path: p.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Creates a cluster CA (`ca.pem`, `ca.key`) in `dir`.
pub fn create_ca(dir: &Path, name: &str, days: u32) -> Result<PathBuf, PkiError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    refuse_existing(&[&cert_path, &key_path])?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "statusmesh");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    validity(&mut params, days);
    let cert = params.self_signed(&key)?;
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok(cert_path)
}

fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let cert = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
    let key = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
    let key = KeyPair::from_pem(&key)
        .map_err(|e| invalid(&key_path.display().to_string(), e.to_string()))?;
    Issuer::from_ca_cert_pem(&cert, key)
        .map_err(|e| invalid(&cert_path.display().to_string(), e.to_string()))
}

/// Signs a leaf certificate with a fresh key and writes both (key first, 0600).
fn sign_leaf(
    mut params: CertificateParams,
    usages: Vec<ExtendedKeyUsagePurpose>,
    days: u32,
    issuer: &Issuer<'static, KeyPair>,
    cert_path: PathBuf,
    key_path: PathBuf,
) -> Result<(PathBuf, PathBuf), PkiError> {
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages;
    params.serial_number = Some(random_serial());
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok((cert_path, key_path))
}

/// Issues a node certificate (peer client and server, and by default the admin port's server
/// certificate) naming `node-<id>.statusmesh` plus `hosts` (DNS names or IP addresses).
pub fn issue_node(
    dir: &Path,
    id: u64,
    hosts: &[String],
    days: u32,
) -> Result<(PathBuf, PathBuf), PkiError> {
    if id == 0 {
        return Err(invalid("--id", "node ids are positive integers"));
    }
    let issuer = load_issuer(dir)?;
    let (cert_path, key_path) = node_files(dir, id);
    refuse_existing(&[&cert_path, &key_path])?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("statusmesh node {id}"));
    params.subject_alt_names = vec![SanType::DnsName(
        node_dns_name(id)
            .try_into()
            .map_err(|_| invalid("--id", "not a DNS name"))?,
    )];
    for h in hosts {
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(h.clone().try_into().map_err(|_| {
                invalid(
                    "--host",
                    format!("{h:?} is neither an IP address nor a DNS name"),
                )
            })?),
        };
        params.subject_alt_names.push(san);
    }
    let usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    sign_leaf(params, usages, days, &issuer, cert_path, key_path)
}

/// Issues an operator's client certificate: common name `name`, organizational unit `role`.
pub fn issue_operator(
    dir: &Path,
    name: &str,
    role: &str,
    days: u32,
) -> Result<(PathBuf, PathBuf), PkiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(invalid(
            "--name",
            "1 to 64 characters of letters, digits and -_.@",
        ));
    }
    if !ROLES.contains(&role) {
        return Err(invalid(
            "--role",
            format!("{role:?} is not one of {}", ROLES.join(", ")),
        ));
    }
    let issuer = load_issuer(dir)?;
    let (cert_path, key_path) = operator_files(dir, name);
    refuse_existing(&[&cert_path, &key_path])?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, role);
    sign_leaf(
        params,
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        days,
        &issuer,
        cert_path,
        key_path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;
    use crate::material;

    #[test]
    fn issued_certificates_name_what_they_should_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        create_ca(dir.path(), "test CA", 30).unwrap();
        let (cert, key) = issue_node(
            dir.path(),
            7,
            &["127.0.0.1".into(), "n7.example".into()],
            30,
        )
        .unwrap();
        let certs = material::load_certs(&cert).unwrap();
        assert_eq!(identity::node_id(&certs[0]).unwrap(), 7);
        let mode = std::fs::metadata(&key).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let before = std::fs::read(&cert).unwrap();
        let e = issue_node(dir.path(), 7, &[], 30).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&cert).unwrap(), before);
        assert!(matches!(
            create_ca(dir.path(), "again", 30),
            Err(PkiError::Exists { .. })
        ));

        let (op, _) = issue_operator(dir.path(), "alice", "operator", 30).unwrap();
        let s = identity::operator_subject(&material::load_certs(&op).unwrap()[0]).unwrap();
        assert_eq!(s.name, "alice");
        assert_eq!(s.role.as_deref(), Some("operator"));
        assert!(identity::node_id(&material::load_certs(&op).unwrap()[0]).is_err());
        let e = issue_operator(dir.path(), "bob", "root", 30).unwrap_err();
        assert!(e.to_string().contains("--role"), "{e}");
    }
}
