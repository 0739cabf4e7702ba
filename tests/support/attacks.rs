//! What a hostile signaling server can try, as hooks and tasks on a
//! [`SignalingRelay`](crate::relay::SignalingRelay): substitute its own pairing
//! key (pairing.md §9), sit in the middle of DTLS with its own two peer
//! connections, list its own DTLS fingerprint next to the genuine one, or play
//! the host to the phone (terminal-protocol.md §12). Each attack records what
//! it saw so a test can prove what did (not) leak.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use rtc_transport::{Candidate, RtcChannel, RtcConfig, RtcEvent, RtcPeer};
use serde_json::Value;
use terminal_protocol::{Event, Request};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::relay::{Dir, Frame, RelayHandle, Role, Verdict};

/// Frames handed from a hook to its attack task.
const ATTACK_QUEUE: usize = 1024;
/// DataChannel messages an attack keeps.
const MAX_RECORDED: usize = 10_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_b64(n: usize) -> String {
    let mut raw = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    STANDARD.encode(raw)
}

/// `{type: "auth_ok", mac: <mac>}` in MessagePack, written by hand so it does
/// not depend on the `Event` enum's shape (terminal-protocol.md §12 encoding).
pub fn auth_ok_with_mac(mac: &str) -> Vec<u8> {
    let mut m = vec![0x82, 0xa4];
    m.extend_from_slice(b"type");
    m.push(0xa7);
    m.extend_from_slice(b"auth_ok");
    m.push(0xa3);
    m.extend_from_slice(b"mac");
    // str8: every MAC this module sends is shorter than 256 bytes.
    m.push(0xd9);
    m.push(u8::try_from(mac.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(&mac.as_bytes()[..mac.len().min(255)]);
    m
}

/// The `type` of a terminal-protocol message ("?" when undecodable), for logs.
pub fn message_type(bytes: &[u8]) -> String {
    if let Ok(ev) = Event::decode(bytes) {
        return ev.type_name().to_owned();
    }
    if let Ok(req) = Request::decode(bytes) {
        return req.type_name().to_owned();
    }
    "?".to_owned()
}

/// A signaling message of `kind` as the server relays it: `targetDeviceId`
/// names the sender.
fn relayed(kind: &str, sender: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), kind.into());
    m.insert("targetDeviceId".into(), sender.into());
    m
}

fn candidate_message(sender: &str, c: Candidate) -> String {
    let mut m = relayed("ice_candidate", sender);
    m.insert("candidate".into(), c.candidate.into());
    if let Some(mid) = c.sdp_mid {
        m.insert("sdpMid".into(), mid.into());
    }
    if let Some(i) = c.sdp_m_line_index {
        m.insert("sdpMLineIndex".into(), i.into());
    }
    Value::Object(m).to_string()
}

fn sdp_message(kind: &str, sender: &str, sdp: &str) -> String {
    let mut m = relayed(kind, sender);
    m.insert("sdp".into(), sdp.into());
    Value::Object(m).to_string()
}

fn candidate_of(v: &Value) -> Candidate {
    Candidate {
        candidate: v["candidate"].as_str().unwrap_or_default().to_owned(),
        sdp_mid: v["sdpMid"].as_str().map(str::to_owned),
        sdp_m_line_index: v["sdpMLineIndex"]
            .as_u64()
            .and_then(|i| u16::try_from(i).ok()),
    }
}

/// Runs a hook that hands the frames it claims to a task; `claim` decides
/// (synchronously, in order) which frames are taken out of the stream.
fn install_claiming(
    relay: &RelayHandle,
    claim: impl Fn(&Frame) -> bool + Send + Sync + 'static,
) -> mpsc::Receiver<Frame> {
    let (tx, rx) = mpsc::channel(ATTACK_QUEUE);
    relay.set_hook(Arc::new(move |f, _| {
        if !claim(f) {
            return Verdict::Pass;
        }
        if tx.try_send(f.clone()).is_err() {
            tracing::warn!("attack queue full; frame dropped");
        }
        Verdict::Drop
    }));
    rx
}

// ---------------------------------------------------------------- pairing

