//! Logging with `tracing`: how much and where to.
//!
//! How much: `RUST_LOG` wins; otherwise muxlink's own crates log at warn
//! (commands) or info (the agent and the server), `-v` debug, `-vv` trace,
//! while every dependency stays at warn.
//!
//! Where to, picked by [`Sink::detect`]:
//! - the agent started by `muxlink start` ([`ENV_LOG_FILE`] set): its log file,
//!   rotated by size ([`RotatingFile`]: [`LOG_MAX_BYTES`] × [`LOG_FILES`]), with
//!   the process's stderr kept on the current file so a panic lands there too;
//! - under systemd (stderr is the journal): stderr without timestamps or
//!   colours, which the journal adds itself;
//! - otherwise stderr, coloured only when it is a terminal.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::error::CliError;

/// Environment variable `muxlink start` sets on the agent it spawns: the file
/// the agent logs to (with rotation) instead of stderr.
pub const ENV_LOG_FILE: &str = "MUXLINK_LOG_FILE";
/// A log file is rotated once it would grow past this many bytes.
pub const LOG_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Log files kept: `agent.log`, `agent.log.1`, `agent.log.2`.
pub const LOG_FILES: usize = 3;

/// The tracing targets (crate names) that `-v` turns up; dependencies stay at warn.
pub const OUR_CRATES: &[&str] = &[
    "agent_bin",
    "peer_manager",
    "signaling_client",
    "signaling_server",
    "tmux_bridge",
    "rtc_transport",
    "terminal_protocol",
    "signaling_proto",
];

/// Where the log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// stderr with timestamps; colours only on a terminal.
    Stderr {
        /// Colour codes (stderr is a terminal).
        ansi: bool,
    },
    /// stderr read by the systemd journal: no timestamps, no colours.
    Journal,
    /// A size-rotated file (the background agent).
    File(PathBuf),
}

impl Sink {
    /// The sink for this process, from its environment and its stderr.
    pub fn detect() -> Sink {
        let stderr = std::io::stderr();
        let tty = stderr.is_terminal();
        let id = stderr
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .and_then(|f| f.metadata())
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Self::pick(&|var| std::env::var_os(var), id, tty)
    }

    /// [`Sink::detect`] without the process: `env` reads a variable, `stderr`
    /// is the (device, inode) of fd 2 when known, `tty` whether it is a terminal.
    ///
    /// systemd sets `JOURNAL_STREAM=<dev>:<ino>` for a service whose stderr is
    /// the journal; a shell started from such a service inherits the variable
    /// with another stderr, so it counts only when it names fd 2.
    /// `INVOCATION_ID` (set in every unit) counts when stderr is no terminal.
    pub fn pick(
        env: &dyn Fn(&str) -> Option<OsString>,
        stderr: Option<(u64, u64)>,
        tty: bool,
    ) -> Sink {
        if let Some(path) = env(ENV_LOG_FILE).filter(|p| !p.is_empty()) {
            return Sink::File(PathBuf::from(path));
        }
        let journal_stream = env("JOURNAL_STREAM")
            .and_then(|v| {
                let v = v.to_str()?.to_owned();
                let (dev, ino) = v.split_once(':')?;
                Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
            })
            .is_some_and(|named| Some(named) == stderr);
        let in_unit = env("INVOCATION_ID").is_some_and(|v| !v.is_empty());
        if journal_stream || (in_unit && !tty) {
            Sink::Journal
        } else {
            Sink::Stderr { ansi: tty }
        }
    }
}

