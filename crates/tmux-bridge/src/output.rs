//! `PaneOutput`: a pane's output bytes via `pipe-pane -O` into a private FIFO,
//! read by readiness (no timers), with the matching screen snapshot.

use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::unix::pipe;

use crate::bridge::TmuxBridge;
use crate::control_parser::Block;
use crate::error::{BridgeError, Result};
use crate::quote::quote;
use crate::snapshot::{CURSOR_FORMAT, CursorState, build_snapshot};

/// Largest chunk [`PaneOutput::read`] returns.
pub const MAX_CHUNK: usize = 64 * 1024;

/// Written by the pipe command before `cat` starts: proves the writer end is
/// connected, so a later end-of-file really means "our pipe is gone".
const MARKER: u8 = b'M';

/// Printed instead of starting a pipe when the pane already has one.
const BUSY: &str = "muxlink-busy";

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A private directory (mode 0700) holding one FIFO (mode 0600).
fn make_fifo() -> Result<(PathBuf, PathBuf)> {
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("muxlink-{}-{n}-{nanos:x}", std::process::id()));
        // `mkdir` fails on an existing path (no symlink following), so the
        // directory is ours alone.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let fifo = dir.join("out");
                if let Err(e) = nix::unistd::mkfifo(
                    &fifo,
                    nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
                ) {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(std::io::Error::from(e).into());
                }
                return Ok((dir, fifo));
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

fn remove_fifo(dir: &Path, fifo: &Path) {
    let _ = std::fs::remove_file(fifo);
    let _ = std::fs::remove_dir(dir);
}

/// A pane's live output.
///
/// **Ordering guarantee.** `open` sends one tmux command line:
/// `if-shell -F '#{pane_pipe}' <report busy> 'pipe-pane -O …; capture-pane
/// -e -p; display -p <cursor>'`. tmux runs a command list to the end before
/// it reads any more pane output, so the check, the pipe start and the
/// capture happen at one point of the pane's byte stream: every byte read
/// from this stream was produced after the snapshot, and every byte before
/// it is in the snapshot. Nothing is lost and nothing is shown twice. The
/// snapshot is available once, from [`PaneOutput::take_snapshot`] or
/// [`TmuxBridge::snapshot`].
///
/// The read end is opened non-blocking and read-only (this process never
/// holds a writer), so end-of-file is seen when the `cat` that tmux started
/// exits: the pane closed, or someone else removed or replaced the pipe.
#[derive(Debug)]
pub struct PaneOutput {
    bridge: TmuxBridge,
    pane_id: String,
    rx: pipe::Receiver,
    dir: PathBuf,
    fifo: PathBuf,
    pending: Vec<u8>,
    eof: bool,
    closed: bool,
    buf: Vec<u8>,
}

impl PaneOutput {
    pub(crate) async fn open(bridge: TmuxBridge, pane_id: &str) -> Result<PaneOutput> {
        let (dir, fifo) = make_fifo()?;
        let rx = match pipe::OpenOptions::new().open_receiver(&fifo) {
            Ok(rx) => rx,
            Err(e) => {
                remove_fifo(&dir, &fifo);
                return Err(e.into());
            }
        };
        let mut out = PaneOutput {
            bridge,
            pane_id: pane_id.to_owned(),
            rx,
            dir,
            fifo,
            pending: Vec::new(),
            eof: false,
            // Nothing to undo in tmux until the pipe is installed.
            closed: true,
            buf: vec![0; MAX_CHUNK],
        };
        let snapshot = out.start().await?;
        crate::bridge::lock_snapshots(&out.bridge).insert(out.pane_id.clone(), snapshot);
        Ok(out)
    }

    /// Installs the pipe and captures the screen atomically; then waits for
    /// the pipe command's marker byte.
    async fn start(&mut self) -> Result<Vec<u8>> {
        let p = quote(&self.pane_id);
        let fifo = self.fifo.to_string_lossy();
        // Shell command run by tmux; the path has no quote characters (it is
        // built from the temp dir, pid and numbers), checked below.
        if fifo.contains(['\'', '#', '\n']) {
            return Err(BridgeError::Protocol("unusable temporary path".into()));
        }
        let shell = format!("exec >'{fifo}'; printf {}; exec cat", MARKER as char);
        let inner = format!(
            "pipe-pane -O -t {p} {} ; capture-pane -e -p -t {p} ; display -p -t {p} {}",
            quote(&shell),
            quote(CURSOR_FORMAT)
        );
        let line = format!(
            "if-shell -F -t {p} '#{{pane_pipe}}' {} {}",
            quote(&format!("display -p {BUSY}")),
            quote(&inner)
        );
        let blocks = self.bridge.group(line).await?;
        let snapshot = self.parse_start(blocks)?;
        self.closed = false;
        self.wait_marker().await?;
        Ok(snapshot)
    }

