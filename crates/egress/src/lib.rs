//! Where the node may send: the SSRF guard's policy and checks. A notification target (a
//! webhook or chat URL) may only reach globally routable addresses unless the configuration
//! explicitly allows loopback or private ranges; cloud metadata addresses and addresses that
//! embed an IPv4 address are never allowed.
//!
//! A URL is checked when a subscriber is added (by the admin service, with [`vet`], so a bad
//! target is refused with a clear error) and again at every delivery, when the sender's HTTP
//! client resolves names through [`resolve`] (the webhook crate's `VettingResolver`), which
//! refuses the whole name if any of its addresses is not allowed and hands the client only
//! vetted addresses to connect to (so a DNS answer that changes between the check and the
//! connection — rebinding — gains nothing).
//!
//! Dependency direction: only the model's layer is below this crate; the admin service and
//! the senders both use it, so neither needs the other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which non-global targets a deployment allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// 127.0.0.0/8 and ::1 (tests and the demo).
    pub allow_loopback: bool,
    /// RFC 1918, unique-local IPv6 and CGNAT ranges (a receiver inside the same network).
    pub allow_private: bool,
    /// Refuse plain `http://` URLs.
    pub https_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("invalid url: not a valid absolute URL: {0}")]
    BadUrl(String),
    #[error("invalid url: scheme {0:?} refused; only https is allowed (webhooks.https_only)")]
    NotHttps(String),
    #[error("invalid url: {}; refused", describe(host, addr, reason))]
    Refused {
        host: String,
        addr: IpAddr,
        reason: String,
    },
    #[error("invalid url: cannot resolve {host}: {error}")]
    Unresolvable { host: String, error: String },
}

fn describe(host: &str, addr: &IpAddr, reason: &str) -> String {
    if host == addr.to_string() {
        format!("{host} is {reason}")
    } else {
        format!("{host} resolves to {addr}, {reason}")
    }
}

/// Why an address is not allowed under `policy`, or `None` if it is.
pub fn refusal(ip: IpAddr, policy: &TargetPolicy) -> Option<String> {
    let (class, allowed) = match ip {
        IpAddr::V4(v4) => classify_v4(v4, policy),
        IpAddr::V6(v6) => classify_v6(v6, policy),
    };
    match (class, allowed) {
        (None, _) | (Some(_), true) => None,
        (Some(c), false) => Some(c),
    }
}

fn classify_v4(ip: Ipv4Addr, p: &TargetPolicy) -> (Option<String>, bool) {
    let o = ip.octets();
    let private = |what: &str| {
        (
            Some(format!(
                "a {what} address (allow with webhooks.allow_private)"
            )),
            p.allow_private,
        )
    };
    let never = |what: &str| (Some(format!("a {what} address")), false);
    if ip.is_loopback() {
        return (
            Some("a loopback address (allow with webhooks.allow_loopback)".into()),
            p.allow_loopback,
        );
    }
    if o == [169, 254, 169, 254] || o == [100, 100, 100, 200] || o == [192, 0, 0, 192] {
        return never("cloud metadata");
    }
    if ip.is_private() {
        return private("private (RFC 1918)");
    }
    if o[0] == 100 && (o[1] & 0xc0) == 64 {
        return private("carrier-grade NAT (100.64.0.0/10)");
    }
    if ip.is_link_local() {
        return never("link-local");
    }
    if ip.is_multicast() {
        return never("multicast");
    }
    if ip.is_unspecified() || o[0] == 0 {
        return never("\"this network\" (0.0.0.0/8)");
    }
    if ip.is_broadcast() || o[0] >= 240 {
        return never("reserved");
    }
    if ip.is_documentation() || (o[0] == 198 && (o[1] & 0xfe) == 18) || o[..3] == [192, 0, 0] {
        return never("documentation, benchmarking or protocol-assignment");
    }
    (None, true)
}

fn classify_v6(ip: Ipv6Addr, p: &TargetPolicy) -> (Option<String>, bool) {
    let s = ip.segments();
    let never = |what: String| (Some(what), false);
    if ip.is_loopback() {
        return (
            Some("a loopback address (allow with webhooks.allow_loopback)".into()),
            p.allow_loopback,
        );
    }
    if ip.is_unspecified() {
        return never("the unspecified address".into());
    }
    // Cloud metadata over IPv6 (AWS's IMDS), never allowed: it sits inside fc00::/7, which
    // allow_private opens.
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return never("a cloud metadata address".into());
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return never(format!("an IPv4-mapped IPv6 address (embeds {v4})"));
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return never(format!(
            "an IPv4-translated IPv6 address (::ffff:0:0/96, embeds {v4})"
        ));
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return never("an IPv4-compatible IPv6 address".into());
    }
    if s[0] == 0x2002 {
        return never("a 6to4 address (embeds an IPv4 address)".into());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..2] == [0x64, 0xff9b] {
        return never("a NAT64 address (embeds an IPv4 address)".into());
    }
    if s[..2] == [0x2001, 0] {
        return never("a Teredo address (embeds an IPv4 address)".into());
    }
    if (s[0] & 0xff00) == 0xff00 {
        return never("a multicast address".into());
    }
    if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return never("a link-local address".into());
    }
    if s[..2] == [0x2001, 0xdb8] {
        return never("a documentation address".into());
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return (
            Some("a unique-local (private) address (allow with webhooks.allow_private)".into()),
            p.allow_private,
        );
    }
    (None, true)
}

