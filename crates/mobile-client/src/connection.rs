//! One authenticated DataChannel session with the host: connect (answerer,
//! trickle ICE, ICE restarts), channel authentication v2 (the phone proves the
//! pairing key over both nonces and both DTLS certificates, then sends nothing
//! until the host has proved it too), and the typed terminal-protocol API with
//! a bounded event stream.
//!
//! With stream v2 (docs/stream-v2.md, on unless [`ConnectOptions::stream_v2`]
//! is off) the phone opens the unordered fast channel after `auth_ok`,
//! attaches with offsets, numbers its input, and hands out each output byte
//! once; [`PhoneConnection::resume_point`] lets the next connection continue
//! the stream.
//!
//! This file holds [`PhoneConnection`] and its connect (offer, answer, then
//! the channel); `gather` writes the candidates into the answer when the
//! phone does not trickle them; `signal_pump` relays signaling and ICE for the connection's
//! life, `handshake` is the channel authentication, `requests` the typed
//! request/response API, `sender` the one task that puts every reliable
//! message on the channel in call order, holding originals behind their fast
//! copies in `lead` (the sans-IO lead queue), `events` the reader that
//! answers requests and queues everything else, and `stream` the sans-IO
//! stream v2 core the reader feeds.

mod events;
mod gather;
mod handshake;
mod lead;
mod requests;
mod sender;
mod signal_pump;
mod stream;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtc_transport::{ChannelOptions, PeerState, RtcChannel, RtcConfig, RtcPeer};
use signaling_proto::Signal;
use terminal_protocol::{Event, FAST_CHANNEL_LABEL};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::misbehave::Misbehave;
use crate::signaling::Signaling;

use events::{Reader, Shared};
pub use gather::{CandidateStyle, GATHER_LIMIT};
use handshake::handshake;
use requests::Waiters;
pub use requests::{AttachOptions, Attachment};
use sender::ReliableSender;
use signal_pump::{add_candidate, signal_pump};
pub use stream::{ResumePoint, StreamStats};

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
/// How long [`PhoneConnection::close`] lets queued reliable messages (an
/// original still held for its lead) go out before it closes the channel.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Error code of the local event emitted when an `output` frame cannot be inflated.
pub const INFLATE_FAILED: &str = "inflate_failed";
/// Error code of the local event emitted when the host sends an undecodable event.
pub const INVALID_EVENT: &str = "invalid_event";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a connection is made, beyond the pairing and the WebRTC settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Where the phone's ICE candidates go.
    pub candidates: CandidateStyle,
    /// Stream v2 (docs/stream-v2.md): the fast channel, offsets on attach
    /// and input, resume. On by default; off acts as a phone from before it.
    pub stream_v2: bool,
    /// Deliberate deviations (hostile-peer tests).
    pub misbehave: Misbehave,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            candidates: CandidateStyle::Trickle,
            stream_v2: true,
            misbehave: Misbehave::default(),
        }
    }
}

