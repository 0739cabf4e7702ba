//! The event reader of a connection: one task that reads the reliable
//! `terminal` channel and, with stream v2, the fast channel; decodes each
//! message, turns output into the applied byte stream (`stream`: inflate,
//! offsets, fast copies), answers waiting requests and queues the rest for
//! [`PhoneConnection::next_event`](super::PhoneConnection::next_event).
//! After each message it publishes the counters and the resume point, so
//! they always describe exactly what was handed out.

use std::sync::{Arc, Mutex};

use rtc_transport::RtcChannel;
use terminal_protocol::{DecodeError, Event};
use tokio::sync::{mpsc, watch};

use super::requests::Waiters;
use super::stream::{Applied, OutputStream, ResumePoint, StreamStats};
use super::{INFLATE_FAILED, INVALID_EVENT, lock};

/// What the reader publishes for the connection's owner.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Counters of the applied stream.
    pub(super) stats: StreamStats,
    /// The current attachment's position after the last output handed out.
    pub(super) resume_point: Option<ResumePoint>,
    /// The `resumeFrom` of the attach in flight (set by the request side).
    pub(super) resume_asked: Option<u64>,
    /// Input fast copies handed to SCTP (counted by the request side).
    pub(super) fast_inputs_sent: u64,
    /// The attachment the phone asked for is confirmed: set on `attached`,
    /// cleared when an `attach` or `detach` is sent and when the attachment
    /// ends. Input is copied onto the fast channel only while it is set
    /// (§4: a copy must not overtake an attach and reach the previous pane).
    pub(super) attach_confirmed: bool,
}

impl Shared {
    /// The counters, input side included.
    pub(super) fn stats(&self) -> StreamStats {
        StreamStats {
            fast_inputs_sent: self.fast_inputs_sent,
            ..self.stats
        }
    }
}

/// Everything the reader task owns.
pub(super) struct Reader {
    pub(super) channel: RtcChannel,
    pub(super) fast: Option<RtcChannel>,
    pub(super) waiters: Waiters,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) closed: watch::Sender<bool>,
    pub(super) shared: Arc<Mutex<Shared>>,
}

/// Which channel a read came from (`None`: that channel closed).
enum Got<B> {
    Reliable(Option<B>),
    Fast(Option<B>),
}

impl Reader {
    /// Channels → events until the reliable channel closes or the app drops
    /// the event queue; pending requests then fail with `Closed`.
    pub(super) async fn run(mut self) {
        let mut stream = OutputStream::default();
        loop {
            let fast = self.fast.clone();
            let got = tokio::select! {
                m = self.channel.recv() => Got::Reliable(m),
                m = async {
                    match &fast {
                        Some(ch) => ch.recv().await,
                        None => std::future::pending().await,
                    }
                }, if fast.is_some() => Got::Fast(m),
            };
            let ev = match got {
                Got::Reliable(Some(bytes)) => self.reliable(&mut stream, &bytes),
                Got::Reliable(None) => break,
                Got::Fast(Some(bytes)) => match stream.fast(&bytes) {
                    Applied::Output(data) => Some(Event::output(data)),
                    Applied::Nothing | Applied::InflateFailed(_) => None,
                },
                Got::Fast(None) => {
                    self.fast = None;
                    None
                }
            };
            let delivered = match ev {
                Some(ev) => self.deliver(ev).await,
                None => true,
            };
            let mut shared = lock(&self.shared);
            shared.stats = stream.stats();
            shared.resume_point = stream.resume_point();
            drop(shared);
            if !delivered {
                break;
            }
        }
        lock(&self.waiters).clear();
        if let Some(fast) = &self.fast {
            fast.close();
        }
        self.closed.send_replace(true);
    }

    /// One reliable message: the event to deliver, if any.
    fn reliable(&self, stream: &mut OutputStream, bytes: &[u8]) -> Option<Event> {
        let ev = match Event::decode(bytes) {
            Ok(ev) => ev,
            Err(DecodeError::UnknownType(t)) => {
                tracing::debug!(kind = %t, "unknown event type dropped");
                return None;
            }
            Err(e) => {
                return Some(Event::Error {
                    code: INVALID_EVENT.into(),
                    message: e.to_string(),
                });
            }
        };
        match ev {
            Event::Attached {
                pane_id,
                compression,
                offset,
                resumed,
            } => {
                let asked = {
                    let mut shared = lock(&self.shared);
                    shared.attach_confirmed = true;
                    shared.resume_asked.take()
                };
                stream.attached(&pane_id, compression.as_deref(), offset, resumed, asked);
                Some(Event::Attached {
                    pane_id,
                    compression,
                    offset,
                    resumed,
                })
            }
            Event::Output {
                data,
                offset,
                snapshot,
                ..
            } => match stream.reliable(&data, offset, snapshot) {
                Applied::Output(data) => Some(Event::Output {
                    data,
                    offset: None,
                    snapshot,
                    pane_id: None,
                }),
                Applied::Nothing => None,
                Applied::InflateFailed(message) => Some(Event::Error {
                    code: INFLATE_FAILED.into(),
                    message,
                }),
            },
            Event::Detached => {
                lock(&self.shared).attach_confirmed = false;
                stream.ended();
                Some(Event::Detached)
            }
            Event::PaneClosed { pane_id } => {
                if stream.pane() == Some(pane_id.as_str()) {
                    lock(&self.shared).attach_confirmed = false;
                    stream.ended();
                }
                Some(Event::PaneClosed { pane_id })
            }
            ev => Some(ev),
        }
    }

    /// Hands `ev` to the first waiting request it answers, else queues it;
    /// false once the app dropped the queue.
    async fn deliver(&self, ev: Event) -> bool {
        let ev = {
            let mut w = lock(&self.waiters);
            match w.iter().position(|(x, _)| x.matches(&ev)) {
                Some(i) => match w.remove(i) {
                    // A waiter that gave up (timeout) no longer listens: keep the event.
                    Some((_, tx)) => tx.send(ev).err(),
                    None => Some(ev),
                },
                None => Some(ev),
            }
        };
        match ev {
            Some(ev) => self.events.send(ev).await.is_ok(),
            None => true,
        }
    }
}
