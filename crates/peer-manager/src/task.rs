//! The one tokio task of a peer: it owns the `RtcPeer`, feeds the peer's
//! [`PeerCore`] every input (this phone's signaling, WebRTC events, channel
//! messages, the fast channel's, the core's timeout, the close command) and
//! performs the actions it drains. It makes no protocol decision and reports
//! the close up to the manager over the mpsc it was given.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtc_transport::{RtcChannel, RtcConfig, RtcEvent, RtcPeer};
use signaling_proto::SignalingMessage;
use signaling_proto::consts::DATA_CHANNEL_LABEL;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;

use crate::config::{PeerSettings, RtcSource};
use crate::core::fast::RemoteChannel;
use crate::core::{Action, CloseReason, LinkState, PeerCore};
use crate::dispatch::{DISPATCH_QUEUE, Dispatch, run_dispatcher};
use crate::events::PeerEvent;
use crate::handler::{MessageSender, ProtocolHandler};
use crate::peer::Peer;

/// Longest wait for the WebRTC stack to close a peer connection.
const RTC_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Monotonic now on tokio's clock (so `tokio::time::pause` applies), as std.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Everything one peer task needs; built by the manager at admission.
pub(crate) struct PeerTask {
    pub peer: Arc<Peer>,
    pub inbox: mpsc::Receiver<SignalingMessage>,
    pub secret: [u8; 32],
    pub settings: PeerSettings,
    pub signaling: Arc<dyn MessageSender>,
    pub handler: Arc<dyn ProtocolHandler>,
    pub events: mpsc::Sender<PeerEvent>,
    pub changes: Arc<watch::Sender<u64>>,
    pub tracker: TaskTracker,
}

/// The live transport of a built peer.
struct Link {
    rtc: RtcPeer,
    channel: RtcChannel,
}

/// Runs one peer from build to close, then reports the close and waits until
/// the manager removed it (if current) and told the handler.
pub(crate) async fn run(task: PeerTask) {
    let PeerTask {
        peer,
        mut inbox,
        secret,
        settings,
        signaling,
        handler,
        events,
        changes,
        tracker,
    } = task;
    let core = PeerCore::new(now(), &peer.device_id, secret, settings.core);
    let cancel = peer.cancel_token().clone();
    let built = tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        b = build(&settings.rtc) => Some(b),
    };
    let (dispatch_tx, dispatch_rx) = mpsc::channel(DISPATCH_QUEUE);
    let mut driver = Driver {
        core,
        peer: peer.clone(),
        signaling,
        changes,
        link: None,
        pending: VecDeque::new(),
        dispatch_tx,
        dispatch_rx: Some(dispatch_rx),
        dispatcher: None,
        handler,
        tracker,
    };
    let reason = match built {
        None => {
            driver.core.handle_close(now());
            driver.drain().await
        }
        Some(Err(e)) => {
            tracing::warn!(device_id = peer.device_id, "peer setup failed: {e}");
            driver.core.handle_setup_failed(now());
            driver.drain().await
        }
        Some(Ok((link, mut rtc_events))) => {
            driver.link = Some(link);
            driver
                .run(&mut inbox, &mut rtc_events, settings.nonce)
                .await
        }
    };
    tracing::info!(device_id = peer.device_id, ?reason, "peer closed");
    // Closing the peer wakes waiting senders and ends the dispatcher.
    peer.close();
    if let Some(d) = driver.dispatcher.take() {
        let _ = d.await;
    }
    let (done, done_rx) = oneshot::channel();
    let report = PeerEvent::Closed {
        peer: peer.clone(),
        reason,
        done,
    };
    if events.send(report).await.is_ok() {
        let _ = done_rx.await;
    }
    if let Some(link) = driver.link.take() {
        link.channel.close();
        if tokio::time::timeout(RTC_CLOSE_TIMEOUT, link.rtc.close())
            .await
            .is_err()
        {
            tracing::warn!(
                device_id = peer.device_id,
                "peer connection close timed out"
            );
        }
    }
}

async fn build(source: &RtcSource) -> Result<(Link, mpsc::Receiver<RtcEvent>), String> {
    let config = match source {
        RtcSource::Fixed(c) => c.clone(),
        RtcSource::Fetch {
            server_url,
            api_version,
            jwt,
            hmac_secret,
            stun_url,
            relay_only,
        } => RtcConfig {
            ice_servers: crate::ice_servers::ice_servers(
                server_url,
                api_version,
                jwt.clone(),
                hmac_secret,
                stun_url,
            )
            .await,
            relay_only: *relay_only,
            ..RtcConfig::default()
        },
    };
    let (rtc, events) = RtcPeer::new(&config)
        .await
        .map_err(|e| format!("create peer connection: {e}"))?;
    match rtc.create_data_channel(DATA_CHANNEL_LABEL).await {
        Ok(channel) => Ok((Link { rtc, channel }, events)),
        Err(e) => {
            let _ = tokio::time::timeout(RTC_CLOSE_TIMEOUT, rtc.close()).await;
            Err(format!("create data channel: {e}"))
        }
    }
}

