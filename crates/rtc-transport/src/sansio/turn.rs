//! Relayed candidates for the sans-IO stack: one `rtc-turn` client per TURN
//! server (UDP transport), speaking from one of the peer's host sockets. The
//! driver feeds it the datagrams that come from its server and its timers;
//! it hands back the relay's allocation, the datagrams the relay delivered
//! (which the driver gives to the core as received on the relayed address),
//! and wraps the core's datagrams from the relayed address for the server.
//!
//! Permissions are made on demand: a datagram to a peer the relay has no
//! permission for asks for one and is dropped (ICE resends its checks every
//! few milliseconds, so the next one passes once the permission is in). The
//! client refreshes the allocation, its permissions and channel bindings
//! itself from its timers.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::message::TransactionId;
use rtc::turn::client::{Client, ClientConfig, Event};

use super::gather::{host_port, resolve};
use crate::config::RtcConfig;

/// TURN's default port (RFC 8656 §3).
const TURN_PORT: u16 = 3478;
/// Permissions asked for and not yet answered, per relay: past it, a
/// datagram to yet another peer is dropped without asking.
const MAX_PENDING_PERMISSIONS: usize = 64;

/// One `turn:` server of the configuration, resolved.
pub(super) struct TurnServer {
    pub(super) addr: SocketAddr,
    pub(super) username: String,
    pub(super) credential: String,
}

/// `turn:host[:port][?transport=udp]` as host and port; `None` for another
/// scheme or a transport other than UDP (`turns:` and TCP are not supported).
pub(super) fn turn_host_port(url: &str) -> Option<(String, u16)> {
    let url = url.trim();
    let (scheme, rest) = url.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("turn") {
        return None;
    }
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let udp = query.split('&').all(|kv| match kv.split_once('=') {
        Some((k, v)) if k.eq_ignore_ascii_case("transport") => v.eq_ignore_ascii_case("udp"),
        _ => true,
    });
    if !udp {
        return None;
    }
    host_port(hostport, TURN_PORT)
}

/// The configuration's TURN servers over UDP, resolved (one address each;
/// a name that does not resolve in time is left out with a log line).
pub(super) async fn turn_servers(config: &RtcConfig) -> Vec<TurnServer> {
    let mut servers = Vec::new();
    for server in &config.ice_servers {
        for url in &server.urls {
            let Some((host, port)) = turn_host_port(url) else {
                if url.trim_start().to_ascii_lowercase().starts_with("turn") {
                    tracing::info!(url, "only turn: over UDP is supported; server left out");
                }
                continue;
            };
            let addr = resolve(url, &host, port).await.into_iter().next();
            if let Some(addr) = addr
                && !servers.iter().any(|s: &TurnServer| s.addr == addr)
            {
                servers.push(TurnServer {
                    addr,
                    username: server.username.clone(),
                    credential: server.credential.clone(),
                });
            }
        }
    }
    servers
}

/// What the driver must do after the relay took an input.
#[derive(Debug)]
pub(super) enum RelayEvent {
    /// The allocation is in: the relayed address is a candidate now.
    Allocated(SocketAddr),
    /// The allocation failed for good; the relay contributes nothing.
    Failed,
    /// A peer's datagram, delivered by the relay.
    Data { from: SocketAddr, data: BytesMut },
}

/// One TURN server's client and its allocation.
pub(super) struct Relay {
    client: Client,
    /// The host socket (index) it talks to its server from.
    pub(super) socket: usize,
    pub(super) server: SocketAddr,
    allocation: Option<TransactionId>,
    pub(super) relayed: Option<SocketAddr>,
    pub(super) failed: bool,
    pending_permissions: usize,
}

impl Relay {
    /// A client for `server` on the host socket `socket` at `local`, with its
    /// allocation request queued.
    pub(super) fn start(
        server: &TurnServer,
        socket: usize,
        local: SocketAddr,
        now: Instant,
    ) -> Result<Relay, String> {
        let config = ClientConfig {
            stun_serv_addr: String::new(),
            turn_serv_addr: server.addr.to_string(),
            local_addr: local,
            transport_protocol: TransportProtocol::UDP,
            username: server.username.clone(),
            password: server.credential.clone(),
            // Learned from the server's first answer (its 401).
            realm: String::new(),
            software: String::new(),
            rto_in_ms: 0,
            allocation_refresh_interval_cap: None,
        };
        let crypto = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let mut client = Client::new(config, crypto).map_err(|e| e.to_string())?;
        let allocation = client.allocate(now).map_err(|e| e.to_string())?;
        Ok(Relay {
            client,
            socket,
            server: server.addr,
            allocation: Some(allocation),
            relayed: None,
            failed: false,
            pending_permissions: 0,
        })
    }

