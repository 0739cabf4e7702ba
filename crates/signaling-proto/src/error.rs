//! The crate's error type for parsing and crypto checks (request signing and
//! JWTs have their own error enums next to their code).

/// Why a signaling value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// A WebSocket message longer than [`crate::consts::MAX_WS_MESSAGE`] characters.
    #[error("message too large: {len} characters, at most {max}")]
    MessageTooLarge {
        /// Characters in the message.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not a JSON object of the expected shape.
    #[error("invalid json: {0}")]
    InvalidJson(String),
    /// A base64 field did not decode.
    #[error("invalid base64 in {0}")]
    InvalidBase64(&'static str),
    /// A key or signature had the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {got}")]
    InvalidLength {
        /// Which value.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// An Ed25519 public key is not a valid curve point.
    #[error("invalid ed25519 public key")]
    InvalidPublicKey,
    /// An Ed25519 signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A device id is not 32 lowercase hex characters.
    #[error("invalid device id")]
    InvalidDeviceId,
    /// The X25519 exchange produced the all-zero secret (low-order peer key).
    #[error("x25519 shared secret is all zero (low-order peer key)")]
    LowOrderKey,
    /// A QR pairing payload was malformed.
    #[error("invalid pairing payload: {0}")]
    InvalidQr(&'static str),
    /// The phone's pairing confirmation (pairing.md §9.6) is missing,
    /// malformed or does not match: the pairing attempt is refused.
    #[error("pairing confirmation {0}")]
    BadConfirmation(&'static str),
    /// A device name broke the naming rule.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
}
