//! Where the sans-IO stack's local candidates come from: which local
//! addresses get a host socket of ours (with large kernel buffers), and the
//! server-reflexive addresses STUN servers report for those sockets.
//!
//! [`StunQueries`] is a plain state machine fed instants and datagrams: one
//! binding request per (host socket, STUN server) pair of the same address
//! family, resent on a fixed schedule, given up after the last resend's wait.
//! The driver sends what it returns and hands it every datagram from a
//! server it asked; everything else goes to the core.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter, Message, TransactionId};
use rtc::stun::xoraddr::XorMappedAddress;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::RtcConfig;
use crate::error::RtcError;

/// Kernel buffers of each host socket, each way: a burst of a 1 MiB message
/// over loopback fits (the default ~208 KiB drops most of it).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// When each binding request is (re)sent, after gathering starts; the query
/// is given up [`STUN_LAST_WAIT`] after the last one. A lost request costs
/// 100 ms, a server that never answers 2.3 s before gathering completes.
const STUN_SENDS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(700),
];
const STUN_LAST_WAIT: Duration = Duration::from_millis(1600);
/// How long resolving one STUN or TURN server's host name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// STUN's default port (RFC 8489 §18.6).
const STUN_PORT: u16 = 3478;

/// One of the peer's UDP sockets: a host candidate's.
pub(super) struct HostSocket {
    pub(super) socket: tokio::net::UdpSocket,
    pub(super) local: SocketAddr,
}

/// The local addresses that get a host candidate: 127.0.0.1 for a
/// loopback-only peer; otherwise every address of an interface that is up,
/// except loopback and IPv6 link-local ones (they need a scope the candidate
/// cannot carry); only those in `host_ips` when it is not empty.
pub(super) fn host_ips(config: &RtcConfig) -> Result<Vec<IpAddr>, RtcError> {
    let wanted = |ip: &IpAddr| config.host_ips.is_empty() || config.host_ips.contains(ip);
    if config.loopback_only {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        return Ok(if wanted(&ip) { vec![ip] } else { Vec::new() });
    }
    let interfaces = nix::ifaddrs::getifaddrs()
        .map_err(|e| RtcError::Invalid(format!("listing local addresses: {e}")))?;
    let mut ips = Vec::new();
    for iface in interfaces {
        if !iface.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP) {
            continue;
        }
        let Some(addr) = iface.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let usable = match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
            IpAddr::V6(v6) => {
                !v6.is_loopback() && !v6.is_unspecified() && !v6.is_unicast_link_local()
            }
        };
        // `host_ips` may name loopback on purpose; the other rules do not apply then.
        let named = !config.host_ips.is_empty() && config.host_ips.contains(&ip);
        if (usable || named) && wanted(&ip) && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}

/// A UDP socket on `ip` (any port) with large buffers, for the stack runtime.
pub(super) fn bind(ip: IpAddr) -> std::io::Result<HostSocket> {
    let domain = if ip.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the system may cap the size (net.core.rmem_max).
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    if ip.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket.into())?;
    let local = socket.local_addr()?;
    Ok(HostSocket { socket, local })
}

/// The `stun:` servers of the configuration, resolved (a name that does not
/// resolve in time is left out with a log line). `turn:` URLs are not
/// STUN servers here: the sans-IO stack has no TURN client yet.
pub(super) async fn stun_servers(config: &RtcConfig) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for url in config.ice_servers.iter().flat_map(|s| &s.urls) {
        let Some((host, port)) = stun_host_port(url) else {
            continue;
        };
        for addr in resolve(url, &host, port).await {
            if !servers.contains(&addr) {
                servers.push(addr);
            }
        }
    }
    servers
}

/// The addresses `host` resolves to, within [`RESOLVE_TIMEOUT`]; none (with a
/// log line naming `url`) when it does not resolve in time.
pub(super) async fn resolve(url: &str, host: &str, port: u16) -> Vec<SocketAddr> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            tracing::info!(url, error = %e, "ICE server does not resolve");
            Vec::new()
        }
        Err(_) => {
            tracing::info!(url, "ICE server did not resolve in time");
            Vec::new()
        }
    }
}