/// What the key substitution does with the phone's `mobileConfirmation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Relay the phone's value (it was made for the phone's key).
    Keep,
    /// Replace it by 32 random bytes.
    Forge,
    /// Remove the field.
    Remove,
}

/// Attack (a): every `pair_complete` sent to the host carries the relay's own
/// X25519 key instead of the phone's. The originals are kept so a test can
/// forward one honestly afterwards.
#[derive(Debug, Clone)]
pub struct KeySubstitution {
    /// The relay's public key as sent (standard base64).
    pub relay_public: String,
    originals: Arc<Mutex<Vec<String>>>,
}

impl KeySubstitution {
    /// Sets the relay's hook.
    pub fn install(relay: &RelayHandle, confirmation: Confirmation) -> KeySubstitution {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let secret = x25519_dalek::StaticSecret::from(raw);
        let relay_public = STANDARD.encode(x25519_dalek::PublicKey::from(&secret).as_bytes());
        let originals = Arc::new(Mutex::new(Vec::new()));
        let attack = KeySubstitution {
            relay_public: relay_public.clone(),
            originals: Arc::clone(&originals),
        };
        relay.set_hook(Arc::new(move |f, _| {
            if !f.is(Role::Host, Dir::Down, "pair_complete") {
                return Verdict::Pass;
            }
            lock(&originals).push(f.text.clone());
            let mut v = f.json();
            v["mobileX25519PublicKey"] = relay_public.clone().into();
            match confirmation {
                Confirmation::Keep => {}
                Confirmation::Forge => v["mobileConfirmation"] = random_b64(32).into(),
                Confirmation::Remove => {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("mobileConfirmation");
                    }
                }
            }
            Verdict::Replace(v.to_string())
        }));
        attack
    }

    /// The genuine `pair_complete` texts the host never got.
    pub fn originals(&self) -> Vec<String> {
        lock(&self.originals).clone()
    }
}

// ---------------------------------------------------------------- recording

/// Which way a DataChannel message went through an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Host → phone.
    HostToPhone,
    /// Phone → host.
    PhoneToHost,
}

/// What an attack saw: DataChannel messages and notes on its progress.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    /// Messages, in the order the attack received them.
    pub messages: Vec<(Flow, Vec<u8>)>,
    /// Progress notes (`"host channel open"`, `"sent auth_ok"`, …).
    pub notes: Vec<String>,
}

impl Recording {
    /// The `type`s of the messages that went `flow`.
    pub fn types(&self, flow: Flow) -> Vec<String> {
        self.messages
            .iter()
            .filter(|(f, _)| *f == flow)
            .map(|(_, m)| message_type(m))
            .collect()
    }
}

/// A shared [`Recording`].
#[derive(Debug, Default, Clone)]
pub struct Recorder(Arc<Mutex<Recording>>);

impl Recorder {
    fn message(&self, flow: Flow, bytes: &[u8]) {
        let mut r = lock(&self.0);
        if r.messages.len() < MAX_RECORDED {
            r.messages.push((flow, bytes.to_vec()));
        }
    }

    fn note(&self, note: impl Into<String>) {
        let note = note.into();
        tracing::debug!(%note, "attack");
        lock(&self.0).notes.push(note);
    }

    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> Recording {
        lock(&self.0).clone()
    }

    /// Waits until a note satisfies `pred`; false after `timeout`.
    pub async fn wait_note(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        test_support::wait_until(timeout, || {
            let seen = lock(&self.0).notes.iter().any(|n| pred(n));
            async move { seen }
        })
        .await
    }
}

/// An attack task, aborted (with its peers and forwarders) on drop.
#[derive(Debug)]
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn next_event(rx: &mut Option<mpsc::Receiver<RtcEvent>>) -> Option<RtcEvent> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------- MITM

/// How the man in the middle presents DTLS fingerprints in the SDP it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fingerprints {
    /// Only its own (attack b).
    Own,
    /// The genuine peer's line first, its own second (attack d).
    GenuineFirst,
    /// Its own line first, the genuine peer's second.
    OwnFirst,
}

