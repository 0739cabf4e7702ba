//! The private FIFO directories of pane pipes (`$TMPDIR/muxlink-<pid>-<n>-<hex>`),
//! the process-wide list of the ones live [`crate::PaneOutput`]s hold, and
//! the liveness test of a directory's owner that decides whether a pipe left
//! behind by a killed agent may be replaced.
//!
//! A directory's name is also the pipe's marker: the bridge stores it in the
//! pane option [`MARKER_OPTION`] in the command line that starts the pipe, so
//! a later agent can tell its own kind of pipe (and whose it was) from a pipe
//! anyone else started.
//!
//! The directory also holds the socket a pipe helper hands tmux's pipe to
//! (see `hand_off`), and receives the attach snapshot: tmux's `save-buffer`
//! writes the screen capture to [`FifoDir::capture_file`], so pane content
//! reaches the bridge through a file only the agent's uid can reach, never
//! through the control client's line protocol (see `snapshot`).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{BridgeError, Result};

/// Pane user option naming the FIFO directory of the bridge pipe installed
/// on the pane; unset when the pane has no pipe of ours.
pub(crate) const MARKER_OPTION: &str = "@muxlink-pipe";

/// Prefix of every FIFO directory name.
const PREFIX: &str = "muxlink-";

/// Name of the FIFO inside a directory.
const FIFO_NAME: &str = "out";

/// Name of the screen capture file inside a directory.
const CAPTURE_NAME: &str = "screen";

/// Name of the socket the pipe helper hands tmux's pipe to (see `hand_off`).
const HAND_OFF_NAME: &str = "hand";

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Markers of the pipes that live `PaneOutput`s of this process hold. A
/// marker naming this process but missing here belongs to a pipe that was
/// never cleaned up (a start that timed out after tmux ran it).
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn live() -> MutexGuard<'static, BTreeSet<String>> {
    // A plain set; a panic elsewhere leaves it usable.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A FIFO directory held by this process; removed (with its FIFO and
/// capture file) and dropped from the live list on drop.
#[derive(Debug)]
pub(crate) struct FifoDir {
    dir: PathBuf,
    fifo: PathBuf,
    marker: String,
}

impl FifoDir {
    /// A new private directory (mode 0700) under the temp dir holding one
    /// FIFO (mode 0600), registered as live.
    pub(crate) fn create() -> Result<FifoDir> {
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
            let marker = format!("{PREFIX}{}-{n}-{nanos:x}", std::process::id());
            let dir = base.join(&marker);
            // `mkdir` fails on an existing path (no symlink following), so the
            // directory is ours alone.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let fifo = dir.join(FIFO_NAME);
                    if let Err(e) = nix::unistd::mkfifo(
                        &fifo,
                        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
                    ) {
                        let _ = std::fs::remove_dir(&dir);
                        return Err(std::io::Error::from(e).into());
                    }
                    live().insert(marker.clone());
                    return Ok(FifoDir { dir, fifo, marker });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BridgeError::Io(std::io::Error::new(
            ErrorKind::AlreadyExists,
            "no free temporary directory name",
        )))
    }

    /// The FIFO's path.
    pub(crate) fn fifo(&self) -> &Path {
        &self.fifo
    }

    /// Where tmux writes a screen capture for this directory's owner (not
    /// created until tmux writes it).
    pub(crate) fn capture_file(&self) -> PathBuf {
        self.dir.join(CAPTURE_NAME)
    }

    /// Where the bridge listens for the pipe helper's hand-off (created
    /// only when a helper is configured).
    pub(crate) fn hand_off_socket(&self) -> PathBuf {
        self.dir.join(HAND_OFF_NAME)
    }

    /// The value of [`MARKER_OPTION`] for this pipe: the directory's name
    /// (only `[a-z0-9-]`, so it is safe inside tmux formats and quotes).
    pub(crate) fn marker(&self) -> &str {
        &self.marker
    }
}

impl Drop for FifoDir {
    fn drop(&mut self) {
        let _ = remove_dir_and_files(&self.dir);
        live().remove(&self.marker);
    }
}

/// Removes what a FIFO directory may hold (the FIFO, a capture and a
/// hand-off socket: only what we put there), then the then-empty directory.
fn remove_dir_and_files(dir: &Path) -> std::io::Result<()> {
    for name in [FIFO_NAME, CAPTURE_NAME, HAND_OFF_NAME] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    std::fs::remove_dir(dir)
}

/// The owner pid in a FIFO directory name `muxlink-<pid>-<n>-<hex>`; None
/// for any other name.
fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix(PREFIX)?.split('-');
    let (pid, n, nanos) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, hex: bool| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&b)))
    };
    if parts.next().is_some() || !digits(pid, false) || !digits(n, false) || !digits(nanos, true) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0 && *p <= i32::MAX as u32)
}

/// Whether the process `pid` is gone. Fails closed: a process we may not
/// signal, or one we cannot judge, counts as alive. A zombie (killed, not yet
/// reaped) is gone. A reused pid makes a dead owner look alive, which only
/// keeps its pipe refused.
fn process_gone(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Err(nix::errno::Errno::ESRCH) => true,
        Ok(()) => is_zombie(pid),
        Err(_) => false,
    }
}

/// Linux: state `Z` in `/proc/<pid>/stat`. Elsewhere (no `/proc`) false.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name, which may
            // itself hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

/// Whether a pane pipe whose marker is `marker` was left behind by its owner
/// and may be replaced: the marker has our directory-name form and names a
/// process that is gone, or this process while no live `PaneOutput` of it
/// holds that pipe. Any other marker (someone else's value, a live agent)
/// is not stale.
pub(crate) fn marker_is_stale(marker: &str) -> bool {
    let Some(pid) = owner_pid(marker) else {
        return false;
    };
    if pid == std::process::id() {
        return !live().contains(marker);
    }
    process_gone(pid)
}

/// Removes the FIFO directories that processes now gone left in the temp
/// dir (an agent killed by SIGKILL cannot remove its own): only directories
/// (not symlinks) owned by our uid, named like ours, of a pid that is not
/// this process and not alive. Returns how many were removed.
pub(crate) fn remove_dead_fifo_dirs() -> usize {
    remove_dead_fifo_dirs_in(&std::env::temp_dir())
}

fn remove_dead_fifo_dirs_in(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let me = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid == me || !process_gone(pid) {
            continue;
        }
        let dir = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.file_type().is_dir() || meta.uid() != uid {
            continue;
        }
        if remove_dir_and_files(&dir).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::debug!(removed, "removed FIFO directories of dead agents");
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_our_names() {
        assert_eq!(owner_pid("muxlink-123-0-1f"), Some(123));
        assert_eq!(owner_pid("muxlink-9-42-0"), Some(9));
        for bad in [
            "muxlink-0-0-0",
            "muxlink-x-0-0",
            "muxlink-1-0",
            "muxlink-1-0-0-0",
            "muxlink-1-0-G",
            "muxlink--0-0",
            "other-1-0-0",
            "muxlink-99999999999-0-0",
            "",
        ] {
            assert_eq!(owner_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn own_markers_are_stale_only_when_not_held() {
        let held = FifoDir::create().unwrap();
        assert!(!marker_is_stale(held.marker()));
        let marker = held.marker().to_owned();
        drop(held);
        assert!(marker_is_stale(&marker));
        // Foreign values never are.
        assert!(!marker_is_stale("someone-else"));
        assert!(!marker_is_stale(""));
    }

    #[test]
    fn init_is_alive() {
        assert!(!process_gone(1));
    }
}
