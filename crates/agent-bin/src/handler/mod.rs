//! The protocol handler (terminal-protocol.md §6, with stream v2 of
//! docs/stream-v2.md): maps each authenticated request to the tmux bridge,
//! holds at most one attachment per peer and streams the attached pane's
//! output. Each streamed pane is read at full speed into a ring; each
//! attachment sends from its own offset with backpressure, and one that falls
//! more than the ring behind gets a snapshot instead of the backlog (§6).
//! Offsets, fast-channel copies, input dedupe and resume are per attachment
//! or peer, when the phone asks for them.
//!
//! Call contract: `handle` and `handle_fast` are called in arrival order per
//! peer (peer-manager guarantees it); `peer_disconnected` and `end_all` may
//! run concurrently with them.
//!
//! Layout:
//! - `attachment`: the pure attachment state machine (Opening → Streaming →
//!   ended), one table of every peer and its attachment.
//! - `ending`: its output, the one `Ending` per attachment: why it ended, what
//!   to close, which size to release, what the phone is told.
//! - `lifecycle`: the attach flow and `Handler::end`, the one async path that
//!   performs an `Ending` (close the stream, release the size, tell the phone).
//! - `ring`: the pure byte ring indexed by stream offset.
//! - `stream`: pane streams (reader task → ring), shared per pane, counted by user.
//! - `resume`: pane streams kept for a phone that went away (§5).
//! - `pump`: each attachment's sender (ring → deflate → send, lag → snapshot,
//!   fast copies).
//! - `settle`: whether a captured screen matches the stream offset sent
//!   with it; one that may not is sent again once the pane is quiet.
//! - `requests`: every other request (list, input with its dedupe, resize,
//!   kill, create).
//! - `output`: pane bytes → `output` events within the phone's message limit.
//! - `tree_watch`: pushes `sessions` when tmux reports a change of the tree.
//! - `session_list`: holds `sessions` to the same one-message cap as `output`.
//! - `deflate_level`: the usual deflate level, or the fast one while deflate
//!   is what holds a sender back.

mod attachment;
mod deflate_level;
mod ending;
mod lifecycle;
pub mod output;
mod pump;
mod requests;
mod resume;
mod ring;
mod session_list;
mod settle;
mod stream;
mod table_types;
mod tree_watch;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use terminal_protocol::{ErrorCode, Event, Request};
use tmux_bridge::TmuxBridge;

use attachment::{Driver, Table};
use pump::{LagCounters, Pump};
use resume::Holds;
use stream::{StreamUse, Streams};

/// The agent version reported in `sessions`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the handler needs from a connected phone (implemented by `peer_manager::Peer`).
#[async_trait::async_trait]
pub trait PeerLink: Send + Sync + 'static {
    /// The phone's device id.
    fn device_id(&self) -> &str;
    /// Sends one event, waiting for buffer room (backpressure).
    async fn send_event(&self, event: &Event) -> Result<(), String>;
    /// Largest message the phone accepts.
    fn max_message_size(&self) -> usize;
    /// Sends a copy over the fast channel (docs/stream-v2.md §4): best
    /// effort, never waits; false when there is no open authenticated one.
    async fn send_fast(&self, _event: &Event) -> bool {
        false
    }
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
    async fn send_fast(&self, event: &Event) -> bool {
        peer_manager::Peer::send_fast(self, event)
    }
}

/// The real types behind the attachment table.
struct Io;

impl Driver for Io {
    type Link = Arc<dyn PeerLink>;
    type Output = StreamUse;
    type Pump = Pump;
    fn same_link(a: &Self::Link, b: &Self::Link) -> bool {
        // The data pointers only: a reconnected phone is a new peer object.
        std::ptr::eq(Arc::as_ptr(a) as *const (), Arc::as_ptr(b) as *const ())
    }
}

struct Inner {
    bridge: TmuxBridge,
    table: Mutex<Table<Io>>,
    changed: tokio::sync::Notify,
    streams: Streams,
    holds: Mutex<Holds>,
    counters: Arc<LagCounters>,
}

/// What the lag rule (docs/stream-v2.md §6) did since the handler started,
/// over every attachment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Stream bytes never sent because a phone fell more than the ring behind.
    pub skipped_bytes: u64,
    /// Snapshots sent in their place.
    pub lag_snapshots: u64,
    /// Snapshots sent again once the pane went quiet, because the one sent
    /// before may not have matched its offset (handler/settle.rs).
    pub settle_snapshots: u64,
}

/// The muxlink protocol handler over one tmux bridge. Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    inner: Arc<Inner>,
}

impl Handler {
    /// A handler over `bridge`.
    pub fn new(bridge: TmuxBridge) -> Self {
        Handler {
            inner: Arc::new(Inner {
                bridge,
                table: Mutex::new(Table::default()),
                changed: tokio::sync::Notify::new(),
                streams: Streams::default(),
                holds: Mutex::new(Holds::default()),
                counters: Arc::default(),
            }),
        }
    }

