//! Key possession (spec §5): the host's random nonce, the phone's
//! HMAC-SHA256 over it with the pairing secret, and constant-time checking.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::limits::{MAX_MAC_LEN, MAX_NONCE_LEN, NONCE_LEN};

/// Why key possession failed. Hosts close the peer on any of these without
/// saying which (§5 step 5); the variants exist for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The `mac` string is empty.
    #[error("mac is empty")]
    Empty,
    /// The string is longer than 128 chars.
    #[error("{what} is {len} chars, more than {max}")]
    TooLong {
        /// "mac" or "nonce".
        what: &'static str,
        /// Its length in chars.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not standard base64 with padding.
    #[error("{0} is not standard padded base64")]
    BadBase64(&'static str),
    /// The decoded nonce is not 32 bytes.
    #[error("nonce decodes to {0} bytes, not 32")]
    BadNonceLength(usize),
    /// No nonce was issued (nothing to check against).
    #[error("no challenge nonce is pending")]
    NoNonce,
    /// The MAC does not match.
    #[error("mac does not match")]
    Mismatch,
    /// The operating system's random source failed.
    #[error("random source failed")]
    Rng,
}

/// 32 bytes from the operating system's CSPRNG.
///
/// # Panics
/// Only if the OS random source fails, which leaves nothing safe to do; use
/// [`try_new_nonce`] to handle that case instead.
pub fn new_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

/// Like [`new_nonce`] but reports a failing random source (§5 step 5 closes
/// the peer on it).
pub fn try_new_nonce() -> Result<[u8; NONCE_LEN], AuthError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| AuthError::Rng)?;
    Ok(nonce)
}

/// The `auth_challenge.nonce` string: standard padded base64 (44 chars).
pub fn nonce_b64(nonce: &[u8; NONCE_LEN]) -> String {
    STANDARD.encode(nonce)
}

/// Phone side: checks an `auth_challenge.nonce` (≤ 128 chars, standard
/// base64, 32 bytes) and returns the raw nonce.
pub fn decode_nonce(nonce_b64: &str) -> Result<[u8; NONCE_LEN], AuthError> {
    let len = nonce_b64.chars().count();
    if len > MAX_NONCE_LEN {
        return Err(AuthError::TooLong {
            what: "nonce",
            len,
            max: MAX_NONCE_LEN,
        });
    }
    let raw = STANDARD
        .decode(nonce_b64)
        .map_err(|_| AuthError::BadBase64("nonce"))?;
    <[u8; NONCE_LEN]>::try_from(raw.as_slice()).map_err(|_| AuthError::BadNonceLength(raw.len()))
}

/// HMAC-SHA256 with key `secret` over `nonce`.
pub fn compute_mac(secret: &[u8], nonce: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (long keys are hashed), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(nonce);
    mac.finalize().into_bytes().into()
}

/// The `auth_response.mac` string: standard padded base64 of [`compute_mac`].
pub fn mac_b64(secret: &[u8], nonce: &[u8]) -> String {
    let mut mac = compute_mac(secret, nonce);
    let out = STANDARD.encode(mac);
    mac.zeroize();
    out
}

