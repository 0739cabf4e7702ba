//! Pairing v2 (pairing.md §2 and §9): QR payload format, pairing codes, the
//! pairing token that only the QR carries, the X25519 + HKDF shared secret over
//! `Z ‖ T`, and the phone's confirmation MAC that the host checks.
//!
//! The token is what keeps a hostile signaling server out: the server relays
//! both public keys, but without `T` it can neither derive `K` nor forge the
//! confirmation, so a `pair_complete` carrying its own key is refused.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::ProtoError;
use crate::identity::{decode_public_key, is_valid_device_id};

/// The 32 symbols of a pairing code (no 0/O/1/I).
pub const PAIRING_CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters in a pairing code.
pub const PAIRING_CODE_LEN: usize = 6;
/// HKDF salt.
pub const PAIRING_HKDF_SALT: &[u8] = b"muxlink";
/// HKDF info (pairing v2, §9.3).
pub const PAIRING_HKDF_INFO: &[u8] = b"muxlink-pairing-v2";
/// Bytes in the pairing token `T` (§9.1).
pub const PAIRING_TOKEN_LEN: usize = 16;
/// Prefix of the phone's confirmation message (§9.4).
pub const PAIRING_CONFIRM_PREFIX: &str = "muxlink-pair-confirm-v2";
/// Longest `confirmation` string the server relays (§9.5).
pub const MAX_CONFIRMATION_LEN: usize = 128;

/// The 16-byte pairing token of one attempt; zeroized on drop.
pub type PairingToken = Zeroizing<[u8; PAIRING_TOKEN_LEN]>;

/// A fresh pairing token from the operating system's CSPRNG.
pub fn new_pairing_token() -> PairingToken {
    let mut t = Zeroizing::new([0u8; PAIRING_TOKEN_LEN]);
    rand::rngs::OsRng.fill_bytes(t.as_mut_slice());
    t
}

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

/// The v2 QR payload `code|hostX25519PubB64|hostDeviceId|serverUrl|base64(T)`.
///
/// All five fields are required: a payload without the token cannot pair in
/// v2, and the parser says so instead of falling back.
#[derive(Clone, PartialEq, Eq)]
pub struct QrPayload {
    /// Pairing code.
    pub code: String,
    /// Host X25519 public key, standard base64 (44 chars).
    pub host_x25519_public_key: String,
    /// Host device id.
    pub host_device_id: String,
    /// Bare server URL without API version (no trailing `/`).
    pub server_url: String,
    /// The pairing token `T`, 16 bytes.
    pub token: PairingToken,
}

impl fmt::Debug for QrPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret of the attempt: never in logs.
        f.debug_struct("QrPayload")
            .field("code", &self.code)
            .field("host_x25519_public_key", &self.host_x25519_public_key)
            .field("host_device_id", &self.host_device_id)
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