    /// The attachment table. Never held across an await.
    fn table(&self) -> MutexGuard<'_, Table<Io>> {
        // A poisoned lock only means another task panicked; every table
        // method leaves it consistent before it could panic (none awaits).
        self.inner
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves after the next change of peers or attachments (a change made
    /// while nobody waits is remembered for the next call); for status reporting.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// The lag rule's counters (for status and benchmarks).
    pub fn stream_stats(&self) -> StreamStats {
        StreamStats {
            skipped_bytes: self.inner.counters.skipped_bytes.load(Ordering::Relaxed),
            lag_snapshots: self.inner.counters.snapshots.load(Ordering::Relaxed),
            settle_snapshots: self.inner.counters.settle_snapshots.load(Ordering::Relaxed),
        }
    }

    /// (device id, attached pane) for every peer the handler knows.
    pub fn attachments(&self) -> Vec<(String, Option<String>)> {
        self.table().attachments()
    }

    /// Handles one request of `link` (terminal-protocol.md §6).
    pub async fn handle(&self, link: Arc<dyn PeerLink>, request: Request) {
        self.register(&link).await;
        match request {
            Request::ListSessions => self.list_sessions(&link).await,
            Request::Attach(a) => self.attach(&link, a).await,
            Request::Detach => self.detach(&link).await,
            Request::Input { data, offset } => self.input(&link, &data, offset).await,
            Request::Resize { cols, rows } => self.resize(&link, cols, rows).await,
            Request::KillSession { session } => self.kill_session(&link, session).await,
            // The peer manager answers pings itself so that a slow request
            // cannot delay `pong`; one that reaches us anyway (a direct
            // caller) still gets its answer.
            Request::Ping => send(&link, &Event::Pong { latency: 0 }).await,
            Request::CreateSession => self.create_session(&link).await,
            // Handled by the peer manager's auth gate; never answered here.
            Request::AuthResponse { .. } => {}
        }
    }

    /// Handles one request that arrived over `link`'s fast channel
    /// (docs/stream-v2.md §4): only a numbered `input` copy of at most
    /// `MAX_FAST_COPY` bytes is considered; everything else is dropped unanswered.
    pub async fn handle_fast(&self, link: Arc<dyn PeerLink>, request: Request) {
        if let Request::Input {
            data,
            offset: Some(offset),
        } = request
        {
            self.fast_input(&link, &data, offset).await;
        }
    }

    /// The peer of `device_id` went away: end its attachment (releases the size).
    pub async fn peer_disconnected(&self, device_id: &str) {
        let ending = self.table().disconnect(device_id);
        if let Some(ending) = ending {
            self.end(ending).await;
        }
        self.inner.changed.notify_one();
    }

    /// Ends every attachment and drops every resume hold (shutdown, reload).
    pub async fn end_all(&self) {
        let endings = self.table().end_all();
        for ending in endings {
            self.end(ending).await;
        }
        let holds = self.holds().drain();
        for hold in holds {
            self.inner.streams.release(&hold.stream).await;
        }
    }

    /// The resume holds. Never held across an await.
    fn holds(&self) -> MutexGuard<'_, Holds> {
        // Plain map operations only; a poisoned lock is still consistent.
        self.inner
            .holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `link` the current peer of its device; a different (reconnected)
    /// peer object replaces the old one, whose attachment ends.
    async fn register(&self, link: &Arc<dyn PeerLink>) {
        let (changed, ending) = self.table().register(link.device_id(), link);
        if let Some(ending) = ending {
            self.end(ending).await;
        }
        if changed {
            // A new or replaced peer changes what `muxlink status` reports.
            self.inner.changed.notify_one();
        }
    }
}

#[async_trait::async_trait]
impl peer_manager::ProtocolHandler for Handler {
    async fn handle_message(&self, peer: Arc<peer_manager::Peer>, request: Request) {
        let link: Arc<dyn PeerLink> = peer;
        self.handle(link, request).await;
    }

    async fn handle_fast_message(&self, peer: Arc<peer_manager::Peer>, request: Request) {
        let link: Arc<dyn PeerLink> = peer;
        self.handle_fast(link, request).await;
    }

    async fn peer_disconnected(&self, device_id: &str) {
        Handler::peer_disconnected(self, device_id).await;
    }
}

/// Builds a `sessions` event with the agent version, within one message of
/// at most [`output::OUTPUT_MESSAGE_CAP`]: when the whole tree does not fit,
/// the least recently active sessions are left out (`session_list`).
pub fn sessions_event(sessions: Vec<terminal_protocol::Session>) -> Event {
    let listed = sessions.len();
    let (sessions, left_out) = session_list::fit_sessions(sessions, output::OUTPUT_MESSAGE_CAP);
    let sent = sessions.len();
    let event = session_list::full_event(sessions);
    if left_out > 0 {
        // The phone shows only what it gets; the log is where the host's
        // owner can see that the list on the phone is partial, and why.
        let bytes = event.encode().len();
        tracing::warn!(
            bytes,
            cap = output::OUTPUT_MESSAGE_CAP,
            "session list trimmed to fit one message: {sent} of {listed} sessions sent \
             (least recently active left out)"
        );
    }
    event
}

/// Sends one event; a failure is only logged, since the peer's own lifecycle
/// (not the handler) notices and reports a dead channel.
async fn send(link: &Arc<dyn PeerLink>, event: &Event) {
    if let Err(e) = link.send_event(event).await {
        tracing::debug!(device = link.device_id(), error = %e, "send failed");
    }
}

async fn send_error(link: &Arc<dyn PeerLink>, code: ErrorCode, message: &str) {
    send(link, &Event::error(code, message)).await;
}