/// The filter when `RUST_LOG` is unset: dependencies at warn, ours at the
/// level `verbose` (and whether this is a long-running process) asks for.
pub fn default_filter(verbose: u8, daemon: bool) -> String {
    let ours = match (verbose, daemon) {
        (0, false) => "warn",
        (0, true) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let mut filter = String::from("warn");
    for krate in OUR_CRATES {
        filter.push_str(&format!(",{krate}={ours}"));
    }
    filter
}

/// Installs the global subscriber on the sink [`Sink::detect`] picks.
/// Daemons log at info by default, other commands at warn.
///
/// Call it once at start-up, before any thread exists: for a daemon it takes
/// [`ENV_LOG_FILE`] out of the process environment.
pub fn init(verbose: u8, daemon: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose, daemon)));
    let fmt = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(filter);
    let mut sink = Sink::detect();
    if daemon {
        // The log file is this agent's alone: a tmux server the agent starts
        // (and every shell in it) must not inherit the variable, or a
        // `muxlink` typed there would log into the agent's file.
        // SAFETY: called from `main_entry` before the runtime or any other
        // thread exists, so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(ENV_LOG_FILE) };
    } else if matches!(sink, Sink::File(_)) {
        // Only the agent (`muxlink run`) logs to the file.
        sink = Sink::Stderr {
            ansi: std::io::stderr().is_terminal(),
        };
    }
    let _ = match sink {
        Sink::Stderr { ansi } => fmt.with_ansi(ansi).with_writer(std::io::stderr).try_init(),
        Sink::Journal => fmt
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .try_init(),
        Sink::File(path) => match RotatingFile::open(&path, LOG_MAX_BYTES, LOG_FILES, true) {
            Ok(file) => fmt
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init(),
            Err(e) => {
                // `muxlink start` points stderr at that same file: still logged.
                let r = fmt.with_ansi(false).with_writer(std::io::stderr).try_init();
                tracing::warn!("{e}; logging to stderr");
                r
            }
        },
    };
}

/// Opens a log file for appending: created 0600 whatever the umask, an older
/// looser file tightened through its descriptor, and a symlink planted there
/// refused (`O_NOFOLLOW`) rather than followed.
pub fn open_log(path: &Path) -> Result<File, CliError> {
    let log = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| CliError::io("open", path, &e))?;
    log.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::io("change the mode of", path, &e))?;
    Ok(log)
}

/// A log file rotated by size: once a write would take `path` past
/// `max_bytes`, `path.1` becomes `path.2` (and so on up to `files - 1`, the
/// oldest dropped), `path` becomes `path.1`, and a fresh `path` is opened
/// ([`open_log`]: 0600, no symlink followed). A line is never split across
/// files. With `onto_stderr`, each new file is also put on fd 2, so whatever
/// the process prints there (a panic) follows the rotation.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    files: usize,
    onto_stderr: bool,
    file: File,
    len: u64,
}

