//! The async half of the attachment state machine: the attach flow (§6 attach
//! steps 2–9, with stream v2's offsets, snapshot numbering and resume of
//! docs/stream-v2.md §2, §5), the sender task's start and end, and
//! [`Handler::end`], the one path that performs an [`Ending`], whoever ended
//! the attachment.

use std::sync::Arc;

use terminal_protocol::{
    Attach, Compressor, ErrorCode, Event, MAX_DIM, MIN_DIM, RESUME_WINDOW, valid_target_id,
};
use tokio_util::sync::CancellationToken;

use super::attachment::AttachmentId;
use super::ending::{Cause, Ending, Notice, Stream};
use super::output::Numbering;
use super::pump::{Pump, SendFail, Sender, send_output};
use super::resume::Hold;
use super::settle;
use super::stream::{PaneStream, StreamUse};
use super::{Handler, Io, PeerLink, send, send_error};

/// Where a new attachment starts in its pane stream.
struct Start {
    /// The offset of its first stream byte.
    cursor: u64,
    /// The screen to send first (none when resumed, or when it failed).
    snapshot: Option<Vec<u8>>,
    /// `resumeFrom` was honoured.
    resumed: bool,
    /// The snapshot is known to match `cursor` (settle.rs); without a
    /// snapshot, trivially.
    settled: bool,
}

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
        let used = match stream {
            Stream::Stop(pump) => Some(pump.stop(&pane_id).await),
            Stream::Close(used) => Some(used),
            Stream::Unopened => None,
        };
        if let Some(used) = used {
            if used.offsets && cause.keeps_for_resume() && !used.stream.ended() {
                self.hold(link.device_id(), used.stream);
            } else {
                self.inner.streams.release(&used.stream).await;
            }
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
        // Step 3: resize first so the redraw it causes is not streamed (a
        // stream kept for a resume does carry it, in order).
        if let Err(e) = bridge.force_size(&pane, a.cols, a.rows).await {
            tracing::info!(pane = %pane, error = %e, "resize before attach failed");
        }
        // Step 4: the pane stream — the one kept for this device's resume
        // (its window ends now, wherever the device attaches), or a shared one.
        let hold = self.holds().take(link.device_id());
        let (stream, opened_at, resumable) = match hold {
            Some(Hold {
                pane_id, stream, ..
            }) if pane_id == pane && !stream.ended() => (stream, None, true),
            other => {
                let acquired = self.inner.streams.acquire(bridge, &pane).await;
                if let Some(old) = other {
                    self.inner.streams.release(&old.stream).await;
                }
                match acquired {
                    Ok(acq) => (acq.stream, acq.opened_at, false),
                    Err(e) => {
                        tracing::info!(pane = %pane, error = %e, "open output failed");
                        let cause = match bridge.pane_exists(&pane).await {
                            Ok(false) => Cause::PaneMissing,
                            _ => Cause::OpenFailed,
                        };
                        let ending = self.table().opening_failed(opening, None, cause);
                        return self.end(ending).await;
                    }
                }
            }
        };
        let resume_from = a
            .resume_from
            .filter(|&r| a.offsets && resumable && stream.holds(r));
        let start = match resume_from {
            Some(r) => Start {
                cursor: r,
                snapshot: None,
                resumed: true,
                settled: true,
            },
            None => self.fresh_start(&stream, opened_at).await,
        };
        let used = StreamUse {
            stream,
            offsets: a.offsets,
        };
        // Steps 5–8.
        let deflate = a.compression.as_deref() == Some("deflate");
        let mut compressor = deflate.then(Compressor::new);
        let attached = Event::Attached {
            pane_id: pane.clone(),
            compression: deflate.then(|| "deflate".to_string()),
            offset: a.offsets.then_some(start.cursor),
            resumed: start.resumed,
        };
        let sent = match link.send_event(&attached).await {
            Ok(()) => match &start.snapshot {
                Some(bytes) => {
                    let numbering = match a.offsets {
                        true => Numbering::Snapshot(start.cursor),
                        false => Numbering::Plain,
                    };
                    let never = CancellationToken::new();
                    send_output(link, compressor.as_mut(), bytes, numbering, &never)
                        .await
                        .map(|_| ())
                }
                None => Ok(()),
            },
            Err(_) => Err(SendFail::Send),
        };
        if let Err(fail) = sent {
            // Nothing cancels the snapshot, so the failure always has a cause.
            let cause = fail.cause().unwrap_or(Cause::SendFailed);
            let ending = self.table().opening_failed(opening, Some(used), cause);
            return self.end(ending).await;
        }
        // Step 9.
        let (cursor, settled) = (start.cursor, start.settled);
        let started = self.table().start_streaming(opening, used, |used, id| {
            self.spawn_pump(link, id, used, compressor, cursor, settled)
        });
        match started {
            Ok(()) => {
                self.inner.changed.notify_one();
                tracing::info!(
                    pane = %pane, cols = a.cols, rows = a.rows, deflate,
                    offsets = a.offsets, resumed = start.resumed, "attached"
                );
            }
            Err(abandoned) => self.end(abandoned).await,
        }
    }

    /// A start with a snapshot (§6 steps 7–8). A stream this attach opened
    /// comes with the screen captured atomically with its pipe start, exactly
    /// at its base; on a stream already open the screen is captured now and
    /// the stream continues at its head as the capture returned, settled
    /// later if the pane was busy (settle.rs). A snapshot that cannot be
    /// taken is logged and skipped, not fatal.
    async fn fresh_start(&self, stream: &PaneStream, opened_at: Option<(u64, Vec<u8>)>) -> Start {
        if let Some((base, snapshot)) = opened_at {
            return Start {
                cursor: base,
                snapshot: Some(snapshot),
                resumed: false,
                settled: true,
            };
        }
        let captured = settle::capture(&self.inner.bridge, stream).await;
        let snapshot = captured
            .screen
            .map_err(|e| tracing::info!(pane = %stream.pane_id(), error = %e, "snapshot failed"))
            .ok();
        Start {
            cursor: captured.head,
            settled: captured.settled || snapshot.is_none(),
            snapshot,
            resumed: false,
        }
    }

    /// Keeps `stream` reading for `device`'s resume until the window ends
    /// (§5); a hold it replaces is released.
    fn hold(&self, device: &str, stream: Arc<PaneStream>) {
        let (generation, replaced) = self.holds().insert(device, stream);
        let handler = self.clone();
        let device = device.to_owned();
        tokio::spawn(async move {
            if let Some(old) = replaced {
                handler.inner.streams.release(&old.stream).await;
            }
            tokio::time::sleep(RESUME_WINDOW).await;
            let expired = handler.holds().expire(&device, generation);
            if let Some(hold) = expired {
                tracing::debug!(pane = %hold.pane_id, "resume window over");
                handler.inner.streams.release(&hold.stream).await;
            }
        });
    }

    /// Starts the sender task of attachment `id` from `cursor` (`settled`:
    /// the snapshot sent before it matches it, see settle.rs). Called by the
    /// table while it registers the attachment as streaming, so the task's
    /// own end (which needs the table) cannot come first.
    fn spawn_pump(
        &self,
        link: &Arc<dyn PeerLink>,
        id: AttachmentId,
        used: StreamUse,
        compressor: Option<Compressor>,
        cursor: u64,
        settled: bool,
    ) -> Pump {
        let cancel = CancellationToken::new();
        let handler = self.clone();
        let mut sender = Sender {
            link: link.clone(),
            bridge: self.inner.bridge.clone(),
            stream: used.stream.clone(),
            compressor,
            offsets: used.offsets,
            cursor,
            counters: self.inner.counters.clone(),
            levels: Default::default(),
            unsettled: !settled,
        };
        let token = cancel.clone();
        let mine = used.clone();
        let task = tokio::spawn(async move {
            // `None`: stopped by whoever is ending the attachment, who then
            // releases the stream through the pump.
            if let Some(cause) = sender.run(&token).await {
                handler.stream_ended(&id, cause, mine).await;
            }
        });
        Pump::new(cancel, task, used)
    }

    /// The sender of `id` stopped on its own (pane exit, send or compress
    /// failure). Runs inside that task, so the ending does not wait for it.
    async fn stream_ended(&self, id: &AttachmentId, cause: Cause, used: StreamUse) {
        let ended = self.table().stream_ended(id, cause, used);
        // Err: already being ended by someone who releases it via the pump.
        if let Ok(ending) = ended {
            self.end(ending).await;
        }
    }
}

fn pane_closed(pane: &str) -> Event {
    Event::PaneClosed {
        pane_id: pane.to_owned(),
    }
}
