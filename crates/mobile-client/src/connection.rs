//! One authenticated DataChannel session with the host: connect (answerer,
//! trickle ICE, ICE restarts), channel authentication v2 (the phone proves the
//! pairing key over both nonces and both DTLS certificates, then sends nothing
//! until the host has proved it too), and the typed terminal-protocol API with
//! a bounded event stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc_transport::{Candidate, PeerState, RtcChannel, RtcConfig, RtcEvent, RtcPeer};
use signaling_proto::SignalingMessage;
use terminal_protocol::{
    Attach, AuthTranscript, DecodeError, Decompressor, Event, MAX_INPUT_SIZE, Request, Session,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::misbehave::{MacBehaviour, Misbehave};
use crate::signaling::Signaling;

/// Wait for the host's offer after `connect_request`.
const OFFER_TIMEOUT: Duration = Duration::from_secs(15);
/// Wait for the DataChannel to arrive and open after the answer.
const CHANNEL_TIMEOUT: Duration = Duration::from_secs(20);
/// Wait for `auth_challenge` and then `auth_ok` (spec: host timer 10 s).
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait for the answer to a request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Events (with inflated output) waiting for the app; a full queue stops
/// reading the channel, which slows the host down instead of growing memory.
const EVENT_QUEUE: usize = 256;
/// Requests awaiting their answer.
const MAX_WAITERS: usize = 64;

/// Error code of the local event emitted when an `output` frame cannot be inflated.
pub const INFLATE_FAILED: &str = "inflate_failed";
/// Error code of the local event emitted when the host sends an undecodable event.
pub const INVALID_EVENT: &str = "invalid_event";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Sessions,
    Attached,
    Detached,
    SessionEnded,
    SessionCreated,
    Pong,
}

impl Expect {
    fn matches(self, ev: &Event) -> bool {
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

type Waiters = Arc<Mutex<VecDeque<(Expect, oneshot::Sender<Event>)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An authenticated session with one host.
pub struct PhoneConnection {
    host_device_id: String,
    peer: RtcPeer,
    channel: RtcChannel,
    waiters: Waiters,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    state: watch::Receiver<PeerState>,
    closed: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PhoneConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneConnection")
            .field("host", &self.host_device_id)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for PhoneConnection {
    fn drop(&mut self) {
        self.channel.close();
        for t in &self.tasks {
            t.abort();
        }
        let peer = self.peer.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { peer.close().await });
        }
    }
}

impl PhoneConnection {
    /// Asks the host for a connection over `signaling`, answers its offer,
    /// authenticates the channel with `secret` (both proofs, §12), and returns once
    /// the host's `auth_ok` verified.
    pub async fn connect(
        signaling: Arc<Signaling>,
        host_device_id: &str,
        secret: &[u8; 32],
        rtc: &RtcConfig,
    ) -> Result<PhoneConnection, ClientError> {
        Self::connect_with(signaling, host_device_id, secret, rtc, Misbehave::default()).await
    }

