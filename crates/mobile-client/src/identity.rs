//! The phone's Ed25519 identity on disk: the key itself is
//! [`signaling_client::Identity`] (device id, challenge signing: the phone is a
//! signaling client too); this module only stores it 0600 in the config dir.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use zeroize::Zeroize;

use crate::error::ClientError;

/// The phone's identity: the same Ed25519 device identity as the host's.
pub type PhoneIdentity = signaling_client::Identity;

/// Loads the identity from `path`, or creates it (mode 0600) if the file
/// does not exist. The file holds the 32-byte seed in standard base64.
pub(crate) fn load_or_create(path: &Path) -> Result<PhoneIdentity, ClientError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = PhoneIdentity::generate();
            let mut seed = STANDARD.encode(id.signing_key().to_bytes());
            seed.push('\n');
            let written = write_private(path, seed.as_bytes());
            seed.zeroize();
            written?;
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}

fn parse(text: &str) -> Result<PhoneIdentity, ClientError> {
    let mut raw = STANDARD
        .decode(text.trim())
        .map_err(|_| ClientError::Store("identity key is not base64".into()))?;
    let seed: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| ClientError::Store("identity key is not 32 bytes".into()))?;
    raw.zeroize();
    Ok(PhoneIdentity::from_signing_key(SigningKey::from_bytes(
        &seed,
    )))
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
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.device_id(), b.device_id());
        assert_eq!(a.device_id().len(), 32);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// The file is the base64 seed: the spec's RFC 8032 test 1 seed names
    /// device `21fe31…` (signaling.md §10).
    #[test]
    fn stored_seed_is_the_spec_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n").unwrap();
        let id = load_or_create(&path).unwrap();
        assert_eq!(id.device_id(), "21fe31dfa154a261626bf854046fd227");
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, "not base64!").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
