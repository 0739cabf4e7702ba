//! `PaneOutput`: a pane's output bytes via `pipe-pane -O`, read by readiness
//! (no timers) from tmux's own pipe socket (handed over by the pipe helper)
//! or from a private FIFO that `cat` fills, with the matching screen snapshot.

use std::io::ErrorKind;

use tokio::net::UnixStream;
use tokio::net::unix::pipe;

use crate::bridge::TmuxBridge;
use crate::control_parser::Block;
use crate::error::{BridgeError, Result};
use crate::fifo_dir::{FifoDir, MARKER_OPTION, marker_is_stale};
use crate::hand_off::HandOffListener;
use crate::quote::{fits_shell_quotes, quote};
use crate::snapshot::{
    CAPTURE_BLOCKS, CursorState, build_snapshot, capture_commands, cursor_of, delete_buffer_line,
    read_capture,
};

/// Largest chunk [`PaneOutput::read`] returns.
pub const MAX_CHUNK: usize = 64 * 1024;

/// Written by the pipe command before `cat` starts: proves the writer end is
/// connected, so a later end-of-file really means "our pipe is gone".
const MARKER: u8 = b'M';

/// Printed, followed by the pane's [`MARKER_OPTION`], instead of starting a
/// pipe when the pane already has one.
const BUSY: &str = "muxlink-busy:";

/// Start attempts: each one that finds a pipe left by a dead owner retries
/// with that exact marker allowed to be replaced.
const START_ATTEMPTS: usize = 3;

/// Where the pane's bytes are read from.
#[derive(Debug)]
enum Source {
    /// The FIFO that the pipe command's `cat` writes into.
    Fifo(pipe::Receiver),
    /// tmux's end of the pipe, handed over by the pipe helper.
    Socket(UnixStream),
}

impl Source {
    async fn readable(&self) -> std::io::Result<()> {
        match self {
            Source::Fifo(rx) => rx.readable().await,
            Source::Socket(rx) => rx.readable().await,
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Fifo(rx) => rx.try_read(buf),
            Source::Socket(rx) => rx.try_read(buf),
        }
    }
}

/// What the start command line did.
enum Started {
    /// Our pipe is installed and the screen it was started at is in the
    /// capture file; the cursor state at that point.
    Captured(CursorState),
    /// The pane was already piped; its marker (empty: not a bridge pipe).
    Busy(String),
}

/// A pane's live output.
///
/// **Ordering guarantee.** `open` sends one tmux command line:
/// `if-shell -F '#{pane_pipe}' <report busy> 'pipe-pane -O …; set -p
/// @muxlink-pipe …; capture-pane -e -b <buf>; save-buffer -b <buf> <file>;
/// delete-buffer -b <buf>; display -p <cursor>'`. tmux runs a command list
/// to the end before it reads any more pane output, so the check, the pipe
/// start and the capture happen at one point of the pane's byte stream:
/// every byte read from this stream was produced after the snapshot, and
/// every byte before it is in the snapshot. Nothing is lost and nothing is
/// shown twice. The snapshot is available once, from
/// [`PaneOutput::take_snapshot`] or [`TmuxBridge::snapshot`].
///
/// **Pane text never frames the control client.** The screen goes through a
/// paste buffer into the file `screen` of the private FIFO directory (see
/// `snapshot`), never into a control-mode reply, so a pane showing
/// `%end …`, `%exit` or `%begin` lines cannot end a reply or fake a
/// notification; the buffer is named after the directory (unique) and
/// deleted in the same command list.
///
/// **Pipes left by a killed agent.** The same command line marks the pane
/// with the option `@muxlink-pipe` (the FIFO directory's name, which holds
/// the owner's pid); closing or dropping the stream clears it. An agent
/// killed by SIGKILL cannot clear it, and its pipe (tmux's socket with no
/// reader left, or its `cat`) keeps the pane piped until the pane prints.
/// When the check finds a pipe whose marker names a process that is gone
/// (or this process, when none of its live streams holds it), `open` sends the command line again with the condition
/// "piped and the marker is not exactly that one": `pipe-pane -O` closes the
/// stale pipe and starts ours in the same atomic list, and a pipe that
/// changed meanwhile is still refused. A pipe without our marker (anyone's
/// own `pipe-pane`) or of a live agent is never touched:
/// [`BridgeError::AlreadyPiped`].
///
/// **No copying process.** With a pipe helper configured
/// ([`BridgeConfig::pipe_helper`](crate::BridgeConfig::pipe_helper)), the
/// pipe command is `<helper> <socket> || { exec >FIFO; printf M; exec cat; }`:
/// the helper passes tmux's pipe socket to the bridge over the Unix socket
/// in the private directory and exits, and the bridge reads tmux's socket
/// itself: one process wake and one copy less per chunk, one process less
/// per attached pane (a 5 ms-spaced keystroke's trip through tmux alone:
/// 310–330 µs instead of 365–400 µs; through the whole agent the
/// difference is within the bench's noise). If the helper cannot run, the
/// shell falls back to `cat` and the bridge uses `cat` for every later pipe.
///
/// The read end is read-only (this process never holds a writer), so
/// end-of-file is seen when tmux closes its end or the `cat` it started
/// exits: the pane closed, or someone else removed or replaced the pipe.
#[derive(Debug)]
pub struct PaneOutput {
    bridge: TmuxBridge,
    pane_id: String,
    rx: Source,
    /// Listening for the pipe helper until the pipe has started.
    hand_off: Option<HandOffListener>,
    pending: Vec<u8>,
    eof: bool,
    closed: bool,
    buf: Vec<u8>,
    /// Dropped last: removes the FIFO and leaves the live list after the
    /// pipe's removal was queued.
    fifo: FifoDir,
}

