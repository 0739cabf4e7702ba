//! The protocol handler (terminal-protocol.md §6): maps each authenticated
//! request to the tmux bridge, holds at most one attachment per peer and streams
//! the attached pane's output with backpressure.
//!
//! Call contract: `handle` is called in arrival order per peer (peer-manager
//! guarantees it); `peer_disconnected` and `end_all` may run concurrently with it.
//!
//! Layout:
//! - `attachment`: the pure attachment state machine (Opening → Streaming →
//!   ended), one table of every peer and its attachment.
//! - `ending`: its output, the one `Ending` per attachment: why it ended, what
//!   to close, which size to release, what the phone is told.
//! - `lifecycle`: the attach flow and `Handler::end`, the one async path that
//!   performs an `Ending` (close the stream, release the size, tell the phone).
//! - `pump`: the output task's loop (read → strip titles → deflate → send).
//! - `requests`: every other request (list, input, resize, kill, create).
//! - `output`: pane bytes → `output` events within the phone's message limit.
//! - `tree_watch`: pushes `sessions` when tmux reports a change of the tree.

mod attachment;
mod ending;
mod lifecycle;
pub mod output;
mod pump;
mod requests;
mod tree_watch;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use terminal_protocol::{ErrorCode, Event, Request};
use tmux_bridge::{PaneOutput, TmuxBridge};

use attachment::{Driver, Table};
use pump::Pump;

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

/// The real types behind the attachment table.
struct Io;

impl Driver for Io {
    type Link = Arc<dyn PeerLink>;
    type Output = PaneOutput;
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
            Request::Input { data, .. } => self.input(&link, &data).await,
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

    /// The peer of `device_id` went away: end its attachment (releases the size).
    pub async fn peer_disconnected(&self, device_id: &str) {
        let ending = self.table().disconnect(device_id);
        if let Some(ending) = ending {
            self.end(ending).await;
        }
        self.inner.changed.notify_one();
    }

    /// Ends every attachment (shutdown, reload).
    pub async fn end_all(&self) {
        let endings = self.table().end_all();
        for ending in endings {
            self.end(ending).await;
        }
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
