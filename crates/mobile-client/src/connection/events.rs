//! The event reader of a connection: decodes each DataChannel message,
//! inflates output per attachment, answers waiting requests and queues the
//! rest for [`PhoneConnection::next_event`](super::PhoneConnection::next_event).

use rtc_transport::RtcChannel;
use terminal_protocol::{DecodeError, Decompressor, Event};
use tokio::sync::{mpsc, watch};

use super::requests::Waiters;
use super::{INFLATE_FAILED, INVALID_EVENT, lock};

/// Channel → events: decode, inflate output per attachment, answer waiters,
/// queue the rest (bounded).
pub(super) async fn read_events(
    channel: RtcChannel,
    waiters: Waiters,
    events: mpsc::Sender<Event>,
    closed: watch::Sender<bool>,
) {
    let mut inflater: Option<Decompressor> = None;
    while let Some(bytes) = channel.recv().await {
        let ev = match Event::decode(&bytes) {
            Ok(ev) => ev,
            Err(DecodeError::UnknownType(t)) => {
                tracing::debug!(kind = %t, "unknown event type dropped");
                continue;
            }
            Err(e) => Event::Error {
                code: INVALID_EVENT.into(),
                message: e.to_string(),
            },
        };
        let ev = match ev {
            Event::Attached {
                pane_id,
                compression,
            } => {
                // A new attachment starts a new deflate stream (spec §7).
                inflater = (compression.as_deref() == Some("deflate")).then(Decompressor::new);
                Event::Attached {
                    pane_id,
                    compression,
                }
            }
            Event::Output { data, .. } => match inflater.as_mut() {
                None => Event::output(data),
                Some(d) => match d.decompress(&data) {
                    Ok(plain) => Event::Output {
                        data: plain,
                        offset: None,
                        snapshot: false,
                        pane_id: None,
                    },
                    Err(e) => Event::Error {
                        code: INFLATE_FAILED.into(),
                        message: e.to_string(),
                    },
                },
            },
            ev => ev,
        };
        let ev = {
            let mut w = lock(&waiters);
            match w.iter().position(|(x, _)| x.matches(&ev)) {
                Some(i) => {
                    let (_, tx) = w.remove(i).expect("index from position is in range");
                    drop(w);
                    // A waiter that gave up (timeout) no longer listens: keep the event.
                    tx.send(ev).err()
                }
                None => Some(ev),
            }
        };
        if let Some(ev) = ev
            && events.send(ev).await.is_err()
        {
            break;
        }
    }
    // Closed: pending requests fail with Closed.
    lock(&waiters).clear();
    closed.send_replace(true);
}
