//! The typed request/response API of [`PhoneConnection`]: each request
//! that has an answer registers what it expects, the event reader hands it
//! the first matching event, and a bounded number may wait at once. With
//! stream v2 an attach asks for offsets (and may resume), and input is
//! numbered per connection, each small one sent first as a fast copy. Every
//! reliable message is queued on the connection's sender task (`sender`), in
//! call order; none of these methods waits for a copy's lead.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc_transport::RtcError;
use terminal_protocol::{Attach, Event, MAX_FAST_COPY, MAX_INPUT_SIZE, Request, Session};
use tokio::sync::oneshot;

use super::sender::{self, Slot};
use super::stream::ResumePoint;
use super::{MAX_WAITERS, PhoneConnection, REQUEST_TIMEOUT, closed_or, lock};
use crate::error::ClientError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Sessions,
    Attached,
    Detached,
    SessionEnded,
    SessionCreated,
    Pong,
}

impl Expect {
    pub(super) fn matches(self, ev: &Event) -> bool {
        let err = |c: &str| matches!(ev, Event::Error { code, .. } if code == c);
        match self {
            Expect::Sessions => matches!(ev, Event::Sessions { .. }) || err("list_sessions_failed"),
            Expect::Attached => {
                matches!(ev, Event::Attached { .. } | Event::PaneClosed { .. })
                    || err("attach_failed")
                    || err("compression_failed")
            }
            Expect::Detached => matches!(ev, Event::Detached),
            Expect::SessionEnded => {
                matches!(ev, Event::SessionEnded { .. }) || err("kill_session_failed")
            }
            Expect::SessionCreated => {
                matches!(ev, Event::SessionCreated { .. }) || err("create_session_failed")
            }
            Expect::Pong => matches!(ev, Event::Pong { .. }),
        }
    }
}

pub(super) type Waiters = Arc<Mutex<VecDeque<(Expect, oneshot::Sender<Event>)>>>;

impl PhoneConnection {
    /// `list_sessions` → the session tree.
    pub async fn list_sessions(&self) -> Result<Vec<Session>, ClientError> {
        match self
            .request(Request::ListSessions, Expect::Sessions)
            .await?
        {
            Event::Sessions { sessions, .. } => Ok(sessions),
            other => Err(unexpected(other)),
        }
    }

    /// `attach` to `pane_id` at `cols`×`rows`; with `compress`, asks for deflate
    /// (output events are inflated before they reach [`PhoneConnection::next_event`]).
    /// With stream v2 on, asks for offsets (see [`PhoneConnection::attach_with`]).
    pub async fn attach(
        &self,
        pane_id: &str,
        cols: u16,
        rows: u16,
        reattach: bool,
        compress: bool,
    ) -> Result<(), ClientError> {
        let opts = AttachOptions {
            reattach,
            compress,
            resume_from: None,
        };
        self.attach_with(pane_id, cols, rows, &opts)
            .await
            .map(|_| ())
    }

    /// `attach` with every option, returning what `attached` said. With
    /// stream v2 on (the default, [`crate::PhoneConfig::stream_v2`]) it
    /// sends `offsets: true` and, when given, `resumeFrom`; output then
    /// reaches [`PhoneConnection::next_event`] as the applied byte stream
    /// (each byte once, whichever channel brought it first).
    pub async fn attach_with(
        &self,
        pane_id: &str,
        cols: u16,
        rows: u16,
        opts: &AttachOptions,
    ) -> Result<Attachment, ClientError> {
        let resume_from = opts.resume_from.filter(|_| self.stream_v2);
        lock(&self.shared).resume_asked = resume_from;
        let req = Request::Attach(Attach {
            pane_id: pane_id.to_owned(),
            cols,
            rows,
            reattach: opts.reattach,
            compression: opts.compress.then(|| "deflate".to_owned()),
            offsets: self.stream_v2,
            resume_from,
        });
        let answer = self.request(req, Expect::Attached).await;
        if answer.is_err() {
            // No `attached` took it: it must not reach a later one.
            lock(&self.shared).resume_asked = None;
        }
        match answer? {
            Event::Attached {
                pane_id,
                compression,
                offset,
                resumed,
            } => Ok(Attachment {
                pane_id,
                compression,
                offset,
                resumed,
            }),
            Event::PaneClosed { pane_id } => Err(ClientError::PaneClosed(pane_id)),
            other => Err(unexpected(other)),
        }
    }

