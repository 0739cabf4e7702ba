//! Channel authentication v2 (spec §12): the host's and the phone's random
//! nonces, the two DTLS certificate fingerprints, and the two HMAC-SHA256 proofs
//! over them with the pairing key, checked in constant time.
//!
//! Binding both fingerprints into both MACs is what defeats a signaling server
//! that rewrites SDP to sit in the middle of DTLS: each end sees the relay's
//! certificate instead of the other end's, so the transcripts differ and no MAC
//! computed on one side verifies on the other. The host proves too, so a fake
//! host is refused before the phone sends a single byte.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::limits::{MAX_MAC_LEN, MAX_NONCE_LEN, NONCE_LEN};

/// Label of the phone's MAC (§12 step 2).
pub const MOBILE_MAC_LABEL: &[u8] = b"muxlink-auth-v2 mobile";
/// Label of the host's MAC in `auth_ok` (§12 step 4).
pub const HOST_MAC_LABEL: &[u8] = b"muxlink-auth-v2 host";
/// Bytes of a DTLS certificate fingerprint (SHA-256).
pub const FINGERPRINT_LEN: usize = 32;

/// Why channel authentication failed. Hosts close the peer on any of these
/// without saying which (§12 step 3); phones refuse the connection. The
/// variants exist for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A `nonce` or `mac` string is absent or empty.
    #[error("{0} is missing")]
    Empty(&'static str),
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
    /// The decoded value is not 32 bytes.
    #[error("{what} decodes to {len} bytes, not 32")]
    BadLength {
        /// "mac" or "nonce".
        what: &'static str,
        /// Decoded length.
        len: usize,
    },
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

/// What both proofs cover: `tail = N_H ‖ N_M ‖ FP_H ‖ FP_M` (128 bytes).
///
/// Each side fills in its OWN fingerprint from its own certificate and the
/// other's from the certificate the peer actually presented in the DTLS
/// handshake, never from SDP text. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthTranscript {
    /// `N_H`: the host's challenge nonce.
    pub host_nonce: [u8; NONCE_LEN],
    /// `N_M`: the phone's nonce from `auth_response`.
    pub mobile_nonce: [u8; NONCE_LEN],
    /// `FP_H`: SHA-256 of the host's DTLS certificate (DER).
    pub host_fingerprint: [u8; FINGERPRINT_LEN],
    /// `FP_M`: SHA-256 of the phone's DTLS certificate (DER).
    pub mobile_fingerprint: [u8; FINGERPRINT_LEN],
}

impl std::fmt::Debug for AuthTranscript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Fingerprints are public; nonces stay out of logs.
        f.debug_struct("AuthTranscript")
            .field("host_fingerprint", &hex::encode(self.host_fingerprint))
            .field("mobile_fingerprint", &hex::encode(self.mobile_fingerprint))
            .finish_non_exhaustive()
    }
}

impl Drop for AuthTranscript {
    fn drop(&mut self) {
        self.host_nonce.zeroize();
        self.mobile_nonce.zeroize();
    }
}

