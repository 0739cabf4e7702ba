//! What a peer task reports up to the manager, over the mpsc it was given at
//! spawn (the task never names the manager).

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::core::CloseReason;
use crate::peer::Peer;

/// Capacity of the manager's inbox of peer events (each task sends one
/// `Closed` and waits for its answer, so live tasks bound what is queued).
pub(crate) const EVENT_QUEUE: usize = 64;

/// One report of a peer task.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// The peer closed (exactly once per peer). The manager removes it from
    /// the map if it is still current and, only then, tells the handler; it
    /// answers on `done` when both are finished.
    Closed {
        peer: Arc<Peer>,
        reason: CloseReason,
        done: oneshot::Sender<()>,
    },
}