impl RotatingFile {
    /// Opens (appends to) `path`, creating its directory private (0700) when
    /// missing. An existing directory is left as it is: the path may be the
    /// user's (`MUXLINK_LOG_FILE=/tmp/agent.log`), and tightening `/tmp` to
    /// 0700 would lock every other user out of it; the files themselves are
    /// 0600, and muxlink's own directories are made private where they are
    /// chosen (`commands/background.rs`).
    pub fn open(
        path: &Path,
        max_bytes: u64,
        files: usize,
        onto_stderr: bool,
    ) -> Result<RotatingFile, CliError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            crate::store::ensure_private_dir(dir)?;
        }
        let file = open_log(path)?;
        let len = file
            .metadata()
            .map_err(|e| CliError::io("read", path, &e))?
            .len();
        let log = RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            files: files.max(1),
            onto_stderr,
            file,
            len,
        };
        log.redirect_stderr();
        Ok(log)
    }

    /// `path.n` (n ≥ 1) or `path` itself (n = 0).
    fn numbered(&self, n: usize) -> PathBuf {
        if n == 0 {
            return self.path.clone();
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> Result<(), CliError> {
        if self.files == 1 {
            self.file
                .set_len(0)
                .map_err(|e| CliError::io("truncate", &self.path, &e))?;
        } else {
            // rename moves a planted symlink itself; it never writes through one.
            for n in (0..self.files - 1).rev() {
                let (from, to) = (self.numbered(n), self.numbered(n + 1));
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(CliError::io("rotate", &from, &e)),
                }
            }
            self.file = open_log(&self.path)?;
        }
        self.len = 0;
        self.redirect_stderr();
        Ok(())
    }

    fn redirect_stderr(&self) {
        if self.onto_stderr {
            // Best effort: failing leaves fd 2 on the previous file.
            let _ = nix::unistd::dup2_stderr(&self.file);
        }
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len > 0 && self.len.saturating_add(buf.len() as u64) > self.max_bytes {
            // A failed rotation keeps writing to the current file rather than
            // losing the line; the next write tries again.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.len = self.len.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn sink_follows_the_environment_and_stderr() {
        let none = env(&[]);
        assert_eq!(Sink::pick(&none, None, true), Sink::Stderr { ansi: true });
        assert_eq!(Sink::pick(&none, None, false), Sink::Stderr { ansi: false });
        // The journal only when JOURNAL_STREAM names our stderr.
        let journal = env(&[("JOURNAL_STREAM", "8:1234")]);
        assert_eq!(Sink::pick(&journal, Some((8, 1234)), false), Sink::Journal);
        assert_eq!(
            Sink::pick(&journal, Some((8, 99)), true),
            Sink::Stderr { ansi: true }
        );
        let unit = env(&[("INVOCATION_ID", "0123abcd")]);
        assert_eq!(Sink::pick(&unit, None, false), Sink::Journal);
        assert_eq!(Sink::pick(&unit, None, true), Sink::Stderr { ansi: true });
        let file = env(&[(ENV_LOG_FILE, "/s/agent.log"), ("INVOCATION_ID", "x")]);
        assert_eq!(
            Sink::pick(&file, None, false),
            Sink::File("/s/agent.log".into())
        );
    }

    #[test]
    fn verbose_turns_up_our_crates_only() {
        assert!(default_filter(0, false).starts_with("warn,"));
        let v = default_filter(1, false);
        assert!(
            v.starts_with("warn,") && v.contains("agent_bin=debug"),
            "{v}"
        );
        assert!(
            v.contains("peer_manager=debug") && !v.contains("webrtc"),
            "{v}"
        );
        assert!(default_filter(2, true).contains("tmux_bridge=trace"));
        assert!(default_filter(0, true).contains("signaling_client=info"));
        for f in [default_filter(0, true), default_filter(2, false)] {
            assert!(EnvFilter::try_new(&f).is_ok(), "{f}");
        }
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let path = shared.join("agent.log");
        let _log = RotatingFile::open(&path, 100, 3, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            mode(&shared),
            0o1777,
            "a shared directory like /tmp is not tightened"
        );
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn rotates_by_size_keeps_n_files_and_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let path = logs.join("agent.log");
        let mut log = RotatingFile::open(&path, 100, 3, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&logs), 0o700);
        let line = |i: usize| format!("line {i:02} {}\n", "x".repeat(30));
        for i in 0..12 {
            log.write_all(line(i).as_bytes()).unwrap();
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        // 40-byte lines, two per 100-byte file: 12 lines fill six files, three kept.
        assert_eq!(read(path.clone()), line(10) + &line(11));
        assert_eq!(read(logs.join("agent.log.1")), line(8) + &line(9));
        assert_eq!(read(logs.join("agent.log.2")), line(6) + &line(7));
        assert!(!logs.join("agent.log.3").exists());
        for p in [&path, &logs.join("agent.log.1"), &logs.join("agent.log.2")] {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
        // Reopening appends and counts what is there.
        drop(log);
        let mut log = RotatingFile::open(&path, 100, 3, false).unwrap();
        log.write_all(line(12).as_bytes()).unwrap();
        assert_eq!(read(path.clone()), line(12));
        assert_eq!(read(logs.join("agent.log.1")), line(10) + &line(11));
    }

    #[test]
    fn a_symlink_at_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("agent.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(RotatingFile::open(&link, 100, 3, false).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
