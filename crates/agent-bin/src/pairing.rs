//! Pairing crypto on the host (pairing.md §2–§3): the fresh X25519 key per
//! attempt, the QR payload and the HKDF-derived shared secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::CliError;

/// HKDF salt (pairing.md §3).
const SALT: &[u8] = b"muxlink";
/// HKDF info (pairing.md §3).
const INFO: &[u8] = b"muxlink-pairing-v1";

/// A fresh X25519 keypair for one pairing attempt.
pub struct PairingKey {
    secret: StaticSecret,
    /// The public half, sent to the server and shown in the QR.
    pub public: [u8; 32],
}

impl PairingKey {
    /// Draws a new keypair from the OS CSPRNG.
    pub fn generate() -> Self {
        Self::from_secret(StaticSecret::random_from_rng(rand::rngs::OsRng))
    }

    /// Wraps a known secret (test vectors).
    pub fn from_secret(secret: StaticSecret) -> Self {
        let public = PublicKey::from(&secret).to_bytes();
        PairingKey { secret, public }
    }

    /// X25519 with the phone's key, reject an all-zero result, then HKDF-SHA256.
    pub fn derive(&self, peer_public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CliError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer_public));
        if !shared.was_contributory() {
            return Err(CliError::Other(
                "the phone sent an invalid pairing key; pair again".into(),
            ));
        }
        let hk = Hkdf::<Sha256>::new(Some(SALT), shared.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(INFO, out.as_mut_slice())
            .map_err(|_| CliError::Other("key derivation failed".into()))?;
        Ok(out)
    }
}

/// The QR payload `code|hostX25519PubB64|hostDeviceId|serverUrl` (always 4 fields).
pub fn qr_payload(code: &str, host_public: &[u8; 32], host_id: &str, server_url: &str) -> String {
    format!("{code}|{}|{host_id}|{server_url}", B64.encode(host_public))
}

/// The web client URL a phone camera opens: `<server>/#<percent-encoded payload>`.
/// The fragment never reaches the server; the page reads the payload from it.
pub fn web_url(server_url: &str, payload: &str) -> String {
    let mut out = format!("{}/#", server_url.trim_end_matches('/'));
    for b in payload.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a standard-base64 X25519 public key.
pub fn decode_public(b64: &str) -> Option<[u8; 32]> {
    B64.decode(b64).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn web_url_percent_encodes_the_payload_into_the_fragment() {
        let p = "ABC234|hSDw+Yk/p1R=|21fe|https://s.example.net:8443";
        assert_eq!(
            super::web_url("https://s.example.net:8443/", p),
            "https://s.example.net:8443/#ABC234%7ChSDw%2BYk%2Fp1R%3D%7C21fe%7Chttps%3A%2F%2Fs.example.net%3A8443"
        );
    }

    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn spec_vector() {
        let host = PairingKey::from_secret(StaticSecret::from(hex32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        )));
        assert_eq!(
            B64.encode(host.public),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
        let mobile = decode_public("3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=").unwrap();
        let k = host.derive(&mobile).unwrap();
        assert_eq!(
            hex::encode(*k),
            "eb63cff233223cddd4651afe2f877b33f4c918c867c5b9d2ad5cf0de06cf6ccc"
        );
        assert_eq!(
            qr_payload(
                "ABC234",
                &host.public,
                "21fe31dfa154a261626bf854046fd227",
                "https://signal.example.net"
            ),
            "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net"
        );
    }

    #[test]
    fn all_zero_shared_secret_is_rejected() {
        assert!(PairingKey::generate().derive(&[0u8; 32]).is_err());
    }
}
