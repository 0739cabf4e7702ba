//! The protocol handler (terminal-protocol.md §6): maps each authenticated
//! request to the tmux bridge, holds at most one attachment per peer and streams
//! the attached pane's output with backpressure.
//!
//! Call contract: `handle` is called in arrival order per peer (peer-manager
//! guarantees it); `peer_disconnected` and `end_all` may run concurrently with it.
//! Attachments are identified by a generation number so that whoever ends one
//! (request, pane exit, send failure, disconnect) does so exactly once.

pub mod output;
mod tree_watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use terminal_protocol::{
    Attach, Compressor, ErrorCode, Event, MAX_DIM, MAX_INPUT_SIZE, MIN_DIM, Request,
    valid_target_id,
};
use tmux_bridge::{PaneOutput, TitleFilter, TmuxBridge};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use output::{OutputError, data_budget, output_events};

/// The agent version reported in `sessions`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long ending an attachment waits for its output task to close the pipe.
const PUMP_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handler needs from a connected phone (implemented by `peer_manager::Peer`).
#[async_trait::async_trait]
pub trait PeerLink: Send + Sync + 'static {
    /// The phone's device id.
    fn device_id(&self) -> &str;
    /// Sends one event, waiting for buffer room (backpressure).
    async fn send_event(&self, event: &Event) -> Result<(), String>;
    /// Largest message the phone accepts.
    fn max_message_size(&self) -> usize;
}

#[async_trait::async_trait]
impl PeerLink for peer_manager::Peer {
    fn device_id(&self) -> &str {
        &self.device_id
    }
    async fn send_event(&self, event: &Event) -> Result<(), String> {
        self.send_message(event).await.map_err(|e| e.to_string())
    }
    fn max_message_size(&self) -> usize {
        peer_manager::Peer::max_message_size(self)
    }
}

/// One peer's attachment (spec: {pane, output stream, compressor, last dims}).
/// The stream and compressor live in the output task.
struct Attachment {
    generation: u64,
    pane_id: String,
    cols: u16,
    rows: u16,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

struct Slot {
    link: Arc<dyn PeerLink>,
    attachment: Option<Attachment>,
}

struct Inner {
    bridge: TmuxBridge,
    slots: Mutex<HashMap<String, Slot>>,
    next_generation: AtomicU64,
    changed: tokio::sync::Notify,
}

/// The muxlink protocol handler over one tmux bridge. Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    inner: Arc<Inner>,
}

fn same_link(a: &Arc<dyn PeerLink>, b: &Arc<dyn PeerLink>) -> bool {
    std::ptr::eq(Arc::as_ptr(a) as *const (), Arc::as_ptr(b) as *const ())
}

/// Why an output task stopped on its own.
enum PumpExit {
    Cancelled,
    PaneGone,
    SendFailed,
    CompressFailed,
}

