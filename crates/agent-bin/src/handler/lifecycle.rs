//! The async half of the attachment state machine: the attach flow (§6 attach
//! steps 2–9), the output task's start and end, and [`Handler::end`], the one
//! path that performs an [`Ending`], whoever ended the attachment.

use std::sync::Arc;

use terminal_protocol::{Attach, Compressor, ErrorCode, Event, MAX_DIM, MIN_DIM, valid_target_id};
use tmux_bridge::PaneOutput;
use tokio_util::sync::CancellationToken;

use super::attachment::AttachmentId;
use super::ending::{Cause, Ending, Notice, Stream};
use super::pump::{Pump, SendFail, close_output, pump, send_output};
use super::{Handler, Io, PeerLink, send, send_error};

impl Handler {
    /// Performs `ending`: stops or closes the output stream, releases the
    /// forced size, then tells the phone. Every attachment ends here, once.
    pub(super) async fn end(&self, ending: Ending<Io>) {
        let Ending {
            id: _,
            cause,
            pane_id,
            link,
            stream,
        } = ending;
        // The stream first, so the redraw that releasing the size causes is
        // not streamed to a phone that is leaving the pane.
        match stream {
            Stream::Stop(pump) => pump.stop(&pane_id).await,
            Stream::Close(output) => close_output(output).await,
            Stream::Unopened => {}
        }
        if let Err(e) = self.inner.bridge.release_size(&pane_id).await {
            tracing::debug!(pane = %pane_id, error = %e, "release size failed");
        }
        match cause.notice() {
            None => {}
            Some(Notice::PaneClosed) => send(&link, &pane_closed(&pane_id)).await,
            Some(Notice::PaneClosedThenSessions) => {
                send(&link, &pane_closed(&pane_id)).await;
                self.send_sessions(&link).await;
            }
            Some(Notice::AttachFailed) => {
                let message = format!("cannot attach to pane {pane_id}");
                send_error(&link, ErrorCode::AttachFailed, &message).await;
            }
            Some(Notice::CompressionFailed) => {
                let message = "output compression failed";
                send_error(&link, ErrorCode::CompressionFailed, message).await;
            }
        }
        self.inner.changed.notify_one();
        tracing::info!(pane = %pane_id, ?cause, "attachment ended");
    }

    pub(super) async fn detach(&self, link: &Arc<dyn PeerLink>) {
        let ending = {
            let mut table = self.table();
            let current = table.attached(link.device_id(), link);
            current.and_then(|a| table.end(&a.id, Cause::Detach))
        };
        if let Some(ending) = ending {
            self.end(ending).await;
        }
        // Always, even if nothing was attached (§2).
        send(link, &Event::Detached).await;
    }

    pub(super) async fn attach(&self, link: &Arc<dyn PeerLink>, a: Attach) {
        let dims_ok = |v: u16| (MIN_DIM..=MAX_DIM).contains(&v);
        if !valid_target_id(&a.pane_id) || !dims_ok(a.cols) || !dims_ok(a.rows) {
            send_error(link, ErrorCode::AttachFailed, "invalid pane id or size").await;
            return;
        }
        let begun = self
            .table()
            .begin(link.device_id(), link, &a.pane_id, a.cols, a.rows);
        // Not begun: this peer was replaced or went away meanwhile.
        let Some((opening, previous)) = begun else {
            return;
        };
        // Step 2: the previous attachment ends silently, before this one
        // touches the pane (it may be the same pane).
        if let Some(previous) = previous {
            self.end(previous).await;
        }
        let bridge = &self.inner.bridge;
        let pane = opening.pane_id().to_owned();
        // Step 3: resize first so the redraw it causes is not streamed.
        if let Err(e) = bridge.force_size(&pane, a.cols, a.rows).await {
            tracing::info!(pane = %pane, error = %e, "resize before attach failed");
        }
        // Step 4.
        let mut output = match bridge.open_output(&pane).await {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(pane = %pane, error = %e, "open output failed");
                let cause = match bridge.pane_exists(&pane).await {
                    Ok(false) => Cause::PaneMissing,
                    _ => Cause::OpenFailed,
                };
                let ending = self.table().opening_failed(opening, None, cause);
                return self.end(ending).await;
            }
        };
        // Steps 5–8.
        let deflate = a.compression.as_deref() == Some("deflate");
        let mut compressor = deflate.then(Compressor::new);
        let attached = Event::Attached {
            pane_id: pane.clone(),
            compression: deflate.then(|| "deflate".to_string()),
            offset: None,
            resumed: false,
        };
        let sent = match link.send_event(&attached).await {
            Ok(()) => {
                self.send_snapshot(link, &mut output, compressor.as_mut())
                    .await
            }
            Err(_) => Err(SendFail::Send),
        };
        if let Err(fail) = sent {
            // Nothing cancels the snapshot, so the failure always has a cause.
            let cause = fail.cause().unwrap_or(Cause::SendFailed);
            let ending = self.table().opening_failed(opening, Some(output), cause);
            return self.end(ending).await;
        }
        // Step 9.
        let started = self.table().start_streaming(opening, output, |output, id| {
            self.spawn_pump(link, id, output, compressor)
        });
        match started {
            Ok(()) => {
                self.inner.changed.notify_one();
                tracing::info!(pane = %pane, cols = a.cols, rows = a.rows, deflate, "attached");
            }
            Err(abandoned) => self.end(abandoned).await,
        }
    }

    /// Sends the screen snapshot as the first output (§6 steps 7–8). A
    /// snapshot that cannot be taken is logged and skipped, not fatal.
    async fn send_snapshot(
        &self,
        link: &Arc<dyn PeerLink>,
        output: &mut PaneOutput,
        compressor: Option<&mut Compressor>,
    ) -> Result<(), SendFail> {
        // The bridge captures the screen atomically with the pipe start.
        let snapshot = match output.take_snapshot() {
            Some(s) => Ok(s),
            None => self.inner.bridge.snapshot(output.pane_id()).await,
        };
        match snapshot {
            Ok(bytes) => send_output(link, compressor, &bytes, &CancellationToken::new()).await,
            Err(e) => {
                tracing::info!(pane = %output.pane_id(), error = %e, "snapshot failed");
                Ok(())
            }
        }
    }

    /// Starts the output task of attachment `id`. Called by the table while
    /// it registers the attachment as streaming, so the task's own end (which
    /// needs the table) cannot come first.
    fn spawn_pump(
        &self,
        link: &Arc<dyn PeerLink>,
        id: AttachmentId,
        mut output: PaneOutput,
        mut compressor: Option<Compressor>,
    ) -> Pump {
        let cancel = CancellationToken::new();
        let handler = self.clone();
        let link = link.clone();
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            match pump(&link, &mut output, compressor.as_mut(), &token).await {
                Some(cause) => handler.stream_ended(&id, cause, output).await,
                // Stopped by whoever is ending the attachment; it waits for
                // this close before it releases the size.
                None => close_output(output).await,
            }
        });
        Pump::new(cancel, task)
    }

    /// The output task of `id` stopped on its own (pane exit, send or
    /// compress failure). Runs inside that task, so the ending closes the
    /// stream instead of waiting for the task.
    async fn stream_ended(&self, id: &AttachmentId, cause: Cause, output: PaneOutput) {
        let ended = self.table().stream_ended(id, cause, output);
        match ended {
            Ok(ending) => self.end(ending).await,
            // Already being ended by someone who waits for this close.
            Err(output) => close_output(output).await,
        }
    }
}

fn pane_closed(pane: &str) -> Event {
    Event::PaneClosed {
        pane_id: pane.to_owned(),
    }
}
