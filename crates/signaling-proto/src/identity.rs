//! Device identity: device-id derivation from an Ed25519 public key and the
//! challenge signature of the token and pairing flows (signaling.md §2–§3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::error::ProtoError;

/// Lowercase hex of the first 16 bytes of SHA-256(public key): 32 characters.
pub fn device_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(&digest[..16])
}

/// True when `id` has the device-id shape `^[0-9a-f]{32}$`.
pub fn is_valid_device_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The UTF-8 text a device signs for a challenge: `deviceId|nonce`.
pub fn challenge_message(device_id: &str, nonce: &str) -> String {
    format!("{device_id}|{nonce}")
}

/// Signs the challenge; returns the 64-byte signature in standard base64.
pub fn sign_challenge(key: &SigningKey, device_id: &str, nonce: &str) -> String {
    let sig = key.sign(challenge_message(device_id, nonce).as_bytes());
    STANDARD.encode(sig.to_bytes())
}

/// Verifies a base64 challenge signature against a raw Ed25519 public key
/// (strict verification: small-order keys and malleable signatures fail).
pub fn verify_challenge(
    public_key: &[u8; 32],
    device_id: &str,
    nonce: &str,
    signature_b64: &str,
) -> Result<(), ProtoError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| ProtoError::InvalidPublicKey)?;
    let raw = decode_b64_fixed::<64>(signature_b64, "signature")?;
    let sig = Signature::from_bytes(&raw);
    key.verify_strict(challenge_message(device_id, nonce).as_bytes(), &sig)
        .map_err(|_| ProtoError::BadSignature)
}

/// Decodes a standard-base64 public key (44 characters) into 32 raw bytes.
pub fn decode_public_key(b64: &str) -> Result<[u8; 32], ProtoError> {
    decode_b64_fixed::<32>(b64, "public key")
}

/// Decodes standard base64 that must hold exactly `N` bytes.
pub(crate) fn decode_b64_fixed<const N: usize>(
    b64: &str,
    what: &'static str,
) -> Result<[u8; N], ProtoError> {
    // A valid encoding of N bytes is at most 4*ceil(N/3) chars; refuse more
    // before allocating.
    if b64.len() > N.div_ceil(3) * 4 {
        return Err(ProtoError::InvalidLength {
            what,
            expected: N,
            got: b64.len() * 3 / 4,
        });
    }
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| ProtoError::InvalidBase64(what))?;
    <[u8; N]>::try_from(raw.as_slice()).map_err(|_| ProtoError::InvalidLength {
        what,
        expected: N,
        got: raw.len(),
    })
}