    /// Allocated or given up: gathering need not wait for it.
    pub(super) fn settled(&self) -> bool {
        self.relayed.is_some() || self.failed
    }

    /// A datagram from the server.
    pub(super) fn handle_read(&mut self, local: SocketAddr, bytes: &[u8]) -> Vec<RelayEvent> {
        let msg = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: local,
                peer_addr: self.server,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(bytes),
        };
        if let Err(e) = self.client.handle_read(msg) {
            tracing::debug!(server = %self.server, error = %e, "TURN datagram rejected");
        }
        self.events()
    }

    /// The client's timers.
    pub(super) fn handle_timeout(&mut self, now: Instant) -> Vec<RelayEvent> {
        if let Err(e) = self.client.handle_timeout(now) {
            tracing::debug!(server = %self.server, error = %e, "TURN timer");
        }
        self.events()
    }

    pub(super) fn poll_timeout(&mut self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// The next datagram for the server.
    pub(super) fn poll_write(&mut self) -> Option<Vec<u8>> {
        self.client.poll_write().map(|t| t.message.to_vec())
    }

    /// Sends the core's datagram to `peer` through the relay, or asks for
    /// the permission it lacks and drops it.
    pub(super) fn send_to(&mut self, now: Instant, data: &[u8], peer: SocketAddr) {
        let Some(relayed) = self.relayed else {
            return;
        };
        let Ok(mut relay) = self.client.relay(relayed) else {
            return;
        };
        match relay.send_to(now, data, peer) {
            Ok(()) => {}
            Err(rtc::shared::error::Error::ErrNoPermission) => {
                if self.pending_permissions >= MAX_PENDING_PERMISSIONS {
                    return;
                }
                match relay.create_permission(now, peer) {
                    Ok(Some(_)) => self.pending_permissions += 1,
                    Ok(None) => {}
                    Err(e) => tracing::debug!(%peer, error = %e, "TURN permission request"),
                }
            }
            Err(e) => tracing::trace!(%peer, error = %e, "TURN send"),
        }
    }

    /// Releases the allocation (a refresh with lifetime 0) on close.
    pub(super) fn close(&mut self, now: Instant) {
        if let Some(relayed) = self.relayed
            && let Ok(mut relay) = self.client.relay(relayed)
            && let Err(e) = relay.close(now)
        {
            tracing::debug!(error = %e, "TURN deallocation");
        }
    }

    fn events(&mut self) -> Vec<RelayEvent> {
        let mut out = Vec::new();
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::AllocateResponse(id, relayed) if Some(id) == self.allocation => {
                    self.allocation = None;
                    self.relayed = Some(relayed);
                    out.push(RelayEvent::Allocated(relayed));
                }
                Event::AllocateError(id, e) if Some(id) == self.allocation => {
                    tracing::info!(server = %self.server, error = %e, "TURN allocation failed");
                    self.give_up(&mut out);
                }
                Event::TransactionTimeout(id) if Some(id) == self.allocation => {
                    tracing::info!(server = %self.server, "TURN server did not answer");
                    self.give_up(&mut out);
                }
                Event::CreatePermissionResponse(..) => {
                    self.pending_permissions = self.pending_permissions.saturating_sub(1);
                }
                Event::CreatePermissionError(_, e) => {
                    self.pending_permissions = self.pending_permissions.saturating_sub(1);
                    tracing::debug!(server = %self.server, error = %e, "TURN permission refused");
                }
                Event::DataIndicationOrChannelData(_, from, data) => {
                    out.push(RelayEvent::Data { from, data });
                }
                _ => {}
            }
        }
        out
    }

    fn give_up(&mut self, out: &mut Vec<RelayEvent>) {
        self.allocation = None;
        self.failed = true;
        out.push(RelayEvent::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_parse_as_host_and_port_for_udp_only() {
        let hp = |u| turn_host_port(u);
        assert_eq!(
            hp("turn:127.0.0.1:3479?transport=udp"),
            Some(("127.0.0.1".into(), 3479))
        );
        assert_eq!(
            hp("TURN:relay.example"),
            Some(("relay.example".into(), 3478))
        );
        assert_eq!(hp("turn:[::1]:5349"), Some(("::1".into(), 5349)));
        assert_eq!(hp("turn:host?transport=tcp"), None);
        assert_eq!(hp("turns:host:5349"), None);
        assert_eq!(hp("stun:host"), None);
        assert_eq!(hp("turn:"), None);
    }
}