/// Checks the scheme and, for an IP-literal host, the address. Names are checked when they
/// are resolved ([`vet`], and [`resolve`] at delivery).
pub fn check_url(raw: &str, policy: &TargetPolicy) -> Result<url::Url, TargetError> {
    let url = url::Url::parse(raw).map_err(|e| TargetError::BadUrl(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if !policy.https_only => {}
        other => return Err(TargetError::NotHttps(other.into())),
    }
    let host = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(TargetError::BadUrl("no host".into())),
    };
    if let Some(addr) = host {
        if let Some(reason) = refusal(addr, policy) {
            return Err(TargetError::Refused {
                host: addr.to_string(),
                addr,
                reason,
            });
        }
    }
    Ok(url)
}

/// Resolves `host` and refuses it if any address is not allowed.
pub async fn resolve(
    host: &str,
    port: u16,
    policy: &TargetPolicy,
) -> Result<Vec<SocketAddr>, TargetError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| TargetError::Unresolvable {
            host: host.into(),
            error: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable {
            host: host.into(),
            error: "no addresses".into(),
        });
    }
    for a in &addrs {
        if let Some(reason) = refusal(a.ip(), policy) {
            return Err(TargetError::Refused {
                host: host.into(),
                addr: a.ip(),
                reason,
            });
        }
    }
    Ok(addrs)
}

/// The full check made when a subscriber is added: scheme, literal address, or every address
/// the name resolves to.
pub async fn vet(raw: &str, policy: &TargetPolicy) -> Result<url::Url, TargetError> {
    let url = check_url(raw, policy)?;
    if let Some(url::Host::Domain(name)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        resolve(name, port, policy).await?;
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str, p: &TargetPolicy) -> Option<String> {
        refusal(s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), p)
    }

    #[test]
    fn non_global_addresses_are_refused_by_default() {
        let p = TargetPolicy::default();
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "this network"),
            ("255.255.255.255", "reserved"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd12::1", "unique-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("2002:7f00:1::", "6to4"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("::", "unspecified"),
        ] {
            let r = refused(addr, &p).unwrap_or_else(|| panic!("{addr} was allowed"));
            assert!(r.contains(why), "{addr}: {r}");
        }
        assert_eq!(refused("8.8.8.8", &p), None);
        assert_eq!(refused("2606:4700::1111", &p), None);
    }

    #[test]
    fn configuration_opens_loopback_and_private_but_never_metadata() {
        let p = TargetPolicy {
            allow_loopback: true,
            allow_private: true,
            https_only: false,
        };
        assert_eq!(refused("127.0.0.1", &p), None);
        assert_eq!(refused("::1", &p), None);
        assert_eq!(refused("10.0.0.1", &p), None);
        assert_eq!(refused("fd12::1", &p), None);
        assert!(refused("169.254.169.254", &p).is_some());
        assert!(refused("::ffff:127.0.0.1", &p).is_some());
        // IPv6 metadata, inside the unique-local range that allow_private opens.
        assert_eq!(
            refused("fd00:ec2::254", &p).as_deref(),
            Some("a cloud metadata address")
        );
        // IPv4-translated addresses embed an IPv4 address: never allowed, whichever it is.
        for a in [
            "::ffff:0:169.254.169.254",
            "::ffff:0:10.0.0.1",
            "::ffff:0:8.8.8.8",
        ] {
            let why = refused(a, &p).unwrap_or_else(|| panic!("{a} allowed"));
            assert!(why.contains("IPv4-translated"), "{a}: {why}");
        }
        assert!(refused("::ffff:0:169.254.169.254", &p)
            .unwrap()
            .contains("169.254.169.254"));
    }

    #[tokio::test]
    async fn urls_are_vetted_with_clear_errors() {
        let p = TargetPolicy::default();
        let e = vet("http://127.0.0.1:9/hook", &p).await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        // A host name that resolves to loopback is refused just the same.
        let e = vet("http://localhost:9/hook", &p).await.unwrap_err();
        assert!(e.to_string().contains("localhost resolves to"), "{e}");
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = vet("http://[::ffff:169.254.169.254]/", &p)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("IPv4-mapped"), "{e}");
        let https = TargetPolicy {
            https_only: true,
            ..TargetPolicy::default()
        };
        let e = vet("http://8.8.8.8/", &https).await.unwrap_err();
        assert!(e.to_string().contains("only https"), "{e}");
        assert!(vet("https://8.8.8.8/", &https).await.is_ok());
        let e = vet("ftp://example.com/", &p).await.unwrap_err();
        assert!(e.to_string().contains("ftp"), "{e}");
    }
}
