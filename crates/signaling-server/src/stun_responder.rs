//! The server's STUN responder (RFC 5389 Binding only): one UDP socket that
//! answers each Binding request with a success response carrying the
//! request's source as XOR-MAPPED-ADDRESS, so the agent's fallback
//! `stun:<signaling host>:3478` and any other ICE agent learn their public
//! address (a server-reflexive candidate) from the signaling server itself.
//!
//! Everything else (responses, indications, other methods, non-STUN bytes) is
//! dropped without a reply, and the responder never relays anything: that is
//! TURN's job. Memory is bounded: one socket, one receive buffer, one request
//! and one response message reused for every datagram, and a per-client
//! token bucket ([`ClientKey`]: IPv4 address or IPv6 /64) in a fixed-size
//! least-recently-used table, so a flood from one source gets few answers
//! and a flood from many sources cannot grow the table. Messages are parsed
//! and built with the STUN crate of the `rtc` core (already a dependency of
//! the agent's WebRTC code).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Instant;

use stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter as _};
use stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::client_key::ClientKey;
use crate::lru::LruMap;
use crate::token_bucket::TokenBucket;

/// The usual STUN port (RFC 5389 §9), used by [`StunBind::Auto`].
pub const DEFAULT_STUN_PORT: u16 = 3478;

/// Binding requests answered per client per second, sustained.
const PER_CLIENT_PER_SEC: u32 = 20;
/// Binding requests answered per client in a burst (ICE sends a few per
/// server and retransmits them).
const PER_CLIENT_BURST: u32 = 40;
/// Clients whose token buckets are remembered at once.
const MAX_CLIENTS: usize = 4096;
/// Largest datagram read; longer ones are truncated and then fail to parse.
const MAX_DATAGRAM: usize = 1500;

/// Where (and whether) the server answers STUN Binding requests on UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StunBind {
    /// The default: UDP port 3478 on every address of the HTTP listener's
    /// family (`0.0.0.0:3478` or `[::]:3478`) when the HTTP listener has a
    /// fixed port; nothing when it listens on port 0 (tests and the demo,
    /// which must not fight over a fixed port). Best effort: when the port
    /// is taken (e.g. a TURN server on the same machine already answers STUN
    /// there) a warning is logged and the server runs without it.
    #[default]
    Auto,
    /// No STUN responder.
    Off,
    /// Answer on this address; a bind failure stops the start.
    At(SocketAddr),
}

/// A `--stun-bind` value that is neither an address nor `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid STUN bind {value:?}: use ip:port (e.g. 0.0.0.0:3478 or [::]:3478), \"off\" or \"auto\""
)]
pub struct StunBindError {
    /// The value as given.
    pub value: String,
}

impl FromStr for StunBind {
    type Err = StunBindError;

    fn from_str(s: &str) -> Result<StunBind, StunBindError> {
        match s.trim() {
            "off" | "false" | "none" => Ok(StunBind::Off),
            "auto" => Ok(StunBind::Auto),
            other => other.parse().map(StunBind::At).map_err(|_| StunBindError {
                value: s.to_owned(),
            }),
        }
    }
}

impl TryFrom<String> for StunBind {
    type Error = StunBindError;

    fn try_from(s: String) -> Result<StunBind, StunBindError> {
        s.parse()
    }
}

impl<'de> serde::Deserialize<'de> for StunBind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StunBind, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl StunBind {
    /// The address to bind for an HTTP listener on `http`, and whether a
    /// failure to bind it must stop the start; `None` = no responder.
    pub fn resolve(self, http: SocketAddr) -> Option<(SocketAddr, bool)> {
        match self {
            StunBind::Off => None,
            StunBind::At(addr) => Some((addr, true)),
            StunBind::Auto if http.port() == 0 => None,
            StunBind::Auto => {
                let any = match http.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                Some((SocketAddr::new(any, DEFAULT_STUN_PORT), false))
            }
        }
    }
}

/// Binds the responder's socket for `bind` (given the HTTP listener's
/// address). `Ok(None)`: no responder (off, or best effort and the port is
/// taken, which is logged).
pub(crate) async fn bind(
    bind: StunBind,
    http: SocketAddr,
) -> Result<Option<UdpSocket>, (SocketAddr, std::io::Error)> {
    let Some((addr, required)) = bind.resolve(http) else {
        return Ok(None);
    };
    match UdpSocket::bind(addr).await {
        Ok(socket) => Ok(Some(socket)),
        Err(e) if !required => {
            tracing::warn!(
                %addr, error = %e,
                "STUN responder not started: cannot bind UDP {addr} (another STUN/TURN server there answers in its place; set stun_bind to choose another address or \"off\")"
            );
            Ok(None)
        }
        Err(e) => Err((addr, e)),
    }
}

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Send the response (`Responder::response.raw`) back to the source.
    Answer,
    /// Not a Binding request (or malformed): drop.
    Ignore,
}

/// The reusable parsing state of the responder.
struct Responder {
    request: Message,
    response: Message,
    buckets: LruMap<ClientKey, TokenBucket>,
}

impl Responder {
    fn new() -> Responder {
        Responder {
            request: Message::new(),
            response: Message::new(),
            buckets: LruMap::new(MAX_CLIENTS),
        }
    }

