//! One tmux control-mode client process (`tmux -L <socket> -C attach-session`):
//! a writer task feeding its stdin and a reader task matching reply blocks to
//! callers in FIFO order and broadcasting notifications.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::control_parser::{Block, ControlParser, Parsed};
use crate::error::{BridgeError, Result};
use crate::notification::{Notification, TREE_SUBSCRIPTION, TREE_SUBSCRIPTION_FORMAT};
use crate::quote::quote;

/// Queue depth between callers and the writer task.
const SUBMIT_QUEUE: usize = 256;

/// What ends a caller's reply.
#[derive(Clone)]
pub(crate) enum Expect {
    /// The next block with flags 1.
    One,
    /// All blocks up to one whose only line is this token (the reply of a
    /// `display -p <token>` sent on the following line). Used for command
    /// lines whose number of blocks varies (`if-shell`, `a ; b` that stops at
    /// the first error).
    Sentinel(Vec<u8>),
}

/// A finished reply: its blocks and the session the control client followed
/// when the reply was complete.
pub(crate) struct Reply {
    pub blocks: Vec<Block>,
    pub session: Option<String>,
}

struct Pending {
    expect: Expect,
    blocks: Vec<Block>,
    tx: Option<oneshot::Sender<Result<Reply>>>,
}

impl Pending {
    fn finish(mut self, reply: Result<Reply>) {
        if let Some(tx) = self.tx.take() {
            // The caller may have timed out and gone; its reply is dropped.
            let _ = tx.send(reply);
        }
    }
}

#[derive(Default)]
struct QueueState {
    dead: bool,
    pending: VecDeque<Pending>,
    session: Option<String>,
    startup_error: Option<String>,
    exit_reason: Option<String>,
}

struct Shared {
    state: Mutex<QueueState>,
    ready: AtomicBool,
    /// Told the outcome of the startup `attach-session` (its flags-0 reply).
    attached_tx: Mutex<Option<oneshot::Sender<bool>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A poisoned lock only means another thread panicked mid-update of a
        // plain queue; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Submit {
    bytes: Vec<u8>,
    pending: Vec<Pending>,
}

/// Called once when the client process is gone: (ready before?, tmux's reason).
pub(crate) type OnExit = Box<dyn FnOnce(bool, Option<String>) + Send>;

/// A running control client.
pub(crate) struct Control {
    pid: Option<u32>,
    submit_tx: mpsc::Sender<Submit>,
    shared: Arc<Shared>,
}

/// How to start tmux.
pub(crate) struct SpawnArgs<'a> {
    pub tmux: &'a std::path::Path,
    pub socket: &'a str,
    pub config_file: Option<&'a std::path::Path>,
    /// Counts the processes started.
    pub spawned: &'a std::sync::atomic::AtomicU64,
}

/// Base command for this socket, with `$TMUX` removed so an agent started
/// from inside a tmux pane is not refused as a nested client.
pub(crate) fn tmux_command(args: &SpawnArgs<'_>) -> Command {
    let mut cmd = Command::new(args.tmux);
    cmd.env_remove("TMUX").env_remove("TMUX_PANE");
    cmd.arg("-L").arg(args.socket);
    if let Some(f) = args.config_file {
        cmd.arg("-f").arg(f);
    }
    cmd
}

/// Where tmux puts the socket for `-L name`: `$TMUX_TMPDIR` (or `/tmp`)
/// `/tmux-<uid>/name`.
pub(crate) fn socket_path(name: &str) -> std::path::PathBuf {
    let base = std::env::var_os("TMUX_TMPDIR")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::path::Path::new(&base)
        .join(format!("tmux-{uid}"))
        .join(name)
}

