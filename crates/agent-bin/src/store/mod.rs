//! The host's files in the data dir (pairing.md §4): the Ed25519 identity, the
//! file secret store (`shared-secret-<deviceId>`) and `paired_devices.json`,
//! and the two rules every file muxlink writes follows:
//! - its directory is ours and 0700 ([`ensure_private_dir`]: a looser one we
//!   own is tightened with a warning, one owned by another user is refused);
//! - the file is 0600 and replaced atomically ([`write_private`]: a
//!   `tempfile` with an unpredictable name in the same directory, created
//!   with `O_EXCL`, then renamed over the target, so a symlink planted at
//!   either name is never followed).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::CliError;

mod private_files;
pub use private_files::{
    DirVerdict, check_private_dir, ensure_private_dir, is_our_file, secure_dirs, tighten_our_files,
    write_private,
};

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
        // A plain 0600 file with the right bytes is kept; anything else (a
        // symlink, a looser mode, other bytes) is replaced, never chmod'ed
        // through a link.
        let intact = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.file_type().is_file() && m.permissions().mode() & 0o077 == 0)
            && std::fs::read(&path).is_ok_and(|b| b == public);
        if intact {
            return Ok(());
        }
        self.ensure_dir()?;
        write_private(&path, &public)
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
            serde_json::from_str(&text).map_err(|e| CliError::CorruptRecord {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if list.len() > 1 {
            return Err(CliError::CorruptRecord {
                path,
                reason: "more than one paired device".into(),
            });
        }
        match list.into_iter().next() {
            Some(d) if !valid_device_id(&d.device_id) => Err(CliError::CorruptRecord {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn write_private_is_0600_whatever_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
    }

    /// The old writer used `.<name>.tmp<pid>` and opened it without `O_EXCL`:
    /// a symlink planted there made it write the secret through the link.
    #[test]
    fn symlinks_at_the_target_or_a_guessable_temp_name_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let target = dir.path().join(PAIRED_FILE);
        let guess = dir
            .path()
            .join(format!(".{PAIRED_FILE}.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &guess).unwrap();
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_private(&target, b"[]").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(mode(&victim), 0o644);
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file(), "the link was replaced");
        assert_eq!(mode(&target), 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"[]");
    }

    #[test]
    fn public_key_symlink_is_replaced_not_chmod_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let key = store.create_identity().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, key.verifying_key().to_bytes()).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pubf = dir.path().join(PUBLIC_KEY_FILE);
        std::fs::remove_file(&pubf).unwrap();
        std::os::unix::fs::symlink(&victim, &pubf).unwrap();
        store.load_identity().unwrap();
        assert_eq!(mode(&victim), 0o644, "not chmod'ed through the link");
        assert!(
            std::fs::symlink_metadata(&pubf)
                .unwrap()
                .file_type()
                .is_file()
        );
        assert_eq!(mode(&pubf), 0o600);
    }

    #[test]
    fn dir_rule() {
        assert_eq!(check_private_dir(1000, 0o40700, 1000), DirVerdict::Private);
        assert_eq!(check_private_dir(1000, 0o40500, 1000), DirVerdict::Private);
        assert_eq!(
            check_private_dir(1000, 0o40755, 1000),
            DirVerdict::Loose(0o755)
        );
        assert_eq!(
            check_private_dir(1000, 0o40710, 1000),
            DirVerdict::Loose(0o710)
        );
        assert_eq!(check_private_dir(0, 0o40700, 1000), DirVerdict::Foreign(0));
        assert_eq!(
            check_private_dir(1001, 0o40777, 1000),
            DirVerdict::Foreign(1001)
        );
    }

    #[test]
    fn loose_dir_is_tightened_and_missing_dirs_are_created_0700() {
        let dir = tempfile::tempdir().unwrap();
        let loose = dir.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&loose).unwrap();
        assert_eq!(mode(&loose), 0o700);
        let deep = dir.path().join("a/b/c");
        ensure_private_dir(&deep).unwrap();
        assert_eq!(mode(&deep), 0o700);
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(ensure_private_dir(&file).is_err());
    }

    #[test]
    fn loose_files_of_ours_are_tightened_others_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for name in [
            PAIRED_FILE,
            "config.toml",
            "shared-secret-x",
            "agent.log",
            "notes.txt",
        ] {
            std::fs::write(p.join(name), b"x").unwrap();
            std::fs::set_permissions(p.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let victim = tempfile::NamedTempFile::new().unwrap();
        std::fs::set_permissions(victim.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(victim.path(), p.join(PUBLIC_KEY_FILE)).unwrap();
        tighten_our_files(p).unwrap();
        for name in [PAIRED_FILE, "config.toml", "shared-secret-x", "agent.log"] {
            assert_eq!(mode(&p.join(name)), 0o600, "{name}");
        }
        assert_eq!(mode(&p.join("notes.txt")), 0o644, "not ours");
        assert_eq!(mode(victim.path()), 0o644, "link not followed");
        assert!(tighten_our_files(&p.join("missing")).is_ok());
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
