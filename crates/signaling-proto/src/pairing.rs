//! Pairing: QR payload format, pairing codes and the X25519 + HKDF shared
//! secret derivation (pairing.md §2–§3).

use std::fmt;

use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::ProtoError;
use crate::identity::{decode_public_key, is_valid_device_id};

/// The 32 symbols of a pairing code (no 0/O/1/I).
pub const PAIRING_CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters in a pairing code.
pub const PAIRING_CODE_LEN: usize = 6;
/// HKDF salt.
pub const PAIRING_HKDF_SALT: &[u8] = b"muxlink";
/// HKDF info.
pub const PAIRING_HKDF_INFO: &[u8] = b"muxlink-pairing-v1";

/// A fresh pairing code: each symbol is one CSPRNG byte mod 32.
pub fn new_pairing_code() -> String {
    let mut raw = [0u8; PAIRING_CODE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw.iter()
        .map(|b| char::from(PAIRING_CODE_ALPHABET[usize::from(b % 32)]))
        .collect()
}

/// True when `code` is six symbols of [`PAIRING_CODE_ALPHABET`].
pub fn is_valid_pairing_code(code: &str) -> bool {
    code.len() == PAIRING_CODE_LEN && code.bytes().all(|b| PAIRING_CODE_ALPHABET.contains(&b))
}

/// The QR payload `code|hostX25519PubB64|hostDeviceId|serverUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrPayload {
    /// Pairing code.
    pub code: String,
    /// Host X25519 public key, standard base64 (44 chars).
    pub host_x25519_public_key: String,
    /// Host device id.
    pub host_device_id: String,
    /// Bare server URL without API version; empty when the 3-field form was
    /// scanned (muxlink has no built-in default, so callers must then ask).
    pub server_url: String,
}

impl QrPayload {
    /// Parses and validates a 3- or 4-field payload (surrounding whitespace
    /// ignored).
    pub fn parse(text: &str) -> Result<QrPayload, ProtoError> {
        let text = text.trim();
        if text.len() > 2048 {
            return Err(ProtoError::InvalidQr("payload too long"));
        }
        let fields: Vec<&str> = text.split('|').collect();
        let (code, key, id, url) = match fields.as_slice() {
            [c, k, i] => (*c, *k, *i, ""),
            [c, k, i, u] => (*c, *k, *i, *u),
            _ => {
                return Err(ProtoError::InvalidQr(
                    "expected 3 or 4 '|'-separated fields",
                ));
            }
        };
        if !is_valid_pairing_code(code) {
            return Err(ProtoError::InvalidQr(
                "pairing code must be 6 characters from the code alphabet",
            ));
        }
        decode_public_key(key)
            .map_err(|_| ProtoError::InvalidQr("host key is not 32 bytes of base64"))?;
        if !is_valid_device_id(id) {
            return Err(ProtoError::InvalidQr(
                "host device id must be 32 lowercase hex characters",
            ));
        }
        if fields.len() == 4 && !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ProtoError::InvalidQr(
                "server url must start with http:// or https://",
            ));
        }
        Ok(QrPayload {
            code: code.to_owned(),
            host_x25519_public_key: key.to_owned(),
            host_device_id: id.to_owned(),
            server_url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The host X25519 public key as raw bytes.
    pub fn host_x25519_bytes(&self) -> Result<[u8; 32], ProtoError> {
        decode_public_key(&self.host_x25519_public_key)
    }
}

impl fmt::Display for QrPayload {
    /// Four fields when `server_url` is set (hosts always set it), else three.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}",
            self.code, self.host_x25519_public_key, self.host_device_id
        )?;
        if !self.server_url.is_empty() {
            write!(f, "|{}", self.server_url)?;
        }
        Ok(())
    }
}

/// `K = HKDF-SHA256(X25519(own, peer), salt "muxlink", info
/// "muxlink-pairing-v1")`, refusing an all-zero X25519 output. The
/// intermediate secret is zeroized on drop.
pub fn derive_pairing_secret(
    own: &StaticSecret,
    peer_public: &[u8; 32],
) -> Result<[u8; 32], ProtoError> {
    let shared = own.diffie_hellman(&PublicKey::from(*peer_public));
    if bool::from(shared.as_bytes().ct_eq(&[0u8; 32])) {
        return Err(ProtoError::LowOrderKey);
    }
    let hk = Hkdf::<Sha256>::new(Some(PAIRING_HKDF_SALT), shared.as_bytes());
    let mut k = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
    hk.expand(PAIRING_HKDF_INFO, &mut k)
        .expect("32-byte HKDF output is always valid");
    Ok(k)
}
