//! Helpers for the end-to-end tests in this folder: starting the bundled server,
//! a private tmux server (test-support's `PrivateTmux`) and the `muxlink` binary.
//!
//! The `muxlink` binary under test is this package's `muxlink-e2e-agent` target,
//! which runs exactly `agent_bin::main_entry` (the same code as `muxlink`); cargo
//! builds it before the tests, so a test never runs a stale binary. Tests pass
//! `env!("CARGO_BIN_EXE_muxlink-e2e-agent")` to [`Home::new`].

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod attacks;
pub mod faults;
pub mod pairing;
pub mod relay;

/// A name unique across processes and calls (test-support's [`unique_name`](test_support::unique_name)).
pub use test_support::unique_name as unique;

/// A tmux server on a private socket (`tmux -L <name>`), killed on drop:
/// test-support's [`PrivateTmux`](test_support::PrivateTmux), the one tmux
/// wrapper of every suite.
pub use test_support::PrivateTmux as Tmux;

/// The `muxlink` binary built next to the running executable (the demo and
/// the bench); `xtask` names the command that builds both, for the error.
pub fn muxlink_beside_me(xtask: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating this executable")?;
    let bin = me.with_file_name("muxlink");
    if !bin.exists() {
        bail!(
            "{} not found: run `{xtask}`, which builds it",
            bin.display()
        );
    }
    Ok(bin)
}

/// One muxlink host installation in a temp dir (`MUXLINK_HOME`).
pub struct Home {
    /// The binary under test.
    pub bin: PathBuf,
    /// Config and data dir.
    pub dir: tempfile::TempDir,
    /// tmux socket the agent uses.
    pub tmux_socket: String,
    /// Server URL passed as `MUXLINK_SERVER` (None = not set).
    pub server: Option<String>,
}

impl Home {
    /// A fresh empty home for the binary at `bin`.
    pub fn new(bin: &str, tmux_socket: &str) -> Result<Self> {
        Ok(Home {
            bin: PathBuf::from(bin),
            dir: tempfile::tempdir()?,
            tmux_socket: tmux_socket.to_string(),
            server: None,
        })
    }

    /// The data/config directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `muxlink` command with this home's environment (and nothing inherited
    /// that could point elsewhere).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("MUXLINK_HOME", self.dir.path())
            .env("MUXLINK_TMUX_SOCKET", &self.tmux_socket)
            .env("MUXLINK_LOOPBACK_ONLY", "true")
            .env("MUXLINK_HOST_NAME", "e2e-host")
            .env_remove("MUXLINK_CONFIG_DIR")
            .env_remove("MUXLINK_DATA_DIR")
            .env_remove("MUXLINK_HMAC_SECRET")
            .env_remove("MUXLINK_SERVER")
            .stdin(Stdio::null());
        if let Some(s) = &self.server {
            c.env("MUXLINK_SERVER", s);
        }
        c
    }

    /// Runs a command to completion (bounded by `timeout`).
    pub fn output(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        wait_output(self.spawn_piped(args)?, timeout)
    }

    /// Spawns a long-running command with stdout and stderr captured line by line.
    pub fn spawn(&self, args: &[&str]) -> Result<Running> {
        Ok(Running::new(self.spawn_piped(args)?))
    }

    fn spawn_piped(&self, args: &[&str]) -> Result<Child> {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning muxlink")
    }
}

/// Waits for a child with a deadline, killing it when the deadline passes.
pub fn wait_output(mut child: Child, timeout: Duration) -> Result<Output> {
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        let r = child.wait();
        let _ = tx.send(());
        r
    });
    if rx.recv_timeout(timeout).is_err() {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        bail!("command did not finish within {timeout:?}");
    }
    let status = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("waiter panicked"))??;
    Ok(Output {
        status,
        stdout: t1.join().unwrap_or_default(),
        stderr: t2.join().unwrap_or_default(),
    })
}

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A running child whose output lines arrive on a channel.
pub struct Running {
    /// The child process.
    pub child: Child,
    lines: mpsc::Receiver<(Stream, String)>,
    /// Every line seen so far (for failure messages).
    pub seen: Vec<(Stream, String)>,
}

impl Running {
    fn new(mut child: Child) -> Self {
        // Unbounded on purpose: the readers must never stop reading. With a
        // bounded queue a test that reads the child's lines only now and then
        // left a chatty child (an agent logging its WebRTC stack at debug)
        // blocked on a full stderr pipe mid-test, which looked like a stalled
        // transport. The lines live as long as the test, as `seen` does.
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                    if tx.send((Stream::Stdout, line)).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                    if tx.send((Stream::Stderr, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line matching `pred`; returns it.
    pub fn wait_line(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(Stream, &str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) => {
                    self.seen.push((s, line.clone()));
                    if pred(s, &line) {
                        return Ok(line);
                    }
                }
                Err(_) => bail!(
                    "no matching line within {timeout:?}; output so far:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// All lines seen so far, for diagnostics.
    pub fn transcript(&self) -> String {
        self.seen
            .iter()
            .map(|(s, l)| format!("{s:?}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                bail!("process did not exit within {timeout:?} after SIGTERM");
            }
            // Drain output meanwhile so the child never blocks on a full pipe.
            if let Ok((s, l)) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.seen.push((s, l));
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
