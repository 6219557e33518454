//! Who a certificate says it is.
//!
//! A node certificate names its node id as the DNS name `node-<id>.statusmesh` in its subject
//! alternative names (and may name hosts and IP addresses besides). An operator certificate
//! carries the operator's name as the subject common name and its role as the organizational
//! unit. Both are only trusted after rustls has verified the chain to the configured CA.

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The DNS suffix of node names in certificates.
pub const NODE_DOMAIN: &str = "statusmesh";

/// The DNS name a node's certificate carries for node `id`.
pub fn node_dns_name(id: u64) -> String {
    format!("node-{id}.{NODE_DOMAIN}")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("the certificate cannot be parsed: {0}")]
    Unparseable(String),
    #[error("the certificate names no node (expected a DNS name node-<id>.{NODE_DOMAIN})")]
    NoNode,
    #[error("the certificate names more than one node ({0:?})")]
    SeveralNodes(Vec<u64>),
    #[error("the certificate has no subject common name")]
    NoCommonName,
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, IdentityError> {
    X509Certificate::from_der(der.as_ref())
        .map(|(_, c)| c)
        .map_err(|e| IdentityError::Unparseable(e.to_string()))
}

fn node_id_in(name: &str) -> Option<u64> {
    let id = name
        .strip_prefix("node-")?
        .strip_suffix(NODE_DOMAIN)?
        .strip_suffix('.')?;
    // No leading zeros or signs: exactly the form `node_dns_name` writes.
    let n: u64 = id.parse().ok()?;
    (n > 0 && n.to_string() == id).then_some(n)
}

/// The node id a (verified) node certificate names; exactly one is required.
pub fn node_id(der: &CertificateDer<'_>) -> Result<u64, IdentityError> {
    let cert = parse(der)?;
    let mut ids: Vec<u64> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                if let Some(id) = node_id_in(dns) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
    }
    match ids.as_slice() {
        [] => Err(IdentityError::NoNode),
        [one] => Ok(*one),
        _ => Err(IdentityError::SeveralNodes(ids)),
    }
}

/// What an operator's client certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSubject {
    /// Subject common name: the operator's name, shown in the audit log.
    pub name: String,
    /// Subject organizational unit: the role (`read-only`, `operator`, `admin`), if any.
    pub role: Option<String>,
}

/// The subject of a (verified) operator certificate.
pub fn operator_subject(der: &CertificateDer<'_>) -> Result<OperatorSubject, IdentityError> {
    let cert = parse(der)?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .ok_or(IdentityError::NoCommonName)?;
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .map(str::to_owned);
    Ok(OperatorSubject { name, role })
}

/// A certificate's serial number in hex (for logs: which certificate is in use).
pub fn serial(der: &CertificateDer<'_>) -> String {
    parse(der)
        .map(|c| hex::encode(c.raw_serial()))
        .unwrap_or_else(|_| "unparseable".into())
}

/// When a certificate stops being valid, as seconds since the Unix epoch.
pub fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    parse(der).ok().map(|c| c.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_parse_exactly() {
        assert_eq!(node_id_in("node-3.statusmesh"), Some(3));
        assert_eq!(node_id_in("node-12.statusmesh"), Some(12));
        for bad in [
            "node-0.statusmesh",
            "node-03.statusmesh",
            "node-+3.statusmesh",
            "node-3.statusmesh.evil",
            "node-3xstatusmesh",
            "node-.statusmesh",
            "xnode-3.statusmesh",
        ] {
            assert_eq!(node_id_in(bad), None, "{bad}");
        }
    }
}