impl Handler {
    /// A handler over `bridge`.
    pub fn new(bridge: TmuxBridge) -> Self {
        Handler {
            inner: Arc::new(Inner {
                bridge,
                slots: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(1),
                changed: tokio::sync::Notify::new(),
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A poisoned lock only means another task panicked mid-update; the map
        // itself stays consistent (every update is a single insert/remove).
        self.inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resolves after the next change of peers or attachments (a change made
    /// while nobody waits is remembered for the next call); for status reporting.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// (device id, attached pane) for every peer the handler knows.
    pub fn attachments(&self) -> Vec<(String, Option<String>)> {
        self.slots()
            .iter()
            .map(|(id, s)| (id.clone(), s.attachment.as_ref().map(|a| a.pane_id.clone())))
            .collect()
    }

    /// Handles one request of `link` (terminal-protocol.md §6).
    pub async fn handle(&self, link: Arc<dyn PeerLink>, request: Request) {
        self.register(&link).await;
        match request {
            Request::ListSessions => self.list_sessions(&link).await,
            Request::Attach(a) => self.attach(&link, a).await,
            Request::Detach => {
                self.end_attachment(link.device_id()).await;
                send(&link, &Event::Detached).await;
            }
            Request::Input { data } => self.input(&link, &data).await,
            Request::Resize { cols, rows } => self.resize(&link, cols, rows).await,
            Request::KillSession { session } => self.kill_session(&link, session).await,
            Request::Ping => send(&link, &Event::Pong { latency: 0 }).await,
            Request::CreateSession => self.create_session(&link).await,
            // Handled by the peer manager's auth gate; never answered here.
            Request::AuthResponse { .. } => {}
        }
    }

    /// The peer of `device_id` went away: end its attachment (releases the size).
    pub async fn peer_disconnected(&self, device_id: &str) {
        let slot = self.slots().remove(device_id);
        if let Some(slot) = slot {
            self.finish(slot.attachment).await;
        }
        self.inner.changed.notify_one();
    }

    /// Ends every attachment (shutdown, reload).
    pub async fn end_all(&self) {
        let all: Vec<Slot> = self.slots().drain().map(|(_, s)| s).collect();
        for slot in all {
            self.finish(slot.attachment).await;
        }
    }

    /// Makes `link` the current peer of its device; a different (reconnected)
    /// peer object replaces the old one, whose attachment ends.
    async fn register(&self, link: &Arc<dyn PeerLink>) {
        let old = {
            let mut slots = self.slots();
            match slots.get_mut(link.device_id()) {
                Some(slot) if same_link(&slot.link, link) => return,
                Some(slot) => {
                    slot.link = link.clone();
                    slot.attachment.take()
                }
                None => {
                    slots.insert(
                        link.device_id().to_string(),
                        Slot {
                            link: link.clone(),
                            attachment: None,
                        },
                    );
                    None
                }
            }
        };
        self.finish(old).await;
        // A new or replaced peer changes what `muxlink status` reports.
        self.inner.changed.notify_one();
    }

    fn attached_pane(&self, link: &Arc<dyn PeerLink>) -> Option<(u64, String, u16, u16)> {
        let slots = self.slots();
        let slot = slots.get(link.device_id())?;
        if !same_link(&slot.link, link) {
            return None;
        }
        slot.attachment
            .as_ref()
            .map(|a| (a.generation, a.pane_id.clone(), a.cols, a.rows))
    }

    /// Removes the attachment of `device_id` (any generation) from the map.
    fn take_attachment(&self, device_id: &str) -> Option<Attachment> {
        self.slots()
            .get_mut(device_id)
            .and_then(|s| s.attachment.take())
    }

    /// Removes the attachment only if it is still generation `generation`.
    fn take_if(&self, device_id: &str, generation: u64) -> Option<Attachment> {
        let mut slots = self.slots();
        let slot = slots.get_mut(device_id)?;
        if slot.attachment.as_ref().map(|a| a.generation) == Some(generation) {
            slot.attachment.take()
        } else {
            None
        }
    }

    async fn end_attachment(&self, device_id: &str) {
        let a = self.take_attachment(device_id);
        self.finish(a).await;
    }

    /// Stops the output task (which closes the pane pipe) and releases the size.
    async fn finish(&self, attachment: Option<Attachment>) {
        let Some(mut a) = attachment else { return };
        a.cancel.cancel();
        if let Some(task) = a.task.take()
            && tokio::time::timeout(PUMP_STOP_TIMEOUT, task).await.is_err()
        {
            tracing::warn!(pane = %a.pane_id, "output task did not stop in time");
        }
        if let Err(e) = self.inner.bridge.release_size(&a.pane_id).await {
            tracing::debug!(pane = %a.pane_id, error = %e, "release size failed");
        }
        self.inner.changed.notify_one();
        tracing::info!(pane = %a.pane_id, "attachment ended");
    }

    async fn send_sessions(&self, link: &Arc<dyn PeerLink>) {
        match self.inner.bridge.list_sessions().await {
            Ok(sessions) => send(link, &sessions_event(sessions)).await,
            Err(e) => {
                tracing::warn!(error = %e, "list sessions failed");
                send_error(
                    link,
                    ErrorCode::ListSessionsFailed,
                    "cannot list tmux sessions",
                )
                .await;
            }
        }
    }

    async fn list_sessions(&self, link: &Arc<dyn PeerLink>) {
        let sessions = match self.inner.bridge.list_sessions().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "list sessions failed");
                send_error(
                    link,
                    ErrorCode::ListSessionsFailed,
                    "cannot list tmux sessions",
                )
                .await;
                return;
            }
        };
        if let Some((generation, pane, _, _)) = self.attached_pane(link) {
            let present = sessions
                .iter()
                .flat_map(|s| &s.windows)
                .flat_map(|w| &w.panes)
                .any(|p| p.id == pane);
            if !present && let Some(a) = self.take_if(link.device_id(), generation) {
                send(link, &Event::PaneClosed { pane_id: pane }).await;
                self.finish(Some(a)).await;
            }
        }
        send(link, &sessions_event(sessions)).await;
    }

    async fn attach(&self, link: &Arc<dyn PeerLink>, a: Attach) {
        let dims_ok = |v: u16| (MIN_DIM..=MAX_DIM).contains(&v);
        if !valid_target_id(&a.pane_id) || !dims_ok(a.cols) || !dims_ok(a.rows) {
            send_error(link, ErrorCode::AttachFailed, "invalid pane id or size").await;
            return;
        }
        self.end_attachment(link.device_id()).await;
        let bridge = &self.inner.bridge;
        let pane = a.pane_id.clone();
        // Resize first so the redraw it causes is not streamed (§6 step 3).
        if let Err(e) = bridge.force_size(&pane, a.cols, a.rows).await {
            tracing::info!(pane = %pane, error = %e, "resize before attach failed");
        }
        let mut output = match bridge.open_output(&pane).await {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(pane = %pane, error = %e, "open output failed");
                let _ = bridge.release_size(&pane).await;
                if matches!(bridge.pane_exists(&pane).await, Ok(false)) {
                    send(link, &Event::PaneClosed { pane_id: pane }).await;
                    self.send_sessions(link).await;
                } else {
                    send_error(
                        link,
                        ErrorCode::AttachFailed,
                        &format!("cannot attach to pane {pane}"),
                    )
                    .await;
                }
                return;
            }
        };
        let deflate = a.compression.as_deref() == Some("deflate");
        let mut compressor = deflate.then(Compressor::new);
        let ok = link
            .send_event(&Event::Attached {
                pane_id: pane.clone(),
                compression: deflate.then(|| "deflate".to_string()),
            })
            .await
            .is_ok();
        // Screen snapshot as the first output (§6 steps 7-8).
        let snapshot_result = if ok {
            // The bridge captures the screen atomically with the pipe start.
            let snap = match output.take_snapshot() {
                Some(s) => Ok(s),
                None => bridge.snapshot(&pane).await,
            };
            match snap {
                Ok(bytes) => {
                    send_output(link, compressor.as_mut(), &bytes, &CancellationToken::new()).await
                }
                Err(e) => {
                    tracing::info!(pane = %pane, error = %e, "snapshot failed");
                    Ok(())
                }
            }
        } else {
            Err(SendFail::Send)
        };
        match snapshot_result {
            Ok(()) => {}
            Err(fail) => {
                close_output(output).await;
                let _ = bridge.release_size(&pane).await;
                if matches!(fail, SendFail::Compress) {
                    send_error(
                        link,
                        ErrorCode::CompressionFailed,
                        "output compression failed",
                    )
                    .await;
                }
                return;
            }
        }
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let attachment = Attachment {
            generation,
            pane_id: pane.clone(),
            cols: a.cols,
            rows: a.rows,
            cancel: cancel.clone(),
            task: None,
        };
        // Register before spawning so the task's own end finds its entry.
        let registered = {
            let mut slots = self.slots();
            match slots.get_mut(link.device_id()) {
                Some(slot) if same_link(&slot.link, link) => {
                    slot.attachment = Some(attachment);
                    true
                }
                _ => false,
            }
        };
        if !registered {
            // The peer went away while we attached.
            close_output(output).await;
            let _ = bridge.release_size(&pane).await;
            return;
        }
        let handler = self.clone();
        let link2 = link.clone();
        let task = tokio::spawn(async move {
            let exit = pump(&link2, &mut output, compressor.as_mut(), &cancel).await;
            close_output(output).await;
            handler.pump_ended(&link2, generation, &pane, exit).await;
        });
        let mut slots = self.slots();
        match slots
            .get_mut(link.device_id())
            .and_then(|s| s.attachment.as_mut())
            .filter(|a| a.generation == generation)
        {
            Some(a) => a.task = Some(task),
            // Already ended (pane exit or a concurrent disconnect): it was cancelled.
            None => drop(task),
        }
        self.inner.changed.notify_one();
        tracing::info!(pane = %a.pane_id, cols = a.cols, rows = a.rows, deflate, "attached");
    }

    /// An output task stopped: if it still owns its attachment, end it and tell the phone why.
    async fn pump_ended(
        &self,
        link: &Arc<dyn PeerLink>,
        generation: u64,
        pane: &str,
        exit: PumpExit,
    ) {
        if matches!(exit, PumpExit::Cancelled) {
            return;
        }
        // Dropping the entry (not `finish`): its task handle is this very task.
        if self.take_if(link.device_id(), generation).is_none() {
            return;
        }
        let _ = self.inner.bridge.release_size(pane).await;
        match exit {
            PumpExit::PaneGone => {
                tracing::info!(pane, "pane closed");
                send(
                    link,
                    &Event::PaneClosed {
                        pane_id: pane.to_string(),
                    },
                )
                .await;
                self.send_sessions(link).await;
            }
            PumpExit::CompressFailed => {
                send_error(
                    link,
                    ErrorCode::CompressionFailed,
                    "output compression failed",
                )
                .await;
            }
            PumpExit::SendFailed | PumpExit::Cancelled => {
                tracing::info!(pane, "output send failed; attachment ended");
            }
        }
    }

    async fn input(&self, link: &Arc<dyn PeerLink>, data: &[u8]) {
        if data.len() > MAX_INPUT_SIZE {
            send_error(
                link,
                ErrorCode::InputTooLarge,
                "input larger than 16384 bytes",
            )
            .await;
            return;
        }
        let Some((_, pane, _, _)) = self.attached_pane(link) else {
            send_error(link, ErrorCode::NotAttached, "no pane attached").await;
            return;
        };
        if let Err(e) = self.inner.bridge.send_input(&pane, data).await {
            tracing::info!(pane = %pane, error = %e, "input failed");
            send_error(
                link,
                ErrorCode::InputFailed,
                &format!("cannot send input to {pane}"),
            )
            .await;
        }
    }

    async fn resize(&self, link: &Arc<dyn PeerLink>, cols: u16, rows: u16) {
        let dims_ok = |v: u16| (MIN_DIM..=MAX_DIM).contains(&v);
        if !dims_ok(cols) || !dims_ok(rows) {
            send_error(link, ErrorCode::ResizeFailed, "size must be 1..=500").await;
            return;
        }
        let Some((generation, pane, c, r)) = self.attached_pane(link) else {
            send_error(link, ErrorCode::NotAttached, "no pane attached").await;
            return;
        };
        if (c, r) == (cols, rows) {
            return;
        }
        if let Err(e) = self.inner.bridge.force_size(&pane, cols, rows).await {
            tracing::info!(pane = %pane, error = %e, "resize failed");
            send_error(
                link,
                ErrorCode::ResizeFailed,
                &format!("cannot resize {pane}"),
            )
            .await;
            return;
        }
        let mut slots = self.slots();
        if let Some(a) = slots
            .get_mut(link.device_id())
            .and_then(|s| s.attachment.as_mut())
            .filter(|a| a.generation == generation)
        {
            a.cols = cols;
            a.rows = rows;
        }
    }

    async fn kill_session(&self, link: &Arc<dyn PeerLink>, session: String) {
        if !valid_target_id(&session) {
            send_error(link, ErrorCode::KillSessionFailed, "invalid session id").await;
            return;
        }
        match self.inner.bridge.kill_session(&session).await {
            Ok(()) => send(link, &Event::SessionEnded { session }).await,
            Err(e) => {
                tracing::info!(session = %session, error = %e, "kill session failed");
                send_error(
                    link,
                    ErrorCode::KillSessionFailed,
                    &format!("cannot kill session {session}"),
                )
                .await;
            }
        }
    }

    async fn create_session(&self, link: &Arc<dyn PeerLink>) {
        match self.inner.bridge.create_session().await {
            Ok(session) => send(link, &Event::SessionCreated { session }).await,
            Err(e) => {
                tracing::info!(error = %e, "create session failed");
                send_error(
                    link,
                    ErrorCode::CreateSessionFailed,
                    "cannot create a session",
                )
                .await;
            }
        }
    }
}

#[async_trait::async_trait]
impl peer_manager::ProtocolHandler for Handler {
    async fn handle_message(&self, peer: Arc<peer_manager::Peer>, request: Request) {
        let link: Arc<dyn PeerLink> = peer;
        self.handle(link, request).await;
    }