/// Host side, in the order of §5 step 3: `mac_b64` is 1..=128 chars, decodes
/// as strict standard base64, a nonce is pending, and the MAC matches in
/// constant time.
pub fn verify_mac(secret: &[u8], nonce: &[u8], mac_b64: &str) -> Result<(), AuthError> {
    if mac_b64.is_empty() {
        return Err(AuthError::Empty);
    }
    let len = mac_b64.chars().count();
    if len > MAX_MAC_LEN {
        return Err(AuthError::TooLong {
            what: "mac",
            len,
            max: MAX_MAC_LEN,
        });
    }
    let mut given = STANDARD
        .decode(mac_b64)
        .map_err(|_| AuthError::BadBase64("mac"))?;
    if nonce.is_empty() {
        given.zeroize();
        return Err(AuthError::NoNonce);
    }
    let mut expected = compute_mac(secret, nonce);
    // Slices of different lengths compare unequal (without early exit on content).
    let equal: bool = given.as_slice().ct_eq(expected.as_slice()).into();
    expected.zeroize();
    given.zeroize();
    if equal {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn spec_v4_vector() {
        let n = counting();
        let s = [0x42u8; 32];
        assert_eq!(
            nonce_b64(&n),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        );
        assert_eq!(
            hex::encode(compute_mac(&s, &n)),
            "d98dab5c703bada4f9947c0adcb6020436d39b0471873287c0b2e151200b30e0"
        );
        assert_eq!(
            mac_b64(&s, &n),
            "2Y2rXHA7raT5lHwK3LYCBDbTmwRxhzKHwLLhUSALMOA="
        );
        verify_mac(&s, &n, "2Y2rXHA7raT5lHwK3LYCBDbTmwRxhzKHwLLhUSALMOA=").unwrap();
        assert_eq!(decode_nonce(&nonce_b64(&n)).unwrap(), n);
    }

    #[test]
    fn pairing_spec_mac_vector() {
        let k = hex::decode("eb63cff233223cddd4651afe2f877b33f4c918c867c5b9d2ad5cf0de06cf6ccc")
            .unwrap();
        let n = counting();
        assert_eq!(
            hex::encode(compute_mac(&k, &n)),
            "7dfee8173b2280105688b36c9d53f37e1ac250ad17962589d4ef15d1159a1fa1"
        );
        assert_eq!(
            mac_b64(&k, &n),
            "ff7oFzsigBBWiLNsnVPzfhrCUK0XliWJ1O8V0RWaH6E="
        );
        verify_mac(&k, &n, "ff7oFzsigBBWiLNsnVPzfhrCUK0XliWJ1O8V0RWaH6E=").unwrap();
    }

    #[test]
    fn verification_failures_in_order() {
        let s = [7u8; 32];
        let n = new_nonce();
        let good = mac_b64(&s, &n);
        assert_eq!(verify_mac(&s, &n, ""), Err(AuthError::Empty));
        assert!(matches!(
            verify_mac(&s, &n, &"A".repeat(129)),
            Err(AuthError::TooLong { len: 129, .. })
        ));
        // 128 chars is within the bound, then fails as a wrong-length MAC.
        assert_eq!(
            verify_mac(&s, &n, &"A".repeat(128)),
            Err(AuthError::Mismatch)
        );
        // Unpadded, URL-safe, and non-canonical trailing bits are all rejected.
        assert_eq!(
            verify_mac(&s, &n, good.trim_end_matches('=')),
            Err(AuthError::BadBase64("mac"))
        );
        assert_eq!(verify_mac(&s, &n, "_-8="), Err(AuthError::BadBase64("mac")));
        assert_eq!(verify_mac(&s, &n, "AB=="), Err(AuthError::BadBase64("mac")));
        assert_eq!(verify_mac(&s, &[], &good), Err(AuthError::NoNonce));
        assert_eq!(verify_mac(&[8u8; 32], &n, &good), Err(AuthError::Mismatch));
        let mut other = n;
        other[31] ^= 1;
        assert_eq!(verify_mac(&s, &other, &good), Err(AuthError::Mismatch));
        verify_mac(&s, &n, &good).unwrap();
    }

    #[test]
    fn nonce_checks() {
        assert_ne!(new_nonce(), new_nonce());
        assert_eq!(try_new_nonce().unwrap().len(), 32);
        assert!(matches!(
            decode_nonce(&"A".repeat(129)),
            Err(AuthError::TooLong { .. })
        ));
        assert_eq!(decode_nonce("AAAA"), Err(AuthError::BadNonceLength(3)));
        assert_eq!(
            decode_nonce("not base64!"),
            Err(AuthError::BadBase64("nonce"))
        );
    }
}