impl TmuxBridge {
    /// Starts streaming the pane's output (`pipe-pane -O` into a private
    /// FIFO) and captures its screen in the same atomic tmux command list;
    /// see [`PaneOutput`] for the ordering guarantee. A pane that is already
    /// piped → [`BridgeError::AlreadyPiped`], and its pipe is left as it
    /// was; only a pipe of ours whose agent is gone (killed) is replaced.
    pub async fn open_output(&self, pane_id: &str) -> Result<PaneOutput> {
        PaneOutput::open(self.clone(), pane_id).await
    }
}

impl PaneOutput {
    pub(crate) async fn open(bridge: TmuxBridge, pane_id: &str) -> Result<PaneOutput> {
        let fifo = FifoDir::create()?;
        let rx = Source::Fifo(pipe::OpenOptions::new().open_receiver(fifo.fifo())?);
        // No listener (e.g. a temp path too long for a socket): `cat`.
        let hand_off = match bridge.pipe_helper() {
            Some(_) => HandOffListener::bind(&fifo.hand_off_socket())
                .inspect_err(|e| tracing::debug!(error = %e, "no pipe hand-off socket"))
                .ok(),
            None => None,
        };
        let mut out = PaneOutput {
            bridge,
            pane_id: pane_id.to_owned(),
            rx,
            hand_off,
            pending: Vec::new(),
            eof: false,
            // Nothing to undo in tmux until the pipe is installed.
            closed: true,
            buf: vec![0; MAX_CHUNK],
            fifo,
        };
        let snapshot = out.start().await?;
        crate::bridge::lock_snapshots(&out.bridge).insert(out.pane_id.clone(), snapshot);
        Ok(out)
    }