/// `stun:host[:port]` (RFC 7064; a bracketed IPv6 literal allowed) as host
/// and port; `None` for any other scheme.
pub(super) fn stun_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.trim().split_once(':')?;
    if !scheme.eq_ignore_ascii_case("stun") {
        return None;
    }
    host_port(rest.split('?').next().unwrap_or_default(), STUN_PORT)
}

/// `host[:port]` or `[v6][:port]` (the part of a STUN or TURN URL after the
/// scheme, without its query) as host and port, `default` when absent.
pub(super) fn host_port(hostport: &str, default: u16) -> Option<(String, u16)> {
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => None,
        None if !hostport.is_empty() => Some((hostport.to_owned(), default)),
        None => None,
    }
}

/// What a datagram from a STUN server meant to the queries.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StunReply {
    /// The server reports this address for the socket at that index.
    Mapped { socket: usize, mapped: SocketAddr },
    /// Ours, but of no use (an error answer, no mapped address, an answer
    /// to a query already answered or given up).
    Consumed,
}

struct Query {
    socket: usize,
    server: SocketAddr,
    id: TransactionId,
    request: Vec<u8>,
    started: Instant,
    /// How many of [`STUN_SENDS`] have gone.
    sent: usize,
    done: bool,
}

impl Query {
    fn next_at(&self) -> Instant {
        match STUN_SENDS.get(self.sent) {
            Some(after) => self.started + *after,
            None => self.started + STUN_SENDS[STUN_SENDS.len() - 1] + STUN_LAST_WAIT,
        }
    }
}

/// One ICE generation's binding requests.
#[derive(Default)]
pub(super) struct StunQueries {
    queries: Vec<Query>,
}