    /// [`PhoneConnection::connect`] with deliberate misbehaviour (hostile-peer tests).
    pub async fn connect_with(
        signaling: Arc<Signaling>,
        host_device_id: &str,
        secret: &[u8; 32],
        rtc: &RtcConfig,
        misbehave: Misbehave,
    ) -> Result<PhoneConnection, ClientError> {
        let host = host_device_id.to_owned();
        let mut route = signaling.route(&host);
        let (peer, rtc_events) = RtcPeer::new(rtc).await?;

        let mut req = SignalingMessage::new("connect_request");
        req.target_device_id = host.clone();
        signaling.send(req).await?;

        // Wait for the offer; candidates that come first are queued by the peer.
        let offer = tokio::time::timeout(OFFER_TIMEOUT, async {
            while let Some(m) = route.recv().await {
                match m.kind.as_str() {
                    "sdp_offer" => return Ok(m.sdp),
                    "ice_candidate" => add_candidate(&peer, &m).await,
                    "connection_rejected" => return Err(ClientError::Rejected(m.reason)),
                    "host_offline" => return Err(ClientError::HostOffline),
                    _ => {}
                }
            }
            Err(ClientError::Signaling("connection closed".into()))
        })
        .await
        .map_err(|_| ClientError::Timeout("the host's offer"));
        let offer = match offer {
            Ok(Ok(sdp)) => sdp,
            Ok(Err(e)) | Err(e) => {
                peer.close().await;
                return Err(e);
            }
        };
        let answer = match peer.accept_offer(&offer).await {
            Ok(a) => a,
            Err(e) => {
                peer.close().await;
                return Err(e.into());
            }
        };
        let mut ans = SignalingMessage::new("sdp_answer");
        ans.target_device_id = host.clone();
        ans.sdp = answer;
        signaling.send(ans).await?;

        let (state_tx, state_rx) = watch::channel(PeerState::New);
        let (chan_tx, chan_rx) = oneshot::channel();
        let pump = tokio::spawn(signal_pump(
            Arc::clone(&signaling),
            host.clone(),
            peer.clone(),
            route,
            rtc_events,
            state_tx,
            chan_tx,
        ));

        let result = Self::finish(
            peer.clone(),
            chan_rx,
            state_rx,
            host,
            secret,
            misbehave,
            pump,
        )
        .await;
        if result.is_err() {
            peer.close().await;
        }
        result
    }

    async fn finish(
        peer: RtcPeer,
        chan_rx: oneshot::Receiver<RtcChannel>,
        state: watch::Receiver<PeerState>,
        host: String,
        secret: &[u8; 32],
        misbehave: Misbehave,
        pump: JoinHandle<()>,
    ) -> Result<PhoneConnection, ClientError> {
        let abort_pump = scopeguard(pump);
        let channel = tokio::time::timeout(CHANNEL_TIMEOUT, async {
            let ch = chan_rx.await.map_err(|_| ClientError::Closed)?;
            ch.wait_open().await?;
            Ok::<_, ClientError>(ch)
        })
        .await
        .map_err(|_| ClientError::Timeout("the data channel"))??;

        handshake(&peer, &channel, secret, &misbehave).await?;

        let waiters: Waiters = Arc::default();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let (closed_tx, closed_rx) = watch::channel(false);
        let reader = tokio::spawn(read_events(
            channel.clone(),
            Arc::clone(&waiters),
            ev_tx,
            closed_tx,
        ));
        Ok(PhoneConnection {
            host_device_id: host,
            peer,
            channel,
            waiters,
            events: tokio::sync::Mutex::new(ev_rx),
            state,
            closed: closed_rx,
            tasks: vec![abort_pump.defuse(), reader],
        })
    }

    /// The host this connection is with.
    pub fn host_device_id(&self) -> &str {
        &self.host_device_id
    }

    /// The peer connection's current state.
    pub fn state(&self) -> PeerState {
        *self.state.borrow()
    }

    /// True once the DataChannel closed (by either side).
    pub fn is_closed(&self) -> bool {
        self.channel.is_closed()
    }

    /// The largest message the host accepts.
    pub fn max_message_size(&self) -> usize {
        self.channel.remote_max_message_size()
    }

    /// The next event not consumed by a request method: output (already
    /// inflated), `pane_closed`, unsolicited `sessions`, `error`s, ... `None`
    /// once the connection is closed and drained. Keep draining it while
    /// requests run: a full queue pauses reading.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }

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
    pub async fn attach(
        &self,
        pane_id: &str,
        cols: u16,
        rows: u16,
        reattach: bool,
        compress: bool,
    ) -> Result<(), ClientError> {
        let req = Request::Attach(Attach {
            pane_id: pane_id.to_owned(),
            cols,
            rows,
            reattach,
            compression: compress.then(|| "deflate".to_owned()),
        });
        match self.request(req, Expect::Attached).await? {
            Event::Attached { .. } => Ok(()),
            Event::PaneClosed { pane_id } => Err(ClientError::PaneClosed(pane_id)),
            other => Err(unexpected(other)),
        }
    }

