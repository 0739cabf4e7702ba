//! `TmuxBridge`: every tmux operation the agent needs, run over one
//! persistent control-mode client that is started on demand.
//!
//! This file holds the control client's lifecycle (start, attach on demand,
//! restart after `%exit`) and the request plumbing every call goes through;
//! the tmux commands themselves are in `commands` (tree, input, sizes,
//! sessions) and the pane output and snapshot orchestration in `screen`.

mod commands;
mod screen;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::control::{Control, Expect, Reply, SpawnArgs};
use crate::control_parser::Block;
use crate::error::{BridgeError, Result};
use crate::notification::Notification;

pub(crate) use screen::lock_snapshots;

/// Every tmux call finishes (or fails) within this time.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Input bytes per `send-keys -H` command; a 16 KiB input becomes 8 commands
/// written in one go.
pub const INPUT_BYTES_PER_COMMAND: usize = 2048;

/// Capacity of the notification broadcast; a slow receiver sees `Lagged`.
const NOTIFY_CAPACITY: usize = 256;

/// Automatic restarts of the control client allowed per [`RESTART_WINDOW`];
/// beyond that it is restarted only when a call needs it.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(10);

/// How the bridge reaches tmux.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// `tmux -L` socket name (the agent uses `muxlink`).
    pub socket_name: String,
    /// The tmux program.
    pub tmux_binary: PathBuf,
    /// `tmux -f` config file, used only when the bridge itself starts the
    /// server (`create_session` with no server). Tests pass `/dev/null`.
    pub config_file: Option<PathBuf>,
    /// Limit for each call.
    pub timeout: Duration,
    /// The pane pipe helper: a program and its leading arguments, run by
    /// `pipe-pane` as `<program> <args…> <socket path>`, that hands tmux's
    /// pipe to the bridge with [`hand_off_pane_pipe`](crate::hand_off_pane_pipe)
    /// so no `cat` copies pane output on its way (the agent passes its own
    /// binary and `__pane-pipe`). None, or a helper that fails: `cat` into
    /// the FIFO, as before. Words holding `'`, `#` or a newline are not used.
    pub pipe_helper: Option<Vec<String>>,
}

impl BridgeConfig {
    /// Defaults for a socket name: `tmux` from `PATH`, user config, 10 s.
    pub fn new(socket_name: &str) -> Self {
        BridgeConfig {
            socket_name: socket_name.to_owned(),
            tmux_binary: PathBuf::from("tmux"),
            config_file: None,
            timeout: CALL_TIMEOUT,
            pipe_helper: None,
        }
    }
}

/// A pane whose size the bridge forced, and what to restore.
struct Forced {
    window_id: String,
    /// The window layout before a pane resize (multi-pane windows only).
    layout: Option<String>,
}

pub(crate) struct Inner {
    cfg: BridgeConfig,
    control: tokio::sync::Mutex<Option<Arc<Control>>>,
    notify: broadcast::Sender<Notification>,
    spawned: AtomicU64,
    sentinel: AtomicU64,
    snapshots: Mutex<HashMap<String, Vec<u8>>>,
    forced: Mutex<HashMap<String, Forced>>,
    restarts: Mutex<VecDeque<Instant>>,
    /// Set once the pipe helper failed to hand a pipe over; later pipes use
    /// `cat` without trying it.
    helper_failed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps; a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The agent's connection to its tmux server. Cheap to clone.
///
/// **No server / no sessions.** A control client must be attached to a
/// session, so the bridge starts it on demand: [`TmuxBridge::start`] tries
/// once and succeeds even when no server runs; each later call starts it if
/// needed. When it exits (`%exit`: server gone, or its session destroyed) the
/// bridge broadcasts [`Notification::ControlExited`] and at once tries one
/// restart (→ [`Notification::ControlRestarted`]); if nothing is left to
/// attach to it stays down until the next call. Nothing is polled. With no
/// socket file, calls answer without starting any process (`list_sessions`
/// → empty list, `pane_exists` → false); with a socket but no session, one
/// short `tmux -C attach` runs per call. Commands that a dying client never
/// ran are sent again once over a new client. Call [`TmuxBridge::connect`]
/// when you learn that a server appeared (the CLI's SIGUSR1) to get
/// notifications flowing again; `create_session` starts a server itself.
///
/// **Attached count.** The control client is attached to one session (with
/// `ignore-size`, so it never affects sizes); the tree does not count it.
#[derive(Clone)]
pub struct TmuxBridge {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TmuxBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TmuxBridge")
            .field("socket", &self.inner.cfg.socket_name)
            .finish()
    }
}

