//! Who a public request comes from, for the per-client limits: the connection's peer, or —
//! when the peer is one of the deployment's own proxies (`[limits] trusted_proxies`) — the
//! address its `X-Forwarded-For` names.
//!
//! The header is read from the right: each proxy appends the address it received from, so
//! the rightmost entry that is not a trusted proxy is the first hop nobody here controls. A
//! client cannot forge its way out of the limit: whatever it writes into the header stands to
//! the left of what the trusted proxies appended. A header that does not parse counts the
//! request against the proxy itself.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// The client address a request came from, put in each request's extensions by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`; an error names the entry.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| {
                let (addr, len) = match e.split_once('/') {
                    Some((a, l)) => (a, Some(l)),
                    None => (e.as_str(), None),
                };
                let addr: IpAddr = addr
                    .trim()
                    .parse()
                    .map_err(|_| format!("{e:?} is not an address or a CIDR range"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let len = match len {
                    None => max,
                    Some(l) => l
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|l| *l <= max)
                        .ok_or_else(|| format!("{e:?}: the prefix length must be 0..={max}"))?,
                };
                Ok((addr, len))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|(net, len)| contains(*net, *len, ip))
    }

    /// The client a request from `peer` with `headers` is counted as.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return peer,
                }
            }
        }
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    let bits = |a: IpAddr| -> (u128, u8) {
        match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    let ((n, n_width), (i, i_width)) = (bits(canonical(net)), bits(ip));
    if n_width != i_width {
        return false;
    }
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    n & mask == i & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_first_hop_from_the_right_that_is_not_ours() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "2001:db8::1".into()]).unwrap();
        let lb: IpAddr = "10.1.2.3".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client that forges a header gets counted as what the proxy saw.
        assert_eq!(
            t.client(lb, &headers(&["1.1.1.1, 203.0.113.9"])),
            ip("203.0.113.9")
        );
        // Two of our proxies in a row, the header split over two fields.
        assert_eq!(
            t.client(lb, &headers(&["198.51.100.4", "10.9.9.9"])),
            ip("198.51.100.4")
        );
        // Not from a trusted proxy: the header is not believed.
        assert_eq!(
            t.client(ip("192.0.2.1"), &headers(&["203.0.113.9"])),
            ip("192.0.2.1")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(t.client(lb, &HeaderMap::new()), lb);
        assert_eq!(t.client(lb, &headers(&["203.0.113.9, nonsense"])), lb);
        // IPv6, and an IPv4-mapped peer.
        assert_eq!(
            t.client(ip("2001:db8::1"), &headers(&["2001:db8:ffff::7"])),
            ip("2001:db8:ffff::7")
        );
        assert_eq!(
            t.client(ip("::ffff:10.0.0.5"), &headers(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
        assert!(TrustedProxies::default().client(lb, &headers(&["203.0.113.9"])) == lb);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("0..=32"), "{e}");
        let e = TrustedProxies::parse(&["lb.example".into()]).unwrap_err();
        assert!(e.contains("\"lb.example\""), "{e}");
    }
}