    /// Re-attaches, on this (new) connection, to the pane an earlier
    /// connection was attached to, continuing its byte stream at `point`
    /// ([`PhoneConnection::resume_point`] of the earlier connection, read
    /// after draining its events): `attach{reattach, offsets, resumeFrom}`.
    /// If the host still holds those bytes, `resumed` is true and the stream
    /// continues exactly; otherwise a snapshot comes first and the bytes in
    /// between count as skipped ([`crate::StreamStats::bytes_skipped`]).
    pub async fn resume(
        &self,
        point: &ResumePoint,
        cols: u16,
        rows: u16,
        compress: bool,
    ) -> Result<Attachment, ClientError> {
        let opts = AttachOptions {
            reattach: true,
            compress,
            resume_from: Some(point.next),
        };
        self.attach_with(&point.pane_id, cols, rows, &opts).await
    }

    /// `input`: sends the bytes in order, split into ≤ 16 384-byte messages.
    /// With stream v2, each message carries its offset in this connection's
    /// input stream, and one of at most 1 024 bytes goes first as a fast
    /// copy (the host applies whichever copy arrives first, once) while the
    /// attachment is confirmed (from `attached` until the next `attach` or
    /// `detach` is sent). Its reliable original is held in the connection's
    /// lead queue until `FAST_COPY_LEAD` (3 ms) after the copy, so the two
    /// never share a datagram, and every reliable message sent after it
    /// queues behind it. Returns once the copy is out and the original is
    /// queued: it never waits for the lead, only for room in the queue.
    pub async fn input(&self, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(MAX_INPUT_SIZE) {
            self.input_message(chunk).await?;
        }
        Ok(())
    }

    async fn input_message(&self, data: &[u8]) -> Result<(), ClientError> {
        if !self.stream_v2 {
            return self.send_encoded(Request::input(data).encode()).await;
        }
        // Held until the original is queued: offsets reach the queue in the
        // order they are taken.
        let mut next = self.input_next.lock().await;
        let bytes = Request::Input {
            data: data.to_vec(),
            offset: Some(*next),
        }
        .encode();
        // An offset is never reused for other bytes, even when a send fails
        // after the fast copy may have gone out.
        *next += data.len() as u64;
        let slot = self.slot_for(&bytes).await?;
        // The check, the copy and the queueing under one lock: an `attach` or
        // `detach` (queued under the same lock, `send_request`) is either
        // queued after this original or stops the copy, so a copy never
        // overtakes one (§4).
        let mut shared = lock(&self.shared);
        let copied_at = (data.len() <= MAX_FAST_COPY
            && shared.attach_confirmed
            && self.fast.as_ref().is_some_and(|fast| fast.try_send(&bytes)))
        .then(sender::now);
        if copied_at.is_some() {
            shared.fast_inputs_sent += 1;
        }
        // §4: the sender holds the original until the copy is a lead ahead
        // (SCTP bundles every channel's queued chunks; a copy and its
        // original in one datagram are lost together).
        slot.send(bytes, copied_at);
        Ok(())
    }

