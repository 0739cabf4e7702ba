//! The requests that use an attachment without starting or ending one by
//! themselves, and those that need none (terminal-protocol.md §6): list,
//! input (numbered input applied once, whichever channel brought it first:
//! docs/stream-v2.md §4), resize, kill and create.

use std::sync::Arc;

use terminal_protocol::{
    ErrorCode, MAX_DIM, MAX_FAST_COPY, MAX_INPUT_SIZE, MIN_DIM, Verdict, Via, valid_target_id,
};

use super::ending::Cause;
use super::{Handler, PeerLink, send, send_error, sessions_event};

impl Handler {
    /// Sends a fresh `sessions`, or `error list_sessions_failed`.
    pub(super) async fn send_sessions(&self, link: &Arc<dyn PeerLink>) {
        match self.inner.bridge.list_sessions().await {
            Ok(sessions) => send(link, &sessions_event(sessions)).await,
            Err(e) => list_failed(link, &e).await,
        }
    }

    /// `list_sessions`: also the moment a pane that vanished without its
    /// stream noticing yet is found, and its attachment ended.
    pub(super) async fn list_sessions(&self, link: &Arc<dyn PeerLink>) {
        let sessions = match self.inner.bridge.list_sessions().await {
            Ok(s) => s,
            Err(e) => return list_failed(link, &e).await,
        };
        let attached = self.table().attached(link.device_id(), link);
        if let Some(a) = attached {
            let present = sessions
                .iter()
                .flat_map(|s| &s.windows)
                .flat_map(|w| &w.panes)
                .any(|p| p.id == a.pane_id);
            // Checked by generation: the stream may have ended it meanwhile
            // (it is the same vanished pane), and then it already said so.
            let ending = if present {
                None
            } else {
                self.table().end(&a.id, Cause::PaneAbsent)
            };
            if let Some(ending) = ending {
                self.end(ending).await;
            }
        }
        send(link, &sessions_event(sessions)).await;
    }

    /// `input` over the reliable channel. Numbered input goes through the
    /// peer's `InOrder` first: a duplicate is dropped unanswered, and every
    /// byte counts, attached or not (§4).
    pub(super) async fn input(&self, link: &Arc<dyn PeerLink>, data: &[u8], offset: Option<u64>) {
        let mut skip = 0;
        if let Some(offset) = offset {
            let verdict = self.table().accept_input(
                link.device_id(),
                link,
                offset,
                data.len(),
                Via::Reliable,
            );
            match verdict {
                Some(Verdict::Apply { skip: s }) => skip = s,
                Some(Verdict::Gap { missing }) => {
                    tracing::debug!(missing, "input continues after a gap");
                }
                Some(Verdict::Duplicate | Verdict::Ahead) => return,
                // A replaced peer: it finds no attachment below either.
                None => {}
            }
        }
        // `input_too_large` comes before `not_attached` (§11.2).
        if data.len() > MAX_INPUT_SIZE {
            let message = "input larger than 16384 bytes";
            return send_error(link, ErrorCode::InputTooLarge, message).await;
        }
        let Some(a) = self.table().attached(link.device_id(), link) else {
            return send_error(link, ErrorCode::NotAttached, "no pane attached").await;
        };
        let data = &data[skip.min(data.len())..];
        if data.is_empty() {
            return;
        }
        if let Err(e) = self.inner.bridge.send_input(&a.pane_id, data).await {
            tracing::info!(pane = %a.pane_id, error = %e, "input failed");
            let message = format!("cannot send input to {}", a.pane_id);
            send_error(link, ErrorCode::InputFailed, &message).await;
        }
    }

    /// A numbered `input` copy from the fast channel (§4): applied only while
    /// attached and only if no copy of it was applied yet; never answered
    /// (only the reliable copy may produce an `error`).
    pub(super) async fn fast_input(&self, link: &Arc<dyn PeerLink>, data: &[u8], offset: u64) {
        if data.len() > MAX_FAST_COPY {
            return;
        }
        let (attached, verdict) = {
            let mut table = self.table();
            // Checked first: a copy dropped while not attached must leave
            // the reliable copy to produce `not_attached`.
            let Some(a) = table.attached(link.device_id(), link) else {
                return;
            };
            let verdict = table.accept_input(link.device_id(), link, offset, data.len(), Via::Fast);
            (a, verdict)
        };
        let Some(Verdict::Apply { skip }) = verdict else {
            return;
        };
        let data = &data[skip.min(data.len())..];
        if data.is_empty() {
            return;
        }
        if let Err(e) = self.inner.bridge.send_input(&attached.pane_id, data).await {
            tracing::info!(pane = %attached.pane_id, error = %e, "fast input failed");
        }
    }

    pub(super) async fn resize(&self, link: &Arc<dyn PeerLink>, cols: u16, rows: u16) {
        let dims_ok = |v: u16| (MIN_DIM..=MAX_DIM).contains(&v);
        if !dims_ok(cols) || !dims_ok(rows) {
            return send_error(link, ErrorCode::ResizeFailed, "size must be 1..=500").await;
        }
        let Some(a) = self.table().attached(link.device_id(), link) else {
            return send_error(link, ErrorCode::NotAttached, "no pane attached").await;
        };
        // The same dims again would only make tmux redraw: a silent no-op.
        if (a.cols, a.rows) == (cols, rows) {
            return;
        }
        if let Err(e) = self.inner.bridge.force_size(&a.pane_id, cols, rows).await {
            tracing::info!(pane = %a.pane_id, error = %e, "resize failed");
            let message = format!("cannot resize {}", a.pane_id);
            return send_error(link, ErrorCode::ResizeFailed, &message).await;
        }
        self.table().resized(&a.id, cols, rows);
    }

    pub(super) async fn kill_session(&self, link: &Arc<dyn PeerLink>, session: String) {
        if !valid_target_id(&session) {
            return send_error(link, ErrorCode::KillSessionFailed, "invalid session id").await;
        }
        match self.inner.bridge.kill_session(&session).await {
            Ok(()) => send(link, &terminal_protocol::Event::SessionEnded { session }).await,
            Err(e) => {
                tracing::info!(session = %session, error = %e, "kill session failed");
                let message = format!("cannot kill session {session}");
                send_error(link, ErrorCode::KillSessionFailed, &message).await;
            }
        }
    }

    pub(super) async fn create_session(&self, link: &Arc<dyn PeerLink>) {
        match self.inner.bridge.create_session().await {
            Ok(session) => send(link, &terminal_protocol::Event::SessionCreated { session }).await,
            Err(e) => {
                tracing::info!(error = %e, "create session failed");
                let message = "cannot create a session";
                send_error(link, ErrorCode::CreateSessionFailed, message).await;
            }
        }
    }
}

/// `error list_sessions_failed`; tmux's own words stay in the log (§8).
async fn list_failed(link: &Arc<dyn PeerLink>, e: &tmux_bridge::BridgeError) {
    tracing::warn!(error = %e, "list sessions failed");
    let message = "cannot list tmux sessions";
    send_error(link, ErrorCode::ListSessionsFailed, message).await;
}
