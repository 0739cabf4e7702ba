//! Pair harness for `PeerCore` (quinn-proto's `tests/util.rs` `Pair`): the host
//! core on one side, a model of the phone, its WebRTC stack and the signaling
//! relay on the other. Actions of the host become inputs of the phone model
//! and back, after a fixed latency; time is synthetic and jumps to the next
//! event or timeout; a step cap turns a livelock into a failure. No sockets.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use peer_manager::core::{Action, CloseReason, CoreConfig, LinkState, PeerCore, Timer};
use rtc_transport::{Candidate, DtlsFingerprints};
use signaling_proto::SignalingMessage;
use terminal_protocol::{AuthTranscript, Event, Request};

pub const PHONE: &str = "phone000000000000000000000000001";
pub const SECRET: [u8; 32] = [0x42; 32];
pub const FP_H: [u8; 32] = [0x40; 32];
pub const FP_M: [u8; 32] = [0x60; 32];
pub const HOST_NONCE: [u8; 32] = [0x01; 32];
pub const PHONE_NONCE: [u8; 32] = [0x02; 32];
/// One-way delay of every hop (signaling and channel alike).
pub const LATENCY: Duration = Duration::from_millis(20);
/// Most steps one `run_*` call may take.
pub const STEP_CAP: usize = 100_000;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// How the phone answers the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The right key over the transcript both sides see.
    Right,
    /// A wrong key.
    WrongKey,
    /// The right key, but over another host certificate (a relay in the middle).
    OtherCertificate,
    /// A `list_sessions` request instead of the proof.
    RequestFirst,
    /// Nothing at all.
    Silent,
}

/// What the phone and its stack do.
#[derive(Debug, Clone)]
pub struct PhoneOpts {
    /// The phone answers offers.
    pub answers: bool,
    /// The host's stack accepts the answer.
    pub answer_applies: bool,
    /// The host's stack can make offers.
    pub offers_work: bool,
    /// The DataChannel opens once connected.
    pub channel_opens: bool,
    /// The DTLS fingerprints can be read at open.
    pub fingerprints: bool,
    /// The host's random source works.
    pub nonce: bool,
    pub proof: Proof,
    /// Candidates the phone trickles before its answer, and after it.
    pub early_candidates: usize,
    pub late_candidates: usize,
    /// Ping period once authenticated (`None`: never pings).
    pub ping_every: Option<Duration>,
}

impl Default for PhoneOpts {
    fn default() -> Self {
        Self {
            answers: true,
            answer_applies: true,
            offers_work: true,
            channel_opens: true,
            fingerprints: true,
            nonce: true,
            proof: Proof::Right,
            early_candidates: 2,
            late_candidates: 1,
            ping_every: Some(secs(15)),
        }
    }
}

/// Something due at a time: an input of the host core, or of the phone model.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Due {
    HostSignal(SignalingMessage),
    HostState(LinkState),
    HostChannelOpen,
    HostBytes(Vec<u8>),
    PhoneOffer,
    PhoneEvent(Event),
    PhoneRejected(String),
    PhonePing,
}

/// The host core and the phone model joined by latency, with everything the
/// host did recorded.
pub struct Pair {
    pub now: Instant,
    pub wall: SystemTime,
    pub host: PeerCore,
    pub opts: PhoneOpts,
    /// The network carries packets (a false value black-holes the path).
    pub net_up: bool,
    queue: Vec<(Instant, u64, Due)>,
    seq: u64,
    connected_once: bool,
    pub closes: Vec<(Instant, CloseReason)>,
    pub delivered: Vec<Request>,
    pub replies: Vec<Event>,
    /// Signaling messages the host sent (`sdp_offer`, `ice_candidate`, rejections).
    pub signals: Vec<SignalingMessage>,
    /// The restart flag of each offer the host made.
    pub offers: Vec<bool>,
    pub answers_applied: usize,
    pub candidates_added: Vec<String>,
    pub authenticated_at: Option<Instant>,
    /// What reached the phone on the channel, and the phone's verdict of `auth_ok`.
    pub phone_got: Vec<Event>,
    pub phone_trusts_host: bool,
    pub rejections: Vec<String>,
    pub pongs: usize,
    /// When the phone sent each `ping`.
    pub pings_sent: Vec<Instant>,
    phone_pings: bool,
}