    /// `resize` (silent on success; failures arrive as `error` events).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), ClientError> {
        self.send_request(&Request::Resize { cols, rows }).await
    }

    /// `detach`, waiting for `detached`.
    pub async fn detach(&self) -> Result<(), ClientError> {
        self.request(Request::Detach, Expect::Detached)
            .await
            .map(|_| ())
    }

    /// `kill_session`, waiting for `session_ended`.
    pub async fn kill_session(&self, session: &str) -> Result<(), ClientError> {
        let req = Request::KillSession {
            session: session.to_owned(),
        };
        match self.request(req, Expect::SessionEnded).await? {
            Event::SessionEnded { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// `create_session` → the new session.
    pub async fn create_session(&self) -> Result<Session, ClientError> {
        match self
            .request(Request::CreateSession, Expect::SessionCreated)
            .await?
        {
            Event::SessionCreated { session } => Ok(session),
            other => Err(unexpected(other)),
        }
    }

    /// `ping` → round-trip time to the `pong`.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let started = Instant::now();
        self.request(Request::Ping, Expect::Pong).await?;
        Ok(started.elapsed())
    }

    /// Sends one request without waiting for any answer: it is queued
    /// behind every reliable message sent before it (an original held for
    /// its copy's lead included) and returns once queued. With stream v2, an
    /// `input` without an offset is numbered (and copied) as by
    /// [`PhoneConnection::input`].
    pub async fn send_request(&self, req: &Request) -> Result<(), ClientError> {
        match req {
            Request::Input { data, offset: None } if self.stream_v2 => {
                return self.input_message(data).await;
            }
            Request::Attach(_) | Request::Detach => {
                let bytes = req.encode();
                let slot = self.slot_for(&bytes).await?;
                // No more input copies until the host confirmed where input
                // goes; cleared and queued under the lock `input_message`
                // copies under.
                let mut shared = lock(&self.shared);
                shared.attach_confirmed = false;
                slot.send(bytes, None);
                return Ok(());
            }
            _ => {}
        }
        self.send_encoded(req.encode()).await
    }

    /// Queues one reliable message without a fast copy.
    async fn send_encoded(&self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.slot_for(&bytes).await?.send(bytes, None);
        Ok(())
    }

    /// Room in the sender's queue for `bytes`, after the checks a direct
    /// send made first, so their errors still reach this caller: a closed
    /// channel, and a message larger than the host accepts (which the task
    /// would otherwise fail on and close the channel for).
    async fn slot_for(&self, bytes: &[u8]) -> Result<Slot<'_>, ClientError> {
        if self.channel.is_closed() {
            return Err(self.sender.gone());
        }
        let limit = self.channel.remote_max_message_size();
        if bytes.len() > limit {
            return Err(ClientError::Rtc(RtcError::TooLarge {
                size: bytes.len(),
                limit,
            }));
        }
        self.sender.reserve().await
    }

    /// Test hook: sends arbitrary bytes as one DataChannel message (garbage,
    /// events, oversize frames up to the library's limit). Direct, not
    /// through the sender task: it can overtake queued reliable messages.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.channel.send_unchecked(bytes).await.map_err(closed_or)
    }

    async fn request(&self, req: Request, expect: Expect) -> Result<Event, ClientError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut w = lock(&self.waiters);
            if w.len() >= MAX_WAITERS {
                return Err(ClientError::Timeout("a free request slot"));
            }
            w.push_back((expect, tx));
        }
        self.send_request(&req).await?;
        let ev = tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| ClientError::Timeout(req.type_name()))?
            .map_err(|_| ClientError::Closed)?;
        match ev {
            Event::Error { code, message } => Err(ClientError::Remote { code, message }),
            ev => Ok(ev),
        }
    }
}

/// How [`PhoneConnection::attach_with`] attaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// `reattach`: the host sends a snapshot first (unless it resumes).
    pub reattach: bool,
    /// Ask for deflate.
    pub compress: bool,
    /// Stream v2: continue the pane's stream at this offset (§5); ignored
    /// with stream v2 off.
    pub resume_from: Option<u64>,
}

/// What the host's `attached` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The pane.
    pub pane_id: String,
    /// `Some("deflate")` iff compression was negotiated.
    pub compression: Option<String>,
    /// Stream v2: where the pane's stream continues (`None`: the host does
    /// not speak stream v2, or it was not asked for).
    pub offset: Option<u64>,
    /// Stream v2: `resumeFrom` was honoured; no snapshot follows.
    pub resumed: bool,
}

fn unexpected(ev: Event) -> ClientError {
    ClientError::Remote {
        code: "unexpected".into(),
        message: format!("unexpected {} event", ev.type_name()),
    }
}
