//! `TMUX_ECHO=1`: the host's end of each round trip goes through a real tmux
//! pane as the agent's does, but on the host's one thread: the key goes to
//! tmux over one control-mode client (`send-keys -H`), and the pane's output
//! is read from tmux's own pipe socket, handed over by `muxlink __pane-pipe`
//! (`MUXLINK_BIN`, default `target/release/muxlink`), or from `cat` into a
//! FIFO with `PANE_PIPE=cat`. The pane runs `stty raw -echo; exec cat`.

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use tokio::io::AsyncReadExt;
use tokio::net::UnixListener;

/// Where the pane's bytes come from.
pub enum Out {
    Socket(tokio::net::UnixStream),
    Fifo(tokio::net::unix::pipe::Receiver),
}

pub struct Pane {
    socket: String,
    dir: PathBuf,
    /// The control client's stdin: one `send-keys` line per key.
    ctl_in: std::fs::File,
    _ctl: tokio::process::Child,
    pub out: Out,
}

/// The probe's tmux server, killed by `clean_up`.
static SERVER_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn tmux(socket: &str, args: &[&str]) -> Result<()> {
    let st = Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        // The server it may start keeps what it inherits open.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("tmux {args:?} failed");
    }
    Ok(())
}

/// Starts the pane's output pipe with `command`.
fn pipe_pane(socket: &str, command: &str) -> Result<()> {
    tmux(socket, &["pipe-pane", "-O", "-t", "s", command])
}

impl Pane {
    /// The pane and its control client's replies (read and dropped in the
    /// host's loop).
    pub async fn start() -> Result<(Pane, tokio::process::ChildStdout)> {
        let socket = format!("probe-{}", std::process::id());
        let dir = std::env::temp_dir().join(&socket);
        std::fs::create_dir_all(&dir)?;
        tmux(
            &socket,
            &[
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "s",
                "-x",
                "80",
                "-y",
                "24",
                "stty raw -echo; exec cat",
            ],
        )?;
        let pid = Command::new("tmux")
            .args(["-L", &socket, "display", "-p", "#{pid}"])
            .output()?;
        let pid = String::from_utf8_lossy(&pid.stdout).trim().parse()?;
        SERVER_PID.store(pid, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let out = if std::env::var("PANE_PIPE").as_deref() == Ok("cat") {
            let fifo = dir.join("out");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU)?;
            let rx = tokio::net::unix::pipe::OpenOptions::new().open_receiver(&fifo)?;
            pipe_pane(&socket, &format!("exec cat > '{}'", fifo.display()))?;
            Out::Fifo(rx)
        } else {
            let bin =
                std::env::var("MUXLINK_BIN").unwrap_or_else(|_| "target/release/muxlink".into());
            let bin = std::fs::canonicalize(&bin).with_context(|| format!("MUXLINK_BIN {bin}"))?;
            let path = dir.join("hand");
            let listener = UnixListener::bind(&path)?;
            let helper = format!("exec '{}' __pane-pipe '{}'", bin.display(), path.display());
            pipe_pane(&socket, &helper)?;
            let (conn, _) =
                tokio::time::timeout(Duration::from_secs(5), listener.accept()).await??;
            conn.readable().await?;
            let fd = receive_fd(conn.as_raw_fd())?;
            let stream = std::os::unix::net::UnixStream::from(fd);
            stream.set_nonblocking(true)?;
            Out::Socket(tokio::net::UnixStream::from_std(stream)?)
        };
        let mut ctl = tokio::process::Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-C",
                "attach",
                "-t",
                "s",
                "-f",
                "no-output,ignore-size",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let ctl_in = ctl.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let ctl_in = std::fs::File::from(ctl_in.into_owned_fd()?);
        let ctl_out = ctl.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok((
            Pane {
                socket,
                dir,
                ctl_in,
                _ctl: ctl,
                out,
            },
            ctl_out,
        ))
    }

    /// One key to the pane (a blocking write of one short line to a pipe
    /// that tmux keeps reading).
    pub fn key(&mut self, bytes: &[u8]) -> Result<()> {
        let mut line = String::from("send-keys -t s -H");
        for b in bytes {
            line.push_str(&format!(" {b:02x}"));
        }
        line.push('\n');
        self.ctl_in.write_all(line.as_bytes())?;
        Ok(())
    }

    /// The pane's next output.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        Ok(match &mut self.out {
            Out::Socket(s) => s.read(buf).await?,
            Out::Fifo(f) => f.read(buf).await?,
        })
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = tmux(&self.socket, &["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills this process's tmux server and removes its directory, if any.
pub fn clean_up() {
    let pid = SERVER_PID.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let socket = format!("probe-{}", std::process::id());
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(socket));
}

fn receive_fd(sock: RawFd) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::empty())?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: just received; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    bail!("no descriptor handed over")
}
