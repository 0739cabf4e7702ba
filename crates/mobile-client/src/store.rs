//! The config directory: identity key and pairing record, both 0600.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::ClientError;
use crate::identity::{PhoneIdentity, load_or_create, write_private};

/// What pairing leaves behind: who the host is, where to reach it, and the
/// 32-byte pairing secret `K` for channel authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingRecord {
    /// The host's device id.
    pub host_device_id: String,
    /// The host's name (may be empty).
    pub host_name: String,
    /// Signaling server URL without API version.
    pub server_url: String,
    /// Shared secret from X25519 + HKDF.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for PairingRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingRecord")
            .field("host_device_id", &self.host_device_id)
            .field("host_name", &self.host_name)
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordFile {
    host_device_id: String,
    #[serde(default)]
    host_name: String,
    server_url: String,
    secret: String,
}

/// A config directory (`identity.key`, `pairing.json`).
#[derive(Debug, Clone)]
pub struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    /// Uses `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ConfigDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Loads or creates the identity.
    pub fn identity(&self) -> Result<PhoneIdentity, ClientError> {
        load_or_create(&self.dir.join("identity.key"))
    }

    /// The stored pairing, if any.
    pub fn pairing(&self) -> Result<Option<PairingRecord>, ClientError> {
        let text = match std::fs::read_to_string(self.dir.join("pairing.json")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut file: RecordFile = serde_json::from_str(&text)
            .map_err(|e| ClientError::Store(format!("pairing.json: {e}")))?;
        let mut raw = STANDARD
            .decode(&file.secret)
            .map_err(|_| ClientError::Store("pairing secret is not base64".into()))?;
        file.secret.zeroize();
        let secret: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Store("pairing secret is not 32 bytes".into()))?;
        raw.zeroize();
        Ok(Some(PairingRecord {
            host_device_id: file.host_device_id,
            host_name: file.host_name,
            server_url: file.server_url,
            secret,
        }))
    }

    /// Stores (replaces) the pairing.
    pub fn save_pairing(&self, record: &PairingRecord) -> Result<(), ClientError> {
        let mut file = RecordFile {
            host_device_id: record.host_device_id.clone(),
            host_name: record.host_name.clone(),
            server_url: record.server_url.clone(),
            secret: STANDARD.encode(record.secret),
        };
        let json = serde_json::to_string_pretty(&file)
            .map_err(|e| ClientError::Store(format!("pairing.json: {e}")));
        file.secret.zeroize();
        let mut json = json?;
        let r = write_private(&self.dir.join("pairing.json"), json.as_bytes());
        json.zeroize();
        r
    }

    /// Deletes the pairing (no error if there is none).
    pub fn remove_pairing(&self) -> Result<(), ClientError> {
        match std::fs::remove_file(self.dir.join("pairing.json")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pairing_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConfigDir::new(dir.path().join("phone"));
        assert!(cfg.pairing().unwrap().is_none());
        let rec = PairingRecord {
            host_device_id: "21fe31dfa154a261626bf854046fd227".into(),
            host_name: "desk".into(),
            server_url: "http://127.0.0.1:1".into(),
            secret: [0x42; 32],
        };
        cfg.save_pairing(&rec).unwrap();
        assert_eq!(cfg.pairing().unwrap().unwrap(), rec);
        let mode = std::fs::metadata(cfg.path().join("pairing.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!format!("{rec:?}").contains("66, 66"));
        cfg.remove_pairing().unwrap();
        assert!(cfg.pairing().unwrap().is_none());
    }
}
