//! Pane streams (docs/stream-v2.md §2, §6): one per pane being streamed,
//! shared by every attachment to that pane and by resume holds. A reader task
//! reads the pane's `PaneOutput` at full speed — it never waits on a phone —
//! strips title sequences and appends into the stream's [`Ring`]; each
//! attachment sends from its own offset and is woken through a watch of the
//! head. So neither tmux nor the agent buffers without bound: a phone that
//! falls further behind than the ring finds its bytes overwritten and gets a
//! snapshot instead.
//!
//! [`Streams`] counts the users of each pane stream: opening the pipe for
//! the first, closing it after the last. Opening and closing happen under one
//! async lock, so a pipe being closed is never met by a new open of the same
//! pane (which tmux would refuse as already piped).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use terminal_protocol::RESUME_RING_BYTES;
use tmux_bridge::{BridgeError, PaneOutput, TitleFilter, TmuxBridge};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ring::{Read, Ring};

/// What an attachment found at its offset of a pane stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StreamRead {
    /// Bytes from the offset on (a copy: the sender awaits the phone).
    Bytes(Vec<u8>),
    /// The offset was overwritten: the stream is at `head`.
    Lagged { head: u64 },
    /// Nothing new yet; wait for the head to move.
    Wait,
    /// The pane's output ended and everything was read.
    Ended,
}

struct State {
    ring: Ring,
    ended: bool,
    /// When the reader last appended bytes (for settle.rs).
    last_append: Option<Instant>,
}

/// One pane's stream: the ring the reader task fills.
pub(super) struct PaneStream {
    pane_id: String,
    state: Mutex<State>,
    head: watch::Sender<u64>,
}

impl PaneStream {
    pub(super) fn new(pane_id: &str, capacity: usize, base: u64) -> PaneStream {
        PaneStream {
            pane_id: pane_id.to_owned(),
            state: Mutex::new(State {
                ring: Ring::new(capacity, base),
                ended: false,
                last_append: None,
            }),
            head: watch::Sender::new(base),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // No method panics while holding it; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pane this stream reads.
    pub(super) fn pane_id(&self) -> &str {
        &self.pane_id
    }

    /// The offset of the next byte to be read from the pane.
    pub(super) fn head(&self) -> u64 {
        self.state().ring.head()
    }

    /// Whether every byte from `offset` to the head is still held (§5).
    pub(super) fn holds(&self, offset: u64) -> bool {
        self.state().ring.holds(offset)
    }

    /// Whether the pane's output has ended (the pane exited or the pipe went).
    pub(super) fn ended(&self) -> bool {
        self.state().ended
    }

    /// Up to `max` bytes from `offset` on.
    pub(super) fn read_from(&self, offset: u64, max: usize) -> StreamRead {
        let state = self.state();
        match state.ring.read_from(offset, max) {
            Read::Bytes(b) => StreamRead::Bytes(b.to_vec()),
            Read::Lagged { head } => StreamRead::Lagged { head },
            Read::Wait if state.ended => StreamRead::Ended,
            Read::Wait => StreamRead::Wait,
        }
    }

    /// When bytes were last appended (`None`: never).
    pub(super) fn last_append(&self) -> Option<Instant> {
        self.state().last_append
    }

    /// A receiver that sees every move of the head (and the end).
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn append(&self, bytes: &[u8]) {
        let head = {
            let mut state = self.state();
            state.ring.append(bytes);
            state.last_append = Some(Instant::now());
            state.ring.head()
        };
        self.head.send_replace(head);
    }

    fn end(&self) {
        self.state().ended = true;
        // Wakes every waiting sender, which then reads `Ended`.
        self.head.send_modify(|_| {});
    }
}

/// The reader task: pane → title filter → ring, at full speed, until the
/// output ends or it is cancelled. Hands the output back for closing.
async fn read_pane(
    stream: Arc<PaneStream>,
    mut output: PaneOutput,
    cancel: CancellationToken,
) -> PaneOutput {
    let mut filter = TitleFilter::default();
    loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = output.read() => r,
        };
        match chunk {
            Ok(Some(bytes)) => {
                let filtered = filter.filter(&bytes);
                if !filtered.is_empty() {
                    stream.append(&filtered);
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::info!(pane = %stream.pane_id, error = %e, "pane output read failed");
                break;
            }
        }
    }
    stream.end();
    output
}

/// One user's hold on a pane stream, as the attachment table stores it:
/// released exactly once, by whoever performs the attachment's ending.
#[derive(Clone)]
pub(super) struct StreamUse {
    pub stream: Arc<PaneStream>,
    /// The attachment asked for offsets, so it may be resumed (§5).
    pub offsets: bool,
}

struct Open {
    stream: Arc<PaneStream>,
    users: usize,
    cancel: CancellationToken,
    reader: JoinHandle<PaneOutput>,
}

/// A pane stream as handed to a new user.
pub(super) struct Acquired {
    pub stream: Arc<PaneStream>,
    /// When this call opened the pipe: the stream's base offset and the
    /// screen exactly there (the capture is atomic with the pipe start).
    pub opened_at: Option<(u64, Vec<u8>)>,
}

/// Every open pane stream and how many users it has.
#[derive(Default)]
pub(super) struct Streams {
    open: tokio::sync::Mutex<HashMap<String, Open>>,
}

impl Streams {
    /// One more user of `pane`'s stream, opening it if there is none.
    pub(super) async fn acquire(
        &self,
        bridge: &TmuxBridge,
        pane: &str,
    ) -> Result<Acquired, BridgeError> {
        let mut open = self.open.lock().await;
        if let Some(o) = open.get_mut(pane) {
            if !o.stream.ended() {
                o.users += 1;
                return Ok(Acquired {
                    stream: o.stream.clone(),
                    opened_at: None,
                });
            }
            // Its pane exited (ids are not reused): whatever opens now fails
            // as tmux says, once the old pipe is closed.
            if o.users == 0
                && let Some(o) = open.remove(pane)
            {
                close(o).await;
            }
        }
        if open.contains_key(pane) {
            return Err(BridgeError::PaneNotFound(pane.to_owned()));
        }
        let mut output = bridge.open_output(pane).await?;
        let snapshot = output.take_snapshot();
        let base = u64::from(rand::random::<u32>());
        let stream = Arc::new(PaneStream::new(pane, RESUME_RING_BYTES, base));
        let cancel = CancellationToken::new();
        let reader = tokio::spawn(read_pane(stream.clone(), output, cancel.clone()));
        open.insert(
            pane.to_owned(),
            Open {
                stream: stream.clone(),
                users: 1,
                cancel,
                reader,
            },
        );
        Ok(Acquired {
            stream,
            opened_at: snapshot.map(|s| (base, s)),
        })
    }