impl AuthTranscript {
    fn mac(&self, key: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(label);
        mac.update(&self.host_nonce);
        mac.update(&self.mobile_nonce);
        mac.update(&self.host_fingerprint);
        mac.update(&self.mobile_fingerprint);
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The phone's proof: `HMAC-SHA256(K, "muxlink-auth-v2 mobile" ‖ tail)`.
    pub fn mobile_mac(&self, key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        self.mac(key, MOBILE_MAC_LABEL)
    }

    /// The host's proof: `HMAC-SHA256(K, "muxlink-auth-v2 host" ‖ tail)`.
    pub fn host_mac(&self, key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        self.mac(key, HOST_MAC_LABEL)
    }

    /// The `auth_response.mac` string (standard padded base64).
    pub fn mobile_mac_b64(&self, key: &[u8; 32]) -> String {
        STANDARD.encode(self.mobile_mac(key).as_slice())
    }

    /// The `auth_ok.mac` string (standard padded base64).
    pub fn host_mac_b64(&self, key: &[u8; 32]) -> String {
        STANDARD.encode(self.host_mac(key).as_slice())
    }

    /// Host side (§12 step 3): checks `auth_response.mac` in constant time.
    pub fn verify_mobile_mac(&self, key: &[u8; 32], mac_b64: &str) -> Result<(), AuthError> {
        verify(&self.mobile_mac(key), mac_b64)
    }

    /// Phone side (§12 step 5): checks `auth_ok.mac` in constant time.
    pub fn verify_host_mac(&self, key: &[u8; 32], mac_b64: &str) -> Result<(), AuthError> {
        verify(&self.host_mac(key), mac_b64)
    }
}

fn verify(expected: &[u8; 32], mac_b64: &str) -> Result<(), AuthError> {
    let given = decode_32("mac", mac_b64, MAX_MAC_LEN)?;
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Checks one `nonce`/`mac` string in the order of §12 step 3: present,
/// at most `max` chars, strict standard base64, 32 bytes.
fn decode_32(what: &'static str, b64: &str, max: usize) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    if b64.is_empty() {
        return Err(AuthError::Empty(what));
    }
    let len = b64.chars().count();
    if len > max {
        return Err(AuthError::TooLong { what, len, max });
    }
    let raw = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| AuthError::BadBase64(what))?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if raw.len() != 32 {
        return Err(AuthError::BadLength {
            what,
            len: raw.len(),
        });
    }
    out.copy_from_slice(&raw);
    Ok(out)
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

/// Like [`new_nonce`] but reports a failing random source (the host closes
/// the peer on it instead of panicking).
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

/// Checks a `nonce` string (`auth_challenge.nonce` on the phone,
/// `auth_response.nonce` on the host): present, ≤ 128 chars, standard base64,
/// 32 bytes. Returns the raw nonce.
pub fn decode_nonce(nonce_b64: &str) -> Result<[u8; NONCE_LEN], AuthError> {
    decode_32("nonce", nonce_b64, MAX_NONCE_LEN).map(|n| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(from: u8) -> [u8; 32] {
        std::array::from_fn(|i| from + i as u8)
    }

    fn v11() -> (AuthTranscript, [u8; 32]) {
        let k: [u8; 32] =
            hex::decode("c568e156200eee0049bddd189ddce76e5d120eb3d6957cb6fc79c08902582ed9")
                .unwrap()
                .try_into()
                .unwrap();
        let t = AuthTranscript {
            host_nonce: bytes(0x00),
            mobile_nonce: bytes(0x20),
            host_fingerprint: bytes(0x40),
            mobile_fingerprint: bytes(0x60),
        };
        (t, k)
    }

    #[test]
    fn spec_v11_vector() {
        let (t, k) = v11();
        assert_eq!(
            hex::encode(*t.mobile_mac(&k)),
            "2a594503af726a4d14e01651b298ea9ba21bb2292bedea8bf0d3e51c328cabc6"
        );
        assert_eq!(
            t.mobile_mac_b64(&k),
            "KllFA69yak0U4BZRspjqm6Ibsikr7eqL8NPlHDKMq8Y="
        );
        assert_eq!(
            hex::encode(*t.host_mac(&k)),
            "682e0f8afc60d0554577b8480bf80e99b6fd87812dc654b44336f42614441956"
        );
        assert_eq!(
            t.host_mac_b64(&k),
            "aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVY="
        );
        t.verify_mobile_mac(&k, "KllFA69yak0U4BZRspjqm6Ibsikr7eqL8NPlHDKMq8Y=")
            .unwrap();
        t.verify_host_mac(&k, "aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVY=")
            .unwrap();
        // The two labels keep the proofs apart: one side's MAC never passes as the other's.
        assert_eq!(
            t.verify_host_mac(&k, &t.mobile_mac_b64(&k)),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn any_changed_transcript_value_breaks_the_mac() {
        let (t, k) = v11();
        let good = t.mobile_mac_b64(&k);
        let changes: [fn(&mut AuthTranscript); 4] = [
            |t| t.host_nonce[0] ^= 1,
            |t| t.mobile_nonce[31] ^= 1,
            |t| t.host_fingerprint[5] ^= 1,
            |t| t.mobile_fingerprint[9] ^= 1,
        ];
        for change in changes {
            let mut other = t.clone();
            change(&mut other);
            assert_eq!(other.verify_mobile_mac(&k, &good), Err(AuthError::Mismatch));
        }
        let mut wrong_key = k;
        wrong_key[0] ^= 1;
        assert_eq!(
            t.verify_mobile_mac(&wrong_key, &good),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn verification_failures_in_order() {
        let (t, k) = v11();
        let good = t.mobile_mac_b64(&k);
        assert_eq!(t.verify_mobile_mac(&k, ""), Err(AuthError::Empty("mac")));
        assert!(matches!(
            t.verify_mobile_mac(&k, &"A".repeat(129)),
            Err(AuthError::TooLong { len: 129, .. })
        ));
        assert!(matches!(
            t.verify_mobile_mac(&k, &"A".repeat(128)),
            Err(AuthError::BadLength {
                what: "mac",
                len: 96
            })
        ));
        // Unpadded, URL-safe, and non-canonical trailing bits are all rejected.
        assert_eq!(
            t.verify_mobile_mac(&k, good.trim_end_matches('=')),
            Err(AuthError::BadBase64("mac"))
        );
        assert_eq!(
            t.verify_mobile_mac(&k, "_-8="),
            Err(AuthError::BadBase64("mac"))
        );
        assert_eq!(
            t.verify_mobile_mac(&k, "AB=="),
            Err(AuthError::BadBase64("mac"))
        );
        t.verify_mobile_mac(&k, &good).unwrap();
    }

    #[test]
    fn nonce_checks() {
        assert_ne!(new_nonce(), new_nonce());
        assert_eq!(try_new_nonce().unwrap().len(), 32);
        assert_eq!(decode_nonce(""), Err(AuthError::Empty("nonce")));
        assert!(matches!(
            decode_nonce(&"A".repeat(129)),
            Err(AuthError::TooLong { .. })
        ));
        assert_eq!(
            decode_nonce("AAAA"),
            Err(AuthError::BadLength {
                what: "nonce",
                len: 3
            })
        );
        assert_eq!(
            decode_nonce("not base64!"),
            Err(AuthError::BadBase64("nonce"))
        );
        let n = bytes(0);
        assert_eq!(decode_nonce(&nonce_b64(&n)).unwrap(), n);
    }
}
