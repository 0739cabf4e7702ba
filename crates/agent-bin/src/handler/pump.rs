//! The output task of one streaming attachment: read the pane → strip title
//! sequences → deflate (if negotiated) → send, until it is stopped or the
//! stream ends on its own, then it closes the pane pipe.

use std::sync::Arc;
use std::time::Duration;

use terminal_protocol::Compressor;
use tmux_bridge::{PaneOutput, TitleFilter};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::PeerLink;
use super::ending::Cause;
use super::output::{OutputError, data_budget, output_events};

/// How long stopping an output task waits for it to close the pipe.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running output task, as stored in the attachment table.
pub(super) struct Pump {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Pump {
    pub(super) fn new(cancel: CancellationToken, task: JoinHandle<()>) -> Pump {
        Pump { cancel, task }
    }

    /// Cancels the task and waits until it has closed the pane pipe, so the
    /// size is released only after the stream is gone. Bounded: a tmux that
    /// does not answer the pipe removal must not hold up the ending.
    pub(super) async fn stop(self, pane: &str) {
        self.cancel.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, self.task).await.is_err() {
            tracing::warn!(pane, "output task did not stop in time");
        }
    }
}

/// Why a send of output bytes did not complete.
#[derive(Debug)]
pub(super) enum SendFail {
    Send,
    Compress,
    Cancelled,
}

impl SendFail {
    /// How the attachment ends because of it (`None`: it was stopped from outside).
    pub(super) fn cause(self) -> Option<Cause> {
        match self {
            SendFail::Send => Some(Cause::SendFailed),
            SendFail::Compress => Some(Cause::CompressFailed),
            SendFail::Cancelled => None,
        }
    }
}

/// Sends `bytes` as one or more `output` events; stops early when cancelled.
pub(super) async fn send_output(
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

/// The output loop of one attachment. Returns how the attachment ends, or
/// `None` when cancelled (whoever cancelled is ending it).
///
/// Awaiting each send before the next read is the backpressure: a slow phone
/// slows the pipe reader, and nothing queues in between.
pub(super) async fn pump(
    link: &Arc<dyn PeerLink>,
    output: &mut PaneOutput,
    mut compressor: Option<&mut Compressor>,
    cancel: &CancellationToken,
) -> Option<Cause> {
    let mut filter = TitleFilter::default();
    loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => return None,
            r = output.read() => r,
        };
        let bytes = match chunk {
            Ok(Some(b)) => b,
            Ok(None) => return Some(Cause::PaneExited),
            Err(e) => {
                tracing::info!(error = %e, "pane output read failed");
                return Some(Cause::PaneExited);
            }
        };
        let filtered = filter.filter(&bytes);
        if filtered.is_empty() {
            continue;
        }
        if let Err(fail) = send_output(link, compressor.as_deref_mut(), &filtered, cancel).await {
            return fail.cause();
        }
    }
}

/// Closes a pane pipe; a failure is only logged (the FIFO goes either way).
pub(super) async fn close_output(output: PaneOutput) {
    if let Err(e) = output.close().await {
        tracing::debug!(error = %e, "closing the pane pipe failed");
    }
}
