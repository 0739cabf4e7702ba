//! The phone's Ed25519 identity, created once and stored 0600 in the config dir.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use zeroize::Zeroize;

use crate::error::ClientError;

/// The device identity: an Ed25519 key whose public half names the device.
#[derive(Clone)]
pub struct PhoneIdentity {
    key: SigningKey,
}

impl std::fmt::Debug for PhoneIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneIdentity")
            .field("device_id", &self.device_id())
            .finish()
    }
}

impl PhoneIdentity {
    /// A fresh random identity (not stored).
    pub fn generate() -> Self {
        PhoneIdentity {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Wraps an existing key.
    pub fn from_signing_key(key: SigningKey) -> Self {
        PhoneIdentity { key }
    }

    /// Loads the identity from `path`, or creates it (mode 0600) if the file
    /// does not exist. The file holds the 32-byte seed in standard base64.
    pub fn load_or_create(path: &Path) -> Result<Self, ClientError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate();
                let mut seed = STANDARD.encode(id.key.to_bytes());
                seed.push('\n');
                let written = write_private(path, seed.as_bytes());
                seed.zeroize();
                written?;
                Ok(id)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn parse(text: &str) -> Result<Self, ClientError> {
        let mut raw = STANDARD
            .decode(text.trim())
            .map_err(|_| ClientError::Store("identity key is not base64".into()))?;
        let seed: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Store("identity key is not 32 bytes".into()))?;
        raw.zeroize();
        Ok(PhoneIdentity {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Raw public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Public key, standard base64.
    pub fn public_key_b64(&self) -> String {
        STANDARD.encode(self.public_key())
    }

    /// The 32-hex-char device id derived from the public key.
    pub fn device_id(&self) -> String {
        signaling_proto::device_id(&self.public_key())
    }

    /// Signs `deviceId|nonce` for the challenge flow (base64 signature).
    pub fn sign_challenge(&self, nonce: &str) -> String {
        signaling_proto::sign_challenge(&self.key, &self.device_id(), nonce)
    }
}

/// Writes a file readable by its owner only, replacing it atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let a = PhoneIdentity::load_or_create(&path).unwrap();
        let b = PhoneIdentity::load_or_create(&path).unwrap();
        assert_eq!(a.device_id(), b.device_id());
        assert_eq!(a.device_id().len(), 32);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn spec_vector_device_id_and_signature() {
        let seed: [u8; 32] =
            hex_seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let id = PhoneIdentity::from_signing_key(SigningKey::from_bytes(&seed));
        assert_eq!(id.device_id(), "21fe31dfa154a261626bf854046fd227");
        assert_eq!(
            id.public_key_b64(),
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        );
        assert_eq!(
            id.sign_challenge("AAECAwQFBgcICQoLDA0ODw=="),
            "9y2DxMZTQxShSRi0Th8WAWAzmJGVXpQ1vLR3tRVLQxIK4vxXKtV9cLnXBWsa5u+7JKXfrisZ4iRosXmjQvVMDw=="
        );
    }

    fn hex_seed(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, "not base64!").unwrap();
        assert!(PhoneIdentity::load_or_create(&path).is_err());
    }
}
