//! The [`PeerManager`]'s setters: the spec's tunables (limits, timers, ICE
//! configuration), the allowed device, the secret loader and the hook.

use std::time::Duration;

use rtc_transport::RtcConfig;

use super::{DisconnectHook, PeerManager, SecretLoader};
use crate::admission;
use crate::config::NonceSource;
use crate::throttle::ConnectThrottle;

impl PeerManager {
    /// Simultaneous peers allowed (default 1, clamped to 1..=20).
    pub fn set_max_peers(&self, n: usize) {
        self.inner().settings.max_peers = admission::clamp_max_peers(n);
    }

    /// Use this WebRTC configuration for new peers and skip the TURN fetch (tests:
    /// loopback settings).
    pub fn set_rtc_config_override(&self, config: RtcConfig) {
        self.inner().settings.rtc_override = Some(config);
    }

    /// STUN URL used when TURN credentials cannot be fetched
    /// (default `stun:<server host>:3478`).
    pub fn set_stun_url(&self, url: &str) {
        self.inner().settings.stun_url = url.to_owned();
    }

    /// Force ICE transport policy `relay` (diagnostics).
    pub fn set_relay_only(&self, on: bool) {
        self.inner().settings.relay_only = on;
    }

    /// Key-possession deadline (default 10 s; tests shorten it).
    pub fn set_auth_timeout(&self, d: Duration) {
        self.inner().settings.core.auth_timeout = d;
    }

    /// Disconnect grace and ICE-restart answer watchdog (defaults 10 s and 20 s;
    /// tests shorten them).
    pub fn set_lifecycle_timers(&self, grace: Duration, watchdog: Duration) {
        let mut g = self.inner();
        g.settings.core.grace = grace;
        g.settings.core.watchdog = watchdog;
    }

    /// Ping idle limit of authenticated peers (default 60 s; tests shorten it).
    pub fn set_idle_timeout(&self, d: Duration) {
        self.inner().settings.core.idle = d;
    }

    /// Per-phone `connect_request` rate: `burst` at once, then one per
    /// `interval` (defaults 6 and 1 s; see [`crate::throttle`]). Requests over
    /// it are dropped with a log line.
    pub fn set_connect_rate(&self, burst: u32, interval: Duration) {
        self.inner().throttle = ConnectThrottle::new(burst, interval);
    }

    /// Test seam: where `auth_challenge` nonces come from (default
    /// [`terminal_protocol::try_new_nonce`]). A failing source closes each
    /// peer whose channel opens, before anything reaches the handler.
    #[doc(hidden)]
    pub fn set_nonce_source(&self, source: NonceSource) {
        self.inner().settings.nonce = source;
    }

    /// The mobile device id allowed to connect (may be empty or a sentinel).
    pub fn allowed_device_id(&self) -> String {
        self.inner().allowed.clone()
    }

    /// Set the allowed mobile device id (empty or `!…` sentinel = nobody).
    pub fn set_allowed_device_id(&self, id: &str) {
        self.inner().allowed = id.to_owned();
    }

    /// Where the pairing secret of a device comes from (none = every device is
    /// `not_paired`).
    pub fn set_secret_loader(&self, loader: SecretLoader) {
        self.inner().secret_loader = Some(loader);
    }

    /// Also call `hook(device_id)` whenever the handler hears `peer_disconnected`
    /// (same once-per-peer rule).
    pub fn set_on_peer_disconnect(&self, hook: DisconnectHook) {
        self.inner().on_disconnect = Some(hook);
    }
}
