//! Loopback test bed for peer-manager: an in-process signaling relay, a real
//! WebRTC answerer playing the phone, a recording handler, and UDP relays
//! (test-support's `UdpFaultProxy`) with one black-hole switch for all.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_manager::{
    MessageSender, Peer, PeerManager, PeerManagerConfig, ProtocolHandler, SendError,
};
use rtc_transport::{Candidate, RtcChannel, RtcConfig, RtcEvent, RtcPeer};
use signaling_proto::{Signal, SignalingMessage};
use terminal_protocol::{AuthTranscript, Event, Request};
use test_support::UdpFaultProxy;
use tokio::sync::mpsc;

/// Device id the phones see as "the host".
pub const HOST_ID: &str = "host0000000000000000000000000000";
/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn loopback() -> RtcConfig {
    RtcConfig {
        loopback_only: true,
        ..RtcConfig::default()
    }
}

/// Wait for `cond` within [`WAIT`] (test-support's `wait_until`), failing
/// the test with `what` when it never holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let met = test_support::wait_until(WAIT, || {
        let holds = cond();
        async move { holds }
    })
    .await;
    assert!(met, "timed out waiting for {what}");
}

/// What the host handler saw.
#[derive(Debug, Clone)]
pub enum Seen {
    Request(String, Request),
    Disconnected(String),
}

/// Handler that echoes `input` as `output`, can hang in `list_sessions`, and
/// records everything (`ping` never reaches it).
pub struct TestHandler {
    pub seen: Mutex<Vec<Seen>>,
    tx: mpsc::Sender<Seen>,
    /// While set, `list_sessions` waits here (a tmux call that hangs).
    pub hang_list_sessions: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl TestHandler {
    pub fn new() -> (Arc<Self>, mpsc::Receiver<Seen>) {
        let (tx, rx) = mpsc::channel(4096);
        (
            Arc::new(Self {
                seen: Mutex::new(Vec::new()),
                tx,
                hang_list_sessions: Mutex::new(None),
            }),
            rx,
        )
    }

    pub fn disconnects(&self, device: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| matches!(s, Seen::Disconnected(d) if d == device))
            .count()
    }

    pub fn requests(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| matches!(s, Seen::Request(..)))
            .count()
    }

    fn record(&self, s: Seen) {
        self.seen.lock().unwrap().push(s.clone());
        let _ = self.tx.try_send(s);
    }
}

#[async_trait::async_trait]
impl ProtocolHandler for TestHandler {
    async fn handle_message(&self, peer: Arc<Peer>, request: Request) {
        // Inputs of the round-trip benchmark are not recorded one by one.
        if !matches!(request, Request::Input { .. }) {
            self.record(Seen::Request(peer.device_id.clone(), request.clone()));
        }
        match &request {
            Request::Ping => panic!("ping must be answered by the peer manager"),
            Request::ListSessions => {
                let hang = self.hang_list_sessions.lock().unwrap().clone();
                if let Some(release) = hang {
                    release.notified().await;
                }
            }
            Request::Resize { .. } => {
                // A handler that takes its time (tmux), without a timer.
                for _ in 0..50 {
                    tokio::task::yield_now().await;
                }
            }
            Request::Detach => {
                let _ = peer.send_message(&Event::Detached).await;
            }
            Request::Input { data, .. } => {
                let _ = peer
                    .send_message(&Event::Output {
                        data: data.clone(),
                        offset: None,
                        snapshot: false,
                        pane_id: None,
                    })
                    .await;
            }
            _ => {}
        }
    }

    async fn peer_disconnected(&self, device_id: &str) {
        self.record(Seen::Disconnected(device_id.to_owned()));
    }
}

/// The in-process signaling server: host ↔ phones, with the server's
/// `targetDeviceId` rewriting and a few fault switches.
pub struct Net {
    host: Mutex<Option<Arc<PeerManager>>>,
    phones: Mutex<HashMap<String, mpsc::Sender<Signal>>>,
    /// Drop the host's ICE candidates on their way to the phone.
    pub drop_host_candidates: AtomicBool,
    /// Route the phone's UDP candidates through relays ([`Net::use_relays`]).
    relay_candidates: AtomicBool,
    /// The relays' black-hole switch, also applied to relays made later.
    relays_blocked: AtomicBool,
    /// One relay per rewritten candidate, alive as long as the net.
    relays: Mutex<Vec<Arc<UdpFaultProxy>>>,
    /// Every message the host sent, in order.
    pub host_sent: Mutex<Vec<SignalingMessage>>,
}

/// The host's signaling sink.
pub struct HostSink(mpsc::Sender<Signal>);

