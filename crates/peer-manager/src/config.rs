//! Configuration: [`PeerManagerConfig`], everything the manager is built with
//! (server, API version, limits, ICE settings, timers, the secret loader and
//! the disconnect hook), and what a peer task is given at admission: the
//! core's durations, where the WebRTC configuration comes from, and the
//! nonce source.

use std::sync::Arc;
use std::time::Duration;

use rtc_transport::RtcConfig;
use signaling_proto::consts::DEFAULT_API_VERSION;
use terminal_protocol::{AuthError, NONCE_LEN};

use crate::core::CoreConfig;
use crate::throttle::{CONNECT_BURST, CONNECT_INTERVAL};

/// Where the host's `auth_challenge` nonces come from (the OS CSPRNG; tests
/// swap in a failing source).
pub type NonceSource = fn() -> Result<[u8; NONCE_LEN], AuthError>;

/// Loads the 32-byte pairing secret of a mobile device id.
pub type SecretLoader = Arc<dyn Fn(&str) -> Option<[u8; 32]> + Send + Sync>;
/// Extra hook called with the device id when a current peer goes away.
pub type DisconnectHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything a [`PeerManager`](crate::PeerManager) is built with. Only the
/// allowed device changes afterwards
/// ([`set_allowed_device_id`](crate::PeerManager::set_allowed_device_id):
/// the agent re-reads the pairing on SIGUSR2).
///
/// [`PeerManagerConfig::new`] holds the spec's defaults; override fields with
/// struct update syntax.
#[derive(Clone)]
pub struct PeerManagerConfig {
    /// Signaling server URL, for the TURN credential fetch and the default
    /// STUN fallback.
    pub server_url: String,
    /// Request-signing secret of the TURN fetch (empty = unsigned).
    pub hmac_secret: String,
    /// API version of the TURN fetch (default `v1`; empty = no prefix).
    pub api_version: String,
    /// Simultaneous peers allowed (default 1, clamped to 1..=20).
    pub max_peers: usize,
    /// Force ICE transport policy `relay` (diagnostics).
    pub relay_only: bool,
    /// STUN URL used when TURN credentials cannot be fetched; `None` =
    /// `stun:<server host>:3478` ([`ice_servers::default_stun_url`](crate::ice_servers::default_stun_url)).
    pub stun_url: Option<String>,
    /// Use this WebRTC configuration for new peers and skip the TURN fetch
    /// (loopback settings).
    pub rtc_override: Option<RtcConfig>,
    /// The peer core's durations: key-possession deadline (10 s), disconnect
    /// grace (10 s), ICE-restart answer watchdog (20 s), ping idle limit
    /// (60 s), channel-open limit.
    pub core: CoreConfig,
    /// Per-phone `connect_request` rate: this many at once (default 6), then
    /// one per [`connect_interval`](Self::connect_interval); see
    /// [`crate::throttle`]. Requests over it are dropped with a log line.
    pub connect_burst: u32,
    /// The sustained per-phone `connect_request` rate: one per this interval
    /// (default 1 s).
    pub connect_interval: Duration,
    /// The mobile device id allowed to connect at start (empty or a `!…`
    /// sentinel = nobody).
    pub allowed_device_id: String,
    /// Where the pairing secret of a device comes from (`None` = every
    /// device is `not_paired`).
    pub secret_loader: Option<SecretLoader>,
    /// Also called with the device id whenever the handler hears
    /// `peer_disconnected` (same once-per-peer rule).
    pub on_peer_disconnect: Option<DisconnectHook>,
    /// Test seam: where `auth_challenge` nonces come from (default
    /// [`terminal_protocol::try_new_nonce`]). A failing source closes each
    /// peer whose channel opens, before anything reaches the handler.
    #[doc(hidden)]
    pub nonce_source: NonceSource,
}

impl PeerManagerConfig {
    /// The defaults for a host on `server_url`: one peer, nobody allowed, no
    /// secrets, the spec's timers.
    pub fn new(server_url: &str) -> PeerManagerConfig {
        PeerManagerConfig {
            server_url: server_url.to_owned(),
            hmac_secret: String::new(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            max_peers: crate::admission::DEFAULT_MAX_PEERS,
            relay_only: false,
            stun_url: None,
            rtc_override: None,
            core: CoreConfig::default(),
            connect_burst: CONNECT_BURST,
            connect_interval: CONNECT_INTERVAL,
            allowed_device_id: String::new(),
            secret_loader: None,
            on_peer_disconnect: None,
            nonce_source: terminal_protocol::try_new_nonce,
        }
    }
}

impl std::fmt::Debug for PeerManagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the callbacks stay out of logs.
        f.debug_struct("PeerManagerConfig")
            .field("server_url", &self.server_url)
            .field("api_version", &self.api_version)
            .field("max_peers", &self.max_peers)
            .field("relay_only", &self.relay_only)
            .field("stun_url", &self.stun_url)
            .field("rtc_override", &self.rtc_override)
            .field("core", &self.core)
            .field("connect_burst", &self.connect_burst)
            .field("connect_interval", &self.connect_interval)
            .field("allowed_device_id", &self.allowed_device_id)
            .finish_non_exhaustive()
    }
}

/// How a peer gets its WebRTC configuration.
#[derive(Debug, Clone)]
pub(crate) enum RtcSource {
    /// Use this configuration as is (tests, loopback).
    Fixed(RtcConfig),
    /// Fetch TURN credentials (cached), STUN-only on failure.
    Fetch {
        server_url: String,
        api_version: String,
        jwt: String,
        hmac_secret: String,
        stun_url: String,
        relay_only: bool,
    },
}

/// Everything per peer that the manager decides at admission.
#[derive(Debug, Clone)]
pub(crate) struct PeerSettings {
    pub core: CoreConfig,
    pub rtc: RtcSource,
    pub nonce: NonceSource,
}
