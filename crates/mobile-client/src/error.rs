//! Errors of the phone client, one enum for every layer it drives.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Reading or writing the config directory failed.
    #[error("config store: {0}")]
    Io(#[from] std::io::Error),
    /// A stored file is not what muxlink writes.
    #[error("config store: {0}")]
    Store(String),
    /// The phone has not been paired yet.
    #[error("not paired: run `muxlink-phone pair <payload>` first")]
    NotPaired,
    /// The network call did not complete (connect, timeout, TLS, ...).
    #[error("cannot reach {url}: {detail}")]
    Transport {
        /// URL of the request.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("server refused {url}: {status} {error}")]
    Http {
        /// URL of the request.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's `error` string.
        error: String,
    },
    /// The server answered with something that is not the expected body.
    #[error("unexpected reply from {url}: {detail}")]
    InvalidResponse {
        /// URL of the request.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The QR payload or a key in it is malformed.
    #[error("invalid pairing payload: {0}")]
    Payload(String),
    /// The server's pairing reply names another host than the QR code: it may be hostile.
    #[error("pairing aborted: the server's reply does not match the QR code ({0})")]
    PairingMismatch(&'static str),
    /// The signaling WebSocket failed or closed.
    #[error("signaling: {0}")]
    Signaling(String),
    /// The signaling server rejected our `auth`.
    #[error("signaling auth rejected: {0}")]
    AuthRejected(String),
    /// The host refused the connection (`connection_rejected`).
    #[error("host rejected the connection: {0}")]
    Rejected(String),
    /// The host is not online.
    #[error("host is offline")]
    HostOffline,
    /// The host did not prove anything or misbehaved during the key-possession handshake.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The WebRTC layer failed.
    #[error("webrtc: {0}")]
    Rtc(#[from] rtc_transport::RtcError),
    /// The host answered a request with an `error` event.
    #[error("host error {code}: {message}")]
    Remote {
        /// Error code (terminal-protocol §8).
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The host answered attach with `pane_closed`: the pane does not exist.
    #[error("pane {0} is closed")]
    PaneClosed(String),
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}
