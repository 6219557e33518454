//! Who is calling, and may they: bearer tokens (the configuration's bootstrap tokens, and the
//! named tokens stored as hashes in the replicated state), operator client certificates, and a
//! role check per call. Failed attempts from one address are slowed down.
//!
//! A failure never echoes the presented token. Configuration tokens compare in constant time;
//! named tokens are found by the SHA-256 of the presented secret (the secret itself is never
//! stored or compared).

use statusmesh_model::access::{Role, Tokens};
use statusmesh_model::Timestamp;

mod limiter;

use limiter::FailureLimiter;
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Set by a node forwarding a certificate-authenticated call to the leader: the caller it
/// vouches for (`cert:<name>/<role>`). Trusted only from a peer presenting a node certificate.
pub const ON_BEHALF_OF_HEADER: &str = "x-statusmesh-on-behalf-of";

/// A bootstrap token from the configuration file (role admin).
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ConfigToken,
    Token,
    Certificate,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ConfigToken => "config-token",
            Method::Token => "token",
            Method::Certificate => "certificate",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token name, or `cert:<common name>`; recorded as the actor in the audit log.
    pub name: String,
    pub role: Role,
    pub method: Method,
}

#[derive(Debug, Default)]
pub struct Authenticator {
    config_tokens: Vec<Token>,
    limiter: FailureLimiter,
}

pub use statusmesh_model::access::token_hash;

fn bearer<T>(req: &Request<T>) -> Result<Option<&str>, Status> {
    let Some(header) = req.metadata().get("authorization") else {
        return Ok(None);
    };
    let value = header
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|t| Some(t.trim()))
        .ok_or_else(|| Status::unauthenticated("authorization must be: Bearer <token>"))
}

fn parse_role(s: &str) -> Option<Role> {
    Role::parse("role", s).ok()
}

impl Authenticator {
    /// The failed authentications since the last call, per source, for the audit log.
    pub fn take_failure_report(&self, max: usize) -> Vec<(String, u32, Timestamp)> {
        self.limiter.take_report(max)
    }

    pub fn new(config_tokens: Vec<Token>) -> Self {
        Authenticator {
            config_tokens,
            limiter: FailureLimiter::default(),
        }
    }

    /// Authenticates the call and checks that its role is at least `need`. `member_node` is
    /// the node the caller's certificate proves it is, if that certificate was issued by the
    /// cluster CA and names a current member: only such a node may vouch for a forwarded
    /// certificate identity.
    pub async fn authorize<T>(
        &self,
        req: &Request<T>,
        tokens: &Tokens,
        need: Role,
        member_node: Option<u64>,
    ) -> Result<Caller, Status> {
        let caller = match self.identify(req, tokens, member_node) {
            Ok(c) => c,
            Err(status) => {
                if let Some(ip) = req.remote_addr().map(|a| a.ip()) {
                    let wait = self.limiter.fail(ip);
                    if !wait.is_zero() {
                        tracing::warn!(peer = %ip, delay_ms = wait.as_millis() as u64, "repeated failed authentication: slowing down");
                        tokio::time::sleep(wait).await;
                    }
                }
                return Err(status);
            }
        };
        if caller.role < need {
            return Err(Status::permission_denied(format!(
                "{} has the {} role; this call needs {}",
                caller.name, caller.role, need
            )));
        }
        Ok(caller)
    }