    /// Parses `datagram` from `from`; on [`Verdict::Answer`] the response is
    /// in `self.response.raw`.
    fn handle(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> Verdict {
        // Cheap checks first: the STUN header (top bits zero, magic cookie)
        // and the Binding request type, before any decoding.
        if !stun::message::is_stun_message(datagram)
            || u16::from_be_bytes([datagram[0], datagram[1]]) != BINDING_REQUEST.value()
        {
            return Verdict::Ignore;
        }
        self.request.raw.clear();
        self.request.raw.extend_from_slice(datagram);
        if self.request.decode().is_err() || self.request.typ != BINDING_REQUEST {
            return Verdict::Ignore;
        }
        let bucket = self.buckets.entry(ClientKey::of(from.ip()), || {
            TokenBucket::new(PER_CLIENT_PER_SEC, PER_CLIENT_BURST, now)
        });
        if !bucket.take(now) {
            return Verdict::Ignore;
        }
        let r = &mut self.response;
        r.reset();
        r.set_type(BINDING_SUCCESS);
        r.transaction_id = self.request.transaction_id;
        r.write_header();
        let mapped = XorMappedAddress {
            ip: canonical(from.ip()),
            port: from.port(),
        };
        match mapped.add_to(r) {
            Ok(()) => Verdict::Answer,
            Err(_) => Verdict::Ignore,
        }
    }
}

/// An IPv4 client seen on a dual-stack IPv6 socket is reported as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Answers Binding requests on `socket` until `shutdown`.
pub(crate) async fn run(socket: UdpSocket, shutdown: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut responder = Responder::new();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, from) = match received {
            Ok(r) => r,
            // ICMP port unreachable from an earlier answer and the like.
            Err(e) => {
                tracing::trace!(error = %e, "STUN receive failed");
                continue;
            }
        };
        if responder.handle(&buf[..n], from, Instant::now()) == Verdict::Answer {
            // UDP: a failed send is a lost answer; the client retransmits.
            if let Err(e) = socket.send_to(&responder.response.raw, from).await {
                tracing::trace!(%from, error = %e, "STUN send failed");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use stun::message::{Getter as _, TransactionId};

    use super::*;

    fn request() -> Message {
        let mut m = Message::new();
        m.build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
            .unwrap();
        m
    }

    #[test]
    fn a_binding_request_gets_its_source_as_xor_mapped_address() {
        let mut r = Responder::new();
        let req = request();
        for from in [
            "203.0.113.7:40000",
            "[2001:db8::1]:5",
            "[::ffff:198.51.100.2]:9",
        ] {
            let from: SocketAddr = from.parse().unwrap();
            assert_eq!(r.handle(&req.raw, from, Instant::now()), Verdict::Answer);
            let mut resp = Message::new();
            resp.raw = r.response.raw.clone();
            resp.decode().unwrap();
            assert_eq!(resp.typ, BINDING_SUCCESS);
            assert_eq!(resp.transaction_id, req.transaction_id);
            let mut got = XorMappedAddress::default();
            got.get_from(&resp).unwrap();
            assert_eq!(
                SocketAddr::new(got.ip, got.port),
                SocketAddr::new(canonical(from.ip()), from.port())
            );
        }
    }

    #[test]
    fn anything_but_a_binding_request_is_ignored() {
        let mut r = Responder::new();
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let now = Instant::now();
        let mut success = Message::new();
        success
            .build(&[Box::new(TransactionId::new()), Box::new(BINDING_SUCCESS)])
            .unwrap();
        let mut truncated = request().raw;
        truncated[3] = 40; // claims 40 bytes of attributes that are not there
        for junk in [
            &b""[..],
            b"GET / HTTP/1.1\r\n\r\n",
            &[0u8; 20],
            &success.raw,
            &truncated,
        ] {
            assert_eq!(r.handle(junk, from, now), Verdict::Ignore, "{junk:?}");
        }
    }

    #[test]
    fn one_source_is_rate_limited_and_the_table_stays_bounded() {
        let mut r = Responder::new();
        let req = request();
        let now = Instant::now();
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let answered = (0..200)
            .filter(|_| r.handle(&req.raw, from, now) == Verdict::Answer)
            .count();
        assert_eq!(answered, PER_CLIENT_BURST as usize);
        // Another client is unaffected.
        let other: SocketAddr = "192.0.2.2:1".parse().unwrap();
        assert_eq!(r.handle(&req.raw, other, now), Verdict::Answer);
        for i in 0..(MAX_CLIENTS as u32 * 2) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            r.handle(&req.raw, SocketAddr::new(ip, 1), now);
        }
        assert_eq!(r.buckets.len(), MAX_CLIENTS);
    }

    #[test]
    fn bind_values_parse_and_auto_follows_the_http_listener() {
        assert_eq!("off".parse::<StunBind>().unwrap(), StunBind::Off);
        assert_eq!("auto".parse::<StunBind>().unwrap(), StunBind::Auto);
        assert_eq!(
            "127.0.0.1:0".parse::<StunBind>().unwrap(),
            StunBind::At("127.0.0.1:0".parse().unwrap())
        );
        let e = "3478".parse::<StunBind>().unwrap_err().to_string();
        assert!(e.contains("ip:port") && e.contains("off"), "{e}");
        let http = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(StunBind::Auto.resolve(http("127.0.0.1:0")), None);
        assert_eq!(
            StunBind::Auto.resolve(http("127.0.0.1:5000")),
            Some((http("0.0.0.0:3478"), false))
        );
        assert_eq!(
            StunBind::Auto.resolve(http("[::]:443")),
            Some((http("[::]:3478"), false))
        );
        assert_eq!(StunBind::Off.resolve(http("0.0.0.0:443")), None);
    }
}
