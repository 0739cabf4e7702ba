//! Resume holds (docs/stream-v2.md §5): when a phone attached with offsets
//! goes away, its pane stream keeps reading for `RESUME_WINDOW`, held here by
//! device id, so that the phone's next peer can continue from its offset.
//! Pure: the handler starts the window's timer and releases what leaves.

use std::collections::HashMap;
use std::sync::Arc;

use super::stream::PaneStream;

/// A pane stream kept for a device that went away.
pub(super) struct Hold {
    pub pane_id: String,
    pub stream: Arc<PaneStream>,
    generation: u64,
}

/// The holds by device: at most one per device.
#[derive(Default)]
pub(super) struct Holds {
    by_device: HashMap<String, Hold>,
    next_generation: u64,
}

impl Holds {
    /// Keeps `stream` for `device`; returns the generation its timer names
    /// and the hold it replaced (to be released).
    pub(super) fn insert(&mut self, device: &str, stream: Arc<PaneStream>) -> (u64, Option<Hold>) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let hold = Hold {
            pane_id: stream.pane_id().to_owned(),
            stream,
            generation,
        };
        (generation, self.by_device.insert(device.to_owned(), hold))
    }

    /// The device attaches (anywhere): its hold's window ends now.
    pub(super) fn take(&mut self, device: &str) -> Option<Hold> {
        self.by_device.remove(device)
    }

    /// The window of hold `generation` is over; it leaves if still there.
    pub(super) fn expire(&mut self, device: &str, generation: u64) -> Option<Hold> {
        let current = self.by_device.get(device)?;
        if current.generation != generation {
            return None;
        }
        self.by_device.remove(device)
    }

    /// Every hold (shutdown).
    pub(super) fn drain(&mut self) -> Vec<Hold> {
        self.by_device.drain().map(|(_, h)| h).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use terminal_protocol::RESUME_RING_BYTES;

    fn stream(pane: &str) -> Arc<PaneStream> {
        Arc::new(PaneStream::new(pane, RESUME_RING_BYTES, 0))
    }

    #[test]
    fn a_late_timer_does_not_end_a_newer_hold() {
        let mut holds = Holds::default();
        let (first, replaced) = holds.insert("phone", stream("%1"));
        assert!(replaced.is_none());
        let (second, replaced) = holds.insert("phone", stream("%2"));
        assert_eq!(replaced.map(|h| h.pane_id), Some("%1".to_owned()));
        assert!(holds.expire("phone", first).is_none());
        let hold = holds.expire("phone", second);
        assert_eq!(hold.map(|h| h.pane_id), Some("%2".to_owned()));
        assert!(holds.take("phone").is_none());
    }

    #[test]
    fn attaching_takes_the_hold_and_its_timer_then_finds_nothing() {
        let mut holds = Holds::default();
        let (generation, _) = holds.insert("phone", stream("%1"));
        assert!(holds.take("other").is_none());
        assert_eq!(
            holds.take("phone").map(|h| h.pane_id),
            Some("%1".to_owned())
        );
        assert!(holds.expire("phone", generation).is_none());
        assert!(holds.drain().is_empty());
    }
}
