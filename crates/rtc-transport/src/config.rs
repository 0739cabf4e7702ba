//! Transport configuration: ICE servers, loopback-only test settings, relay-only
//! policy, host addresses; `sansio/peer.rs` and `sansio/gather.rs` read it.

use std::net::IpAddr;

/// One STUN or TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` / `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username (empty for STUN).
    pub username: String,
    /// TURN credential (empty for STUN).
    pub credential: String,
}

/// How to build a peer connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtcConfig {
    /// STUN/TURN servers; empty = host candidates only.
    pub ice_servers: Vec<IceServer>,
    /// Test settings: gather loopback candidates on 127.0.0.1 only, UDP/IPv4 only, no mDNS.
    pub loopback_only: bool,
    /// Force ICE transport policy `relay` (only TURN candidates are used).
    pub relay_only: bool,
    /// Gather host candidates on these local addresses only (empty: on every
    /// address the other settings allow). For a peer that must reach the other
    /// side through one interface of a machine with several, e.g. a test whose
    /// other interfaces come and go: a pair on a vanished address fails its
    /// sends until ICE gives it up.
    pub host_ips: Vec<IpAddr>,
}

impl RtcConfig {
    /// The settings used by tests: loopback only, no servers.
    pub fn loopback() -> Self {
        RtcConfig {
            loopback_only: true,
            ..Default::default()
        }
    }
}