fn map_pane_error(pane_id: &str, e: BridgeError) -> BridgeError {
    match e {
        BridgeError::Tmux(msg) if msg.contains("can't find") => {
            BridgeError::PaneNotFound(pane_id.to_owned())
        }
        BridgeError::NoServer => BridgeError::PaneNotFound(pane_id.to_owned()),
        e => e,
    }
}

fn first_line(block: &Block) -> Result<String> {
    block
        .lines
        .first()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .ok_or_else(|| BridgeError::Protocol("empty reply".into()))
}

fn ok_block(block: Block) -> Result<Block> {
    if block.ok {
        Ok(block)
    } else {
        Err(BridgeError::Tmux(block.text()))
    }
}

impl TmuxBridge {
    /// Creates the bridge for `tmux -L socket_name` and tries to attach its
    /// control client. No running server is not an error.
    pub async fn start(socket_name: &str) -> Result<TmuxBridge> {
        Self::start_with(BridgeConfig::new(socket_name)).await
    }

    /// Like [`TmuxBridge::start`] with every setting.
    ///
    /// Also removes the FIFO directories that agents killed by SIGKILL left
    /// in the temp dir (see [`PaneOutput`](crate::PaneOutput) for their pipes).
    pub async fn start_with(cfg: BridgeConfig) -> Result<TmuxBridge> {
        crate::fifo_dir::remove_dead_fifo_dirs();
        let (notify, _) = broadcast::channel(NOTIFY_CAPACITY);
        let bridge = TmuxBridge {
            inner: Arc::new(Inner {
                cfg,
                control: tokio::sync::Mutex::new(None),
                notify,
                spawned: AtomicU64::new(0),
                sentinel: AtomicU64::new(0),
                snapshots: Mutex::new(HashMap::new()),
                forced: Mutex::new(HashMap::new()),
                restarts: Mutex::new(VecDeque::new()),
                helper_failed: AtomicBool::new(false),
            }),
        };
        match bridge.connect().await {
            Ok(_) | Err(BridgeError::NoServer) => Ok(bridge),
            Err(e) => Err(e),
        }
    }

