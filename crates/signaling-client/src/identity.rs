//! The device's Ed25519 identity: key wrapper with the device id, the wire
//! form of the public key and challenge signing (signaling.md §2–§3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;

/// A device's Ed25519 identity key.
///
/// Cloning copies the private key; `Debug` prints only the device id.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    device_id: String,
}

impl Identity {
    /// A fresh random identity (from the OS CSPRNG).
    pub fn generate() -> Identity {
        Identity::from_signing_key(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Wraps an existing key (as loaded from the key file).
    pub fn from_signing_key(key: SigningKey) -> Identity {
        let device_id = signaling_proto::device_id(&key.verifying_key().to_bytes());
        Identity { key, device_id }
    }

    /// Lowercase hex of the first 16 bytes of SHA-256(public key): 32 chars.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as it travels on the wire: standard base64, 44 chars.
    pub fn public_key_b64(&self) -> String {
        STANDARD.encode(self.public_key())
    }

    /// Signs `deviceId|nonce` for the token or pairing flow; standard base64.
    pub fn sign_challenge(&self, nonce: &str) -> String {
        signaling_proto::sign_challenge(&self.key, &self.device_id, nonce)
    }

    /// The wrapped key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec signaling.md §10 vectors (RFC 8032 test 1 seed).
    #[test]
    fn spec_vectors() {
        let seed: [u8; 32] =
            hex_seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let id = Identity::from_signing_key(SigningKey::from_bytes(&seed));
        assert_eq!(id.device_id(), "21fe31dfa154a261626bf854046fd227");
        assert_eq!(
            id.public_key_b64(),
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        );
        assert_eq!(
            id.sign_challenge("AAECAwQFBgcICQoLDA0ODw=="),
            "9y2DxMZTQxShSRi0Th8WAWAzmJGVXpQ1vLR3tRVLQxIK4vxXKtV9cLnXBWsa5u+7JKXfrisZ4iRosXmjQvVMDw=="
        );
        assert!(!format!("{id:?}").contains("key"));
    }

    #[test]
    fn generated_identities_differ() {
        let (a, b) = (Identity::generate(), Identity::generate());
        assert_ne!(a.device_id(), b.device_id());
        assert_eq!(a.device_id().len(), 32);
    }

    fn hex_seed(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
