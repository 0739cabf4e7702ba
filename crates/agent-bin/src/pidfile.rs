//! The agent pidfile (`agent.pid` in the runtime dir): an exclusive `flock`
//! held for the agent's lifetime, so two agents never run on one data dir, and
//! other commands can ask who runs. A second lock on the data dir itself
//! ([`lock_data_dir`]) covers two agents whose runtime dirs differ.
//!
//! It is the one file written in place rather than renamed over (the lock
//! belongs to the inode, so a replaced file would let a second agent lock a
//! new one): it is opened with `O_NOFOLLOW` (a symlink there is refused) and
//! mode 0600, and an older, looser file is tightened through its descriptor.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::CliError;

/// A held pidfile lock; released (and the pid left stale, harmlessly) on drop.
#[derive(Debug)]
pub struct PidLock {
    _lock: Flock<std::fs::File>,
}

/// Takes the lock and writes our pid, or reports the pid already holding it.
pub fn acquire(path: &Path) -> Result<PidLock, CliError> {
    if let Some(dir) = path.parent() {
        crate::store::ensure_private_dir(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| CliError::io("open", path, &e))?;
    // fchmod: the mode above applies only to a file created now.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::io("change the mode of", path, &e))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((mut f, _)) => {
            let pid = read_pid(&mut f).unwrap_or(0);
            return Err(CliError::AlreadyRunning(pid));
        }
    };
    let pid = std::process::id();
    let res = (|| {
        lock.set_len(0)?;
        lock.rewind()?;
        writeln!(*lock, "{pid}")?;
        lock.sync_all()
    })();
    res.map_err(|e| CliError::io("write", path, &e))?;
    Ok(PidLock { _lock: lock })
}

/// A held lock on the data directory itself, released on drop.
#[derive(Debug)]
pub struct DirLock {
    _lock: Flock<std::fs::File>,
}

/// Locks the data directory (an exclusive `flock` on the directory, no file
/// written), so two agents never serve one identity even when their pidfiles
/// are in different runtime dirs (one started with `XDG_RUNTIME_DIR` set, one
/// without). Taken after [`acquire`], so the usual case reports the pid.
pub fn lock_data_dir(dir: &Path) -> Result<DirLock, CliError> {
    let file = std::fs::File::open(dir).map_err(|e| CliError::io("open", dir, &e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(DirLock { _lock: lock }),
        Err(_) => Err(CliError::Other(format!(
            "another muxlink agent already uses {} with its pidfile elsewhere \
             (started with a different XDG_RUNTIME_DIR?); stop it first",
            dir.display()
        ))),
    }
}

/// The pid of the running agent, if one holds the lock.
pub fn running_pid(path: &Path) -> Option<i32> {
    let file = std::fs::File::open(path).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        // We got the lock: nobody holds it, so no agent runs.
        Ok(_) => None,
        Err((mut f, _)) => read_pid(&mut f).filter(|p| *p > 0),
    }
}

/// Blocks until no agent holds the lock (true) or `timeout` passes (false).
/// The blocking `flock` runs on a helper thread, so the wait wakes the moment
/// the agent exits; after a timeout that thread stays parked on the lock
/// until the process ends, which for the CLI is at once.
pub fn wait_released(path: &Path, timeout: std::time::Duration) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return true;
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let released = Flock::lock(file, FlockArg::LockShared).is_ok();
        let _ = tx.send(released);
    });
    matches!(rx.recv_timeout(timeout), Ok(true))
}

fn read_pid(f: &mut std::fs::File) -> Option<i32> {
    let mut s = String::new();
    f.rewind().ok()?;
    f.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Sends `sig` to the running agent; returns its pid when there was one.
pub fn signal_agent(path: &Path, sig: nix::sys::signal::Signal) -> Option<i32> {
    let pid = running_pid(path)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).ok()?;
    Some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_and_reports_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pid");
        assert_eq!(running_pid(&path), None);
        let lock = acquire(&path).unwrap();
        let me = std::process::id() as i32;
        assert_eq!(running_pid(&path), Some(me));
        match acquire(&path) {
            Err(CliError::AlreadyRunning(p)) => assert_eq!(p, me),
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(lock);
        assert_eq!(running_pid(&path), None);
        let _again = acquire(&path).unwrap();
    }

    #[test]
    fn data_dir_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("XDG_RUNTIME_DIR"), "{err}");
        drop(lock);
        let _again = lock_data_dir(dir.path()).unwrap();
    }

    #[test]
    fn pidfile_is_0600_and_a_symlink_there_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pid");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let lock = acquire(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(lock);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("linked.pid");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(acquire(&link).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
