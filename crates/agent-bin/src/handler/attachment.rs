//! The attachment state machine (terminal-protocol.md §6): the peers the
//! handler knows and each one's attachment. Pure: no I/O and no awaiting;
//! `lifecycle.rs` performs the [`Ending`]s (`ending.rs`) it returns.
//!
//! An attachment goes **Opening** (its opener forces the size, opens the
//! output, sends `attached` and the snapshot) → **Streaming** (an output task
//! owns the pane pipe) → **ended**. It ends when it leaves the table, and only
//! then is its [`Ending`] made: one value saying what to close, which size to
//! release and what to tell the phone. An attachment is in at most one place
//! at a time, so each gets exactly one `Ending`, whoever ends it (detach,
//! re-attach, pane exit, send or compress failure, peer replaced or
//! disconnected, shutdown) and however those race.
//!
//! Generations are unique for the life of the table (not per peer), so a late
//! report about an attachment that already ended, even one of a peer that
//! left and came back, finds no match and changes nothing.
//!
//! Who releases the size of an **Opening** attachment is its opener, always:
//! another party that ends it only takes it out of the table, and the opener
//! finds out at its next step ([`Table::start_streaming`]). Releasing it from
//! outside could run before the opener's own resize and leave the pane pinned.

use std::collections::HashMap;

use terminal_protocol::{InOrder, Verdict, Via};

use super::ending::{Cause, Ending, Stream};
use super::table_types::Generation;
pub(crate) use super::table_types::{AttachmentId, Driver};

/// An attachment being opened. Not `Clone`: consuming it in
/// [`Table::start_streaming`] or [`Table::opening_failed`] is the opener's one
/// way out, so the opening phase ends exactly once.
#[must_use = "an Opening must end in start_streaming or opening_failed"]
pub(crate) struct Opening<D: Driver> {
    id: AttachmentId,
    pane_id: String,
    link: D::Link,
}

impl<D: Driver> Opening<D> {
    /// The pane being attached.
    pub(crate) fn pane_id(&self) -> &str {
        &self.pane_id
    }

    fn ending(self, cause: Cause, stream: Stream<D>) -> Ending<D> {
        Ending {
            id: self.id,
            cause,
            pane_id: self.pane_id,
            link: self.link,
            stream,
        }
    }
}

/// A streaming attachment as seen by the requests that use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attached {
    pub id: AttachmentId,
    pub pane_id: String,
    pub cols: u16,
    pub rows: u16,
}

enum Phase<D: Driver> {
    Opening,
    Streaming(D::Pump),
}

struct Attachment<D: Driver> {
    generation: Generation,
    pane_id: String,
    cols: u16,
    rows: u16,
    phase: Phase<D>,
}

struct Peer<D: Driver> {
    link: D::Link,
    attachment: Option<Attachment<D>>,
    /// Where this peer's numbered input continues (docs/stream-v2.md §4):
    /// from 0 for every new peer object.
    input: InOrder,
}

/// Every known peer and its attachment (terminal-protocol.md §6: at most one
/// per peer).
///
/// Inputs: [`register`](Self::register), [`begin`](Self::begin),
/// [`start_streaming`](Self::start_streaming),
/// [`opening_failed`](Self::opening_failed), [`end`](Self::end),
/// [`stream_ended`](Self::stream_ended), [`disconnect`](Self::disconnect),
/// [`end_all`](Self::end_all), [`resized`](Self::resized). Each returns the
/// endings it caused, at once; nothing is left to drain later. Lookups:
/// [`attached`](Self::attached), [`links`](Self::links),
/// [`attachments`](Self::attachments).
///
/// **Invariant (one ending):** an attachment is in one place at a time (this
/// table, or its opener's [`Opening`]) and its [`Ending`] is made when it
/// leaves that place, so there is exactly one per attachment, and with it one
/// release of the size.
pub(crate) struct Table<D: Driver> {
    peers: HashMap<String, Peer<D>>,
    next_generation: u64,
}

impl<D: Driver> Default for Table<D> {
    fn default() -> Self {
        Table {
            peers: HashMap::new(),
            next_generation: 1,
        }
    }
}

