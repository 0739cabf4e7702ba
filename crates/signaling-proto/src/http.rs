//! JSON bodies of the signaling HTTP endpoints (signaling.md §1, pairing.md §2).

use serde::{Deserialize, Serialize};

/// `GET /health` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// Always `"ok"`.
    pub status: String,
    /// Server version string.
    pub version: String,
    /// Server time, Unix seconds.
    pub timestamp: i64,
}

/// `POST /auth/challenge` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRequest {
    /// Requesting device.
    pub device_id: String,
}

/// `POST /auth/challenge` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse {
    /// Single-use nonce (opaque to clients).
    pub nonce: String,
}

/// `POST /auth/token` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Requesting device.
    pub device_id: String,
    /// Nonce from `/auth/challenge`.
    pub nonce: String,
    /// Base64 Ed25519 signature of `deviceId|nonce`.
    pub signature: String,
}

/// `POST /auth/token` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// HS256 JWT.
    pub token: String,
}

/// `POST /auth/pair/initiate` body (host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairInitiateRequest {
    /// Host id.
    pub device_id: String,
    /// Host Ed25519 public key, base64.
    pub ed25519_public_key: String,
    /// Host X25519 pairing key, base64.
    pub x25519_public_key: String,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Nonce from `/auth/challenge`.
    pub nonce: String,
    /// Base64 Ed25519 signature of `deviceId|nonce`.
    pub signature: String,
}

/// `POST /auth/pair/initiate` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairInitiateResponse {
    /// Six-character pairing code.
    pub pairing_code: String,
}

/// `POST /auth/pair/complete` body (mobile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairCompleteRequest {
    /// Code from the QR payload or typed by the user.
    pub pairing_code: String,
    /// Mobile id.
    pub device_id: String,
    /// Mobile Ed25519 public key, base64.
    pub ed25519_public_key: String,
    /// Mobile X25519 pairing key, base64.
    pub x25519_public_key: String,
    /// Mobile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Nonce from `/auth/challenge` (muxlink: required).
    pub nonce: String,
    /// Base64 Ed25519 signature of `deviceId|nonce` (muxlink: required).
    pub signature: String,
    /// The phone's pairing confirmation, base64 HMAC (pairing.md §9.4):
    /// required, opaque to the server (1..=128 chars), relayed to the host as
    /// `mobileConfirmation` and never stored. An absent field reads as empty,
    /// so a receiver refuses both with one check of its own.
    #[serde(default)]
    pub confirmation: String,
}

/// `POST /auth/pair/complete` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairCompleteResponse {
    /// Host X25519 pairing key, base64.
    pub host_x25519_public_key: String,
    /// Host id.
    pub host_device_id: String,
    /// Host name, `""` when unknown (always present on the wire).
    #[serde(default)]
    pub host_name: String,
}

/// `DELETE /auth/pairing` and `DELETE /auth/device` → 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedResponse {
    /// Whether anything was removed.
    pub removed: bool,
}

/// `GET /turn/credentials` → 200.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnCredentials {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username (`<expiry>:<deviceId>` in the REST scheme).
    #[serde(default)]
    pub username: String,
    /// TURN credential.
    #[serde(default)]
    pub credential: String,
}

/// Any non-200 response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable error.
    pub error: String,
}