/// Settings of [`Mitm`].
#[derive(Debug, Clone)]
pub struct MitmOptions {
    /// Fingerprint lines in the SDP it forwards.
    pub fingerprints: Fingerprints,
    /// Sent to the host, as if from the phone, right after the host's
    /// `auth_ok` passes through (what the attacker would type).
    pub after_host_auth_ok: Vec<Vec<u8>>,
}

impl Default for MitmOptions {
    fn default() -> Self {
        MitmOptions {
            fingerprints: Fingerprints::Own,
            after_host_auth_ok: Vec::new(),
        }
    }
}

/// The first `a=fingerprint:` line of an SDP.
pub fn first_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .map(str::trim_end)
        .find(|l| l.starts_with("a=fingerprint:"))
        .map(str::to_owned)
}

/// `own` with `genuine` added next to each of its fingerprint lines.
pub fn list_fingerprints(own: &str, genuine: &str, genuine_first: bool) -> String {
    let mut out = Vec::new();
    for line in own.split("\r\n") {
        if line.starts_with("a=fingerprint:") {
            if genuine_first {
                out.push(genuine);
                out.push(line);
            } else {
                out.push(line);
                out.push(genuine);
            }
        } else {
            out.push(line);
        }
    }
    out.join("\r\n")
}

/// Attack (b) and (d): the relay answers the host's offer with its own peer A
/// and offers the phone its own peer B (with the `terminal` channel), keeps
/// every ICE candidate for its own peers, and copies every DataChannel message
/// between A and B, recording it. When the host closes A, B stays open (the
/// phone is left to decide on its own).
#[derive(Debug)]
pub struct Mitm {
    /// What passed through.
    pub recorder: Recorder,
    _task: Task,
}

impl Mitm {
    /// Sets the relay's hook and starts the attack task.
    pub fn install(relay: &RelayHandle, options: MitmOptions) -> Mitm {
        let rx = install_claiming(relay, |f| {
            matches!(
                (f.role, f.dir, f.kind().as_str()),
                (Role::Host, Dir::Up, "sdp_offer" | "ice_candidate")
                    | (
                        Role::Phone,
                        Dir::Up,
                        "sdp_answer" | "ice_candidate" | "connect_request"
                    )
            )
        });
        let recorder = Recorder::default();
        let actor = MitmActor {
            relay: relay.clone(),
            options,
            rec: recorder.clone(),
            host_conn: None,
            phone_conn: None,
            host_id: String::new(),
            phone_id: String::new(),
            a: None,
            b: None,
            a_events: None,
            b_events: None,
            a_early: Vec::new(),
            b_channel: None,
            pending_host_answer: None,
            new_session: false,
            forwarders: JoinSet::new(),
        };
        Mitm {
            recorder,
            _task: Task(tokio::spawn(actor.run(rx))),
        }
    }
}

struct MitmActor {
    relay: RelayHandle,
    options: MitmOptions,
    rec: Recorder,
    host_conn: Option<u64>,
    phone_conn: Option<u64>,
    host_id: String,
    phone_id: String,
    /// Faces the host (answerer).
    a: Option<RtcPeer>,
    /// Faces the phone (offerer).
    b: Option<RtcPeer>,
    a_events: Option<mpsc::Receiver<RtcEvent>>,
    b_events: Option<mpsc::Receiver<RtcEvent>>,
    /// Host candidates that came before A existed.
    a_early: Vec<Candidate>,
    b_channel: Option<RtcChannel>,
    /// A's answer, held until the phone's answer shows its fingerprint.
    pending_host_answer: Option<String>,
    /// A `connect_request` passed: the host's next offer is a new peer, not a restart.
    new_session: bool,
    forwarders: JoinSet<()>,
}

impl MitmActor {
    async fn run(mut self, mut frames: mpsc::Receiver<Frame>) {
        loop {
            tokio::select! {
                f = frames.recv() => match f {
                    Some(f) => {
                        if let Err(e) = self.frame(f).await {
                            self.rec.note(format!("error: {e:#}"));
                        }
                    }
                    None => break,
                },
                ev = next_event(&mut self.a_events) => match ev {
                    Some(ev) => self.a_event(ev),
                    None => self.a_events = None,
                },
                ev = next_event(&mut self.b_events) => match ev {
                    Some(ev) => self.b_event(ev),
                    None => self.b_events = None,
                },
            }
        }
    }