/// An attachment taken out of the table by anyone but its opener, as its
/// `Ending`. An Opening one yields none: its opener still holds the stream
/// and the forced size, and ends it itself when [`Table::start_streaming`]
/// refuses.
fn leave<D: Driver>(
    device: &str,
    link: &D::Link,
    attachment: Attachment<D>,
    cause: Cause,
) -> Option<Ending<D>> {
    let Phase::Streaming(pump) = attachment.phase else {
        return None;
    };
    Some(Ending {
        id: AttachmentId {
            device: device.to_owned(),
            generation: attachment.generation,
        },
        cause,
        pane_id: attachment.pane_id,
        link: link.clone(),
        stream: Stream::Stop(pump),
    })
}

impl<D: Driver> Table<D> {
    /// Makes `link` the current peer of `device`. A different link of the same
    /// device (the phone reconnected) replaces the old one, whose attachment
    /// ends. Returns whether the table changed, and that ending.
    pub(crate) fn register(&mut self, device: &str, link: &D::Link) -> (bool, Option<Ending<D>>) {
        match self.peers.get_mut(device) {
            Some(peer) if D::same_link(&peer.link, link) => (false, None),
            Some(peer) => {
                let old_link = std::mem::replace(&mut peer.link, link.clone());
                peer.input = InOrder::starting_at(0);
                let ending = peer
                    .attachment
                    .take()
                    .and_then(|a| leave(device, &old_link, a, Cause::PeerReplaced));
                (true, ending)
            }
            None => {
                self.peers.insert(
                    device.to_owned(),
                    Peer {
                        link: link.clone(),
                        attachment: None,
                        input: InOrder::starting_at(0),
                    },
                );
                (true, None)
            }
        }
    }

    /// Starts an attachment of `link` to `pane_id`, ending the current one
    /// (re-attach). `None` when `link` is no longer its device's peer (it was
    /// replaced or went away while the request waited): nothing is started.
    pub(crate) fn begin(
        &mut self,
        device: &str,
        link: &D::Link,
        pane_id: &str,
        cols: u16,
        rows: u16,
    ) -> Option<(Opening<D>, Option<Ending<D>>)> {
        let peer = self.peers.get_mut(device)?;
        if !D::same_link(&peer.link, link) {
            return None;
        }
        let generation = Generation(self.next_generation);
        self.next_generation += 1;
        let previous = peer.attachment.replace(Attachment {
            generation,
            pane_id: pane_id.to_owned(),
            cols,
            rows,
            phase: Phase::Opening,
        });
        let ending = previous.and_then(|a| leave(device, link, a, Cause::Reattach));
        let opening = Opening {
            id: AttachmentId {
                device: device.to_owned(),
                generation,
            },
            pane_id: pane_id.to_owned(),
            link: link.clone(),
        };
        Some((opening, ending))
    }

    /// Opening → Streaming. `start` runs (and its task is stored) only while
    /// the attachment is still current, inside this one call, so the task
    /// cannot report its own end before it is registered. If the attachment
    /// was ended while opening, `start` does not run and the opener gets the
    /// ending, with `output` to close.
    pub(crate) fn start_streaming(
        &mut self,
        opening: Opening<D>,
        output: D::Output,
        start: impl FnOnce(D::Output, AttachmentId) -> D::Pump,
    ) -> Result<(), Ending<D>> {
        let current = self
            .peers
            .get_mut(&opening.id.device)
            .and_then(|p| p.attachment.as_mut())
            .filter(|a| a.generation == opening.id.generation);
        match current {
            Some(a) if matches!(a.phase, Phase::Opening) => {
                a.phase = Phase::Streaming(start(output, opening.id));
                Ok(())
            }
            _ => Err(opening.ending(Cause::Abandoned, Stream::Close(output))),
        }
    }

    /// The opening failed (`output`: the stream, if it was opened). Always an
    /// ending: the opener owns the forced size until streaming starts.
    pub(crate) fn opening_failed(
        &mut self,
        opening: Opening<D>,
        output: Option<D::Output>,
        cause: Cause,
    ) -> Ending<D> {
        if let Some(peer) = self.peers.get_mut(&opening.id.device)
            && peer
                .attachment
                .as_ref()
                .is_some_and(|a| a.generation == opening.id.generation)
        {
            peer.attachment = None;
        }
        let stream = output.map_or(Stream::Unopened, Stream::Close);
        opening.ending(cause, stream)
    }

