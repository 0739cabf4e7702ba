//! `PeerCore`: the sans-IO state machine of one phone's peer, from the offer to
//! the close (peer-lifecycle.md §2–§4 and §7, terminal-protocol.md §12). It owns
//! the timer table, the remote-candidate bounds, the channel-authentication
//! gate and the fast-channel gate (docs/stream-v2.md §4); it never reads a
//! clock, touches a socket or spawns a task.

pub mod auth_gate;
pub mod candidates;
pub mod fast;
mod timer;
mod types;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use rtc_transport::{Candidate, DtlsFingerprints};
use signaling_proto::SignalingMessage;
use signaling_proto::consts::MAX_SDP_LEN;
use terminal_protocol::{Event, Request};

use crate::admission::RejectReason;
use auth_gate::{AuthGate, GateVerdict};
use candidates::{CandidateBuffer, Push};
use fast::{FastGate, Refusal, RemoteChannel};
pub use timer::Timer;
use timer::TimerTable;
pub use types::{
    ANSWER_WATCHDOG, Action, CHANNEL_OPEN_TIMEOUT, CloseReason, CoreConfig, DISCONNECT_GRACE,
    IDLE_TIMEOUT, LinkState,
};

/// Where the remote description of the current ICE round stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remote {
    Awaiting,
    Applying,
    Set,
}

/// The sans-IO state machine of one peer.
///
/// - Getters (`&self`): [`link_state`](Self::link_state),
///   [`is_authenticated`](Self::is_authenticated), [`is_closed`](Self::is_closed),
///   [`timer`](Self::timer).
/// - Inputs (`handle_*`, each with the current monotonic `now`): signaling
///   messages of this phone, transport events (state changes with the wall
///   clock, local candidates, channel open with both DTLS fingerprints and a
///   nonce, received bytes, channel closed), the fast channel (a channel the
///   phone opened, its messages, its close: these return their verdict
///   directly instead of queueing an action), results of earlier actions
///   (offer sent, answer applied, required send failed, setup failed), timer
///   expiry, and the host's own [`handle_close`](Self::handle_close).
/// - Outputs: [`poll_action`](Self::poll_action) until `None`, then
///   [`poll_timeout`](Self::poll_timeout) for when to call
///   [`handle_timeout`](Self::handle_timeout) (calling it early is harmless).
///
/// Run loop: after every input, drain every action in order and perform it
/// (an action's result is fed back before the next input), then sleep until
/// the new timeout. Invariants: time passed in never goes backwards; nothing
/// is delivered before [`Action::Authenticated`]; [`Action::Close`] comes once
/// and is the last action, after which every input is ignored and no timer is
/// set.
#[derive(Debug)]
pub struct PeerCore {
    device_id: String,
    config: CoreConfig,
    timers: TimerTable,
    actions: VecDeque<Action>,
    link: LinkState,
    remote: Remote,
    candidates: CandidateBuffer<Candidate>,
    gate: AuthGate,
    fast: FastGate,
    channel_opened: bool,
    /// The restart flag of the offer being sent, if one is.
    offer_in_flight: Option<bool>,
    /// Wall-clock time of the disconnect, and whether the grace timer was re-armed.
    grace_wall: Option<(SystemTime, bool)>,
    pinged: bool,
    closed: bool,
}

impl PeerCore {
    /// The core of an admitted phone at `now`: its first action is the offer.
    pub fn new(now: Instant, device_id: &str, secret: [u8; 32], config: CoreConfig) -> Self {
        let mut timers = TimerTable::default();
        timers.set(Timer::ChannelOpen, now + config.channel_open);
        let mut core = Self {
            device_id: device_id.to_owned(),
            config,
            timers,
            actions: VecDeque::new(),
            link: LinkState::New,
            remote: Remote::Awaiting,
            candidates: CandidateBuffer::default(),
            gate: AuthGate::new(secret, config.auth_timeout),
            fast: FastGate::default(),
            channel_opened: false,
            offer_in_flight: Some(false),
            grace_wall: None,
            pinged: false,
            closed: false,
        };
        core.actions
            .push_back(Action::SendOffer { ice_restart: false });
        core
    }