    fn identify<T>(
        &self,
        req: &Request<T>,
        tokens: &Tokens,
        member_node: Option<u64>,
    ) -> Result<Caller, Status> {
        if let Some(presented) = bearer(req)? {
            // Compare against every configuration token so timing does not reveal which (if
            // any) matched.
            let mut found: Option<&Token> = None;
            for t in &self.config_tokens {
                if bool::from(t.secret.as_bytes().ct_eq(presented.as_bytes())) {
                    found = Some(t);
                }
            }
            if let Some(t) = found {
                return Ok(Caller {
                    name: t.name.clone(),
                    role: Role::Admin,
                    method: Method::ConfigToken,
                });
            }
            return match tokens.find_by_hash(&token_hash(presented)) {
                Some(t) => Ok(Caller {
                    name: t.name.clone(),
                    role: t.role,
                    method: Method::Token,
                }),
                None => Err(Status::unauthenticated("invalid or revoked token")),
            };
        }
        let Some(leaf) = req.peer_certs().and_then(|c| c.first().cloned()) else {
            return Err(Status::unauthenticated(
                "missing authorization: send Bearer <token>, or a client certificate",
            ));
        };
        // A node forwarding a certificate-authenticated operator's call to the leader.
        if statusmesh_tls::node_id(&leaf).is_ok() {
            if member_node.is_none() {
                return Err(Status::permission_denied(
                    "a node certificate is trusted only when the cluster CA issued it and it names a current member",
                ));
            }
            let vouched = req
                .metadata()
                .get(ON_BEHALF_OF_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(name, role)| Some((name.to_owned(), parse_role(role)?)));
            return match vouched {
                Some((name, role)) if name.starts_with("cert:") => Ok(Caller {
                    name,
                    role,
                    method: Method::Certificate,
                }),
                _ => Err(Status::permission_denied(
                    "a node certificate is not an operator identity",
                )),
            };
        }
        let subject = statusmesh_tls::operator_subject(&leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        let role = subject.role.as_deref().and_then(parse_role).ok_or_else(|| {
            Status::permission_denied(format!(
                "client certificate of {:?} names no role (organizational unit read-only, operator or admin)",
                subject.name
            ))
        })?;
        Ok(Caller {
            name: format!("cert:{}", subject.name),
            role,
            method: Method::Certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statusmesh_model::Timestamp;

    fn req(v: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(v) = v {
            r.metadata_mut().insert("authorization", v.parse().unwrap());
        }
        r
    }

    #[tokio::test]
    async fn tokens_roles_and_revocation() {
        let auth = Authenticator::new(vec![Token {
            name: "bootstrap".into(),
            secret: "s3cret-token-value".into(),
        }]);
        let mut tokens = Tokens::default();
        let ro = "read-only-secret-0123456789abcdef0123";
        tokens.by_name.insert(
            "viewer".into(),
            statusmesh_model::ApiToken {
                name: "viewer".into(),
                role: Role::ReadOnly,
                hash: token_hash(ro),
                created_at: Timestamp(0),
                revoked_at: None,
            },
        );
        let c = auth
            .authorize(
                &req(Some("Bearer s3cret-token-value")),
                &tokens,
                Role::Admin,
                None,
            )
            .await
            .unwrap();
        assert_eq!((c.name.as_str(), c.role), ("bootstrap", Role::Admin));
        let c = auth
            .authorize(
                &req(Some(&format!("Bearer {ro}"))),
                &tokens,
                Role::ReadOnly,
                None,
            )
            .await
            .unwrap();
        assert_eq!(c.name, "viewer");
        let e = auth
            .authorize(
                &req(Some(&format!("Bearer {ro}"))),
                &tokens,
                Role::Operator,
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("read-only") && !e.message().contains(ro));
        let e = auth
            .authorize(&req(Some("Bearer nope")), &tokens, Role::ReadOnly, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(!e.message().contains("nope"));
        tokens.by_name.get_mut("viewer").unwrap().revoked_at = Some(Timestamp(1));
        let e = auth
            .authorize(
                &req(Some(&format!("Bearer {ro}"))),
                &tokens,
                Role::ReadOnly,
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(auth
            .authorize(&req(None), &tokens, Role::ReadOnly, None)
            .await
            .is_err());
        assert!(auth
            .authorize(&req(Some("Basic abc")), &tokens, Role::ReadOnly, None)
            .await
            .is_err());
    }
}