    fn parse_start(&self, blocks: Vec<Block>) -> Result<Vec<u8>> {
        let not_found = || BridgeError::PaneNotFound(self.pane_id.clone());
        if blocks
            .iter()
            .any(|b| b.ok && b.lines.len() == 1 && b.lines[0] == BUSY.as_bytes())
        {
            return Err(BridgeError::AlreadyPiped(self.pane_id.clone()));
        }
        if let Some(bad) = blocks.iter().find(|b| !b.ok) {
            let text = bad.text();
            return Err(if text.contains("can't find") {
                not_found()
            } else {
                BridgeError::Tmux(text)
            });
        }
        // [if-shell, pipe-pane, capture-pane, display].
        let [_, _, capture, cursor] = <[Block; 4]>::try_from(blocks)
            .map_err(|b| BridgeError::Protocol(format!("{} reply blocks to pipe-pane", b.len())))?;
        let line = cursor
            .lines
            .first()
            .ok_or_else(|| BridgeError::Protocol("cursor state".into()))?;
        let cursor =
            CursorState::parse(line).ok_or_else(|| BridgeError::Protocol("cursor state".into()))?;
        Ok(build_snapshot(&capture.lines, cursor))
    }

    async fn wait_marker(&mut self) -> Result<()> {
        let timeout = self.bridge.inner_timeout();
        let first = tokio::time::timeout(timeout, self.read_raw())
            .await
            .map_err(|_| BridgeError::Timeout(timeout))??;
        match first {
            Some(mut bytes) if bytes.first() == Some(&MARKER) => {
                bytes.remove(0);
                self.pending = bytes;
                Ok(())
            }
            Some(_) => Err(BridgeError::Protocol("pipe started without marker".into())),
            None => {
                // The pipe command ended at once: the pane is closing.
                self.eof = true;
                Ok(())
            }
        }
    }

    /// One readiness-driven read; None at end-of-file.
    async fn read_raw(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            self.rx.readable().await?;
            match self.rx.try_read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(None);
                }
                Ok(n) => return Ok(Some(self.buf[..n].to_vec())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The pane this stream belongs to.
    pub fn pane_id(&self) -> &str {
        &self.pane_id
    }

    /// The snapshot taken with the pipe start, once (None if already taken,
    /// also via [`TmuxBridge::snapshot`]).
    pub fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        crate::bridge::lock_snapshots(&self.bridge).remove(&self.pane_id)
    }

    /// The next chunk (1..=64 KiB) as soon as the pane wrote it; `None` once
    /// the pane is gone or the pipe was removed. Cancel-safe.
    pub async fn read(&mut self) -> Result<Option<Vec<u8>>> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        if self.eof {
            return Ok(None);
        }
        self.read_raw().await
    }

    /// Whether our `cat` still holds the FIFO open, i.e. our pipe is still
    /// the one tmux has installed. Drains what is buffered.
    fn still_ours(&mut self) -> bool {
        if self.eof {
            return false;
        }
        loop {
            match self.rx.try_read(&mut self.buf) {
                Ok(0) => return false,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return e.kind() == ErrorKind::WouldBlock,
            }
        }
    }

    fn unpipe_line(&self) -> String {
        format!("pipe-pane -t {}", quote(&self.pane_id))
    }

    /// Stops the stream: removes the pipe if it is still ours (never someone
    /// else's) and deletes the FIFO.
    pub async fn close(mut self) -> Result<()> {
        let result = if !self.closed && self.still_ours() {
            match self.bridge.call(self.unpipe_line()).await {
                Ok(_) => Ok(()),
                // The pane went away meanwhile: nothing to remove.
                Err(BridgeError::Tmux(m)) if m.contains("can't find") => Ok(()),
                Err(BridgeError::NoServer) | Err(BridgeError::ControlExited) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        self.closed = true;
        result
    }
}

impl Drop for PaneOutput {
    fn drop(&mut self) {
        crate::bridge::lock_snapshots(&self.bridge).remove(&self.pane_id);
        if !self.closed {
            self.closed = true;
            if self.still_ours() {
                let line = self.unpipe_line();
                if !self.bridge.request_detached(&line)
                    && let Ok(handle) = tokio::runtime::Handle::try_current()
                {
                    let bridge = self.bridge.clone();
                    handle.spawn(async move {
                        let _ = bridge.call(line).await;
                    });
                }
            }
        }
        remove_fifo(&self.dir, &self.fifo);
    }
}