    async fn peer_disconnected(&self, device_id: &str) {
        Handler::peer_disconnected(self, device_id).await;
    }
}

/// Builds a `sessions` event with the agent version.
pub fn sessions_event(sessions: Vec<terminal_protocol::Session>) -> Event {
    Event::Sessions {
        sessions,
        agent_version: Some(AGENT_VERSION.to_string()),
        update_available: None,
    }
}

async fn send(link: &Arc<dyn PeerLink>, event: &Event) {
    if let Err(e) = link.send_event(event).await {
        tracing::debug!(device = link.device_id(), error = %e, "send failed");
    }
}

async fn send_error(link: &Arc<dyn PeerLink>, code: ErrorCode, message: &str) {
    send(link, &Event::error(code, message)).await;
}

#[derive(Debug)]
enum SendFail {
    Send,
    Compress,
    Cancelled,
}

/// Sends `bytes` as one or more `output` events; stops early when cancelled.
async fn send_output(
    link: &Arc<dyn PeerLink>,
    compressor: Option<&mut Compressor>,
    bytes: &[u8],
    cancel: &CancellationToken,
) -> Result<(), SendFail> {
    if bytes.is_empty() {
        return Ok(());
    }
    let events = output_events(bytes, compressor, data_budget(link.max_message_size()))
        .map_err(|OutputError::Compression| SendFail::Compress)?;
    for event in &events {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(SendFail::Cancelled),
            r = link.send_event(event) => r.map_err(|e| {
                tracing::debug!(error = %e, "output send failed");
                SendFail::Send
            })?,
        }
    }
    Ok(())
}

