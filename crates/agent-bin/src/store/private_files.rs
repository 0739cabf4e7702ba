//! The two rules every file muxlink writes follows: its directory is ours
//! and 0700 (a looser one we own is tightened with a warning, one owned by
//! another user is refused), and the file is 0600 and replaced atomically
//! (an unpredictable `O_EXCL` temporary in the same directory, renamed over
//! the target). Also the sweep that tightens muxlink's files left looser.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::{PAIRED_FILE, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE};
use crate::error::CliError;

/// What [`check_private_dir`] decided about an existing directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirVerdict {
    /// Ours and 0700 (or tighter).
    Private,
    /// Ours but group/other bits set (the current mode): tighten to 0700.
    Loose(u32),
    /// Owned by another user (that uid): refuse.
    Foreign(u32),
}

/// The rule for an existing directory with owner `uid` and `mode`, for a
/// process whose effective uid is `me`.
pub fn check_private_dir(uid: u32, mode: u32, me: u32) -> DirVerdict {
    if uid != me {
        DirVerdict::Foreign(uid)
    } else if mode & 0o077 != 0 {
        DirVerdict::Loose(mode & 0o7777)
    } else {
        DirVerdict::Private
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Makes `dir` a private directory of this user: creates it (and parents)
/// with mode 0700 when missing; tightens an existing one we own that is
/// looser than 0700, with a warning; refuses one owned by another user.
pub fn ensure_private_dir(dir: &Path) -> Result<(), CliError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CliError::io("create", dir, &e));
        }
        Err(e) => return Err(CliError::io("read", dir, &e)),
    };
    if !meta.is_dir() {
        return Err(CliError::Other(format!(
            "{} is not a directory; muxlink keeps its files there",
            dir.display()
        )));
    }
    match check_private_dir(meta.uid(), meta.mode(), effective_uid()) {
        DirVerdict::Private => Ok(()),
        DirVerdict::Loose(mode) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| CliError::io("change the mode of", dir, &e))?;
            tracing::warn!(
                "{} was mode {mode:04o}, readable by others; tightened to 0700",
                dir.display()
            );
            Ok(())
        }
        DirVerdict::Foreign(owner) => Err(CliError::Other(format!(
            "refusing to use {}: it belongs to uid {owner}, not to this user (uid {}); \
             use a directory of your own (MUXLINK_HOME, --data-dir or --config-dir)",
            dir.display(),
            effective_uid()
        ))),
    }
}

/// True for the names of files muxlink keeps in its config and data dirs.
pub fn is_our_file(name: &str) -> bool {
    matches!(
        name,
        crate::config::CONFIG_FILE
            | PRIVATE_KEY_FILE
            | PUBLIC_KEY_FILE
            | PAIRED_FILE
            | "agent.pid"
            | "agent-status.json"
            | "agent.log"
    ) || name.starts_with("shared-secret-")
}

/// Tightens to 0600, with a warning each, the files of ours in `dir` (see
/// [`is_our_file`]) that an older version or a hand edit left readable by
/// others. Only regular files we own are touched, through a descriptor opened
/// with `O_NOFOLLOW`; a missing `dir` is fine.
pub fn tighten_our_files(dir: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CliError::io("read", dir, &e)),
    };
    let me = effective_uid();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !is_our_file(&name.to_string_lossy()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let mode = meta.mode() & 0o7777;
        if !meta.file_type().is_file() || meta.uid() != me || mode & 0o077 == 0 {
            continue;
        }
        let path = entry.path();
        let tightened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)));
        tightened.map_err(|e| CliError::io("change the mode of", &path, &e))?;
        tracing::warn!("{} was mode {mode:04o}; tightened to 0600", path.display());
    }
    Ok(())
}

/// Makes the config and data dirs private ([`ensure_private_dir`]) and
/// tightens our files in them ([`tighten_our_files`]).
pub fn secure_dirs(paths: &crate::config::Paths) -> Result<(), CliError> {
    for dir in [&paths.config_dir, &paths.data_dir] {
        ensure_private_dir(dir)?;
        tighten_our_files(dir)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600, atomically: a [`tempfile`] with
/// an unpredictable name in the same directory (created with `O_EXCL`, so no
/// symlink is followed), synced, then renamed over `path` (which replaces a
/// symlink there instead of writing through it). The caller has made the
/// directory private ([`ensure_private_dir`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| CliError::io("create a temporary file in", dir, &e))?;
    // On any error below, dropping `tmp` removes the temporary file.
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| CliError::io("write", path, &e))?;
    tmp.persist(path)
        .map_err(|e| CliError::io("write", path, &e.error))?;
    // Make the rename itself durable (best effort: some filesystems refuse).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