impl StunQueries {
    /// A request from each socket to each server of the same family.
    pub(super) fn start(
        sockets: &[SocketAddr],
        servers: &[SocketAddr],
        now: Instant,
    ) -> StunQueries {
        let mut queries = Vec::new();
        for (socket, local) in sockets.iter().enumerate() {
            for server in servers {
                if local.is_ipv4() != server.is_ipv4() {
                    continue;
                }
                let mut msg = Message::new();
                let built = msg.build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)]);
                if let Err(e) = built {
                    tracing::debug!(error = %e, "building a STUN request");
                    continue;
                }
                queries.push(Query {
                    socket,
                    server: *server,
                    id: msg.transaction_id,
                    request: msg.raw,
                    started: now,
                    sent: 0,
                    done: false,
                });
            }
        }
        StunQueries { queries }
    }

    /// Every query is answered or given up.
    pub(super) fn finished(&self) -> bool {
        self.queries.iter().all(|q| q.done)
    }

    /// When [`StunQueries::poll`] next has something to do.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.queries
            .iter()
            .filter(|q| !q.done)
            .map(Query::next_at)
            .min()
    }

    /// The requests due at `now` (socket index, server, bytes); queries
    /// past their last wait are given up.
    pub(super) fn poll(&mut self, now: Instant) -> Vec<(usize, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        for q in self.queries.iter_mut().filter(|q| !q.done) {
            if q.next_at() > now {
                continue;
            }
            if q.sent < STUN_SENDS.len() {
                q.sent += 1;
                out.push((q.socket, q.server, q.request.clone()));
            } else {
                tracing::info!(server = %q.server, "STUN server did not answer");
                q.done = true;
            }
        }
        out
    }

    /// Whether a datagram on `socket` from `from` answers one of our
    /// queries; `None` sends it on to the core.
    pub(super) fn reply(
        &mut self,
        socket: usize,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<StunReply> {
        let query = self
            .queries
            .iter_mut()
            .find(|q| q.socket == socket && q.server == from)?;
        let mut msg = Message::new();
        msg.raw = bytes.to_vec();
        if msg.decode().is_err() || msg.transaction_id != query.id {
            return None;
        }
        if query.done {
            return Some(StunReply::Consumed);
        }
        query.done = true;
        if msg.typ != BINDING_SUCCESS {
            tracing::info!(server = %from, "STUN server answered with an error");
            return Some(StunReply::Consumed);
        }
        let mut mapped = XorMappedAddress::default();
        match mapped.get_from(&msg) {
            Ok(()) => Some(StunReply::Mapped {
                socket,
                mapped: SocketAddr::new(mapped.ip, mapped.port),
            }),
            Err(e) => {
                tracing::info!(server = %from, error = %e, "STUN answer without a mapped address");
                Some(StunReply::Consumed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::Setter;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn answer(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let mut req = Message::new();
        req.raw = request.to_vec();
        req.decode().unwrap();
        let mut msg = Message::new();
        let xor = XorMappedAddress {
            ip: mapped.ip(),
            port: mapped.port(),
        };
        msg.build(&[Box::new(req.transaction_id), Box::new(BINDING_SUCCESS)])
            .unwrap();
        xor.add_to(&mut msg).unwrap();
        msg.raw
    }

    #[test]
    fn stun_urls_parse_as_host_and_port() {
        let hp = |u| stun_host_port(u);
        assert_eq!(hp("stun:127.0.0.1:3479"), Some(("127.0.0.1".into(), 3479)));
        assert_eq!(hp("STUN:example.net"), Some(("example.net".into(), 3478)));
        assert_eq!(hp("stun:[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(hp("stun:[::1]"), Some(("::1".into(), 3478)));
        assert_eq!(
            hp("stun:host:3478?transport=udp"),
            Some(("host".into(), 3478))
        );
        assert_eq!(hp("turn:host:3478"), None);
        assert_eq!(hp("stuns:host"), None);
        assert_eq!(hp("stun:"), None);
        assert_eq!(hp("stun:host:notaport"), None);
    }

    #[test]
    fn one_request_per_socket_and_server_of_the_same_family() {
        let t0 = Instant::now();
        let sockets = [addr("10.0.0.2:5000"), addr("[2001:db8::2]:5001")];
        let servers = [addr("192.0.2.1:3478"), addr("[2001:db8::1]:3478")];
        let mut q = StunQueries::start(&sockets, &servers, t0);
        let sends = q.poll(t0);
        let pairs: Vec<_> = sends.iter().map(|(s, to, _)| (*s, *to)).collect();
        assert_eq!(pairs, vec![(0, servers[0]), (1, servers[1])]);
        assert!(!q.finished());
    }

    #[test]
    fn requests_are_resent_on_schedule_then_given_up() {
        let t0 = Instant::now();
        let server = addr("192.0.2.1:3478");
        let mut q = StunQueries::start(&[addr("10.0.0.2:5000")], &[server], t0);
        let mut sent_at = Vec::new();
        let mut now = t0;
        while !q.finished() {
            if !q.poll(now).is_empty() {
                sent_at.push(now - t0);
            }
            now = q.deadline().unwrap_or(now);
        }
        assert_eq!(sent_at, STUN_SENDS.to_vec());
        assert_eq!(now - t0, STUN_SENDS[3] + STUN_LAST_WAIT);
        assert_eq!(q.deadline(), None);
    }

    #[test]
    fn an_answer_reports_the_mapped_address_once() {
        let t0 = Instant::now();
        let server = addr("192.0.2.1:3478");
        let mut q = StunQueries::start(&[addr("10.0.0.2:5000")], &[server], t0);
        let (_, _, request) = q.poll(t0).remove(0);
        let mapped = addr("198.51.100.7:61000");
        let reply = answer(&request, mapped);
        // From another address, or not STUN: not ours, the core gets it.
        assert_eq!(q.reply(0, addr("192.0.2.9:3478"), &reply), None);
        assert_eq!(q.reply(0, server, b"\x16\xfe\xfd not stun"), None);
        assert_eq!(
            q.reply(0, server, &reply),
            Some(StunReply::Mapped { socket: 0, mapped })
        );
        assert!(q.finished());
        assert_eq!(q.reply(0, server, &reply), Some(StunReply::Consumed));
        // A binding request from the server's address with another id is the
        // core's (a connectivity check).
        let mut other = Message::new();
        other
            .build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
            .unwrap();
        assert_eq!(q.reply(0, server, &other.raw), None);
    }

    #[test]
    fn a_loopback_peer_gathers_on_127_0_0_1_only() {
        let ips = host_ips(&RtcConfig::loopback()).unwrap();
        assert_eq!(ips, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let mut config = RtcConfig::loopback();
        config.host_ips = vec!["10.9.9.9".parse().unwrap()];
        assert!(host_ips(&config).unwrap().is_empty());
        let all = host_ips(&RtcConfig::default()).unwrap();
        assert!(all.iter().all(|ip| !ip.is_loopback()), "{all:?}");
    }
}
