//! The one task per connection that puts reliable messages on the `terminal`
//! channel: every reliable send of [`PhoneConnection`](super::PhoneConnection)
//! goes through its bounded queue, so messages leave in the order the calls
//! were made, and the task holds originals behind their fast copies in the
//! [`LeadQueue`] (stream v2 §4) instead of the caller sleeping for the lead.
//! A full queue makes callers wait (backpressure); a failed send closes the
//! channel, ends the task, and the next call gets that send's error.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc_transport::{FAST_COPY_LEAD, RtcChannel, RtcError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::lead::{LeadQueue, Push};
use super::{closed_or, lock};
use crate::error::ClientError;

/// Messages queued for the task beyond those it holds in its lead queue.
const SEND_QUEUE: usize = 64;

/// The clock of copies and deadlines: tokio's, so tests with paused time
/// see the same instants as the task's timer.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Where the task's messages go: the reliable channel, or a test's fake.
pub(super) trait Sink: Send + Sync + 'static {
    /// Sends one message, waiting under backpressure.
    fn send(&self, bytes: &[u8]) -> impl Future<Output = Result<(), RtcError>> + Send;
    /// Closes the channel (after a failed send: the stream has a hole).
    fn close(&self);
}

impl Sink for RtcChannel {
    fn send(&self, bytes: &[u8]) -> impl Future<Output = Result<(), RtcError>> + Send {
        RtcChannel::send(self, bytes)
    }

    fn close(&self) {
        RtcChannel::close(self);
    }
}

enum Outgoing {
    /// A reliable message; `copied_at` is when its fast copy went out.
    Message {
        bytes: Vec<u8>,
        copied_at: Option<Instant>,
    },
    /// Answered once everything queued before it has been sent.
    Flush(oneshot::Sender<()>),
}

/// The connection's handle on its sender task.
#[derive(Debug)]
pub(super) struct ReliableSender {
    tx: mpsc::Sender<Outgoing>,
    /// The error that ended the task, for the next caller.
    failure: Arc<Mutex<Option<RtcError>>>,
}

/// Room for one message in the task's queue.
pub(super) struct Slot<'a>(mpsc::Permit<'a, Outgoing>);

impl Slot<'_> {
    /// Queues `bytes`, held until [`FAST_COPY_LEAD`] after `copied_at` (and
    /// after any copy before it). Never waits.
    pub(super) fn send(self, bytes: Vec<u8>, copied_at: Option<Instant>) {
        self.0.send(Outgoing::Message { bytes, copied_at });
    }
}

impl ReliableSender {
    /// Starts the task sending on `sink` until `closed` turns true, the
    /// handle is dropped or a send fails.
    pub(super) fn spawn<S: Sink>(
        sink: S,
        closed: watch::Receiver<bool>,
    ) -> (ReliableSender, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let failure = Arc::default();
        let driver = Driver {
            sink,
            rx,
            closed,
            lead: LeadQueue::new(FAST_COPY_LEAD),
            blocked: None,
            flushes: Vec::new(),
            failure: Arc::clone(&failure),
        };
        let task = tokio::spawn(driver.run());
        (ReliableSender { tx, failure }, task)
    }

    /// Waits for room in the queue (the caller's backpressure); the error a
    /// direct send would give once the task has ended.
    pub(super) async fn reserve(&self) -> Result<Slot<'_>, ClientError> {
        self.tx.reserve().await.map(Slot).map_err(|_| self.gone())
    }

    /// Returns once everything queued before has been sent (or the task
    /// ended), originals held for their lead included.
    pub(super) async fn flush(&self) {
        let (done, sent) = oneshot::channel();
        if self.tx.send(Outgoing::Flush(done)).await.is_ok() {
            // An error only means the task ended: nothing more will be sent.
            let _ = sent.await;
        }
    }

    /// Why nothing more can be sent: the failed send's error for the first
    /// caller to ask (as the direct send returned it), then `Closed` (the
    /// task closed the channel, so a direct send would say that).
    pub(super) fn gone(&self) -> ClientError {
        lock(&self.failure)
            .take()
            .map_or(ClientError::Closed, closed_or)
    }
}