    /// Attaches the control client if it is not attached. Ok(true) when one
    /// is attached now, Ok(false) when no server or session exists.
    pub async fn connect(&self) -> Result<bool> {
        let timeout = self.inner.cfg.timeout;
        match tokio::time::timeout(timeout, self.control()).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(BridgeError::NoServer)) => Ok(false),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BridgeError::Timeout(timeout)),
        }
    }

    /// Change notifications from tmux and about the control client.
    pub fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.inner.notify.subscribe()
    }

    /// Processes this bridge has started (control clients and the one-off
    /// `new-session` when no server runs). Input never adds to it.
    pub fn processes_spawned(&self) -> u64 {
        self.inner.spawned.load(Ordering::SeqCst)
    }

    /// Process id of the current control client, if one is attached.
    pub async fn control_pid(&self) -> Option<u32> {
        let guard = self.inner.control.lock().await;
        guard.as_ref().filter(|c| c.alive()).and_then(|c| c.pid())
    }

    fn spawn_args(&self) -> SpawnArgs<'_> {
        SpawnArgs {
            tmux: &self.inner.cfg.tmux_binary,
            socket: &self.inner.cfg.socket_name,
            config_file: self.inner.cfg.config_file.as_deref(),
            spawned: &self.inner.spawned,
        }
    }

    /// The live control client, started if needed.
    async fn control(&self) -> Result<Arc<Control>> {
        let mut guard = self.inner.control.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| c.alive()) {
            return Ok(c.clone());
        }
        *guard = None;
        let c = spawn_control(&self.inner).await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs command lines with the call timeout. If the control client
    /// exited before running them (its session was just destroyed), they are
    /// sent once more over a new client.
    pub(crate) async fn request(&self, lines: Vec<(String, Expect)>) -> Result<Vec<Reply>> {
        let timeout = self.inner.cfg.timeout;
        let work = async {
            let c = self.control().await?;
            let again: Vec<(String, Expect)> =
                lines.iter().map(|(l, e)| (l.clone(), e.clone())).collect();
            match c.request(lines).await {
                Err(BridgeError::ControlExited) => self.control().await?.request(again).await,
                other => other,
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| BridgeError::Timeout(timeout))?
    }

    /// One command; a tmux error becomes [`BridgeError::Tmux`].
    pub(crate) async fn call(&self, line: String) -> Result<(Block, Option<String>)> {
        let reply = self
            .request(vec![(line, Expect::One)])
            .await?
            .pop()
            .ok_or_else(|| BridgeError::Protocol("missing reply".into()))?;
        let session = reply.session;
        let block = reply
            .blocks
            .into_iter()
            .next()
            .ok_or_else(|| BridgeError::Protocol("missing reply".into()))?;
        Ok((ok_block(block)?, session))
    }

    /// A fresh token ending a group reply.
    fn sentinel(&self) -> Expect {
        let n = self.inner.sentinel.fetch_add(1, Ordering::Relaxed);
        Expect::Sentinel(format!("muxlink-end-{}-{n}", std::process::id()).into_bytes())
    }

    /// A command line whose reply has a varying number of blocks; returns
    /// all of them (see `Expect::Sentinel`).
    pub(crate) async fn group(&self, line: String) -> Result<Vec<Block>> {
        let reply = self
            .request(vec![(line, self.sentinel())])
            .await?
            .pop()
            .ok_or_else(|| BridgeError::Protocol("missing reply".into()))?;
        Ok(reply.blocks)
    }

    pub(crate) fn inner_timeout(&self) -> Duration {
        self.inner.cfg.timeout
    }

    /// The pipe helper's words, unless none is configured, one of its
    /// words is unsafe inside a tmux format and shell quotes, or it has
    /// failed before.
    pub(crate) fn pipe_helper(&self) -> Option<&[String]> {
        if self.inner.helper_failed.load(Ordering::Relaxed) {
            return None;
        }
        let words = self.inner.cfg.pipe_helper.as_deref()?;
        let safe = !words.is_empty() && words.iter().all(|w| crate::quote::fits_shell_quotes(w));
        safe.then_some(words)
    }

    /// Records that the pipe helper did not hand a pipe over (once, with a
    /// warning): later pipes go through `cat`.
    pub(crate) fn pipe_helper_failed(&self) {
        if !self.inner.helper_failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                helper = ?self.inner.cfg.pipe_helper,
                "the pane pipe helper did not hand over its pipe; pane output goes through cat from now on"
            );
        }
    }

    /// Queues a command line like [`TmuxBridge::group`] without waiting
    /// (for `Drop`); false if not possible.
    pub(crate) fn group_detached(&self, line: &str) -> bool {
        match self.inner.control.try_lock() {
            Ok(guard) => guard
                .as_ref()
                .filter(|c| c.alive())
                .is_some_and(|c| c.request_detached(line, self.sentinel())),
            Err(_) => false,
        }
    }
}

/// Starts a control client whose exit triggers one immediate restart attempt.
///
/// Boxed: the exit callback spawns `restart`, which awaits this function
/// again, and the box with its `Send` bound ends that type cycle.
fn spawn_control(
    inner: &Arc<Inner>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<Control>>> + Send + '_>> {
    Box::pin(spawn_control_inner(inner))
}

async fn spawn_control_inner(inner: &Arc<Inner>) -> Result<Arc<Control>> {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let args = SpawnArgs {
        tmux: &inner.cfg.tmux_binary,
        socket: &inner.cfg.socket_name,
        config_file: inner.cfg.config_file.as_deref(),
        spawned: &inner.spawned,
    };
    Control::spawn(
        &args,
        inner.notify.clone(),
        Box::new(move |was_ready, reason| {
            if !was_ready {
                // A failed attach is reported to its caller, not broadcast.
                return;
            }
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let _ = inner.notify.send(Notification::ControlExited { reason });
            tokio::spawn(restart(inner));
        }),
    )
    .await
}

/// One restart attempt after an exit, rate-limited.
async fn restart(inner: Arc<Inner>) {
    {
        let mut r = lock(&inner.restarts);
        let now = Instant::now();
        while r
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            r.pop_front();
        }
        if r.len() >= MAX_RESTARTS {
            tracing::warn!("tmux control client keeps exiting; restarting on demand only");
            return;
        }
        r.push_back(now);
    }
    let mut guard = inner.control.lock().await;
    if guard.as_ref().is_some_and(|c| c.alive()) {
        // A caller already started a new one.
        return;
    }
    *guard = None;
    match tokio::time::timeout(inner.cfg.timeout, spawn_control(&inner)).await {
        Ok(Ok(c)) => {
            *guard = Some(c);
            let _ = inner.notify.send(Notification::ControlRestarted);
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "tmux control client not restarted"),
        Err(_) => tracing::warn!("tmux control client restart timed out"),
    }
}