    fn to_host(&self, text: &str) {
        let sent = match self.host_conn {
            Some(c) => self.relay.inject_to(c, Dir::Down, text),
            None => false,
        };
        if !sent {
            self.rec.note("could not reach the host's socket");
        }
    }

    fn to_phone(&self, text: &str) {
        let sent = match self.phone_conn {
            Some(c) => self.relay.inject_to(c, Dir::Down, text),
            None => self.relay.inject(Role::Phone, Dir::Down, text) > 0,
        };
        if !sent {
            self.rec.note("could not reach the phone's socket");
        }
    }

    async fn frame(&mut self, f: Frame) -> anyhow::Result<()> {
        let v = f.json();
        match (f.role, f.kind().as_str()) {
            (Role::Phone, "connect_request") => {
                // Forwarded honestly: the real host must make its offer, which
                // starts a new session on both legs.
                self.phone_conn = Some(f.conn);
                self.new_session = true;
                self.relay.inject_to(f.conn, Dir::Up, &f.text);
                self.rec.note("connect_request forwarded");
            }
            (Role::Host, "sdp_offer") => self.host_offer(&f, &v).await?,
            (Role::Host, "ice_candidate") => match &self.a {
                Some(a) => a.add_remote_candidate(candidate_of(&v)).await?,
                None => self.a_early.push(candidate_of(&v)),
            },
            (Role::Phone, "sdp_answer") => self.phone_answer(&v).await?,
            (Role::Phone, "ice_candidate") => {
                if let Some(b) = &self.b {
                    b.add_remote_candidate(candidate_of(&v)).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn host_offer(&mut self, f: &Frame, v: &Value) -> anyhow::Result<()> {
        let sdp = v["sdp"].as_str().unwrap_or_default();
        if let Some(a) = &self.a
            && !self.new_session
        {
            // An ICE restart: answer it on the same peer.
            let answer = a.accept_offer(sdp).await?;
            self.to_host(&sdp_message("sdp_answer", &self.phone_id, &answer));
            self.rec.note("answered a restart offer");
            return Ok(());
        }
        self.new_session = false;
        for p in [self.a.take(), self.b.take()].into_iter().flatten() {
            p.close().await;
        }
        self.pending_host_answer = None;
        self.host_conn = Some(f.conn);
        self.host_id = f.device_id.clone();
        self.phone_id = v["targetDeviceId"].as_str().unwrap_or_default().to_owned();
        let rtc = RtcConfig::loopback();

        let (a, a_events) = RtcPeer::new(&rtc).await?;
        let answer = a.accept_offer(sdp).await?;
        for c in self.a_early.drain(..) {
            a.add_remote_candidate(c).await?;
        }
        let (b, b_events) = RtcPeer::new(&rtc).await?;
        let channel = b.create_data_channel("terminal").await?;
        let offer = b.create_offer(false).await?;
        let genuine_host = first_fingerprint(sdp).unwrap_or_default();
        let offer = match self.options.fingerprints {
            Fingerprints::Own => offer,
            Fingerprints::GenuineFirst => list_fingerprints(&offer, &genuine_host, true),
            Fingerprints::OwnFirst => list_fingerprints(&offer, &genuine_host, false),
        };
        self.to_phone(&sdp_message("sdp_offer", &self.host_id, &offer));
        self.rec.note("offered the phone its own peer");
        if self.options.fingerprints == Fingerprints::Own {
            self.to_host(&sdp_message("sdp_answer", &self.phone_id, &answer));
            self.rec.note("answered the host with its own peer");
        } else {
            self.pending_host_answer = Some(answer);
        }
        self.a = Some(a);
        self.b = Some(b);
        self.a_events = Some(a_events);
        self.b_events = Some(b_events);
        self.b_channel = Some(channel);
        Ok(())
    }

    async fn phone_answer(&mut self, v: &Value) -> anyhow::Result<()> {
        let sdp = v["sdp"].as_str().unwrap_or_default();
        let Some(b) = &self.b else {
            return Ok(());
        };
        b.set_remote_answer(sdp).await?;
        if let Some(answer) = self.pending_host_answer.take() {
            let genuine_phone = first_fingerprint(sdp).unwrap_or_default();
            let first = self.options.fingerprints == Fingerprints::GenuineFirst;
            let answer = list_fingerprints(&answer, &genuine_phone, first);
            self.to_host(&sdp_message("sdp_answer", &self.phone_id, &answer));
            self.rec
                .note("answered the host listing the phone's fingerprint too");
        }
        Ok(())
    }

    fn a_event(&mut self, ev: RtcEvent) {
        match ev {
            RtcEvent::LocalCandidate(c) => self.to_host(&candidate_message(&self.phone_id, c)),
            RtcEvent::State(s) => self.rec.note(format!("host side {s}")),
            // The end of gathering changes nothing for a relay that trickles.
            RtcEvent::GatheringComplete => {}
            RtcEvent::DataChannel(host_ch) => {
                self.rec.note(format!("host channel {}", host_ch.label()));
                if let Some(phone_ch) = self.b_channel.clone() {
                    self.forwarders.spawn(forward(
                        host_ch,
                        phone_ch,
                        self.rec.clone(),
                        self.options.after_host_auth_ok.clone(),
                    ));
                }
            }
        }
    }

    fn b_event(&mut self, ev: RtcEvent) {
        match ev {
            RtcEvent::LocalCandidate(c) => self.to_phone(&candidate_message(&self.host_id, c)),
            RtcEvent::State(s) => self.rec.note(format!("phone side {s}")),
            RtcEvent::DataChannel(ch) => ch.close(),
            RtcEvent::GatheringComplete => {}
        }
    }
}

/// Copies messages between the host's and the phone's channels, both ways.
async fn forward(host: RtcChannel, phone: RtcChannel, rec: Recorder, script: Vec<Vec<u8>>) {
    let host_to_phone = {
        let (host, phone, rec) = (host.clone(), phone.clone(), rec.clone());
        async move {
            if host.wait_open().await.is_err() {
                rec.note("host channel never opened");
                return;
            }
            rec.note("host channel open");
            while let Some(m) = host.recv().await {
                rec.message(Flow::HostToPhone, &m);
                let is_auth_ok = message_type(&m) == "auth_ok";
                if phone.wait_open().await.is_err() || phone.send(&m).await.is_err() {
                    rec.note("could not pass a message to the phone");
                }
                if is_auth_ok {
                    rec.note("host sent auth_ok");
                    for s in &script {
                        if host.send(s).await.is_err() {
                            rec.note("could not send the attacker's message");
                        }
                    }
                    if !script.is_empty() {
                        rec.note("sent the attacker's messages to the host");
                    }
                }
            }
            rec.note("host channel closed");
        }
    };
    let phone_to_host = async move {
        if phone.wait_open().await.is_err() {
            rec.note("phone channel never opened");
            return;
        }
        rec.note("phone channel open");
        while let Some(m) = phone.recv().await {
            rec.message(Flow::PhoneToHost, &m);
            if host.send(&m).await.is_err() {
                rec.note("could not pass a message to the host");
            }
        }
        rec.note("phone channel closed");
    };
    tokio::join!(host_to_phone, phone_to_host);
}

// ---------------------------------------------------------------- fake host

/// What the fake host answers to the phone's `auth_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeAuthOk {
    /// An `auth_ok` whose MAC is 32 random bytes.
    WrongMac,
    /// Nothing at all.
    Missing,
}

/// Attack (c): the relay answers the phone's `connect_request` itself (the
/// host never hears of it) with its own offerer peer, sends `auth_challenge`,
/// answers the phone's `auth_response` per [`FakeAuthOk`], and records every
/// message the phone sends (`Flow::PhoneToHost`).
#[derive(Debug)]
pub struct FakeHost {
    /// What the phone sent, and progress notes.
    pub recorder: Recorder,
    _task: Task,
}

impl FakeHost {
    /// Sets the relay's hook and starts the attack task.
    pub fn install(relay: &RelayHandle, reply: FakeAuthOk) -> FakeHost {
        let rx = install_claiming(relay, |f| {
            f.role == Role::Phone
                && f.dir == Dir::Up
                && matches!(
                    f.kind().as_str(),
                    "connect_request" | "sdp_answer" | "ice_candidate"
                )
        });
        let recorder = Recorder::default();
        let task = tokio::spawn(fake_host(relay.clone(), rx, reply, recorder.clone()));
        FakeHost {
            recorder,
            _task: Task(task),
        }
    }
}

async fn fake_host(
    relay: RelayHandle,
    mut frames: mpsc::Receiver<Frame>,
    reply: FakeAuthOk,
    rec: Recorder,
) {
    let mut peer: Option<(RtcPeer, u64, String)> = None;
    let mut events: Option<mpsc::Receiver<RtcEvent>> = None;
    let mut channels = JoinSet::new();
    loop {
        tokio::select! {
            f = frames.recv() => {
                let Some(f) = f else { break };
                let v = f.json();
                let result: anyhow::Result<()> = async {
                    match f.kind().as_str() {
                        "connect_request" => {
                            let host_id = v["targetDeviceId"].as_str().unwrap_or_default().to_owned();
                            let (p, ev) = RtcPeer::new(&RtcConfig::loopback()).await?;
                            let ch = p.create_data_channel("terminal").await?;
                            let offer = p.create_offer(false).await?;
                            relay.inject_to(f.conn, Dir::Down, &sdp_message("sdp_offer", &host_id, &offer));
                            rec.note("offered the phone a fake host");
                            channels.spawn(fake_channel(ch, reply, rec.clone()));
                            if let Some((old, _, _)) = peer.replace((p, f.conn, host_id)) {
                                old.close().await;
                            }
                            events = Some(ev);
                        }
                        "sdp_answer" => {
                            if let Some((p, _, _)) = &peer {
                                p.set_remote_answer(v["sdp"].as_str().unwrap_or_default()).await?;
                            }
                        }
                        "ice_candidate" => {
                            if let Some((p, _, _)) = &peer {
                                p.add_remote_candidate(candidate_of(&v)).await?;
                            }
                        }
                        _ => {}
                    }
                    Ok(())
                }.await;
                if let Err(e) = result {
                    rec.note(format!("error: {e:#}"));
                }
            }
            ev = next_event(&mut events) => match ev {
                Some(RtcEvent::LocalCandidate(c)) => {
                    if let Some((_, conn, host_id)) = &peer {
                        relay.inject_to(*conn, Dir::Down, &candidate_message(host_id, c));
                    }
                }
                Some(RtcEvent::State(s)) => rec.note(format!("phone side {s}")),
                Some(RtcEvent::DataChannel(ch)) => ch.close(),
                Some(RtcEvent::GatheringComplete) => {}
                None => events = None,
            },
        }
    }
}

async fn fake_channel(ch: RtcChannel, reply: FakeAuthOk, rec: Recorder) {
    if ch.wait_open().await.is_err() {
        rec.note("channel never opened");
        return;
    }
    let nonce = random_b64(32);
    if ch
        .send(&Event::AuthChallenge { nonce }.encode())
        .await
        .is_err()
    {
        rec.note("could not send auth_challenge");
        return;
    }
    rec.note("sent auth_challenge");
    let mut answered = false;
    while let Some(m) = ch.recv().await {
        rec.message(Flow::PhoneToHost, &m);
        if !answered {
            answered = true;
            rec.note(format!("phone sent {}", message_type(&m)));
            if reply == FakeAuthOk::WrongMac {
                if ch.send(&auth_ok_with_mac(&random_b64(32))).await.is_err() {
                    rec.note("could not send auth_ok");
                } else {
                    rec.note("sent auth_ok with a wrong mac");
                }
            }
        }
    }
    rec.note("phone channel closed");
}