impl MessageSender for HostSink {
    fn send(&self, signal: Signal) -> Result<(), SendError> {
        self.0
            .try_send(signal)
            .map_err(|e| SendError(e.to_string()))
    }
}

impl Net {
    /// A relay and the sink to give to the host's `PeerManager`.
    pub fn new() -> (Arc<Net>, Arc<HostSink>) {
        let net = Arc::new(Net {
            host: Mutex::new(None),
            phones: Mutex::new(HashMap::new()),
            drop_host_candidates: AtomicBool::new(false),
            relay_candidates: AtomicBool::new(false),
            relays_blocked: AtomicBool::new(false),
            relays: Mutex::new(Vec::new()),
            host_sent: Mutex::new(Vec::new()),
        });
        let (tx, mut rx) = mpsc::channel::<Signal>(1024);
        let n = net.clone();
        tokio::spawn(async move {
            while let Some(signal) = rx.recv().await {
                let mut msg = SignalingMessage::from(signal);
                n.host_sent.lock().unwrap().push(msg.clone());
                if msg.kind == "ice_candidate" && n.drop_host_candidates.load(Ordering::SeqCst) {
                    continue;
                }
                let to = std::mem::take(&mut msg.target_device_id);
                msg.target_device_id = HOST_ID.to_owned();
                let inbox = n.phones.lock().unwrap().get(&to).cloned();
                if let Some(inbox) = inbox {
                    let _ = inbox.send(Signal::from(msg)).await;
                }
            }
        });
        (net, Arc::new(HostSink(tx)))
    }

    /// From now on, every UDP candidate of a phone points at a relay in front
    /// of it, so everything between the two ends crosses relays this net can
    /// black-hole.
    pub fn use_relays(&self) {
        self.relay_candidates.store(true, Ordering::SeqCst);
    }

    /// `true`: every relay (and every one made later) drops all datagrams;
    /// `false`: they forward again.
    pub fn black_hole_relays(&self, on: bool) {
        self.relays_blocked.store(on, Ordering::SeqCst);
        for relay in self.relays.lock().unwrap().iter() {
            relay.black_hole(on);
        }
    }

    /// Every relay made so far drops each datagram with probability `rate`
    /// and delays the others by `delay` (a lossy mobile path).
    pub fn relay_faults(&self, rate: f64, delay: Duration) {
        for relay in self.relays.lock().unwrap().iter() {
            relay.set_drop_rate(rate);
            relay.set_delay(delay);
        }
    }

    pub fn set_host(&self, host: Arc<PeerManager>) {
        *self.host.lock().unwrap() = Some(host);
    }

    /// The configuration of a test host: loopback WebRTC, `allowed` as the
    /// paired phone, `secret` for every device.
    pub fn host_config(allowed: &str, secret: [u8; 32]) -> PeerManagerConfig {
        PeerManagerConfig {
            rtc_override: Some(loopback()),
            allowed_device_id: allowed.to_owned(),
            secret_loader: Some(Arc::new(move |_id: &str| Some(secret))),
            ..PeerManagerConfig::new("http://127.0.0.1:9")
        }
    }

    /// A host `PeerManager` built from `config` and wired to this relay.
    pub fn host(
        self: &Arc<Self>,
        sink: Arc<HostSink>,
        handler: Arc<TestHandler>,
        config: PeerManagerConfig,
    ) -> Arc<PeerManager> {
        let pm = PeerManager::new(config, sink, Arc::new(String::new), handler);
        self.set_host(pm.clone());
        pm
    }

    /// Count of host messages of `kind` to `device`.
    pub fn host_sent_count(&self, kind: &str, device: &str) -> usize {
        self.host_sent
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.kind == kind && m.target_device_id == device)
            .count()
    }

    /// Deliver a phone's message to the host, as the server would.
    pub async fn to_host(&self, from: &str, mut msg: SignalingMessage) {
        msg.target_device_id = from.to_owned();
        if msg.kind == "ice_candidate" && self.relay_candidates.load(Ordering::SeqCst) {
            msg.candidate = self.relay_candidate(&msg.candidate).await;
        }
        let host = self.host.lock().unwrap().clone();
        if let Some(h) = host {
            h.handle_signaling_message(Signal::from(msg));
        }
    }

    /// Rewrites a UDP candidate so it points at a new relay forwarding to it.
    async fn relay_candidate(&self, candidate: &str) -> String {
        let mut f: Vec<String> = candidate.split(' ').map(str::to_owned).collect();
        if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") {
            return candidate.to_owned();
        }
        let Ok(target) = format!("{}:{}", f[4], f[5]).parse::<SocketAddr>() else {
            return candidate.to_owned();
        };
        let relay = Arc::new(UdpFaultProxy::start(target).await.unwrap());
        relay.black_hole(self.relays_blocked.load(Ordering::SeqCst));
        let front = relay.addr();
        self.relays.lock().unwrap().push(relay);
        f[4] = front.ip().to_string();
        f[5] = front.port().to_string();
        f.join(" ")
    }
}