/// The task's state.
struct Driver<S> {
    sink: S,
    rx: mpsc::Receiver<Outgoing>,
    closed: watch::Receiver<bool>,
    lead: LeadQueue,
    /// A message the full lead queue handed back; nothing is taken from
    /// `rx` until it is held or sent.
    blocked: Option<Vec<u8>>,
    /// Flushes waiting for the lead queue to empty; nothing is taken from
    /// `rx` meanwhile, so they wait for what came before them only.
    flushes: Vec<oneshot::Sender<()>>,
    failure: Arc<Mutex<Option<RtcError>>>,
}

/// What woke the task.
enum Wake {
    Stop,
    Got(Outgoing),
    Deadline,
}

impl<S: Sink> Driver<S> {
    async fn run(mut self) {
        loop {
            if !self.release(now()).await {
                return;
            }
            let accept = self.blocked.is_none() && self.flushes.is_empty() && self.lead.has_room();
            let deadline = self.lead.next_deadline();
            let wake = tokio::select! {
                biased;
                // A dropped sender (the reader ended) counts as closed too.
                _ = self.closed.wait_for(|c| *c) => Wake::Stop,
                m = self.rx.recv(), if accept => m.map_or(Wake::Stop, Wake::Got),
                () = sleep_until(deadline) => Wake::Deadline,
            };
            match wake {
                Wake::Stop => return,
                Wake::Deadline => {}
                Wake::Got(Outgoing::Flush(done)) => self.flushes.push(done),
                Wake::Got(Outgoing::Message { bytes, copied_at }) => {
                    if let Some(at) = copied_at {
                        self.lead.copied(at);
                    }
                    if !self.push(bytes, now()).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sends what is due at `now`, retries the message the full queue
    /// handed back, and answers the flushes once nothing waits. False once
    /// a send failed.
    async fn release(&mut self, now: Instant) -> bool {
        for bytes in self.lead.due(now) {
            if !self.out(&bytes).await {
                return false;
            }
        }
        if let Some(bytes) = self.blocked.take()
            && !self.push(bytes, now).await
        {
            return false;
        }
        if self.lead.is_empty() && self.blocked.is_none() {
            for done in self.flushes.drain(..) {
                // The flusher may have given up (timeout); nothing to tell.
                let _ = done.send(());
            }
        }
        true
    }

    /// One message into the lead queue: sent, held, or kept back while the
    /// queue is full. False once a send failed.
    async fn push(&mut self, bytes: Vec<u8>, now: Instant) -> bool {
        match self.lead.push(bytes, now) {
            Push::Send(bytes) => self.out(&bytes).await,
            Push::Held => true,
            Push::Full(bytes) => {
                self.blocked = Some(bytes);
                true
            }
        }
    }

    /// Sends one message; on failure records the error for the next caller
    /// and closes the channel: the ordered stream now has a hole (an input
    /// whose offset never arrives), so nothing after it may follow.
    async fn out(&mut self, bytes: &[u8]) -> bool {
        match self.sink.send(bytes).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "reliable send failed; closing the channel");
                *lock(&self.failure) = Some(e);
                self.sink.close();
                false
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::super::lead::MAX_HELD;
    use super::*;

    /// One sent message and when it left.
    type Sent = (Instant, Vec<u8>);

    /// Records what was sent and when; fails the `fail_at`-th send.
    #[derive(Clone, Default)]
    struct Fake {
        sent: Arc<Mutex<Vec<Sent>>>,
        fail_at: Option<usize>,
        closed: Arc<AtomicBool>,
    }

    impl Sink for Fake {
        fn send(&self, bytes: &[u8]) -> impl Future<Output = Result<(), RtcError>> + Send {
            let mut sent = lock(&self.sent);
            let r = if Some(sent.len()) == self.fail_at {
                Err(RtcError::SendTimeout)
            } else {
                sent.push((now(), bytes.to_vec()));
                Ok(())
            };
            std::future::ready(r)
        }

        fn close(&self) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    impl Fake {
        fn sent(&self) -> Vec<Sent> {
            lock(&self.sent).clone()
        }
    }

    /// A message without a fast copy, as `send_encoded` queues it.
    async fn send(sender: &ReliableSender, bytes: &[u8]) -> Result<(), ClientError> {
        sender.reserve().await?.send(bytes.to_vec(), None);
        Ok(())
    }

    fn start(fake: &Fake) -> (ReliableSender, JoinHandle<()>, watch::Sender<bool>) {
        let (closed_tx, closed_rx) = watch::channel(false);
        let (sender, task) = ReliableSender::spawn(fake.clone(), closed_rx);
        (sender, task, closed_tx)
    }

    #[tokio::test(start_paused = true)]
    async fn originals_wait_for_their_copys_lead_and_every_message_keeps_its_order() {
        let fake = Fake::default();
        let (sender, _task, _closed) = start(&fake);
        let t0 = now();
        send(&sender, b"attach").await.unwrap();
        let copied = now();
        sender
            .reserve()
            .await
            .unwrap()
            .send(b"a".to_vec(), Some(copied));
        send(&sender, b"resize").await.unwrap();
        // The caller never waited for the lead.
        assert_eq!(now(), t0);
        sender.flush().await;
        let sent = fake.sent();
        let names: Vec<&[u8]> = sent.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(names, [&b"attach"[..], b"a", b"resize"]);
        assert_eq!(sent[0].0, t0);
        assert!(sent[1].0 >= copied + FAST_COPY_LEAD);
        assert!(sent[2].0 >= sent[1].0);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_faster_than_the_lead_are_not_serialized_behind_it() {
        let fake = Fake::default();
        let (sender, _task, _closed) = start(&fake);
        let t0 = now();
        for key in 0..20u8 {
            let copied = now();
            sender
                .reserve()
                .await
                .unwrap()
                .send(vec![key], Some(copied));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sender.flush().await;
        let sent = fake.sent();
        assert_eq!(
            sent.iter().map(|(_, b)| b[0]).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        // Each original one lead after its own copy (1 ms apart), not 20 leads.
        for (i, (at, _)) in sent.iter().enumerate() {
            let copy = t0 + Duration::from_millis(i as u64);
            assert!(*at >= copy + FAST_COPY_LEAD, "{i}");
            assert!(
                *at <= copy + FAST_COPY_LEAD + Duration::from_millis(1),
                "{i}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_lead_queue_makes_callers_wait_until_the_lead_is_over() {
        let fake = Fake::default();
        let (sender, _task, _closed) = start(&fake);
        let t0 = now();
        // Held by the task, then queued for it; the next caller must wait.
        for i in 0..MAX_HELD + SEND_QUEUE {
            sender
                .reserve()
                .await
                .unwrap()
                .send(i.to_le_bytes().to_vec(), Some(t0));
        }
        assert_eq!(now(), t0);
        let last = sender.reserve().await.unwrap();
        assert!(now() >= t0 + FAST_COPY_LEAD);
        last.send(b"last".to_vec(), None);
        sender.flush().await;
        assert_eq!(fake.sent().len(), MAX_HELD + SEND_QUEUE + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_send_closes_the_channel_and_the_next_call_gets_its_error() {
        let fake = Fake {
            fail_at: Some(1),
            ..Fake::default()
        };
        let (sender, task, _closed) = start(&fake);
        send(&sender, b"one").await.unwrap();
        send(&sender, b"two").await.unwrap();
        task.await.unwrap();
        assert!(fake.closed.load(Ordering::SeqCst));
        assert!(matches!(
            send(&sender, b"three").await,
            Err(ClientError::Rtc(RtcError::SendTimeout))
        ));
        assert!(matches!(
            send(&sender, b"four").await,
            Err(ClientError::Closed)
        ));
        assert_eq!(fake.sent().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_ends_when_the_connection_closes() {
        let fake = Fake::default();
        let (sender, task, closed) = start(&fake);
        sender
            .reserve()
            .await
            .unwrap()
            .send(b"held".to_vec(), Some(now()));
        closed.send_replace(true);
        task.await.unwrap();
        assert!(matches!(
            send(&sender, b"late").await,
            Err(ClientError::Closed)
        ));
        // A flush after the end returns at once.
        sender.flush().await;
        assert!(!fake.closed.load(Ordering::SeqCst));
    }
}
