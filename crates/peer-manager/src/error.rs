//! Error types of the peer manager: sending to a peer, and the signaling sink.

/// Failure of [`Peer::send_message`](crate::Peer::send_message) or
/// [`PeerManager::send_to`](crate::PeerManager::send_to).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer was closed (or closed while the send waited for room).
    #[error("peer closed")]
    Closed,
    /// The DataChannel does not exist or is not open yet.
    #[error("no data channel")]
    NoChannel,
    /// No peer for this device.
    #[error("no peer for device {0}")]
    NotFound(String),
    /// The send buffer stayed full for 5 s.
    #[error("send timeout")]
    SendTimeout,
    /// The encoded message is larger than the phone accepts.
    #[error("message of {size} bytes exceeds the peer's limit of {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The phone's max-message-size (capped at 1 MiB).
        max: usize,
    },
    /// Any other transport failure.
    #[error("transport error: {0}")]
    Transport(String),
}

/// A signaling message could not be handed to the signaling connection.
#[derive(Debug, thiserror::Error)]
#[error("signaling send failed: {0}")]
pub struct SendError(pub String);