/// An authenticated session with one host.
pub struct PhoneConnection {
    host_device_id: String,
    peer: RtcPeer,
    channel: RtcChannel,
    /// Every reliable send but `send_raw` goes through this one task, in
    /// call order.
    sender: ReliableSender,
    /// The stream v2 fast channel, when opened.
    fast: Option<RtcChannel>,
    stream_v2: bool,
    /// The offset of the next input byte (stream v2); held until the
    /// message's original is queued on `sender`.
    input_next: tokio::sync::Mutex<u64>,
    /// Counters and the resume point, published by the reader.
    shared: Arc<Mutex<Shared>>,
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
        if let Some(fast) = &self.fast {
            fast.close();
        }
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
        let style = CandidateStyle::Trickle;
        Self::connect_styled(signaling, host_device_id, secret, rtc, style, misbehave).await
    }

    /// [`PhoneConnection::connect_with`] with the phone's candidates trickled
    /// or written into the answer ([`CandidateStyle`]).
    pub async fn connect_styled(
        signaling: Arc<Signaling>,
        host_device_id: &str,
        secret: &[u8; 32],
        rtc: &RtcConfig,
        style: CandidateStyle,
        misbehave: Misbehave,
    ) -> Result<PhoneConnection, ClientError> {
        let opts = ConnectOptions {
            candidates: style,
            misbehave,
            ..ConnectOptions::default()
        };
        Self::connect_opts(signaling, host_device_id, secret, rtc, opts).await
    }

    /// [`PhoneConnection::connect`] with every option ([`ConnectOptions`]).
    pub async fn connect_opts(
        signaling: Arc<Signaling>,
        host_device_id: &str,
        secret: &[u8; 32],
        rtc: &RtcConfig,
        opts: ConnectOptions,
    ) -> Result<PhoneConnection, ClientError> {
        let style = opts.candidates;
        let host = host_device_id.to_owned();
        let mut route = signaling.route(&host);
        let (peer, mut rtc_events) = RtcPeer::new(rtc).await?;

        signaling
            .send(Signal::ConnectRequest {
                target_device_id: host.clone(),
            })
            .await?;

        // Wait for the offer; candidates that come first are queued by the peer.
        let offer = tokio::time::timeout(OFFER_TIMEOUT, async {
            while let Some(m) = route.recv().await {
                match m {
                    Signal::SdpOffer { sdp, .. } => return Ok(sdp),
                    Signal::IceCandidate {
                        candidate,
                        sdp_mid,
                        sdp_m_line_index,
                        ..
                    } => add_candidate(&peer, candidate, sdp_mid, sdp_m_line_index).await,
                    Signal::ConnectionRejected { reason, .. } => {
                        return Err(ClientError::Rejected(reason));
                    }
                    Signal::HostOffline { .. } => return Err(ClientError::HostOffline),
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
        let (answer, early_state) = match style {
            CandidateStyle::Trickle => (answer, None),
            CandidateStyle::InAnswer { quiet } => {
                gather::candidates_into_answer(&answer, &mut rtc_events, quiet).await
            }
        };
        signaling
            .send(Signal::SdpAnswer {
                target_device_id: host.clone(),
                sdp: answer,
            })
            .await?;

        let (state_tx, state_rx) = watch::channel(early_state.unwrap_or(PeerState::New));
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

        let result = Self::finish(peer.clone(), chan_rx, state_rx, host, secret, opts, pump).await;
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
        opts: ConnectOptions,
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

        handshake(&peer, &channel, secret, &opts.misbehave).await?;
        let stream_v2 = opts.stream_v2;
        // Stream v2 §4: the fast channel only once auth_ok verified.
        let fast = if stream_v2 && !opts.misbehave.skip_auth_wait {
            open_fast(&peer).await
        } else {
            None
        };

        let waiters: Waiters = Arc::default();
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let (closed_tx, closed_rx) = watch::channel(false);
        let reader = tokio::spawn(
            Reader {
                channel: channel.clone(),
                fast: fast.clone(),
                waiters: Arc::clone(&waiters),
                events: ev_tx,
                closed: closed_tx,
                shared: Arc::clone(&shared),
            }
            .run(),
        );
        // Ends with the channel (the reader's `closed`), or is aborted on drop.
        let (sender, send_task) = ReliableSender::spawn(channel.clone(), closed_rx.clone());
        Ok(PhoneConnection {
            host_device_id: host,
            peer,
            channel,
            sender,
            fast,
            stream_v2,
            input_next: tokio::sync::Mutex::new(0),
            shared,
            waiters,
            events: tokio::sync::Mutex::new(ev_rx),
            state,
            closed: closed_rx,
            tasks: vec![abort_pump.defuse(), reader, send_task],
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

    /// Whether this connection speaks stream v2 (it asks; an old host
    /// answers without offsets and everything works as before).
    pub fn stream_v2(&self) -> bool {
        self.stream_v2
    }

    /// Waits until the stream v2 fast channel is open: false when there is
    /// none or it closed first (an old host closes it).
    pub async fn fast_channel_ready(&self) -> bool {
        match &self.fast {
            Some(fast) => fast.wait_open().await.is_ok(),
            None => false,
        }
    }

    /// Waits until the peer connection's state satisfies `pred` and returns
    /// that state (the last state seen if the connection's pump ended first).
    pub async fn state_until(&self, pred: impl Fn(PeerState) -> bool) -> PeerState {
        let mut st = self.state.clone();
        let seen = st.wait_for(|s| pred(*s)).await.map(|s| *s);
        seen.unwrap_or_else(|_| *self.state.borrow())
    }

    /// True while the stream v2 fast channel is open.
    pub fn fast_channel_open(&self) -> bool {
        self.fast.as_ref().is_some_and(RtcChannel::is_open)
    }

    /// The stream v2 counters so far: bytes skipped, snapshots, duplicates
    /// dropped, fast copies applied and sent.
    pub fn stream_stats(&self) -> StreamStats {
        lock(&self.shared).stats()
    }

    /// The pane this connection is attached to (with offsets) and the offset
    /// after the last output byte handed to [`PhoneConnection::next_event`];
    /// kept after the connection closes. Drain `next_event` to `None` first,
    /// then pass it to [`PhoneConnection::resume`] on the next connection
    /// and the byte stream continues exactly. `None` without stream v2.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        lock(&self.shared).resume_point.clone()
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

    /// Sends what is still queued (an input's original held for its fast
    /// copy's lead; at most 2 s), then closes the DataChannel and the peer
    /// connection. Dropping the connection instead drops what is queued.
    pub async fn close(&self) {
        if !self.channel.is_closed() {
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, self.sender.flush()).await;
        }
        if let Some(fast) = &self.fast {
            fast.close();
        }
        self.channel.close();
        self.peer.close().await;
    }

    /// Resolves once the DataChannel is closed (by either side).
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|c| *c).await;
    }
}

/// Opens the fast channel (unordered, no retransmissions); without it the
/// connection works as before, only without early copies.
async fn open_fast(peer: &RtcPeer) -> Option<RtcChannel> {
    match peer
        .create_data_channel_with(FAST_CHANNEL_LABEL, ChannelOptions::fast())
        .await
    {
        Ok(ch) => Some(ch),
        Err(e) => {
            tracing::debug!(error = %e, "fast channel not opened");
            None
        }
    }
}

fn closed_or(e: rtc_transport::RtcError) -> ClientError {
    match e {
        rtc_transport::RtcError::Closed => ClientError::Closed,
        e => ClientError::Rtc(e),
    }
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
