//! Wire types and pure helpers of muxlink signaling: the WebSocket message
//! shape, HTTP bodies, JWTs, request signing, device identity and pairing
//! crypto, exactly as `spec/signaling.md` and `spec/pairing.md` define them.
//!
//! This is the crate the signaling server, the host agent and the phone
//! client all share, and the one a separate server team reuses. It is
//! deliberately minimal: no I/O, no clock reads (time is a `now_unix`
//! argument), no tokio, no WebRTC and no HTTP client. Randomness is used only
//! where the spec asks for fresh values (request nonces, pairing codes).
//!
//! Layout:
//! - [`consts`]: timings, limits, header names, reason and error strings.
//! - [`message`]: [`SignalingMessage`], the flat WebSocket JSON object.
//! - [`signal`]: [`Signal`], its typed, losslessly convertible view.
//! - [`kind`]: the `type` strings of every message kind (also reachable as
//!   `signal::kind`).
//! - [`identity`]: device ids and Ed25519 challenge signatures.
//! - [`signing`]: HMAC request-signing headers and their verification.
//! - [`jwt`]: HS256 JWT encode/verify and [`Claims`].
//! - [`http`]: JSON bodies of the HTTP endpoints.
//! - [`url`]: API base, WebSocket URL and signed-path helpers.
//! - [`pairing`]: pairing v2: QR payload with its token, pairing codes, X25519 +
//!   HKDF secret over `Z ‖ T`, the phone's confirmation MAC.
//! - [`name`]: device-name validation (no controls, no bidi formatting characters).
//! - [`error`]: the crate error type, [`ProtoError`].

#![warn(missing_docs)]

pub mod consts;
pub mod error;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod kind;
pub mod message;
pub mod name;
pub mod pairing;
pub mod signal;
pub mod signing;
pub mod url;

pub use error::ProtoError;
pub use http::{
    ChallengeRequest, ChallengeResponse, ErrorBody, HealthResponse, PairCompleteRequest,
    PairCompleteResponse, PairInitiateRequest, PairInitiateResponse, RemovedResponse, TokenRequest,
    TokenResponse, TurnCredentials,
};
pub use identity::{
    challenge_message, decode_public_key, device_id, is_valid_device_id, sign_challenge,
    verify_challenge,
};
pub use jwt::{Claims, JwtError, jwt_encode, jwt_expiry_unverified, jwt_verify};
pub use message::SignalingMessage;
pub use name::{is_forbidden_name_char, truncate_name, validate_name};
pub use pairing::{
    MAX_CONFIRMATION_LEN, PAIRING_CODE_ALPHABET, PAIRING_TOKEN_LEN, PairingToken, QrPayload,
    derive_pairing_secret, is_valid_pairing_code, new_pairing_code, new_pairing_token,
    pairing_confirmation, verify_pairing_confirmation,
};
pub use signal::Signal;
pub use signing::{SignedHeaders, SigningError, is_permanent_error, sign_request, verify_request};
pub use url::{api_base, api_path, ws_url};

// Re-exported so callers name the exact key types these functions take.
pub use ed25519_dalek;
pub use x25519_dalek;
