//! The host's files in the data dir (pairing.md §4): the Ed25519 identity, the
//! file secret store (`shared-secret-<deviceId>`) and `paired_devices.json`.
//! Every file is mode 0600 and written via temp file + rename.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::CliError;

/// Secret-store key of the identity private key (64 bytes: seed ‖ public).
pub const PRIVATE_KEY_FILE: &str = "ed25519-private-key";
/// Identity public key (32 raw bytes).
pub const PUBLIC_KEY_FILE: &str = "ed25519.pub";
/// The paired device record list.
pub const PAIRED_FILE: &str = "paired_devices.json";
/// Allowed-id sentinel when nothing is paired.
pub const UNPAIRED_SENTINEL: &str = "!unpaired";
/// Allowed-id sentinel when the record cannot be read.
pub const LOAD_ERROR_SENTINEL: &str = "!invalid-load-error";

/// Device id: lowercase hex of the first 16 bytes of SHA-256(public key).
pub fn device_id(public_key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_key)[..16])
}

/// True for a well-formed device id (32 lowercase hex chars).
pub fn valid_device_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One entry of `paired_devices.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    /// The phone's device id.
    pub device_id: String,
    /// The phone's name, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RFC 3339 time of pairing.
    pub paired_at: String,
    /// Unix seconds of the last connection; omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_seen: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl PairedDevice {
    /// A record for a pairing made now.
    pub fn new(device_id: &str, name: Option<String>) -> Self {
        PairedDevice {
            device_id: device_id.to_string(),
            name: name.filter(|n| !n.is_empty()),
            paired_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            last_seen: 0,
        }
    }
}

/// The data dir seen as a store.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// A store over `dir` (not created until something is written).
    pub fn new(dir: &Path) -> Self {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the dir (0700) if missing.
    pub fn ensure_dir(&self) -> Result<(), CliError> {
        ensure_private_dir(&self.dir)
    }

    /// True when an identity key file exists (valid or not).
    pub fn has_identity(&self) -> bool {
        self.path(PRIVATE_KEY_FILE).exists()
    }

    /// Loads the identity; fails with `NotInitialised` or `CorruptFile`.
    /// Repairs `ed25519.pub` (content and mode) when it is missing or looser than 0600.
    pub fn load_identity(&self) -> Result<SigningKey, CliError> {
        let path = self.path(PRIVATE_KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::NotInitialised {
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(CliError::io("read", &path, &e)),
        };
        let arr: &[u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CliError::CorruptFile {
                path: path.clone(),
                reason: format!("expected 64 bytes, found {}", bytes.len()),
            })?;
        let key = SigningKey::from_keypair_bytes(arr).map_err(|_| CliError::CorruptFile {
            path: path.clone(),
            reason: "the public half does not match the private key".into(),
        })?;
        self.repair_public_key(&key)?;
        Ok(key)
    }

    fn repair_public_key(&self, key: &SigningKey) -> Result<(), CliError> {
        let path = self.path(PUBLIC_KEY_FILE);
        let public = key.verifying_key().to_bytes();
        match std::fs::read(&path) {
            Ok(b) if b == public => {
                let meta = std::fs::metadata(&path).map_err(|e| CliError::io("read", &path, &e))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| CliError::io("chmod", &path, &e))?;
                }
                Ok(())
            }
            _ => write_private(&path, &public),
        }
    }

    /// Creates a fresh identity. Refuses to overwrite an existing key file.
    pub fn create_identity(&self) -> Result<SigningKey, CliError> {
        self.ensure_dir()?;
        let path = self.path(PRIVATE_KEY_FILE);
        if path.exists() {
            return Err(CliError::Other(format!(
                "{} already exists; not replacing it",
                path.display()
            )));
        }
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let bytes = Zeroizing::new(key.to_keypair_bytes());
        write_private(&path, bytes.as_slice())?;
        write_private(&self.path(PUBLIC_KEY_FILE), &key.verifying_key().to_bytes())?;
        Ok(key)
    }

    fn secret_name(device_id: &str) -> String {
        format!("shared-secret-{device_id}")
    }

    /// Stores the pairing secret for `device_id` (raw 32 bytes, 0600).
    pub fn store_secret(&self, device_id: &str, secret: &[u8; 32]) -> Result<(), CliError> {
        if !valid_device_id(device_id) {
            return Err(CliError::Other(format!("invalid device id {device_id:?}")));
        }
        self.ensure_dir()?;
        write_private(&self.path(&Self::secret_name(device_id)), secret)
    }

    /// Loads the pairing secret for `device_id`; None when absent, malformed or all zero.
    pub fn load_secret(&self, device_id: &str) -> Option<[u8; 32]> {
        if !valid_device_id(device_id) {
            return None;
        }
        let bytes = Zeroizing::new(std::fs::read(self.path(&Self::secret_name(device_id))).ok()?);
        let arr: [u8; 32] = bytes.as_slice().try_into().ok()?;
        (arr != [0u8; 32]).then_some(arr)
    }

    /// Deletes the secret for `device_id` (absent is fine).
    pub fn delete_secret(&self, device_id: &str) -> Result<(), CliError> {
        if !valid_device_id(device_id) {
            return Ok(());
        }
        let path = self.path(&Self::secret_name(device_id));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CliError::io("delete", &path, &e)),
        }
    }

    /// Reads `paired_devices.json`: Ok(None) when absent or empty.
    pub fn load_paired(&self) -> Result<Option<PairedDevice>, CliError> {
        let path = self.path(PAIRED_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CliError::io("read", &path, &e)),
        };
        let list: Vec<PairedDevice> =
            serde_json::from_str(&text).map_err(|e| CliError::CorruptFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if list.len() > 1 {
            return Err(CliError::CorruptFile {
                path,
                reason: "more than one paired device".into(),
            });
        }
        match list.into_iter().next() {
            Some(d) if !valid_device_id(&d.device_id) => Err(CliError::CorruptFile {
                path,
                reason: format!("bad device id {:?}", d.device_id),
            }),
            other => Ok(other),
        }
    }

    /// Writes `paired_devices.json` with zero or one element.
    pub fn save_paired(&self, device: Option<&PairedDevice>) -> Result<(), CliError> {
        self.ensure_dir()?;
        let list: Vec<&PairedDevice> = device.into_iter().collect();
        let json = serde_json::to_vec_pretty(&list)
            .map_err(|e| CliError::Other(format!("cannot encode the pairing record: {e}")))?;
        write_private(&self.path(PAIRED_FILE), &json)
    }

    /// The allowed device id the agent enforces: record id, or a sentinel.
    pub fn allowed_device_id(&self) -> String {
        match self.load_paired() {
            Ok(Some(d)) => d.device_id,
            Ok(None) => UNPAIRED_SENTINEL.to_string(),
            Err(_) => LOAD_ERROR_SENTINEL.to_string(),
        }
    }
}

/// Creates `dir` (and parents) with mode 0700 for the leaf.
pub fn ensure_private_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CliError::io("create", dir, &e))
}

use std::os::unix::fs::DirBuilderExt;

/// Writes `bytes` to `path` with mode 0600 via a temp file in the same dir and rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above applies only to new files; make sure of it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::io("write", path, &e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_vector() {
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(
            device_id(&key.verifying_key().to_bytes()),
            "21fe31dfa154a261626bf854046fd227"
        );
    }

    #[test]
    fn identity_roundtrip_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("data"));
        assert!(matches!(
            store.load_identity(),
            Err(CliError::NotInitialised { .. })
        ));
        let key = store.create_identity().unwrap();
        assert!(store.create_identity().is_err());
        let again = store.load_identity().unwrap();
        assert_eq!(key.to_bytes(), again.to_bytes());
        for f in [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE] {
            let mode = std::fs::metadata(store.dir().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // A looser public key file is tightened on load.
        let pubf = store.dir().join(PUBLIC_KEY_FILE);
        std::fs::set_permissions(&pubf, std::fs::Permissions::from_mode(0o644)).unwrap();
        store.load_identity().unwrap();
        let mode = std::fs::metadata(&pubf).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_identity_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        std::fs::write(dir.path().join(PRIVATE_KEY_FILE), b"garbage").unwrap();
        let err = store.load_identity().unwrap_err();
        assert!(matches!(err, CliError::CorruptFile { .. }), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join(PRIVATE_KEY_FILE)).unwrap(),
            b"garbage"
        );
    }

    #[test]
    fn pairing_record_and_sentinels() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert_eq!(store.allowed_device_id(), UNPAIRED_SENTINEL);
        let id = "0123456789abcdef0123456789abcdef";
        let rec = PairedDevice::new(id, Some("phone".into()));
        store.save_paired(Some(&rec)).unwrap();
        store.store_secret(id, &[7u8; 32]).unwrap();
        assert_eq!(store.load_paired().unwrap(), Some(rec));
        assert_eq!(store.allowed_device_id(), id);
        assert_eq!(store.load_secret(id), Some([7u8; 32]));
        let text = std::fs::read_to_string(dir.path().join(PAIRED_FILE)).unwrap();
        assert!(text.contains("\"deviceId\"") && text.contains("\"pairedAt\""));
        assert!(!text.contains("lastSeen"));
        store.delete_secret(id).unwrap();
        store.save_paired(None).unwrap();
        assert_eq!(store.load_secret(id), None);
        assert_eq!(store.allowed_device_id(), UNPAIRED_SENTINEL);
        std::fs::write(dir.path().join(PAIRED_FILE), "{not json").unwrap();
        assert_eq!(store.allowed_device_id(), LOAD_ERROR_SENTINEL);
    }
}
