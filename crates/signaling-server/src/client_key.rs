//! Who the client is, for every per-address limit: [`ClientKey`] (an IPv4
//! address, or the /64 of an IPv6 address, since one IPv6 host usually owns a
//! whole /64), [`PrefixKey`] (its /24 or /48, for budgets that a client
//! spreading over neighbouring addresses must share), and [`TrustedProxies`],
//! the CIDRs whose `Forwarded` / `X-Forwarded-For` headers are believed.
//!
//! Pure logic: no I/O, fed the TCP peer address and the request headers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// The key of one client for per-address limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

/// A coarser key: the /24 of an IPv4 address or the /48 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrefixKey {
    /// Upper 24 bits of an IPv4 address.
    V4(u32),
    /// Upper 48 bits of an IPv6 address.
    V6(u64),
}

impl ClientKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> ClientKey {
        match canonical(ip) {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }

    /// Its /24 (IPv4) or /48 (IPv6).
    pub fn prefix(self) -> PrefixKey {
        match self {
            ClientKey::V4(v4) => PrefixKey::V4(u32::from(v4) >> 8),
            ClientKey::V6(hi) => PrefixKey::V6(hi >> 16),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::V4(v4) => write!(f, "{v4}"),
            ClientKey::V6(hi) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(*hi) << 64))
            }
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address range, `10.0.0.0/8` or `fd00::/8` (a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

/// A CIDR that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trusted proxy {0:?}: write an address or a CIDR, e.g. 10.0.0.0/8 or ::1")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(s.to_owned());
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let net = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if net.is_ipv4() { 32 } else { 128 };
        // A mapped IPv6 CIDR (::ffff:10.0.0.0/104) becomes its IPv4 form.
        let len = match (len, addr.parse::<IpAddr>()) {
            (Some(l), Ok(IpAddr::V6(_))) if net.is_ipv4() => l.checked_sub(96).ok_or_else(bad)?,
            (Some(l), _) => l,
            (None, _) => max,
        };
        if len > max {
            return Err(bad());
        }
        Ok(Cidr { net, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

impl Cidr {
    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses each entry as a [`Cidr`].
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<TrustedProxies, CidrError> {
        list.iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The configured ranges.
    pub fn ranges(&self) -> &[Cidr] {
        &self.0
    }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy;
    /// then the forwarding chain (`Forwarded` when present, else
    /// `X-Forwarded-For`) is walked from the right, skipping trusted proxies,
    /// and the first other address is the client. A chain made only of trusted
    /// proxies gives its leftmost entry; an unreadable chain gives the peer.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut last = None;
        for ip in chain.iter().rev() {
            match ip {
                Some(ip) if self.contains(*ip) => last = Some(*ip),
                Some(ip) => return *ip,
                // An entry we cannot read (obfuscated, "unknown"): stop believing here.
                None => return last.unwrap_or(peer),
            }
        }
        last.unwrap_or(peer)
    }

    /// [`ClientKey`] of [`TrustedProxies::client_ip`].
    pub fn client_key(&self, peer: IpAddr, headers: &HeaderMap) -> ClientKey {
        ClientKey::of(self.client_ip(peer, headers))
    }
}

/// Every hop of the forwarding headers, oldest first (`None` = unreadable).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80` or `::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_v4_is_v4() {
        let a = ClientKey::of(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientKey::of(ip("2001:db8:1:2:ffff::9"));
        let c = ClientKey::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.prefix(), c.prefix());
        assert_ne!(a.prefix(), ClientKey::of(ip("2001:db8:2::1")).prefix());
        assert_eq!(
            ClientKey::of(ip("::ffff:10.1.2.3")),
            ClientKey::of(ip("10.1.2.3"))
        );
        assert_eq!(
            ClientKey::of(ip("10.1.2.3")).prefix(),
            ClientKey::of(ip("10.1.2.200")).prefix()
        );
        assert_ne!(
            ClientKey::of(ip("10.1.2.3")).prefix(),
            ClientKey::of(ip("10.1.3.3")).prefix()
        );
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1")]);
        // From the proxy: the rightmost untrusted hop (6.6.6.6 is client-supplied).
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &xff), ip("203.0.113.7"));
        // From anyone else: the header is ignored.
        assert_eq!(
            proxies.client_ip(ip("198.51.100.1"), &xff),
            ip("198.51.100.1")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &xff),
            ip("127.0.0.1")
        );
        let fwd = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &fwd), ip("2001:db8::1"));
        let hidden = headers(&[("forwarded", "for=_hidden, for=10.0.0.5")]);
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &hidden), ip("10.0.0.5"));
        let none = HeaderMap::new();
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &none), ip("127.0.0.1"));
        let port = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &port), ip("203.0.113.9"));
    }
}