/// The core and what its actions act on.
struct Driver {
    core: PeerCore,
    peer: Arc<Peer>,
    signaling: Arc<dyn MessageSender>,
    changes: Arc<watch::Sender<u64>>,
    link: Option<Link>,
    /// Items for the dispatcher that did not fit its queue (at most one: the
    /// channel is not read while this is not empty).
    pending: VecDeque<Dispatch>,
    dispatch_tx: mpsc::Sender<Dispatch>,
    /// Moves into the dispatcher when the peer authenticates.
    dispatch_rx: Option<mpsc::Receiver<Dispatch>>,
    dispatcher: Option<tokio::task::JoinHandle<()>>,
    handler: Arc<dyn ProtocolHandler>,
    tracker: TaskTracker,
}

impl Driver {
    /// The select loop; returns the core's close reason.
    async fn run(
        &mut self,
        inbox: &mut mpsc::Receiver<SignalingMessage>,
        events: &mut mpsc::Receiver<RtcEvent>,
        nonce: crate::config::NonceSource,
    ) -> CloseReason {
        let cancel = self.peer.cancel_token().clone();
        let Some(link) = self.link.as_ref() else {
            self.core.handle_setup_failed(now());
            return self.drain().await;
        };
        let (rtc, channel) = (link.rtc.clone(), link.channel.clone());
        self.peer.set_channel(channel.clone());
        let dispatch = self.dispatch_tx.clone();
        let mut opened = false;
        // The phone's fast channel, once the core accepted it; read whenever
        // it has a message (copies the dispatcher has no room for are dropped,
        // so it never holds SCTP's receive window shared with `terminal`).
        let mut fast: Option<RtcChannel> = None;
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            if let Some(reason) = self.drain_actions().await {
                return reason;
            }
            let deadline = self.core.poll_timeout();
            if deadline != armed {
                // Re-armed only when the deadline changed (quinn's drive_timer).
                if let Some(d) = deadline {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(d));
                }
                armed = deadline;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => self.core.handle_close(now()),
                _ = &mut sleep, if armed.is_some() => {
                    self.core.handle_timeout(now(), SystemTime::now());
                }
                msg = inbox.recv() => match msg {
                    Some(m) => self.core.handle_signal(now(), m),
                    None => self.core.handle_close(now()),
                },
                ev = events.recv() => match ev {
                    None => self.core.handle_state(now(), SystemTime::now(), LinkState::Closed),
                    Some(RtcEvent::State(s)) => {
                        tracing::debug!(device_id = self.peer.device_id, state = s.as_str(), "peer state");
                        self.core.handle_state(now(), SystemTime::now(), LinkState::from(s));
                    }
                    Some(RtcEvent::LocalCandidate(c)) => self.core.handle_local_candidate(now(), c),
                    // The host trickles its candidates; the end needs no message.
                    Some(RtcEvent::GatheringComplete) => {}
                    Some(RtcEvent::DataChannel(ch)) => {
                        // The host opens `terminal`; the phone may open only the fast channel.
                        match self.core.handle_remote_channel(now(), ch.label()) {
                            RemoteChannel::Fast if self.peer.set_fast_channel(ch.clone()) => {
                                tracing::info!(device_id = self.peer.device_id, "fast channel accepted");
                                fast = Some(ch);
                            }
                            _ => ch.close(),
                        }
                    }
                },
                r = channel.wait_open(), if !opened => {
                    opened = true;
                    if r.is_err() {
                        self.core.handle_channel_closed(now());
                    } else {
                        // Channel authentication v2 binds the proof to the DTLS
                        // certificates as the handshake saw them.
                        let fps = rtc.dtls_fingerprints().await.map_err(|e| {
                            tracing::warn!(device_id = self.peer.device_id, "channel cannot be authenticated: {e}");
                        });
                        let nonce = nonce().map_err(|_| {
                            tracing::warn!(device_id = self.peer.device_id, "random source failed");
                        });
                        self.core.handle_channel_open(now(), fps.ok(), nonce.ok());
                    }
                }
                m = channel.recv(), if opened && self.pending.is_empty() => match m {
                    Some(bytes) => self.core.handle_received(now(), &bytes),
                    None => self.core.handle_channel_closed(now()),
                },
                permit = dispatch.reserve(), if !self.pending.is_empty() => match permit {
                    Ok(p) => {
                        if let Some(item) = self.pending.pop_front() {
                            p.send(item);
                        }
                    }
                    Err(_) => self.pending.clear(),
                },
                // Last: the reliable channel goes first when both have messages.
                m = recv_fast(fast.as_ref()) => match m {
                    Some(bytes) => {
                        if let Some(req) = self.core.handle_fast_received(now(), &bytes) {
                            self.dispatch_fast(req);
                        }
                    }
                    None => {
                        tracing::info!(device_id = self.peer.device_id, "fast channel closed");
                        fast = None;
                        self.core.handle_fast_closed(now());
                    }
                },
            }
        }
    }

    /// Drains a core that was just closed.
    async fn drain(&mut self) -> CloseReason {
        loop {
            if let Some(r) = self.drain_actions().await {
                return r;
            }
            // A closed core always ends with `Close`; an open one here is a bug
            // of the caller, answered by closing it.
            self.core.handle_close(now());
        }
    }

    /// Performs every queued action in order; `Some` once the core closed.
    async fn drain_actions(&mut self) -> Option<CloseReason> {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Signal(m) => {
                    self.signal(*m);
                }
                Action::SendOffer { ice_restart } => {
                    let sent = self.send_offer(ice_restart).await;
                    self.core.handle_offer_sent(now(), sent);
                }
                Action::ApplyAnswer(sdp) => {
                    let ok = match self.link.as_ref() {
                        Some(l) => l.rtc.set_remote_answer(&sdp).await.map_err(|e| {
                            tracing::warn!(
                                device_id = self.peer.device_id,
                                "set remote answer failed: {e}"
                            );
                        }),
                        None => Err(()),
                    };
                    self.core.handle_answer_applied(now(), ok.is_ok());
                }
                Action::AddCandidate(c) => {
                    if let Some(l) = self.link.as_ref()
                        && let Err(e) = l.rtc.add_remote_candidate(c).await
                    {
                        tracing::info!(
                            device_id = self.peer.device_id,
                            "remote ice candidate not added: {e}"
                        );
                    }
                }
                Action::Send { event, required } => {
                    if let Err(e) = self.peer.send_message(&event).await {
                        tracing::info!(
                            device_id = self.peer.device_id,
                            "{} not sent: {e}",
                            event.type_name()
                        );
                        if required {
                            self.core.handle_send_failed(now());
                        }
                    }
                }
                Action::Deliver(req) => self.dispatch(Dispatch::Request(req)),
                Action::Reply(ev) => self.dispatch(Dispatch::Reply(ev)),
                Action::Authenticated => {
                    self.mirror();
                    if let Some(rx) = self.dispatch_rx.take() {
                        let h = self.handler.clone();
                        let run = run_dispatcher(h, self.peer.clone(), rx);
                        self.dispatcher = Some(self.tracker.spawn(run));
                    }
                }
                Action::Close(reason) => {
                    self.mirror();
                    return Some(reason);
                }
            }
        }
        self.mirror();
        None
    }

    fn dispatch(&mut self, item: Dispatch) {
        if !self.pending.is_empty() {
            self.pending.push_back(item);
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(item)) = self.dispatch_tx.try_send(item) {
            // Waits in `pending` while the channel is not read: the backpressure
            // on a slow handler.
            self.pending.push_back(item);
        }
    }

    /// Hands a fast-channel `input` copy to the dispatcher, behind everything
    /// delivered before it, or drops it when the dispatcher has no room: it is
    /// a copy, and its reliable original waits its turn.
    fn dispatch_fast(&mut self, req: terminal_protocol::Request) {
        if !self.pending.is_empty() {
            tracing::debug!(
                device_id = self.peer.device_id,
                "fast copy dropped: handler busy"
            );
            return;
        }
        if let Err(e) = self.dispatch_tx.try_send(Dispatch::Fast(req)) {
            tracing::debug!(device_id = self.peer.device_id, "fast copy dropped: {e}");
        }
    }

    /// Sends a signaling message unless the peer was silenced (replaced).
    fn signal(&self, m: SignalingMessage) -> bool {
        if self.peer.is_silenced() {
            return false;
        }
        match self.signaling.send(m.into()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    device_id = self.peer.device_id,
                    "signaling send failed: {e}"
                );
                false
            }
        }
    }

    async fn send_offer(&self, ice_restart: bool) -> bool {
        let Some(link) = self.link.as_ref() else {
            return false;
        };
        match link.rtc.create_offer(ice_restart).await {
            Ok(sdp) => {
                let mut m = SignalingMessage::new("sdp_offer");
                m.target_device_id = self.peer.device_id.clone();
                m.sdp = sdp;
                self.signal(m)
            }
            Err(e) => {
                tracing::warn!(
                    device_id = self.peer.device_id,
                    ice_restart,
                    "offer failed: {e}"
                );
                false
            }
        }
    }

    /// Mirrors the core's state into the `Peer` and wakes status watchers.
    fn mirror(&self) {
        if self
            .peer
            .mirror(self.core.link_state(), self.core.is_authenticated())
        {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

/// The next message of the fast channel, if there is one; never resolves
/// without a channel (its branch of the select then stays idle).
/// (Copied out, so the result does not borrow the channel; fast copies are small.)
async fn recv_fast(fast: Option<&RtcChannel>) -> Option<Vec<u8>> {
    match fast {
        Some(ch) => ch.recv().await.map(|b| b.to_vec()),
        None => std::future::pending().await,
    }
}