    /// The phone's device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Last peer-connection state fed in.
    pub fn link_state(&self) -> LinkState {
        self.link
    }

    /// True once the phone proved the key.
    pub fn is_authenticated(&self) -> bool {
        self.gate.is_authenticated()
    }

    /// True while the phone's accepted fast channel is open.
    pub fn has_fast_channel(&self) -> bool {
        self.fast.is_open()
    }

    /// True once [`Action::Close`] was emitted.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The deadline of one rule, if armed.
    pub fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers.get(t)
    }

    /// The next action to perform, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A signaling message from this phone (`sdp_answer`, `ice_candidate`;
    /// others are ignored).
    pub fn handle_signal(&mut self, _now: Instant, msg: SignalingMessage) {
        if self.closed {
            return;
        }
        match msg.kind.as_str() {
            "sdp_answer" => self.on_answer(msg.sdp),
            "ice_candidate" => self.on_remote_candidate(msg),
            other => tracing::debug!(kind = other, "signaling message ignored by the peer"),
        }
    }

    fn on_answer(&mut self, sdp: String) {
        let device_id = &self.device_id;
        if sdp.is_empty() || sdp.len() > MAX_SDP_LEN {
            tracing::warn!(
                device_id,
                len = sdp.len(),
                "sdp_answer refused: size out of range"
            );
        } else if self.remote != Remote::Awaiting {
            tracing::info!(device_id, "sdp_answer dropped: no offer awaits one");
        } else {
            self.remote = Remote::Applying;
            self.actions.push_back(Action::ApplyAnswer(sdp));
        }
    }

    fn on_remote_candidate(&mut self, msg: SignalingMessage) {
        if msg.candidate.is_empty() {
            return;
        }
        let candidate = if msg.candidate.starts_with("candidate:") {
            msg.candidate
        } else {
            format!("candidate:{}", msg.candidate)
        };
        let c = Candidate {
            candidate,
            sdp_mid: (!msg.sdp_mid.is_empty()).then_some(msg.sdp_mid),
            sdp_m_line_index: msg.sdp_m_line_index,
        };
        match self.candidates.push(c) {
            Push::AddNow(c) => self.actions.push_back(Action::AddCandidate(c)),
            Push::Buffered => {}
            Push::Dropped => tracing::debug!(
                device_id = self.device_id,
                dropped = self.candidates.dropped(),
                "remote ice candidate dropped: per-peer limit reached"
            ),
        }
    }

    /// The result of [`Action::SendOffer`]: `sent` is false when the offer could
    /// not be created, set or handed to signaling.
    pub fn handle_offer_sent(&mut self, now: Instant, sent: bool) {
        let restart = self.offer_in_flight.take();
        if self.closed || sent {
            return;
        }
        if restart == Some(true) {
            self.close(now, CloseReason::RestartFailed);
        } else {
            self.handle_setup_failed(now);
        }
    }

    /// The result of [`Action::ApplyAnswer`].
    pub fn handle_answer_applied(&mut self, now: Instant, ok: bool) {
        if self.closed || self.remote != Remote::Applying {
            return;
        }
        if !ok {
            self.close(now, CloseReason::AnswerFailed);
            return;
        }
        self.remote = Remote::Set;
        for c in self.candidates.set_remote() {
            self.actions.push_back(Action::AddCandidate(c));
        }
    }

    /// The peer connection, channel or first offer could not be built: the
    /// phone is told `internal_error` (peer-lifecycle.md §9.2) and the peer closes.
    pub fn handle_setup_failed(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let mut m = SignalingMessage::new("connection_rejected");
        m.target_device_id = self.device_id.clone();
        m.reason = RejectReason::InternalError.as_str().to_owned();
        self.actions.push_back(Action::Signal(Box::new(m)));
        self.close(now, CloseReason::SetupFailed);
    }

    /// A peer-connection state change at `now`, with the wall clock `wall` (the
    /// grace rule compares both to notice a system sleep).
    pub fn handle_state(&mut self, now: Instant, wall: SystemTime, state: LinkState) {
        if self.closed {
            return;
        }
        self.link = state;
        match state {
            LinkState::Connected => {
                self.timers.stop(Timer::Grace);
                self.timers.stop(Timer::Watchdog);
            }
            LinkState::Disconnected => {
                // A running grace or watchdog timer decides; it is not restarted.
                if !self.timers.is_set(Timer::Grace) && !self.timers.is_set(Timer::Watchdog) {
                    self.timers.set(Timer::Grace, now + self.config.grace);
                    self.grace_wall = Some((wall, false));
                    tracing::info!(
                        device_id = self.device_id,
                        "peer disconnected; grace period started"
                    );
                }
            }
            LinkState::Failed => self.close(now, CloseReason::TransportFailed),
            LinkState::Closed => self.close(now, CloseReason::TransportClosed),
            LinkState::New | LinkState::Connecting => {}
        }
    }

    /// A local ICE candidate was gathered: it goes to the phone.
    pub fn handle_local_candidate(&mut self, _now: Instant, c: Candidate) {
        if self.closed || c.candidate.is_empty() {
            return;
        }
        let mut m = SignalingMessage::new("ice_candidate");
        m.target_device_id = self.device_id.clone();
        m.candidate = c.candidate;
        m.sdp_mid = c.sdp_mid.unwrap_or_default();
        m.sdp_m_line_index = c.sdp_m_line_index;
        self.actions.push_back(Action::Signal(Box::new(m)));
    }

    /// The DataChannel opened. `fingerprints` are both DTLS certificates as
    /// the handshake presented them and `nonce` the host's fresh challenge
    /// nonce; without either the channel cannot be authenticated and closes.
    pub fn handle_channel_open(
        &mut self,
        now: Instant,
        fingerprints: Option<DtlsFingerprints>,
        nonce: Option<[u8; 32]>,
    ) {
        if self.closed || self.channel_opened {
            return;
        }
        self.channel_opened = true;
        self.timers.stop(Timer::ChannelOpen);
        let (Some(fp), Some(nonce)) = (fingerprints, nonce) else {
            let why = self.gate.handle_send_failed();
            self.close(now, CloseReason::Auth(why));
            return;
        };
        let challenge = self.gate.handle_open(now, nonce, fp.local, fp.remote);
        self.timers.set_opt(Timer::Auth, self.gate.poll_timeout());
        self.actions.push_back(Action::Send {
            event: challenge,
            required: true,
        });
    }

    /// The DataChannel closed.
    pub fn handle_channel_closed(&mut self, now: Instant) {
        self.close(now, CloseReason::ChannelClosed);
    }

    /// A required [`Action::Send`] failed.
    pub fn handle_send_failed(&mut self, now: Instant) {
        self.close(now, CloseReason::SendFailed);
    }

    /// One message received on the channel at `now`.
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        if self.closed {
            return;
        }
        let verdict = self.gate.handle_message(now, bytes);
        self.timers.set_opt(Timer::Auth, self.gate.poll_timeout());
        match verdict {
            GateVerdict::Authenticated(ok) => {
                tracing::info!(device_id = self.device_id, "peer authenticated");
                // Marked first, then `auth_ok` before any other event (§12 step 4).
                self.actions.push_back(Action::Authenticated);
                self.actions.push_back(Action::Send {
                    event: ok,
                    required: true,
                });
                self.timers.set(Timer::Idle, now + self.config.idle);
            }
            // Answered here, never queued behind the handler: a request stuck
            // on a hung tmux must not delay `pong` (peer-lifecycle.md §9).
            GateVerdict::Deliver(Request::Ping) => {
                self.pinged = true;
                self.timers.set(Timer::Idle, now + self.config.idle);
                self.actions.push_back(Action::Send {
                    event: Event::Pong { latency: 0 },
                    required: false,
                });
            }
            GateVerdict::Deliver(req) => self.actions.push_back(Action::Deliver(req)),
            GateVerdict::Reply(ev) => self.actions.push_back(Action::Reply(ev)),
            GateVerdict::Drop => {}
            GateVerdict::Close(why) => self.close(now, CloseReason::Auth(why)),
        }
    }

    /// The phone opened a DataChannel labelled `label` at `now`: keep it as
    /// the peer's fast channel (only `terminal-fast`, only after channel
    /// authentication, only one per peer) or close it unread.
    pub fn handle_remote_channel(&mut self, _now: Instant, label: &str) -> RemoteChannel {
        let verdict = if self.closed {
            RemoteChannel::Refuse(Refusal::PeerClosed)
        } else {
            self.fast
                .handle_channel(label, self.gate.is_authenticated())
        };
        if let RemoteChannel::Refuse(why) = verdict {
            tracing::info!(
                device_id = self.device_id,
                label,
                ?why,
                "data channel opened by the phone closed"
            );
        }
        verdict
    }

    /// One message on the fast channel at `now`: the `input` copy to hand to
    /// the handler's fast path now (in order with what was delivered before),
    /// or `None` when it is dropped. Never answered, never closes the peer.
    pub fn handle_fast_received(&mut self, _now: Instant, bytes: &[u8]) -> Option<Request> {
        if self.closed {
            return None;
        }
        match self.fast.handle_message(bytes) {
            Ok(req) => Some(req),
            Err(why) => {
                tracing::debug!(
                    device_id = self.device_id,
                    ?why,
                    len = bytes.len(),
                    "fast-channel message dropped"
                );
                None
            }
        }
    }

    /// The fast channel closed at `now`; the peer stays, and no other fast
    /// channel is accepted on it.
    pub fn handle_fast_closed(&mut self, _now: Instant) {
        self.fast.handle_closed();
    }

    /// Timer expiry at `now` (monotonic) and `wall` (wall clock).
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        for t in Timer::ALL {
            if self.closed {
                return;
            }
            if self.timers.is_due(t, now) {
                self.timers.stop(t);
                self.on_timer(now, wall, t);
            }
        }
    }

    fn on_timer(&mut self, now: Instant, wall: SystemTime, t: Timer) {
        match t {
            Timer::ChannelOpen => self.close(now, CloseReason::ChannelNeverOpened),
            Timer::Auth => {
                if let Some(why) = self.gate.handle_timeout(now) {
                    self.close(now, CloseReason::Auth(why));
                }
            }
            Timer::Idle if self.pinged => self.close(now, CloseReason::Idle),
            Timer::Idle => self.close(now, CloseReason::NeverPinged),
            Timer::Grace => self.on_grace(now, wall),
            Timer::Watchdog if self.link == LinkState::Connected => {}
            Timer::Watchdog => self.close(now, CloseReason::Watchdog),
        }
    }

    fn on_grace(&mut self, now: Instant, wall: SystemTime) {
        if self.link != LinkState::Disconnected {
            return;
        }
        let (start, rearmed) = self.grace_wall.unwrap_or((wall, true));
        // A wall clock going backwards counts as "no time elapsed".
        let elapsed = wall.duration_since(start).unwrap_or(Duration::ZERO);
        if elapsed < self.config.grace / 2 && !rearmed {
            // The timer fired early by the wall clock (system sleep): wait for the
            // rest, once only, so a clock that keeps jumping cannot postpone the
            // restart forever.
            self.timers
                .set(Timer::Grace, now + (self.config.grace - elapsed));
            self.grace_wall = Some((start, true));
            return;
        }
        tracing::info!(device_id = self.device_id, "restarting ICE");
        self.grace_wall = None;
        self.timers.set(Timer::Watchdog, now + self.config.watchdog);
        self.candidates.reset();
        self.remote = Remote::Awaiting;
        self.offer_in_flight = Some(true);
        self.actions
            .push_back(Action::SendOffer { ice_restart: true });
    }

    /// The host closes the peer (`close_peer`, `close_all`, replacement).
    pub fn handle_close(&mut self, now: Instant) {
        self.close(now, CloseReason::Local);
    }

    fn close(&mut self, _now: Instant, reason: CloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.timers.clear();
        self.actions.push_back(Action::Close(reason));
    }
}