impl Control {
    /// Starts `tmux -C attach-session -f no-output,ignore-size` and returns
    /// once it is attached and its tree subscription is set. No server or no
    /// session → [`BridgeError::NoServer`].
    ///
    /// The client flags are given to the attach itself, never set later by
    /// `refresh-client -f`: in tmux 3.3a, turning `no-output` on drops the
    /// client's per-pane output state but leaves the output blocks already
    /// queued for it, and every later line (command replies included) waits
    /// behind such an orphaned block forever. A pane printing while the
    /// client attaches thus hung the start-up. Attached with the flag, the
    /// client never gets any pane output queued.
    pub(crate) async fn spawn(
        args: &SpawnArgs<'_>,
        notify: broadcast::Sender<Notification>,
        on_exit: OnExit,
    ) -> Result<Arc<Control>> {
        // No socket, no server: answer without a process. (`attach-session`
        // would start a server that exits at once for lack of sessions and
        // could race a `new-session` started right after.)
        if !socket_path(args.socket).exists() {
            return Err(BridgeError::NoServer);
        }
        let mut cmd = tmux_command(args);
        // `-N`: never start a server. Between the socket check above and the
        // attach, the server may exit; a server started by our attach would
        // exit again at once (no sessions) and break a `new-session` that a
        // user runs at that moment ("server exited unexpectedly").
        cmd.args(["-N", "-C", "attach-session", "-f", "no-output,ignore-size"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        args.spawned.fetch_add(1, Ordering::SeqCst);
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BridgeError::Protocol("control client without pipes".into()));
        };
        let (attached_tx, attached_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState::default()),
            ready: AtomicBool::new(false),
            attached_tx: Mutex::new(Some(attached_tx)),
        });
        let (submit_tx, submit_rx) = mpsc::channel(SUBMIT_QUEUE);
        tokio::spawn(writer_task(stdin, submit_rx, shared.clone()));
        let reader_shared = shared.clone();
        tokio::spawn(async move {
            reader_task(stdout, reader_shared.clone(), notify).await;
            // The process has closed its output; reap it.
            let _ = child.wait().await;
            let reason = reader_shared.lock().exit_reason.take();
            on_exit(reader_shared.ready.load(Ordering::SeqCst), reason);
        });
        let control = Arc::new(Control {
            pid,
            submit_tx,
            shared,
        });
        // Commands sent before the attach completed would fail with "no
        // current client", so wait for the attach reply first.
        if !attached_rx.await.unwrap_or(false) {
            let why = control.shared.lock().startup_error.clone();
            tracing::debug!(?why, "tmux control client could not attach");
            return Err(BridgeError::NoServer);
        }
        // Tree changes in every session, checked by tmux itself; a tmux
        // without subscriptions still works, with fewer events.
        let subscribe = format!(
            "refresh-client -B {}",
            quote(&format!("{TREE_SUBSCRIPTION}::{TREE_SUBSCRIPTION_FORMAT}"))
        );
        match control.request(vec![(subscribe, Expect::One)]).await {
            Ok(replies) => {
                if let Some(bad) = replies.iter().flat_map(|r| &r.blocks).find(|b| !b.ok) {
                    tracing::debug!(error = %bad.text(), "tree subscription failed");
                }
                control.shared.ready.store(true, Ordering::SeqCst);
                Ok(control)
            }
            Err(BridgeError::ControlExited) => {
                // The session went away right after the attach.
                let why = control.shared.lock().startup_error.clone();
                tracing::debug!(?why, "tmux control client could not attach");
                Err(BridgeError::NoServer)
            }
            Err(e) => Err(e),
        }
    }

    /// The client process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// False once the process has ended.
    pub(crate) fn alive(&self) -> bool {
        !self.shared.lock().dead
    }

    /// Sends command lines (each one tmux command line, no newline inside)
    /// in one write and waits for every reply. [`BridgeError::ControlExited`]
    /// means none of them ran (safe to repeat on a new client). Cancelling the returned future
    /// is safe: the replies are then dropped when they arrive.
    pub(crate) async fn request(&self, lines: Vec<(String, Expect)>) -> Result<Vec<Reply>> {
        let mut bytes = Vec::new();
        let mut pending = Vec::with_capacity(lines.len());
        let mut rxs = Vec::with_capacity(lines.len());
        for (line, expect) in lines {
            encode(&line, &expect, &mut bytes)?;
            let (tx, rx) = oneshot::channel();
            pending.push(Pending {
                expect,
                blocks: Vec::new(),
                tx: Some(tx),
            });
            rxs.push(rx);
        }
        self.submit_tx
            .send(Submit { bytes, pending })
            .await
            .map_err(|_| BridgeError::ControlExited)?;
        let mut replies = Vec::with_capacity(rxs.len());
        for (i, rx) in rxs.into_iter().enumerate() {
            match rx.await.map_err(|_| BridgeError::ControlExited)? {
                Ok(reply) => replies.push(reply),
                // Later lines: earlier ones ran, so the request as a whole
                // must not be repeated.
                Err(BridgeError::ControlExited) if i > 0 => {
                    return Err(BridgeError::Protocol(
                        "control client exited after part of the commands ran".into(),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(replies)
    }

    /// Queues one command line without waiting for it (used from `Drop`).
    /// Returns false when the queue is full or the client is gone.
    pub(crate) fn request_detached(&self, line: &str, expect: Expect) -> bool {
        let mut bytes = Vec::new();
        if encode(line, &expect, &mut bytes).is_err() {
            return false;
        }
        self.submit_tx
            .try_send(Submit {
                bytes,
                pending: vec![Pending {
                    expect,
                    blocks: Vec::new(),
                    tx: None,
                }],
            })
            .is_ok()
    }
}

/// Appends one command line (and the sentinel's own line) to `bytes`.
fn encode(line: &str, expect: &Expect, bytes: &mut Vec<u8>) -> Result<()> {
    if line.contains('\n') {
        return Err(BridgeError::Protocol("newline inside a command".into()));
    }
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    if let Expect::Sentinel(token) = expect {
        // The sentinel's own command follows on its own line, so it runs
        // even when the line before stopped at an error.
        bytes.extend_from_slice(b"display -p ");
        bytes.extend_from_slice(token);
        bytes.push(b'\n');
    }
    Ok(())
}

async fn writer_task(mut stdin: ChildStdin, mut rx: mpsc::Receiver<Submit>, shared: Arc<Shared>) {
    while let Some(submit) = rx.recv().await {
        {
            let mut st = shared.lock();
            if st.dead {
                drop(st);
                for p in submit.pending {
                    p.finish(Err(BridgeError::ControlExited));
                }
                continue;
            }
            // Registered before writing, so the reader never sees a reply
            // without its waiter.
            st.pending.extend(submit.pending);
        }
        if let Err(e) = stdin.write_all(&submit.bytes).await {
            // The reader sees the end of output and fails every waiter.
            tracing::debug!(error = %e, "tmux control client stdin closed");
            break;
        }
    }
    // Dropping stdin ends the control client.
}

async fn reader_task(
    stdout: ChildStdout,
    shared: Arc<Shared>,
    notify: broadcast::Sender<Notification>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut parser = ControlParser::default();
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match parser.feed_line(&line) {
            None => {}
            Some(Parsed::Block(block)) if block.flags == 0 => {
                // The startup command's reply (or a hook's): not a caller's.
                if !block.ok {
                    shared.lock().startup_error = Some(block.text());
                }
                let tx = shared
                    .attached_tx
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                if let Some(tx) = tx {
                    let _ = tx.send(block.ok);
                }
            }
            Some(Parsed::Block(block)) => complete(&shared, block),
            Some(Parsed::Notification(Notification::ControlExited { reason })) => {
                // tmux runs nothing more from this client: refuse new work at
                // once so callers move to a new client.
                let mut st = shared.lock();
                st.exit_reason = reason;
                st.dead = true;
            }
            Some(Parsed::Notification(n)) => {
                if let Notification::SessionChanged { session_id, .. } = &n {
                    shared.lock().session = Some(session_id.clone());
                }
                // Nobody listening is fine.
                let _ = notify.send(n);
            }
        }
    }
    // Dropping an unsent startup sender tells `spawn` the attach failed.
    drop(
        shared
            .attached_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(),
    );
    let drained: Vec<Pending> = {
        let mut st = shared.lock();
        st.dead = true;
        st.pending.drain(..).collect()
    };
    for p in drained {
        // tmux answers in order and writes `%exit` after the last answer, so a
        // command without any reply block was never run; one that got part of
        // its blocks did run.
        let err = if p.blocks.is_empty() {
            BridgeError::ControlExited
        } else {
            BridgeError::Protocol("control client exited in the middle of a reply".into())
        };
        p.finish(Err(err));
    }
}

fn complete(shared: &Shared, block: Block) {
    let mut st = shared.lock();
    let session = st.session.clone();
    let Some(front) = st.pending.front_mut() else {
        tracing::warn!("tmux reply without a waiting command");
        return;
    };
    let done = match &front.expect {
        Expect::One => {
            front.blocks.push(block);
            true
        }
        Expect::Sentinel(token) => {
            if block.ok && block.lines.len() == 1 && block.lines[0] == *token {
                true
            } else {
                front.blocks.push(block);
                false
            }
        }
    };
    if done && let Some(mut p) = st.pending.pop_front() {
        drop(st);
        let blocks = std::mem::take(&mut p.blocks);
        p.finish(Ok(Reply { blocks, session }));
    }
}
