//! The echo baseline the issue's target names: "loopback echo p50 at or below
//! `ssh` + `tmux attach` on the same machine". The bench measures that
//! baseline itself instead of trusting a figure from elsewhere: a private
//! `sshd` on 127.0.0.1 (fresh keys in a temp dir, started by the bench's own
//! user, so it needs no root), `ssh -tt` running `tmux attach` to a fresh
//! raw-echo session on the bench's tmux server, and the same single-byte
//! echo as `echo.rs`, timed from writing the key into ssh's stdin until the
//! byte appears in ssh's stdout. Missing `ssh`/`sshd`, an `sshd` that will
//! not start or an ssh session that never shows the tmux client skip the
//! section with a reason (the machine's fault, not muxlink's).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::echo::{EVENT_WAIT, RAW_ECHO, time_keys};
use crate::rig::{COLS, ROWS, Rig};

/// Longest wait for sshd's "Server listening" line.
const SSHD_START: Duration = Duration::from_secs(10);
/// Longest wait for the first output of the ssh session: login and the
/// remote shell come first, which can be slow on a loaded machine.
const FIRST_DRAW: Duration = Duration::from_secs(30);
/// The tmux client has finished drawing once it stays quiet this long.
const DRAW_QUIET: Duration = Duration::from_millis(300);
/// Upper bound on the whole initial draw, in case something keeps printing.
const DRAW_LIMIT: Duration = Duration::from_secs(5);
/// Log lines kept per process, for a skip note or an error.
const LOG_LINES: usize = 40;
/// Ports tried when another process takes the free port first.
const PORT_TRIES: usize = 3;

/// What the section produced.
pub enum SshEcho {
    /// Round trips in milliseconds, one per timed key.
    Measured(Vec<f64>),
    /// Why it could not be measured on this machine.
    Skipped(String),
}

/// Measures `samples` ssh + tmux attach echoes (after a warm-up) on a fresh
/// raw-echo session of the bench's tmux server, killed afterwards.
pub async fn echo_rtts(rig: &mut Rig, samples: usize) -> Result<SshEcho> {
    let tools = match Tools::find() {
        Ok(t) => t,
        Err(why) => return Ok(SshEcho::Skipped(format!("{why:#}"))),
    };
    let dir = tempfile::tempdir().context("creating the sshd temp dir")?;
    let keys = match Keys::make(&tools, dir.path()) {
        Ok(k) => k,
        Err(why) => return Ok(SshEcho::Skipped(format!("{why:#}"))),
    };
    let sshd = match Sshd::start(&tools, &keys, dir.path()).await {
        Ok(s) => s,
        Err(why) => return Ok(SshEcho::Skipped(format!("sshd did not start: {why:#}"))),
    };

    // A session of its own: the attached client sizes its window, and the
    // phone's echo pane must keep the size the other sections expect.
    let pane = rig.pane(RAW_ECHO)?;
    let result = measure_on(rig, &tools, &keys, &sshd, &pane, samples).await;
    rig.kill_pane(&pane);
    sshd.stop().await;
    result
}