/// The output loop of one attachment: read → strip titles → (deflate) → send.
/// Awaiting each send before the next read is the backpressure: a slow phone
/// slows the pipe reader, and nothing queues in between.
async fn pump(
    link: &Arc<dyn PeerLink>,
    output: &mut PaneOutput,
    mut compressor: Option<&mut Compressor>,
    cancel: &CancellationToken,
) -> PumpExit {
    let mut filter = TitleFilter::default();
    loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => return PumpExit::Cancelled,
            r = output.read() => r,
        };
        let bytes = match chunk {
            Ok(Some(b)) => b,
            Ok(None) => return PumpExit::PaneGone,
            Err(e) => {
                tracing::info!(error = %e, "pane output read failed");
                return PumpExit::PaneGone;
            }
        };
        let filtered = filter.filter(&bytes);
        if filtered.is_empty() {
            continue;
        }
        match send_output(link, compressor.as_deref_mut(), &filtered, cancel).await {
            Ok(()) => {}
            Err(SendFail::Cancelled) => return PumpExit::Cancelled,
            Err(SendFail::Send) => return PumpExit::SendFailed,
            Err(SendFail::Compress) => return PumpExit::CompressFailed,
        }
    }
}

async fn close_output(output: PaneOutput) {
    if let Err(e) = output.close().await {
        tracing::debug!(error = %e, "closing the pane pipe failed");
    }
}