impl QrPayload {
    /// Parses and validates a 5-field v2 payload (surrounding whitespace
    /// ignored). A 3- or 4-field payload (pairing v1, or a code typed alone)
    /// is refused with a message that says what works instead.
    pub fn parse(text: &str) -> Result<QrPayload, ProtoError> {
        let text = text.trim();
        if text.len() > 2048 {
            return Err(ProtoError::InvalidQr("payload too long"));
        }
        let fields: Vec<&str> = text.split('|').collect();
        let (code, key, id, url, token) = match fields.as_slice() {
            [c, k, i, u, t] => (*c, *k, *i, *u, *t),
            [_] | [_, _, _] | [_, _, _, _] => {
                return Err(ProtoError::InvalidQr(
                    "this payload has no pairing token (an older muxlink, or the code alone); \
                     scan the QR code of `muxlink pair` or paste the whole payload line it prints",
                ));
            }
            _ => {
                return Err(ProtoError::InvalidQr(
                    "expected 5 '|'-separated fields: code|host key|host id|server url|token",
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
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ProtoError::InvalidQr(
                "server url must start with http:// or https://",
            ));
        }
        let token = decode_token(token)?;
        Ok(QrPayload {
            code: code.to_owned(),
            host_x25519_public_key: key.to_owned(),
            host_device_id: id.to_owned(),
            server_url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// The host X25519 public key as raw bytes.
    pub fn host_x25519_bytes(&self) -> Result<[u8; 32], ProtoError> {
        decode_public_key(&self.host_x25519_public_key)
    }
}

impl fmt::Display for QrPayload {
    /// The five `|`-separated fields. This text carries the token: show it to
    /// the user, never log it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}|{}",
            self.code,
            self.host_x25519_public_key,
            self.host_device_id,
            self.server_url,
            STANDARD.encode(self.token.as_slice())
        )
    }
}

/// Decodes the payload's 5th field: standard padded base64 of 16 bytes.
fn decode_token(b64: &str) -> Result<PairingToken, ProtoError> {
    let mut raw = STANDARD
        .decode(b64)
        .map_err(|_| ProtoError::InvalidQr("pairing token is not standard base64"))?;
    let mut token = Zeroizing::new([0u8; PAIRING_TOKEN_LEN]);
    let ok = raw.len() == PAIRING_TOKEN_LEN;
    if ok {
        token.copy_from_slice(&raw);
    }
    raw.zeroize();
    if ok {
        Ok(token)
    } else {
        Err(ProtoError::InvalidQr("pairing token must be 16 bytes"))
    }
}

/// `K = HKDF-SHA256(IKM = X25519(own, peer) ‖ T, salt "muxlink", info
/// "muxlink-pairing-v2")` (§9.3), refusing an all-zero X25519 output. Every
/// intermediate value is zeroized.
pub fn derive_pairing_secret(
    own: &StaticSecret,
    peer_public: &[u8; 32],
    token: &[u8; PAIRING_TOKEN_LEN],
) -> Result<Zeroizing<[u8; 32]>, ProtoError> {
    let shared = own.diffie_hellman(&PublicKey::from(*peer_public));
    if bool::from(shared.as_bytes().ct_eq(&[0u8; 32])) {
        return Err(ProtoError::LowOrderKey);
    }
    let mut ikm = Zeroizing::new([0u8; 32 + PAIRING_TOKEN_LEN]);
    ikm[..32].copy_from_slice(shared.as_bytes());
    ikm[32..].copy_from_slice(token);
    let hk = Hkdf::<Sha256>::new(Some(PAIRING_HKDF_SALT), ikm.as_slice());
    let mut k = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
    hk.expand(PAIRING_HKDF_INFO, k.as_mut_slice())
        .expect("32-byte HKDF output is always valid");
    Ok(k)
}

/// The confirmation message of §9.4 (ASCII):
/// `muxlink-pair-confirm-v2|<mobileDeviceId>|<mobileX25519PubB64>|<hostDeviceId>`.
pub fn confirmation_message(
    mobile_device_id: &str,
    mobile_x25519_public_b64: &str,
    host_device_id: &str,
) -> String {
    format!(
        "{PAIRING_CONFIRM_PREFIX}|{mobile_device_id}|{mobile_x25519_public_b64}|{host_device_id}"
    )
}

/// Phone side: `C = HMAC-SHA256(K, confirmation_message(..))`, as the
/// `confirmation` string of `POST /auth/pair/complete` (standard base64).
pub fn pairing_confirmation(
    secret: &[u8; 32],
    mobile_device_id: &str,
    mobile_x25519_public_b64: &str,
    host_device_id: &str,
) -> String {
    let c = confirmation_mac(
        secret,
        &confirmation_message(mobile_device_id, mobile_x25519_public_b64, host_device_id),
    );
    STANDARD.encode(c)
}

/// Host side (§9.6): recomputes `C` and compares it with the relayed
/// `mobileConfirmation` in constant time. Missing, longer than 128 chars, not
/// standard base64 of 32 bytes, or unequal → [`ProtoError::BadConfirmation`].
pub fn verify_pairing_confirmation(
    secret: &[u8; 32],
    mobile_device_id: &str,
    mobile_x25519_public_b64: &str,
    host_device_id: &str,
    confirmation_b64: &str,
) -> Result<(), ProtoError> {
    if confirmation_b64.is_empty() {
        return Err(ProtoError::BadConfirmation("missing"));
    }
    if confirmation_b64.len() > MAX_CONFIRMATION_LEN {
        return Err(ProtoError::BadConfirmation("longer than 128 characters"));
    }
    let given = Zeroizing::new(
        STANDARD
            .decode(confirmation_b64)
            .map_err(|_| ProtoError::BadConfirmation("not standard base64"))?,
    );
    let expected = Zeroizing::new(confirmation_mac(
        secret,
        &confirmation_message(mobile_device_id, mobile_x25519_public_b64, host_device_id),
    ));
    // Slices of different lengths compare unequal without looking at content.
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(ProtoError::BadConfirmation("does not match"))
    }
}

fn confirmation_mac(secret: &[u8; 32], message: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().into()
}
