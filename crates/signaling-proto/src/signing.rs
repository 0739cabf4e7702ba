//! HMAC request signing of every HTTP call and WS upgrade except `/health`
//! (signaling.md §5). Replay detection is server state and lives there.

use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use crate::consts::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, SIGNING_SKEW_SECS};

type HmacSha256 = Hmac<Sha256>;

/// Longest nonce accepted by [`verify_request`]; keeps replay caches bounded.
pub const MAX_NONCE_LEN: usize = 128;

/// Lowercase hex HMAC-SHA256(secret, `timestamp:nonce:path`).
pub fn sign_request(secret: &str, timestamp: i64, nonce: &str, path: &str) -> String {
    hex::encode(
        mac(secret, &timestamp.to_string(), nonce, path)
            .finalize()
            .into_bytes(),
    )
}

fn mac(secret: &str, timestamp: &str, nonce: &str, path: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut m = <HmacSha256 as hmac::Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    m.update(timestamp.as_bytes());
    m.update(b":");
    m.update(nonce.as_bytes());
    m.update(b":");
    m.update(path.as_bytes());
    m
}

/// The three signing header values of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `muxlink-timestamp`: Unix seconds.
    pub timestamp: String,
    /// `muxlink-nonce`: 16 random bytes as lowercase hex.
    pub nonce: String,
    /// `muxlink-signature`: lowercase hex HMAC.
    pub signature: String,
}

impl SignedHeaders {
    /// Signs `path` (URL path with version prefix, no query) at `now_unix`
    /// with a fresh random nonce; `None` when `secret` is empty (send nothing).
    pub fn new(secret: &str, path: &str, now_unix: i64) -> Option<SignedHeaders> {
        if secret.is_empty() {
            return None;
        }
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let nonce = hex::encode(raw);
        let signature = sign_request(secret, now_unix, &nonce, path);
        Some(SignedHeaders {
            timestamp: now_unix.to_string(),
            nonce,
            signature,
        })
    }

    /// `(header name, value)` pairs ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }
}

/// Why a signed request was refused; `Display` is the spec's `error` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// Timestamp, nonce or signature header absent or empty.
    #[error("missing client signature")]
    Missing,
    /// Timestamp is not a decimal integer.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// Timestamp more than 60 s away from the server clock.
    #[error("request expired")]
    Expired,
    /// Signature malformed or MAC mismatch.
    #[error("invalid client signature")]
    InvalidSignature,
    /// Nonce already seen within the replay window.
    #[error("replayed request")]
    Replayed,
}

impl SigningError {
    /// True when retrying cannot help (the client must stop and report).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            SigningError::Missing | SigningError::InvalidTimestamp | SigningError::InvalidSignature
        )
    }

    /// The variant whose `error` string is `text`, if any.
    pub fn from_error_text(text: &str) -> Option<SigningError> {
        [
            SigningError::Missing,
            SigningError::InvalidTimestamp,
            SigningError::Expired,
            SigningError::InvalidSignature,
            SigningError::Replayed,
        ]
        .into_iter()
        .find(|e| e.to_string() == text)
    }
}

/// True for an HTTP failure that must stop a client's retry loop: 401 with a
/// permanent signing error or `unknown device`.
pub fn is_permanent_error(status: u16, error: &str) -> bool {
    status == 401
        && (error == crate::consts::ERR_UNKNOWN_DEVICE
            || SigningError::from_error_text(error).is_some_and(|e| e.is_permanent()))
}

/// Checks the signing headers of a request in the spec's order (missing,
/// timestamp, skew, MAC). An empty `secret` accepts everything. The nonce
/// replay check is left to the caller, after this succeeds.
pub fn verify_request(
    secret: &str,
    timestamp: Option<&str>,
    nonce: Option<&str>,
    signature: Option<&str>,
    path: &str,
    now_unix: i64,
) -> Result<(), SigningError> {
    if secret.is_empty() {
        return Ok(());
    }
    let (Some(ts), Some(nonce), Some(sig)) = (timestamp, nonce, signature) else {
        return Err(SigningError::Missing);
    };
    if ts.is_empty() || nonce.is_empty() || sig.is_empty() {
        return Err(SigningError::Missing);
    }
    let ts_value: i64 = ts.parse().map_err(|_| SigningError::InvalidTimestamp)?;
    if now_unix.abs_diff(ts_value) > SIGNING_SKEW_SECS.unsigned_abs() {
        return Err(SigningError::Expired);
    }
    if sig.len() != 64 || nonce.len() > MAX_NONCE_LEN {
        return Err(SigningError::InvalidSignature);
    }
    let raw = hex::decode(sig).map_err(|_| SigningError::InvalidSignature)?;
    // MAC over the timestamp text exactly as sent; `verify_slice` compares in
    // constant time.
    mac(secret, ts, nonce, path)
        .verify_slice(&raw)
        .map_err(|_| SigningError::InvalidSignature)
}