    /// Ends attachment `id` if it is still the current, streaming one.
    pub(crate) fn end(&mut self, id: &AttachmentId, cause: Cause) -> Option<Ending<D>> {
        let peer = self.peers.get_mut(&id.device)?;
        let current = peer.attachment.as_ref()?;
        if current.generation != id.generation || matches!(current.phase, Phase::Opening) {
            return None;
        }
        let attachment = peer.attachment.take()?;
        leave(&id.device, &peer.link, attachment, cause)
    }

    /// The output task of `id` stopped on its own. If it still owns the
    /// attachment, the ending closes its `output`; otherwise someone else is
    /// ending it and waits for this task, which closes `output` itself (`Err`).
    pub(crate) fn stream_ended(
        &mut self,
        id: &AttachmentId,
        cause: Cause,
        output: D::Output,
    ) -> Result<Ending<D>, D::Output> {
        match self.end(id, cause) {
            Some(ending) => Ok(Ending {
                // The task that would be stopped is the caller: it closes
                // `output` instead of waiting for itself.
                stream: Stream::Close(output),
                ..ending
            }),
            None => Err(output),
        }
    }

    /// The peer of `device` went away: forget it and end its attachment.
    pub(crate) fn disconnect(&mut self, device: &str) -> Option<Ending<D>> {
        let peer = self.peers.remove(device)?;
        let attachment = peer.attachment?;
        leave(device, &peer.link, attachment, Cause::Disconnected)
    }

    /// Forgets every peer and ends every attachment.
    pub(crate) fn end_all(&mut self) -> Vec<Ending<D>> {
        self.peers
            .drain()
            .filter_map(|(device, peer)| {
                let attachment = peer.attachment?;
                leave(&device, &peer.link, attachment, Cause::Shutdown)
            })
            .collect()
    }

    /// The streaming attachment of `link`, if it is its device's peer.
    pub(crate) fn attached(&self, device: &str, link: &D::Link) -> Option<Attached> {
        let peer = self.peers.get(device)?;
        if !D::same_link(&peer.link, link) {
            return None;
        }
        let a = peer.attachment.as_ref()?;
        matches!(a.phase, Phase::Streaming(_)).then(|| Attached {
            id: AttachmentId {
                device: device.to_owned(),
                generation: a.generation,
            },
            pane_id: a.pane_id.clone(),
            cols: a.cols,
            rows: a.rows,
        })
    }

    /// Remembers the dims last applied to attachment `id` (if still current).
    pub(crate) fn resized(&mut self, id: &AttachmentId, cols: u16, rows: u16) {
        if let Some(a) = self
            .peers
            .get_mut(&id.device)
            .and_then(|p| p.attachment.as_mut())
            .filter(|a| a.generation == id.generation)
        {
            a.cols = cols;
            a.rows = rows;
        }
    }

    /// Decides about `len` bytes of numbered input at `offset` from `link`
    /// (§3, §4) and advances past what is to be applied. `None` when `link`
    /// is not its device's current peer.
    pub(crate) fn accept_input(
        &mut self,
        device: &str,
        link: &D::Link,
        offset: u64,
        len: usize,
        via: Via,
    ) -> Option<Verdict> {
        let peer = self.peers.get_mut(device)?;
        if !D::same_link(&peer.link, link) {
            return None;
        }
        Some(peer.input.accept(offset, len, via))
    }

    /// Every known peer's link.
    pub(crate) fn links(&self) -> Vec<D::Link> {
        self.peers.values().map(|p| p.link.clone()).collect()
    }

    /// (device id, streaming pane) for every known peer.
    pub(crate) fn attachments(&self) -> Vec<(String, Option<String>)> {
        self.peers
            .iter()
            .map(|(device, p)| {
                let pane = p
                    .attachment
                    .as_ref()
                    .filter(|a| matches!(a.phase, Phase::Streaming(_)))
                    .map(|a| a.pane_id.clone());
                (device.clone(), pane)
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "attachment_tests.rs"]
mod tests;
