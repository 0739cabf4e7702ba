//! Errors of the transport: every failure the wrapper reports to its users.

/// What went wrong in a transport call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
    /// The peer or channel is closed (also returned to senders woken by a close).
    #[error("connection closed")]
    Closed,
    /// The channel is not open yet.
    #[error("data channel not open")]
    NotOpen,
    /// No room in the send buffer (or the library's write did not finish) within 5 s.
    #[error("send timeout")]
    SendTimeout,
    /// A message is larger than the remote peer accepts.
    #[error("message of {size} bytes exceeds the peer's limit of {limit}")]
    TooLarge {
        /// Size of the rejected message.
        size: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// A session description or candidate was rejected before reaching the library.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The DTLS handshake has not produced the remote end's certificate (or our
    /// own has no SHA-256 fingerprint): channel authentication cannot be bound
    /// to this connection, so it must be closed.
    #[error("no DTLS certificate fingerprint: {0}")]
    NoFingerprint(&'static str),
    /// The WebRTC core (`rtc`) reported an error.
    #[error("rtc: {0}")]
    Rtc(#[from] rtc::shared::error::Error),
}