    /// `input`: sends the bytes in order, split into ≤ 16 384-byte messages.
    pub async fn input(&self, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(MAX_INPUT_SIZE) {
            self.send_request(&Request::Input {
                data: chunk.to_vec(),
            })
            .await?;
        }
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

    /// Sends one request without waiting for any answer.
    pub async fn send_request(&self, req: &Request) -> Result<(), ClientError> {
        self.channel.send(&req.encode()).await.map_err(closed_or)
    }

    /// Test hook: sends arbitrary bytes as one DataChannel message (garbage,
    /// events, oversize frames up to the library's limit).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.channel.send_unchecked(bytes).await.map_err(closed_or)
    }

    /// Closes the DataChannel and the peer connection.
    pub async fn close(&self) {
        self.channel.close();
        self.peer.close().await;
    }

    /// Resolves once the DataChannel is closed (by either side).
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|c| *c).await;
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

fn closed_or(e: rtc_transport::RtcError) -> ClientError {
    match e {
        rtc_transport::RtcError::Closed => ClientError::Closed,
        e => ClientError::Rtc(e),
    }
}

fn unexpected(ev: Event) -> ClientError {
    ClientError::Remote {
        code: "unexpected".into(),
        message: format!("unexpected {} event", ev.type_name()),
    }
}

async fn add_candidate(peer: &RtcPeer, m: &SignalingMessage) {
    let c = Candidate {
        candidate: m.candidate.clone(),
        sdp_mid: (!m.sdp_mid.is_empty()).then(|| m.sdp_mid.clone()),
        sdp_m_line_index: m.sdp_m_line_index,
    };
    if let Err(e) = peer.add_remote_candidate(c).await {
        tracing::debug!(error = %e, "remote candidate rejected");
    }
}

/// Signaling ↔ peer for the life of the connection: remote candidates and
/// ICE-restart offers in, local candidates out, state and channel reported.
async fn signal_pump(
    signaling: Arc<Signaling>,
    host: String,
    peer: RtcPeer,
    mut route: mpsc::Receiver<SignalingMessage>,
    mut events: mpsc::Receiver<RtcEvent>,
    state: watch::Sender<PeerState>,
    chan_tx: oneshot::Sender<RtcChannel>,
) {
    let mut chan_tx = Some(chan_tx);
    let mut route_open = true;
    loop {
        tokio::select! {
            m = route.recv(), if route_open => match m {
                Some(m) => match m.kind.as_str() {
                    "ice_candidate" => add_candidate(&peer, &m).await,
                    "sdp_offer" => {
                        // ICE restart (or renegotiation) on the same connection.
                        match peer.accept_offer(&m.sdp).await {
                            Ok(answer) => {
                                let mut ans = SignalingMessage::new("sdp_answer");
                                ans.target_device_id = host.clone();
                                ans.sdp = answer;
                                if signaling.send(ans).await.is_err() {
                                    tracing::debug!("answer to a restart offer not sent");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "restart offer rejected"),
                        }
                    }
                    other => tracing::debug!(kind = other, "signaling message for the connection ignored"),
                },
                // Signaling gone: the established connection carries on.
                None => route_open = false,
            },
            ev = events.recv() => match ev {
                Some(RtcEvent::LocalCandidate(c)) => {
                    let mut m = SignalingMessage::new("ice_candidate");
                    m.target_device_id = host.clone();
                    m.candidate = c.candidate;
                    m.sdp_mid = c.sdp_mid.unwrap_or_default();
                    m.sdp_m_line_index = c.sdp_m_line_index;
                    let _ = signaling.send(m).await;
                }
                Some(RtcEvent::State(s)) => {
                    state.send_replace(s);
                }
                Some(RtcEvent::DataChannel(ch)) => {
                    if let Some(tx) = chan_tx.take() {
                        let _ = tx.send(ch);
                    } else {
                        ch.close();
                    }
                }
                None => break,
            },
        }
    }
}

/// Channel authentication v2 (terminal-protocol §12), phone side: check the
/// challenge, prove the key over `N_H ‖ N_M ‖ FP_H ‖ FP_M` with `FP_H` taken
/// from the certificate the host actually presented, then wait for `auth_ok`
/// and verify the host's proof before anything else is sent. Any failure
/// after our proof went out is [`ClientError::Intercepted`]: a relay in the
/// middle of DTLS, a fake host and a host with another key all look alike.
async fn handshake(
    peer: &RtcPeer,
    channel: &RtcChannel,
    secret: &[u8; 32],
    mb: &Misbehave,
) -> Result<(), ClientError> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, channel.recv())
        .await
        .map_err(|_| ClientError::Timeout("auth_challenge"))?
        .ok_or(ClientError::Closed)?;
    let nonce = match Event::decode(&first) {
        Ok(Event::AuthChallenge { nonce }) => nonce,
        Ok(other) => {
            return Err(ClientError::Handshake(format!(
                "expected auth_challenge, got {}",
                other.type_name()
            )));
        }
        Err(e) => {
            return Err(ClientError::Handshake(format!(
                "undecodable challenge: {e}"
            )));
        }
    };
    let host_nonce = terminal_protocol::decode_nonce(&nonce)
        .map_err(|e| ClientError::Handshake(format!("challenge {e}")))?;
    let fingerprints = peer
        .dtls_fingerprints()
        .await
        .map_err(|e| ClientError::Intercepted(e.to_string()))?;
    let mobile_nonce =
        terminal_protocol::try_new_nonce().map_err(|e| ClientError::Handshake(e.to_string()))?;
    let transcript = AuthTranscript {
        host_nonce,
        mobile_nonce,
        host_fingerprint: fingerprints.remote,
        mobile_fingerprint: fingerprints.local,
    };
    for m in &mb.before_auth {
        channel.send_unchecked(m).await.map_err(closed_or)?;
    }
    let mac = match mb.mac {
        MacBehaviour::Correct => Some(transcript.mobile_mac_b64(secret)),
        MacBehaviour::Wrong => {
            let mut wrong = *secret;
            wrong[0] ^= 0xff;
            Some(transcript.mobile_mac_b64(&wrong))
        }
        MacBehaviour::Garbage => Some("!!not base64!!".to_owned()),
        MacBehaviour::Missing => None,
    };
    if let Some(mac) = mac {
        let response = Request::AuthResponse {
            nonce: terminal_protocol::nonce_b64(&transcript.mobile_nonce),
            mac,
        };
        channel.send(&response.encode()).await.map_err(closed_or)?;
    }
    if mb.skip_auth_wait {
        return Ok(());
    }
    let reply = tokio::time::timeout(AUTH_TIMEOUT, channel.recv())
        .await
        .map_err(|_| ClientError::Intercepted("no auth_ok within 10 s".into()))?
        .ok_or_else(|| ClientError::Intercepted("the host closed the connection".into()))?;
    match Event::decode(&reply) {
        Ok(Event::AuthOk { mac }) => transcript
            .verify_host_mac(secret, &mac)
            .map_err(|e| ClientError::Intercepted(format!("auth_ok {e}"))),
        Ok(other) => Err(ClientError::Intercepted(format!(
            "expected auth_ok, got {}",
            other.type_name()
        ))),
        Err(e) => Err(ClientError::Intercepted(format!(
            "undecodable auth_ok: {e}"
        ))),
    }
}

/// Channel → events: decode, inflate output per attachment, answer waiters,
/// queue the rest (bounded).
async fn read_events(
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
            Event::Output { data } => match inflater.as_mut() {
                None => Event::Output { data },
                Some(d) => match d.decompress(&data) {
                    Ok(plain) => Event::Output { data: plain },
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

/// Aborts a task on drop unless defused.
struct AbortOnDrop(Option<JoinHandle<()>>);

fn scopeguard(h: JoinHandle<()>) -> AbortOnDrop {
    AbortOnDrop(Some(h))
}

impl AbortOnDrop {
    fn defuse(mut self) -> JoinHandle<()> {
        self.0.take().expect("defused once: the guard is consumed")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}