/// How the test phone misbehaves.
#[derive(Debug, Clone, Default)]
pub struct PhoneOpts {
    /// Send the first local candidates before the answer.
    pub candidates_before_answer: bool,
    /// Send an oversize copy of the answer first.
    pub oversize_answer_first: bool,
}

/// A phone: a real WebRTC answerer on loopback.
pub struct Phone {
    pub device_id: String,
    net: Arc<Net>,
    channels: mpsc::Receiver<(RtcChannel, RtcPeer)>,
    /// The phone's peer connection of the last channel, for its DTLS fingerprints.
    rtc: Option<RtcPeer>,
    pub rejections: mpsc::Receiver<String>,
    pub offers: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Phone {
    pub fn new(net: &Arc<Net>, device_id: &str, opts: PhoneOpts) -> Phone {
        let (inbox_tx, inbox) = mpsc::channel(256);
        net.phones
            .lock()
            .unwrap()
            .insert(device_id.to_owned(), inbox_tx);
        let (ch_tx, channels) = mpsc::channel(4);
        let (rej_tx, rejections) = mpsc::channel(16);
        let offers = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(phone_task(
            net.clone(),
            device_id.to_owned(),
            opts,
            inbox,
            ch_tx,
            rej_tx,
            offers.clone(),
        ));
        Phone {
            device_id: device_id.to_owned(),
            net: net.clone(),
            channels,
            rtc: None,
            rejections,
            offers,
            task,
        }
    }

    pub async fn connect_request(&self) {
        let mut m = SignalingMessage::new("connect_request");
        m.target_device_id = HOST_ID.to_owned();
        self.net.to_host(&self.device_id, m).await;
    }

    /// The phone's peer connection of the last channel (after
    /// [`Phone::channel`]), e.g. to open the fast channel on it.
    pub fn rtc(&self) -> RtcPeer {
        self.rtc.clone().expect("no channel yet")
    }

    /// The DataChannel the host opened, once it is open.
    pub async fn channel(&mut self) -> RtcChannel {
        let (ch, rtc) = tokio::time::timeout(WAIT, self.channels.recv())
            .await
            .expect("no data channel in time")
            .expect("phone task ended");
        self.rtc = Some(rtc);
        tokio::time::timeout(WAIT, ch.wait_open())
            .await
            .expect("channel open timed out")
            .expect("channel failed to open");
        ch
    }

    pub async fn rejection(&mut self) -> String {
        tokio::time::timeout(WAIT, self.rejections.recv())
            .await
            .expect("no rejection in time")
            .expect("phone task ended")
    }

    /// Connect and authenticate the channel; returns it after a verified `auth_ok`.
    pub async fn connect_and_auth(&mut self, secret: &[u8; 32]) -> RtcChannel {
        self.connect_request().await;
        let ch = self.channel().await;
        self.prove(&ch, secret).await;
        ch
    }

    /// The v2 transcript as this phone sees it after the challenge: its own
    /// certificate as `FP_M`, the one the host presented as `FP_H`.
    pub async fn transcript(&self, host_nonce: [u8; 32]) -> AuthTranscript {
        let fp = self
            .rtc
            .as_ref()
            .expect("no channel yet")
            .dtls_fingerprints()
            .await
            .unwrap();
        AuthTranscript {
            host_nonce,
            mobile_nonce: terminal_protocol::new_nonce(),
            host_fingerprint: fp.remote,
            mobile_fingerprint: fp.local,
        }
    }

    /// Read the challenge, answer with the proof under `secret`, and check the
    /// host's `auth_ok` proof.
    pub async fn prove(&self, ch: &RtcChannel, secret: &[u8; 32]) {
        let t = self.transcript(challenge(ch).await).await;
        ch.send(&auth_response(&t, secret)).await.unwrap();
        match next_event(ch).await {
            Event::AuthOk { mac } => t.verify_host_mac(secret, &mac).unwrap(),
            other => panic!("expected auth_ok, got {other:?}"),
        }
    }
}

/// The encoded `auth_response` for transcript `t` under `secret`.
pub fn auth_response(t: &AuthTranscript, secret: &[u8; 32]) -> Vec<u8> {
    Request::AuthResponse {
        nonce: terminal_protocol::nonce_b64(&t.mobile_nonce),
        mac: t.mobile_mac_b64(secret),
    }
    .encode()
}

/// Next event on `ch`, decoded.
pub async fn next_event(ch: &RtcChannel) -> Event {
    let bytes = tokio::time::timeout(WAIT, ch.recv())
        .await
        .expect("no event in time")
        .expect("channel closed");
    Event::decode(&bytes).expect("event decodes")
}

/// Read the `auth_challenge` and return the raw nonce.
pub async fn challenge(ch: &RtcChannel) -> [u8; 32] {
    match next_event(ch).await {
        Event::AuthChallenge { nonce } => terminal_protocol::decode_nonce(&nonce).unwrap(),
        other => panic!("expected auth_challenge, got {other:?}"),
    }
}

/// Wait until the channel reports closed (recv → None), bounded.
pub async fn wait_closed(ch: &RtcChannel) {
    tokio::time::timeout(WAIT, async { while ch.recv().await.is_some() {} })
        .await
        .expect("channel not closed in time");
}

async fn phone_task(
    net: Arc<Net>,
    me: String,
    opts: PhoneOpts,
    mut inbox: mpsc::Receiver<Signal>,
    channels: mpsc::Sender<(RtcChannel, RtcPeer)>,
    rejections: mpsc::Sender<String>,
    offers: Arc<AtomicUsize>,
) {
    let mut rtc: Option<(RtcPeer, mpsc::Receiver<RtcEvent>)> = None;
    loop {
        let ev = async {
            match rtc.as_mut() {
                Some((_, ev)) => ev.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = inbox.recv() => {
                let Some(msg) = msg else { return };
                match msg {
                    Signal::SdpOffer { sdp, .. } => {
                        let first = offers.fetch_add(1, Ordering::SeqCst) == 0;
                        if rtc.is_none() {
                            rtc = Some(RtcPeer::new(&loopback()).await.unwrap());
                        }
                        let (peer, events) = rtc.as_mut().unwrap();
                        let answer = peer.accept_offer(&sdp).await.unwrap();
                        if first && opts.candidates_before_answer {
                            // Hold the answer until a local candidate went out first.
                            let deadline = tokio::time::Instant::now() + WAIT;
                            loop {
                                let e = tokio::time::timeout_at(deadline, events.recv())
                                    .await
                                    .expect("phone gathered no candidate");
                                match e {
                                    Some(RtcEvent::LocalCandidate(c)) => {
                                        send_candidate(&net, &me, c).await;
                                        break;
                                    }
                                    Some(RtcEvent::DataChannel(ch)) => {
                                        let _ = channels.send((ch, peer.clone())).await;
                                    }
                                    Some(_) => {}
                                    None => return,
                                }
                            }
                        }
                        if first && opts.oversize_answer_first {
                            let mut big = answer.clone();
                            while big.len() <= 65_536 {
                                big.push_str("a=x-pad:0123456789abcdef0123456789abcdef\r\n");
                            }
                            let mut m = SignalingMessage::new("sdp_answer");
                            m.sdp = big;
                            net.to_host(&me, m).await;
                            let mut m = SignalingMessage::new("sdp_answer");
                            m.sdp = String::new();
                            net.to_host(&me, m).await;
                        }
                        let mut m = SignalingMessage::new("sdp_answer");
                        m.sdp = answer;
                        net.to_host(&me, m).await;
                    }
                    Signal::IceCandidate { candidate, sdp_mid, sdp_m_line_index, .. } => {
                        if let Some((peer, _)) = rtc.as_ref() {
                            let c = Candidate {
                                candidate,
                                sdp_mid: (!sdp_mid.is_empty()).then_some(sdp_mid),
                                sdp_m_line_index,
                            };
                            let _ = peer.add_remote_candidate(c).await;
                        }
                    }
                    Signal::ConnectionRejected { reason, .. } => {
                        let _ = rejections.send(reason).await;
                    }
                    _ => {}
                }
            }
            e = ev => match e {
                Some(RtcEvent::LocalCandidate(c)) => send_candidate(&net, &me, c).await,
                Some(RtcEvent::DataChannel(ch)) => {
                    if let Some((peer, _)) = rtc.as_ref() {
                        let _ = channels.send((ch, peer.clone())).await;
                    }
                }
                Some(RtcEvent::State(_) | RtcEvent::GatheringComplete) => {}
                None => {
                    if let Some((peer, _)) = rtc.take() {
                        peer.close().await;
                    }
                }
            },
        }
    }
}

async fn send_candidate(net: &Net, me: &str, c: Candidate) {
    let mut m = SignalingMessage::new("ice_candidate");
    m.candidate = c.candidate;
    m.sdp_mid = c.sdp_mid.unwrap_or_default();
    m.sdp_m_line_index = c.sdp_m_line_index;
    net.to_host(me, m).await;
}
