//! Who is calling, and may they: bearer tokens (the configuration's bootstrap tokens, and the
//! named tokens stored as hashes in the replicated state), operator client certificates, and a
//! role check per call. Failed attempts from one address are slowed down.
//!
//! A failure never echoes the presented token. Configuration tokens compare in constant time;
//! named tokens are found by the SHA-256 of the presented secret (the secret itself is never
//! stored or compared).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use statusmesh_model::access::{Role, Tokens};
use statusmesh_model::Timestamp;
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

/// Failed authentications allowed per address per window before answers slow down.
const FREE_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The slow-down doubles per further failure, from this...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ...up to this.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Sources tracked at once. Past it, new sources share one overflow entry (so a flood from
/// many addresses is slowed down together) until a sweep frees room.
const MAX_TRACKED: usize = 10_000;
/// The table is swept of expired windows at most this often, so a failure costs O(1)
/// amortised however full it is.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Where failures are counted: one IPv4 address, or one IPv6 /64 (what a single host or
/// customer usually holds), or the shared overflow entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    Overflow,
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Source::V6Prefix(prefix)
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::V4(o) => write!(f, "{}", std::net::Ipv4Addr::from(*o)),
            Source::V6Prefix(p) => {
                let mut full = [0u8; 16];
                full[..8].copy_from_slice(p);
                write!(f, "{}/64", std::net::Ipv6Addr::from(full))
            }
            Source::Overflow => f.write_str("other"),
        }
    }
}

/// Failures not yet summarised in the audit log: count, and when the first was seen.
const MAX_UNREPORTED: usize = 1_000;

#[derive(Debug, Default)]
struct Failures {
    unreported: HashMap<Source, (u32, Timestamp)>,
    by_source: HashMap<Source, (u32, Instant)>,
    last_sweep: Option<Instant>,
    sweeps: u64,
}

/// Counts failed authentications per source, in a table of bounded size.
#[derive(Debug, Default)]
struct FailureLimiter {
    failures: Mutex<Failures>,
}

impl FailureLimiter {
    /// Records a failure from `ip`; returns how long to wait before answering.
    fn fail(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut source = Source::of(ip);
        if f.by_source.len() >= MAX_TRACKED && !f.by_source.contains_key(&source) {
            if f.last_sweep
                .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
            {
                f.by_source
                    .retain(|_, (_, start)| now.duration_since(*start) < FAILURE_WINDOW);
                f.last_sweep = Some(now);
                f.sweeps += 1;
            }
            if f.by_source.len() >= MAX_TRACKED {
                source = Source::Overflow;
            }
        }
        let reported =
            if f.unreported.len() >= MAX_UNREPORTED && !f.unreported.contains_key(&source) {
                Source::Overflow
            } else {
                source
            };
        f.unreported
            .entry(reported)
            .or_insert((0, statusmesh_cluster::now()))
            .0 += 1;
        let entry = f.by_source.entry(source).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        delay_after(entry.0)
    }

    /// The failures counted since the last call, per source (`other` for what is past
    /// `max` sources, merged), most failures first.
    fn take_report(&self, max: usize) -> Vec<(String, u32, Timestamp)> {
        let drained: Vec<(Source, (u32, Timestamp))> = {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            f.unreported.drain().collect()
        };
        let mut named: Vec<(Source, (u32, Timestamp))> = drained;
        named.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
        let mut out = Vec::new();
        let mut other: Option<(u32, Timestamp)> = None;
        for (source, (count, since)) in named {
            if source == Source::Overflow || out.len() >= max {
                let o = other.get_or_insert((0, since));
                o.0 += count;
                o.1 = o.1.min(since);
            } else {
                out.push((source.to_string(), count, since));
            }
        }
        if let Some((count, since)) = other {
            out.push((Source::Overflow.to_string(), count, since));
        }
        out
    }

    /// Sources tracked, and sweeps made since start.
    #[cfg(test)]
    fn tracked(&self) -> (usize, u64) {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        (f.by_source.len(), f.sweeps)
    }
}

/// The wait after the `n`th failure within one window.
fn delay_after(n: u32) -> Duration {
    if n <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (n - FREE_FAILURES - 1).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
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

    #[test]
    fn failures_slow_down_after_five_and_cap() {
        assert_eq!(delay_after(5), Duration::ZERO);
        assert_eq!(delay_after(6), Duration::from_millis(100));
        assert_eq!(delay_after(7), Duration::from_millis(200));
        assert_eq!(delay_after(40), MAX_DELAY);
        let l = FailureLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let waits: Vec<Duration> = (0..7).map(|_| l.fail(ip)).collect();
        assert_eq!(waits[4], Duration::ZERO);
        assert_eq!(waits[6], Duration::from_millis(200));
        // Another address is not affected.
        assert_eq!(l.fail("192.0.2.2".parse().unwrap()), Duration::ZERO);
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64_and_mapped_ipv4_is_its_ipv4() {
        let l = FailureLimiter::default();
        for i in 0..6u16 {
            // Six addresses of one /64: the sixth failure is slowed down.
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            let wait = l.fail(ip);
            assert_eq!(wait.is_zero(), i < 5, "{i}");
        }
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert_eq!(l.fail(other), Duration::ZERO);
        assert_eq!(
            Source::of("::ffff:192.0.2.9".parse().unwrap()),
            Source::of("192.0.2.9".parse().unwrap())
        );
    }

    #[test]
    fn failures_are_reported_once_per_source_with_the_rest_as_other() {
        let l = FailureLimiter::default();
        for _ in 0..3 {
            l.fail("192.0.2.1".parse().unwrap());
        }
        l.fail("2001:db8:0:1::5".parse().unwrap());
        l.fail("198.51.100.9".parse().unwrap());
        let report = l.take_report(2);
        let named: Vec<(&str, u32)> = report.iter().map(|(s, n, _)| (s.as_str(), *n)).collect();
        assert_eq!(named[0], ("192.0.2.1", 3));
        assert_eq!(named.len(), 3, "{named:?}");
        assert_eq!(named[2], ("other", 1));
        assert!(named[1].0 == "2001:db8:0:1::/64" || named[1].0 == "198.51.100.9");
        // Reported once: the next report is empty until new failures arrive.
        assert!(l.take_report(2).is_empty());
    }

    #[test]
    fn a_flood_from_many_sources_stays_bounded_and_shares_the_overflow_entry() {
        let l = FailureLimiter::default();
        let started = Instant::now();
        let mut slowed = 0;
        for i in 0..(MAX_TRACKED as u32 + 50_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if !l.fail(ip).is_zero() {
                slowed += 1;
            }
        }
        let (tracked, sweeps) = l.tracked();
        assert!(tracked <= MAX_TRACKED + 1, "{tracked}");
        // Past the table's size the flood shares one entry, which is slowed down.
        assert!(slowed > 49_000, "{slowed}");
        // 50,000 failures past a full table: one sweep per second at most, not one each.
        let allowed = 1 + started.elapsed().as_secs();
        assert!(sweeps <= allowed, "{sweeps} sweeps, {allowed} allowed");
    }
}
