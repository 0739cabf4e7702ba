//! What ending an attachment takes: why it ended ([`Cause`]), what the phone
//! is told ([`Notice`]) and the one [`Ending`] value that the attachment
//! table hands out per attachment. Pure, like the table.

use std::fmt;

use super::table_types::{AttachmentId, Driver};

/// Why an attachment ended; decides what the phone is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A `detach` request (the caller then sends `detached`).
    Detach,
    /// A new `attach` of the same peer replaced it, silently (§6 attach step 2).
    Reattach,
    /// `list_sessions` did not find the pane in the tree.
    PaneAbsent,
    /// The output stream reached its end: the pane exited or vanished.
    PaneExited,
    /// The pane did not exist when the output was to be opened.
    PaneMissing,
    /// Opening the output failed for a pane that exists.
    OpenFailed,
    /// Sending to the phone failed.
    SendFailed,
    /// The output compressor failed (§7 "Failure").
    CompressFailed,
    /// The phone reconnected: a new peer object of the same device.
    PeerReplaced,
    /// The peer went away.
    Disconnected,
    /// Every attachment ends (shutdown, reload).
    Shutdown,
    /// Ended by another party while opening; the opener cleans up.
    Abandoned,
}

impl Cause {
    /// Whether an attachment with offsets that ends this way keeps its pane
    /// stream reading for a resume (docs/stream-v2.md §5): the phone went
    /// away (its channel failing is often the first sign), not by choice.
    pub(crate) fn keeps_for_resume(self) -> bool {
        matches!(
            self,
            Cause::Disconnected | Cause::PeerReplaced | Cause::SendFailed
        )
    }
}

/// What the phone is told once the attachment has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// `pane_closed` alone (the caller follows with its own `sessions`).
    PaneClosed,
    /// `pane_closed`, then a fresh `sessions`.
    PaneClosedThenSessions,
    /// `error attach_failed`.
    AttachFailed,
    /// `error compression_failed`.
    CompressionFailed,
}

impl Cause {
    /// The one table of what each ending tells the phone (§6, §7).
    pub(crate) fn notice(self) -> Option<Notice> {
        match self {
            Cause::PaneAbsent => Some(Notice::PaneClosed),
            Cause::PaneExited | Cause::PaneMissing => Some(Notice::PaneClosedThenSessions),
            Cause::OpenFailed => Some(Notice::AttachFailed),
            Cause::CompressFailed => Some(Notice::CompressionFailed),
            Cause::Detach
            | Cause::Reattach
            | Cause::SendFailed
            | Cause::PeerReplaced
            | Cause::Disconnected
            | Cause::Shutdown
            | Cause::Abandoned => None,
        }
    }
}

/// What has to be done about the pane's output stream when an attachment ends.
pub(crate) enum Stream<D: Driver> {
    /// Stop the output task and wait for it: it closes the pipe on its way out.
    Stop(D::Pump),
    /// Close this stream (its holder is the one ending the attachment).
    Close(D::Output),
    /// No stream was opened.
    Unopened,
}

/// Ending one attachment, made exactly once per attachment. Performed in this
/// order: the stream (`stream`), then the size of `pane_id` is released, then
/// the phone on `link` is told [`Cause::notice`].
#[must_use = "an Ending is the only record that the pane's size must be released"]
pub(crate) struct Ending<D: Driver> {
    pub id: AttachmentId,
    pub cause: Cause,
    pub pane_id: String,
    pub link: D::Link,
    pub stream: Stream<D>,
}

impl<D: Driver> fmt::Debug for Ending<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stream = match self.stream {
            Stream::Stop(_) => "stop",
            Stream::Close(_) => "close",
            Stream::Unopened => "unopened",
        };
        f.debug_struct("Ending")
            .field("id", &self.id)
            .field("cause", &self.cause)
            .field("pane_id", &self.pane_id)
            .field("stream", &stream)
            .finish()
    }
}
