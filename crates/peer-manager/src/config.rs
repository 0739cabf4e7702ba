//! What a peer task is given at admission: the core's durations, where the
//! WebRTC configuration comes from, and the nonce source.

use rtc_transport::RtcConfig;
use terminal_protocol::{AuthError, NONCE_LEN};

use crate::core::CoreConfig;

/// Where the host's `auth_challenge` nonces come from (the OS CSPRNG; tests
/// swap in a failing source).
pub type NonceSource = fn() -> Result<[u8; NONCE_LEN], AuthError>;

/// How a peer gets its WebRTC configuration.
#[derive(Debug, Clone)]
pub(crate) enum RtcSource {
    /// Use this configuration as is (tests, loopback).
    Fixed(RtcConfig),
    /// Fetch TURN credentials (cached), STUN-only on failure.
    Fetch {
        server_url: String,
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