    /// One user of `stream` is done; the last one closes the pipe.
    pub(super) async fn release(&self, stream: &Arc<PaneStream>) {
        let mut open = self.open.lock().await;
        let Entry::Occupied(mut o) = open.entry(stream.pane_id.clone()) else {
            return;
        };
        if !Arc::ptr_eq(&o.get().stream, stream) {
            return;
        }
        o.get_mut().users = o.get().users.saturating_sub(1);
        if o.get().users == 0 {
            close(o.remove()).await;
        }
    }
}

/// Stops a reader and closes its pipe; failures are only logged.
async fn close(open: Open) {
    open.cancel.cancel();
    match open.reader.await {
        Ok(output) => {
            if let Err(e) = output.close().await {
                tracing::debug!(pane = %open.stream.pane_id, error = %e, "closing the pane pipe failed");
            }
        }
        Err(e) => tracing::warn!(pane = %open.stream.pane_id, error = %e, "pane reader failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_then_bytes_then_lag_then_end() {
        let s = PaneStream::new("%1", 8, 50);
        assert_eq!(s.read_from(50, 4), StreamRead::Wait);
        s.append(b"abcdef");
        assert_eq!(s.read_from(50, 4), StreamRead::Bytes(b"abcd".to_vec()));
        s.append(b"ghijkl");
        assert_eq!(s.read_from(50, 4), StreamRead::Lagged { head: 62 });
        assert!(s.holds(54) && !s.holds(53));
        s.end();
        assert_eq!(s.read_from(62, 4), StreamRead::Ended);
        assert_eq!(s.read_from(60, 4), StreamRead::Bytes(b"kl".to_vec()));
    }

    #[test]
    fn subscribers_see_the_head_move() {
        let s = PaneStream::new("%1", 8, 0);
        let mut rx = s.subscribe();
        rx.borrow_and_update();
        s.append(b"x");
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(*rx.borrow_and_update(), 1);
        s.end();
        assert!(rx.has_changed().unwrap_or(false));
    }
}