/// Attaches through ssh to `pane`'s session and times the echoes.
async fn measure_on(
    rig: &Rig,
    tools: &Tools,
    keys: &Keys,
    sshd: &Sshd,
    pane: &str,
    samples: usize,
) -> Result<SshEcho> {
    // The status line's clock and window name redraw letters now and then,
    // which would count as echoes; without it the window also keeps the
    // pane's ROWS (the client's rows are the window's plus the status line).
    rig.tmux.run(&["set-option", "-t", pane, "status", "off"])?;
    // A socket path rather than `-L name`: the remote shell's environment
    // (TMUX_TMPDIR) may differ from the bench's.
    let socket = rig
        .tmux
        .run(&["display-message", "-p", "-t", pane, "#{socket_path}"])?;
    // The pty sshd makes has no size (ssh's stdin is no terminal), so tmux
    // would assume 80x24; `stty` gives it the bench's size. TERM is set
    // because ssh forwards only the bench's own, which may be unset.
    let remote = format!(
        "stty cols {COLS} rows {ROWS} && exec env TERM=xterm-256color {} -S {} attach -t {}",
        quote(&tools.tmux.to_string_lossy()),
        quote(&socket),
        quote(pane)
    );
    let mut cmd = Command::new(&tools.ssh);
    cmd.args(["-tt", "-p", &sshd.port.to_string(), "-i"])
        .arg(&keys.client)
        .args([
            // The user's ssh_config (ControlMaster, ProxyCommand, a
            // RemoteCommand for this host) must not change the path measured.
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            // No escape character: `~` after a newline must reach tmux as a key.
            "-e",
            "none",
            "127.0.0.1",
            &remote,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("spawning ssh")?;
    let stdin = child.stdin.take().context("ssh has no stdin pipe")?;
    let stdout = child.stdout.take().context("ssh has no stdout pipe")?;
    let stderr = child.stderr.take().context("ssh has no stderr pipe")?;
    let ssh_log = Log::collect(stderr);
    let mut ssh = Killed(child);

    let mut out = Output {
        stdout,
        buf: vec![0; 64 * 1024],
    };
    let drawn = match wait_drawn(&mut out).await {
        Ok(d) => d,
        Err(why) => {
            return Ok(SshEcho::Skipped(format!(
                "the ssh session showed no tmux client: {why:#}{}",
                ssh_log.tail_text()
            )));
        }
    };
    if ssh.0.try_wait()?.is_some() || !has_plain_client(rig, pane)? {
        return Ok(SshEcho::Skipped(format!(
            "ssh did not stay attached to tmux; it printed {:?}{}",
            String::from_utf8_lossy(&drawn),
            ssh_log.tail_text()
        )));
    }

    let rtts = time_echoes(stdin, &mut out, samples).await;
    ssh.stop().await;
    let rtts = rtts.with_context(|| format!("ssh + tmux attach echo{}", ssh_log.tail_text()))?;
    Ok(SshEcho::Measured(rtts))
}

/// Types the keys `time_keys` picks and times each until its byte shows up
/// in ssh's output. The tmux client redraws with escape sequences around the
/// byte; only the byte itself counts.
async fn time_echoes(
    mut stdin: tokio::process::ChildStdin,
    out: &mut Output,
    samples: usize,
) -> Result<Vec<f64>> {
    time_keys(samples, async |i, key| {
        // ChildStdin is unbuffered: one write(2) per key, as a terminal would.
        stdin
            .write_all(&[key])
            .await
            .with_context(|| format!("writing key {i} to ssh"))?;
        loop {
            let data = out
                .next(EVENT_WAIT)
                .await
                .with_context(|| format!("waiting for the echo of key {i}"))?
                .with_context(|| format!("ssh closed its output before the echo of key {i}"))?;
            if data.contains(&key) {
                return Ok(Instant::now());
            }
        }
    })
    .await
}

/// Reads until the tmux client's first screen is out: some output, then
/// [`DRAW_QUIET`] of silence. Returns what was read.
async fn wait_drawn(out: &mut Output) -> Result<Vec<u8>> {
    let mut seen = out
        .next(FIRST_DRAW)
        .await?
        .context("ssh exited without output")?
        .to_vec();
    let limit = Instant::now() + DRAW_LIMIT;
    while Instant::now() < limit {
        match out.next(DRAW_QUIET).await {
            Ok(Some(data)) => seen.extend_from_slice(data),
            Ok(None) => bail!(
                "ssh exited after printing {:?}",
                String::from_utf8_lossy(&seen)
            ),
            // Quiet: the screen is drawn.
            Err(_) => return Ok(seen),
        }
    }
    Ok(seen)
}

/// Whether a client other than a control-mode one (the agent's) is attached
/// to `pane`'s session: the proof that ssh's tmux client is in.
fn has_plain_client(rig: &Rig, pane: &str) -> Result<bool> {
    let modes = rig
        .tmux
        .run(&["list-clients", "-t", pane, "-F", "#{client_control_mode}"])?;
    Ok(modes.lines().any(|m| m.trim() == "0"))
}

/// ssh's stdout with a reusable read buffer.
struct Output {
    stdout: ChildStdout,
    buf: Vec<u8>,
}

impl Output {
    /// The next chunk, `None` at end of output; an error when `wait` passes first.
    async fn next(&mut self, wait: Duration) -> Result<Option<&[u8]>> {
        let n = tokio::time::timeout(wait, self.stdout.read(&mut self.buf))
            .await
            .context("no output in time")?
            .context("reading ssh's output")?;
        Ok((n > 0).then(|| &self.buf[..n]))
    }
}

/// Absolute paths of the programs involved.
struct Tools {
    sshd: PathBuf,
    ssh: PathBuf,
    keygen: PathBuf,
    /// Absolute, since the remote shell's PATH is sshd's default one.
    tmux: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools> {
        // sshd lives in an sbin directory, often not in a user's PATH.
        let sbin = ["/usr/sbin", "/usr/local/sbin", "/sbin"];
        Ok(Tools {
            sshd: find_program("sshd", &sbin).context("no `sshd` in PATH or an sbin directory")?,
            ssh: find_program("ssh", &[]).context("no `ssh` in PATH")?,
            keygen: find_program("ssh-keygen", &[]).context("no `ssh-keygen` in PATH")?,
            tmux: find_program("tmux", &[]).context("no `tmux` in PATH")?,
        })
    }
}

/// The first executable file `name` in PATH, then in `extra`.
fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        // sshd re-executes itself and refuses a relative path.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The host key, the client key and the `authorized_keys` allowing it.
struct Keys {
    host: PathBuf,
    client: PathBuf,
    authorized: PathBuf,
}

impl Keys {
    fn make(tools: &Tools, dir: &Path) -> Result<Keys> {
        let keys = Keys {
            host: dir.join("host_ed25519"),
            client: dir.join("client_ed25519"),
            authorized: dir.join("authorized_keys"),
        };
        for key in [&keys.host, &keys.client] {
            let out = std::process::Command::new(&tools.keygen)
                .args(["-q", "-N", "", "-t", "ed25519", "-f"])
                .arg(key)
                .stdin(Stdio::null())
                .output()
                .context("running ssh-keygen")?;
            if !out.status.success() {
                bail!(
                    "ssh-keygen failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        // sshd reads it for whichever user logs in: the bench's own.
        std::fs::copy(keys.client.with_extension("pub"), &keys.authorized)
            .context("writing authorized_keys")?;
        Ok(keys)
    }
}

/// The private sshd, killed when dropped.
struct Sshd {
    port: u16,
    process: Killed,
}

impl Sshd {
    /// Starts sshd in the foreground on a free loopback port and waits for
    /// its "Server listening" line; the error carries its log.
    async fn start(tools: &Tools, keys: &Keys, dir: &Path) -> Result<Sshd> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            // Free now; another process may take it before sshd binds, hence the retries.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("finding a free port")?
                .port();
            match Self::start_on(tools, keys, dir, port).await {
                Ok(s) => return Ok(s),
                // Only a lost race for the port is worth another try.
                Err(e) if format!("{e:#}").contains("Address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        // PORT_TRIES > 0, so the loop ran and `last` is set.
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no port tried")))
    }

    async fn start_on(tools: &Tools, keys: &Keys, dir: &Path, port: u16) -> Result<Sshd> {
        let config = dir.join("sshd_config");
        let text = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {}\n\
             AuthorizedKeysFile {}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PidFile {}\n\
             # bash started by sshd reads ~/.bashrc even to run a command,\n\
             # unless SHLVL says a shell ran it; rc files do not change the\n\
             # echo and can stall the session (a stale pyenv rehash lock\n\
             # held it for a minute on one machine).\n\
             SetEnv SHLVL=1\n",
            keys.host.display(),
            keys.authorized.display(),
            dir.join("sshd.pid").display(),
        );
        std::fs::write(&config, text).context("writing sshd_config")?;
        let mut child = Command::new(&tools.sshd)
            // -D: stay in the foreground as our child; -e: log to stderr, read below.
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", tools.sshd.display()))?;
        let stderr = child.stderr.take().context("sshd has no stderr pipe")?;
        let log = Log::collect(stderr);
        let process = Killed(child);
        let listening = log.wait_for("Server listening on", SSHD_START).await;
        if !listening {
            bail!("no \"Server listening\" line{}", log.tail_text());
        }
        Ok(Sshd { port, process })
    }

    async fn stop(self) {
        self.process.stop().await;
    }
}

/// A child process killed when this is dropped, so an error on the way
/// leaves no ssh or sshd behind (the runtime reaps it).
struct Killed(Child);

impl Killed {
    /// Kills and reaps the process.
    async fn stop(mut self) {
        let _ = self.0.start_kill();
        // A SIGKILLed process is gone at once; the bound is only a safety net.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.0.wait()).await;
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        // Fails only when the process was already reaped, which is the goal.
        let _ = self.0.start_kill();
    }
}

/// The last [`LOG_LINES`] lines a process wrote to a pipe, read in the
/// background for as long as it writes (a full pipe would block it).
struct Log {
    lines: Arc<Mutex<Vec<String>>>,
    /// Bumped for every line and closed at the end of the output.
    seen: tokio::sync::watch::Receiver<usize>,
}

impl Log {
    fn collect(pipe: impl AsyncRead + Unpin + Send + 'static) -> Log {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, seen) = tokio::sync::watch::channel(0);
        let store = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut l) = store.lock() {
                    l.push(line);
                    let excess = l.len().saturating_sub(LOG_LINES);
                    l.drain(..excess);
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Log { lines, seen }
    }

    /// Whether a line containing `needle` arrives within `wait` (false at
    /// the end of the output, i.e. the process exited).
    async fn wait_for(&self, needle: &str, wait: Duration) -> bool {
        let mut seen = self.seen.clone();
        let found = async {
            loop {
                if self.has(needle) {
                    return true;
                }
                if seen.changed().await.is_err() {
                    // Closed: the last lines are stored; look once more.
                    return self.has(needle);
                }
            }
        };
        tokio::time::timeout(wait, found).await.unwrap_or(false)
    }

    fn has(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .is_ok_and(|l| l.iter().any(|line| line.contains(needle)))
    }

    /// ": line | line" for a message, empty when nothing was written.
    fn tail_text(&self) -> String {
        let lines = self.lines.lock().map(|l| l.join(" | ")).unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!(" (output: {lines})")
        }
    }
}

/// `s` single-quoted for the remote POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