    /// Installs the pipe and captures the screen atomically (replacing a
    /// pipe a dead agent left); then waits for the pipe command's marker byte.
    async fn start(&mut self) -> Result<Vec<u8>> {
        let mut replace: Option<String> = None;
        for _ in 0..START_ATTEMPTS {
            let blocks = self
                .bridge
                .group(self.start_line(replace.as_deref())?)
                .await?;
            // [if-shell, pipe-pane, …]: the pipe is installed even when a
            // later command of the list failed; closing must remove it.
            let installed = blocks.len() > 2 && blocks[1].ok;
            if installed {
                self.closed = false;
            }
            match self.parse_start(blocks) {
                Ok(Started::Captured(cursor)) => {
                    if let Some(stale) = &replace {
                        tracing::info!(pane = %self.pane_id, %stale, "replaced the pipe of a dead agent");
                    }
                    let lines = read_capture(&self.fifo.capture_file()).await?;
                    self.wait_pipe().await?;
                    return Ok(build_snapshot(&lines, cursor));
                }
                Ok(Started::Busy(marker))
                    if replace.as_deref() != Some(marker.as_str()) && marker_is_stale(&marker) =>
                {
                    replace = Some(marker);
                }
                Ok(Started::Busy(_)) => break,
                Err(e) => {
                    if installed {
                        // The list may have stopped between the capture and
                        // the buffer's deletion.
                        let line = delete_buffer_line(self.fifo.marker());
                        let _ = self.bridge.group(line).await;
                    }
                    return Err(e);
                }
            }
        }
        Err(BridgeError::AlreadyPiped(self.pane_id.clone()))
    }