impl Pair {
    /// An admitted phone: the host core is created now (its first action is the offer).
    pub fn new(opts: PhoneOpts) -> Self {
        Self::with_config(opts, CoreConfig::default())
    }

    pub fn with_config(opts: PhoneOpts, config: CoreConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            wall: SystemTime::UNIX_EPOCH + secs(1_800_000_000),
            host: PeerCore::new(now, PHONE, SECRET, config),
            opts,
            net_up: true,
            queue: Vec::new(),
            seq: 0,
            connected_once: false,
            closes: Vec::new(),
            delivered: Vec::new(),
            replies: Vec::new(),
            signals: Vec::new(),
            offers: Vec::new(),
            answers_applied: 0,
            candidates_added: Vec::new(),
            authenticated_at: None,
            phone_got: Vec::new(),
            phone_trusts_host: false,
            rejections: Vec::new(),
            pongs: 0,
            pings_sent: Vec::new(),
            phone_pings: false,
        }
    }

    fn at(&mut self, delay: Duration, due: Due) {
        self.seq += 1;
        self.queue.push((self.now + delay, self.seq, due));
    }

    /// Sends a signaling message from the phone to the host (after the latency).
    pub fn phone_signal(&mut self, msg: SignalingMessage) {
        self.at(LATENCY, Due::HostSignal(msg));
    }

    /// Sends raw bytes from the phone on the channel.
    pub fn phone_send(&mut self, bytes: Vec<u8>) {
        self.at(LATENCY, Due::HostBytes(bytes));
    }

    /// The host's stack reports `state` now.
    pub fn link(&mut self, state: LinkState) {
        self.host.handle_state(self.now, self.wall, state);
        self.drain();
    }

    /// Performs the host's actions as a driver would, feeding results back.
    fn drain(&mut self) {
        while let Some(action) = self.host.poll_action() {
            assert!(self.closes.is_empty(), "action after close: {action:?}");
            match action {
                Action::Signal(m) => {
                    if m.kind == "connection_rejected" {
                        self.at(LATENCY, Due::PhoneRejected(m.reason.clone()));
                    }
                    self.signals.push(*m);
                }
                Action::SendOffer { ice_restart } => {
                    self.offers.push(ice_restart);
                    let ok = self.opts.offers_work;
                    self.host.handle_offer_sent(self.now, ok);
                    if ok {
                        // The driver makes the SDP and sends it as `sdp_offer`.
                        let mut m = SignalingMessage::new("sdp_offer");
                        m.target_device_id = PHONE.to_owned();
                        self.signals.push(m);
                        self.at(LATENCY, Due::PhoneOffer);
                    }
                }
                Action::ApplyAnswer(_) => {
                    self.answers_applied += 1;
                    let ok = self.opts.answer_applies;
                    self.host.handle_answer_applied(self.now, ok);
                    if ok && self.net_up {
                        self.connect();
                    }
                }
                Action::AddCandidate(c) => self.candidates_added.push(c.candidate),
                Action::Send { event, required: _ } => {
                    self.at(LATENCY, Due::PhoneEvent(event));
                }
                Action::Deliver(r) => {
                    assert!(self.authenticated_at.is_some(), "delivered before auth");
                    self.delivered.push(r);
                }
                Action::Reply(e) => self.replies.push(e),
                Action::Authenticated => self.authenticated_at = Some(self.now),
                Action::Close(r) => self.closes.push((self.now, r)),
            }
        }
    }

    /// ICE and DTLS come up after the answer (the channel opens the first time).
    fn connect(&mut self) {
        if self.connected_once {
            self.at(LATENCY * 2, Due::HostState(LinkState::Connected));
            return;
        }
        self.connected_once = true;
        self.at(LATENCY, Due::HostState(LinkState::Connecting));
        self.at(LATENCY * 2, Due::HostState(LinkState::Connected));
        if self.opts.channel_opens {
            self.at(LATENCY * 3, Due::HostChannelOpen);
        }
    }

    fn candidate(i: usize) -> SignalingMessage {
        let mut m = SignalingMessage::new("ice_candidate");
        m.candidate = format!(
            "candidate:{i} 1 udp 2122260223 192.0.2.1 {} typ host",
            50_000 + i
        );
        m.sdp_mid = "0".into();
        m.sdp_m_line_index = Some(0);
        m
    }

    fn on_phone(&mut self, due: Due) {
        match due {
            Due::PhoneOffer if self.opts.answers => {
                for i in 0..self.opts.early_candidates {
                    self.phone_signal(Self::candidate(i));
                }
                let mut m = SignalingMessage::new("sdp_answer");
                m.sdp = "v=0\r\n".into();
                self.phone_signal(m);
                for i in 0..self.opts.late_candidates {
                    self.at(LATENCY * 2, Due::HostSignal(Self::candidate(1000 + i)));
                }
            }
            Due::PhoneOffer => {}
            Due::PhoneEvent(_) if !self.net_up => {}
            Due::PhoneEvent(ev) => self.on_phone_event(ev),
            Due::PhoneRejected(r) => self.rejections.push(r),
            Due::PhonePing => {
                if self.phone_pings && !self.host.is_closed() {
                    self.phone_send(Request::Ping.encode());
                    self.pings_sent.push(self.now);
                    if let Some(every) = self.opts.ping_every {
                        self.at(every, Due::PhonePing);
                    }
                }
            }
            _ => unreachable!("host input routed to the phone"),
        }
    }

    fn transcript(&self, host_nonce: [u8; 32], fp_h: [u8; 32]) -> AuthTranscript {
        AuthTranscript {
            host_nonce,
            mobile_nonce: PHONE_NONCE,
            host_fingerprint: fp_h,
            mobile_fingerprint: FP_M,
        }
    }

    fn on_phone_event(&mut self, ev: Event) {
        self.phone_got.push(ev.clone());
        match ev {
            Event::AuthChallenge { nonce } => {
                let n = terminal_protocol::decode_nonce(&nonce).unwrap();
                let (key, fp) = match self.opts.proof {
                    Proof::Right => (SECRET, FP_H),
                    Proof::WrongKey => ([0x43; 32], FP_H),
                    Proof::OtherCertificate => (SECRET, [0x41; 32]),
                    Proof::RequestFirst => {
                        self.phone_send(Request::ListSessions.encode());
                        return;
                    }
                    Proof::Silent => return,
                };
                let t = self.transcript(n, fp);
                let proof = Request::AuthResponse {
                    nonce: terminal_protocol::nonce_b64(&PHONE_NONCE),
                    mac: t.mobile_mac_b64(&key),
                };
                self.phone_send(proof.encode());
            }
            Event::AuthOk { mac } => {
                let t = self.transcript(HOST_NONCE, FP_H);
                self.phone_trusts_host = t.verify_host_mac(&SECRET, &mac).is_ok();
                if let (true, Some(every)) = (self.phone_trusts_host, self.opts.ping_every) {
                    self.phone_pings = true;
                    self.at(every, Due::PhonePing);
                }
            }
            Event::Pong { .. } => self.pongs += 1,
            _ => {}
        }
    }

    fn on_host(&mut self, due: Due) {
        let now = self.now;
        match due {
            Due::HostSignal(m) => self.host.handle_signal(now, m),
            Due::HostState(s) => self.host.handle_state(now, self.wall, s),
            Due::HostChannelOpen => {
                let fp = DtlsFingerprints {
                    local: FP_H,
                    remote: FP_M,
                };
                let fp = self.opts.fingerprints.then_some(fp);
                let nonce = self.opts.nonce.then_some(HOST_NONCE);
                self.host.handle_channel_open(now, fp, nonce);
            }
            // A black-holed path carries nothing.
            Due::HostBytes(_) if !self.net_up => {}
            Due::HostBytes(b) => self.host.handle_received(now, &b),
            other => self.on_phone(other),
        }
    }

    /// The earliest pending event or host timeout.
    fn next_wakeup(&self) -> Option<Instant> {
        let q = self.queue.iter().map(|(t, _, _)| *t).min();
        match (q, self.host.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One step: perform pending actions, jump to the next wake-up if it is
    /// not after `limit`, and handle what is due then. False when nothing is
    /// due up to `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.drain();
        let Some(next) = self.next_wakeup().filter(|t| *t <= limit) else {
            return false;
        };
        if next > self.now {
            self.wall += next - self.now;
            self.now = next;
        }
        // Events due now, in the order they were scheduled.
        let mut due: Vec<(Instant, u64, Due)> = Vec::new();
        let mut rest = Vec::new();
        for e in self.queue.drain(..) {
            if e.0 <= self.now {
                due.push(e)
            } else {
                rest.push(e)
            }
        }
        self.queue = rest;
        due.sort_by_key(|(t, s, _)| (*t, *s));
        for (_, _, d) in due {
            self.on_host(d);
            self.drain();
        }
        if self.host.poll_timeout().is_some_and(|t| t <= self.now) {
            self.host.handle_timeout(self.now, self.wall);
        }
        self.drain();
        true
    }

    /// Runs until `d` from now has passed (time ends exactly there).
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        let mut steps = 0;
        while self.step(limit) {
            steps += 1;
            assert!(steps < STEP_CAP, "livelock: more than {STEP_CAP} steps");
        }
        self.wall += limit - self.now;
        self.now = limit;
    }

    /// Runs until the host closed, at most `max` of synthetic time.
    pub fn run_until_closed(&mut self, max: Duration) -> CloseReason {
        let limit = self.now + max;
        let mut steps = 0;
        while self.closes.is_empty() && self.step(limit) {
            steps += 1;
            assert!(steps < STEP_CAP, "livelock: more than {STEP_CAP} steps");
        }
        self.closed_once()
    }

    /// The single close reason; fails if the host closed never or twice.
    pub fn closed_once(&self) -> CloseReason {
        assert_eq!(self.closes.len(), 1, "closes: {:?}", self.closes);
        self.closes[0].1
    }

    /// Runs until the phone trusts the host (`auth_ok` verified).
    pub fn run_until_authenticated(&mut self) {
        let limit = self.now + secs(5);
        while !self.phone_trusts_host {
            assert!(self.step(limit), "not authenticated: {:?}", self.closes);
        }
        self.drain();
    }

    /// When the host's `t` timer fires, if armed.
    pub fn timer(&self, t: Timer) -> Option<Instant> {
        self.host.timer(t)
    }
}

/// A remote candidate string in the host's added list came from the phone's `i`-th.
pub fn candidate_of(i: usize) -> String {
    format!(
        "candidate:{i} 1 udp 2122260223 192.0.2.1 {} typ host",
        50_000 + i
    )
}

/// An `ice_candidate` message of the phone without the `candidate:` prefix.
pub fn bare_candidate(i: usize) -> SignalingMessage {
    let mut m = SignalingMessage::new("ice_candidate");
    m.candidate = candidate_of(i)
        .strip_prefix("candidate:")
        .unwrap()
        .to_owned();
    m
}

pub fn answer(sdp: &str) -> SignalingMessage {
    let mut m = SignalingMessage::new("sdp_answer");
    m.sdp = sdp.to_owned();
    m
}

pub fn local_candidate(s: &str) -> Candidate {
    Candidate {
        candidate: s.to_owned(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}
