//! Pushes a fresh `sessions` event to every connected phone when tmux reports
//! that sessions, windows or panes were added, renamed or closed. Driven by the
//! bridge's control-mode notifications: no timer, no polling.

use std::sync::Arc;

use terminal_protocol::{PaneSize, Session};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Handler, PeerLink, send, sessions_event};

impl Handler {
    /// Starts the task that pushes `sessions` on tree changes; it ends with `cancel`.
    pub fn spawn_tree_watcher(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let handler = self.clone();
        let mut rx = self.inner.bridge.notifications();
        tokio::spawn(async move {
            let mut last: Option<Vec<Session>> = None;
            loop {
                let first = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = rx.recv() => r,
                };
                match first {
                    Ok(n) if !n.tree_may_have_changed() => continue,
                    // A lagged receiver missed notifications: one listing covers them.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
                // Coalesce a burst (a new window sends several notifications):
                // everything already queued is covered by one listing.
                loop {
                    match rx.try_recv() {
                        Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Closed) => return,
                    }
                }
                handler.push_tree(&mut last).await;
            }
        })
    }

    /// Lists the tree and sends it to every known peer when its shape changed.
    async fn push_tree(&self, last: &mut Option<Vec<Session>>) {
        let sessions = match self.inner.bridge.list_sessions().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "tree watcher: list sessions failed");
                return;
            }
        };
        let shape = shape_of(&sessions);
        if last.as_ref() == Some(&shape) {
            return;
        }
        *last = Some(shape);
        let links: Vec<Arc<dyn PeerLink>> = self.table().links();
        if links.is_empty() {
            return;
        }
        let event = sessions_event(sessions);
        for link in links {
            send(&link, &event).await;
        }
    }
}

/// What a push is about: sessions, windows and panes added, renamed or closed.
/// Pane sizes, titles, commands, attached flags and activity times are left out so that
/// attach and resize (which re-layout windows) and typing do not send the phone
/// a new tree each time.
fn shape_of(sessions: &[Session]) -> Vec<Session> {
    let mut shape = sessions.to_vec();
    for s in &mut shape {
        s.last_activity_at = 0;
        // Desktop clients coming and going (and the bridge's own control client
        // re-attaching) is not a change of the tree.
        s.attached = false;
        for w in &mut s.windows {
            for p in &mut w.panes {
                p.size = PaneSize { cols: 0, rows: 0 };
                // Titles and running commands change with what is typed.
                p.title.clear();
                p.current_command.clear();
            }
        }
    }
    shape
}