    /// The start command line. `replace`: a stale marker whose pipe may be
    /// replaced; any other existing pipe makes the line report busy.
    fn start_line(&self, replace: Option<&str>) -> Result<String> {
        let p = quote(&self.pane_id);
        let fifo = self.fifo.fifo().to_string_lossy();
        // Shell command run by tmux; the path has no quote characters (it is
        // built from the temp dir, pid and numbers), checked below.
        if !fits_shell_quotes(&fifo) {
            return Err(BridgeError::Protocol("unusable temporary path".into()));
        }
        let marker = self.fifo.marker();
        let cat = format!("exec >'{fifo}'; printf {}; exec cat", MARKER as char);
        let helper = match (&self.hand_off, self.bridge.pipe_helper()) {
            (Some(_), Some(words)) => {
                let socket = self.fifo.hand_off_socket();
                let socket = socket.to_string_lossy();
                // Same directory as the FIFO: the same characters.
                let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
                Some(format!("{} '{socket}'", words.join(" ")))
            }
            _ => None,
        };
        let shell = match helper {
            Some(helper) => format!("{helper} || {{ {cat}; }}"),
            None => cat,
        };
        // `pipe-pane -O` first closes any pipe the pane has, in this same list.
        // The screen goes to a file, never into a reply (see `snapshot`).
        let capture = capture_commands(&self.pane_id, marker, &self.fifo.capture_file())?;
        let inner = format!(
            "pipe-pane -O -t {p} {} ; set -p -t {p} {MARKER_OPTION} {} ; {capture}",
            quote(&shell),
            quote(marker),
        );
        let busy = format!(
            "display -p -t {p} {}",
            quote(&format!("{BUSY}#{{{MARKER_OPTION}}}"))
        );
        // Markers are `[a-z0-9-]` only (see `FifoDir::marker`), safe inside
        // a format; anything else is never replaced.
        let condition = match replace {
            Some(stale)
                if stale
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                format!("#{{&&:#{{pane_pipe}},#{{!=:#{{{MARKER_OPTION}}},{stale}}}}}")
            }
            _ => "#{pane_pipe}".to_owned(),
        };
        Ok(format!(
            "if-shell -F -t {p} {} {} {}",
            quote(&condition),
            quote(&busy),
            quote(&inner)
        ))
    }

    fn parse_start(&self, blocks: Vec<Block>) -> Result<Started> {
        let not_found = || BridgeError::PaneNotFound(self.pane_id.clone());
        if let Some(bad) = blocks.iter().find(|b| !b.ok) {
            let text = bad.text();
            return Err(if text.contains("can't find") {
                not_found()
            } else {
                BridgeError::Tmux(text)
            });
        }
        // Busy: [if-shell, display]. Told apart by the count, so a pane
        // that shows the busy text cannot fake it.
        if let [_, busy] = blocks.as_slice()
            && let [line] = busy.lines.as_slice()
            && let Some(marker) = line.strip_prefix(BUSY.as_bytes())
        {
            return Ok(Started::Busy(String::from_utf8_lossy(marker).into_owned()));
        }
        // [if-shell, pipe-pane, set, then the capture's blocks].
        if blocks.len() != 3 + CAPTURE_BLOCKS {
            return Err(BridgeError::Protocol(format!(
                "{} reply blocks to pipe-pane",
                blocks.len()
            )));
        }
        Ok(Started::Captured(cursor_of(&blocks[3..])?))
    }

    /// Waits for the pipe command to start: the helper's hand-off, or the
    /// marker byte of `cat` in the FIFO (no helper, or it failed).
    async fn wait_pipe(&mut self) -> Result<()> {
        let timeout = self.bridge.inner_timeout();
        let Some(hand_off) = self.hand_off.take() else {
            let first = tokio::time::timeout(timeout, self.read_raw())
                .await
                .map_err(|_| BridgeError::Timeout(timeout))??;
            return self.take_marker(first);
        };
        let started = tokio::time::timeout(timeout, async {
            let mut listening = true;
            loop {
                tokio::select! {
                    handed = hand_off.receive(), if listening => match handed {
                        Ok(stream) => return Ok(Some(stream)),
                        // The helper fails too and its shell starts `cat`.
                        Err(e) => {
                            tracing::debug!(error = %e, "pipe hand-off failed");
                            listening = false;
                        }
                    },
                    first = self.read_raw() => return self.take_marker(first?).map(|()| None),
                }
            }
        })
        .await
        .map_err(|_| BridgeError::Timeout(timeout))??;
        match started {
            Some(stream) => {
                self.rx = Source::Socket(stream);
                tracing::debug!(pane = %self.pane_id, "pane pipe handed over");
            }
            // No marker either: the pane is closing, the helper is not
            // to blame.
            None if self.eof => {}
            None => self.bridge.pipe_helper_failed(),
        }
        Ok(())
    }

    /// Checks the first read of the FIFO for `cat`'s marker byte.
    fn take_marker(&mut self, first: Option<Vec<u8>>) -> Result<()> {
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

    /// Whether the bytes come straight from tmux's pipe socket (handed over
    /// by the pipe helper) rather than through `cat` and the FIFO.
    pub fn handed_over(&self) -> bool {
        matches!(self.rx, Source::Socket(_))
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

    /// Whether our pipe is still the one tmux has installed (tmux still
    /// holds its end, or our `cat` the FIFO). Drains what is buffered.
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

    /// Removes our marker from the pane and, if `still_ours`, the pipe;
    /// nothing when the marker is not ours (the pipe was replaced, or the
    /// pane is gone).
    fn unpipe_line(&self, still_ours: bool) -> String {
        let p = quote(&self.pane_id);
        let unset = format!("set -p -t {p} -u {MARKER_OPTION}");
        let body = if still_ours {
            format!("pipe-pane -t {p} ; {unset}")
        } else {
            unset
        };
        let condition = format!("#{{==:#{{{MARKER_OPTION}}},{}}}", self.fifo.marker());
        format!("if-shell -F -t {p} {} {}", quote(&condition), quote(&body))
    }

    /// Stops the stream: removes the pipe if it is still ours (never someone
    /// else's) and our marker, and deletes the FIFO.
    pub async fn close(mut self) -> Result<()> {
        let result = if self.closed {
            Ok(())
        } else {
            let ours = self.still_ours();
            let line = self.unpipe_line(ours);
            match self.bridge.group(line).await {
                Ok(blocks) => match blocks.into_iter().find(|b| !b.ok) {
                    // The pane went away meanwhile: nothing to remove.
                    Some(b) if b.text().contains("can't find") => Ok(()),
                    Some(b) => Err(BridgeError::Tmux(b.text())),
                    None => Ok(()),
                },
                Err(BridgeError::NoServer) | Err(BridgeError::ControlExited) => Ok(()),
                Err(e) => Err(e),
            }
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
            let ours = self.still_ours();
            let line = self.unpipe_line(ours);
            if !self.bridge.group_detached(&line)
                && let Ok(handle) = tokio::runtime::Handle::try_current()
            {
                let bridge = self.bridge.clone();
                handle.spawn(async move {
                    let _ = bridge.group(line).await;
                });
            }
        }
        // `fifo` drops after this: the FIFO goes, and the marker leaves the
        // live list only now that its removal from the pane is queued.
    }
}
