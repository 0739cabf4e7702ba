//! How the [`PeerManager`] applies what its peer tasks report: a closed peer
//! leaves the map (only if it is still current) before the handler hears of it.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use super::PeerManager;
use crate::core::CloseReason;
use crate::events::PeerEvent;
use crate::peer::Peer;

impl PeerManager {
    /// Starts the loop that applies the peer tasks' reports (once).
    pub(super) fn start_report_loop(&self, rt: &tokio::runtime::Handle) {
        let rx = self
            .events_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(rx) = rx {
            rt.spawn(report_loop(self.me.clone(), rx));
        }
    }

    /// A peer closed: remove it if it is still its device's current peer and,
    /// only then (so whoever the report wakes no longer sees it), tell the
    /// handler and the hook. A replaced or `close_peer`d peer is not reported.
    async fn on_peer_closed(&self, peer: &Arc<Peer>, reason: CloseReason) {
        if !self.remove_if_current(peer) {
            tracing::debug!(
                device_id = peer.device_id,
                ?reason,
                "closed peer was no longer current"
            );
            return;
        }
        self.bump();
        self.handler.peer_disconnected(&peer.device_id).await;
        if let Some(hook) = &self.on_disconnect {
            hook(&peer.device_id);
        }
    }
}

/// Applies the peer tasks' reports in arrival order, answering each so the task
/// (tracked by `close_all`) ends only after its report was applied. Holds the
/// manager weakly, and ends when every sender (the manager and its tasks) is gone.
async fn report_loop(me: Weak<PeerManager>, mut rx: mpsc::Receiver<PeerEvent>) {
    while let Some(ev) = rx.recv().await {
        match ev {
            PeerEvent::Closed { peer, reason, done } => {
                if let Some(m) = me.upgrade() {
                    m.on_peer_closed(&peer, reason).await;
                }
                let _ = done.send(());
            }
        }
    }
}
