//! One peer connection: offer/answer, trickle ICE with a bounded pre-description
//! queue, events to the owner, close.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use crate::channel::RtcChannel;
use crate::config::RtcConfig;
use crate::dtls::{DtlsFingerprints, fingerprint_of_der, parse_fingerprint};
use crate::error::RtcError;
use crate::event::{Candidate, PeerState, RtcEvent};
use crate::sdp::{
    MAX_MESSAGE_SIZE, advertise_max_message_size, parse_max_message_size, unlimit_max_message_size,
};
use crate::{DEFAULT_REMOTE_MAX_MESSAGE, MAX_PENDING_CANDIDATES};

/// Events waiting for the owner; when full, further events are dropped with a log
/// rather than blocking the library's callback tasks.
const EVENT_QUEUE: usize = 256;
/// Closing a peer connection to an unreachable peer can hang; we stop waiting here.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// One WebRTC peer connection. Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct RtcPeer {
    inner: Arc<PeerInner>,
}

impl std::fmt::Debug for RtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcPeer")
            .field("state", &self.state())
            .finish()
    }
}

#[derive(Default)]
struct IceQueue {
    remote_set: bool,
    pending: Vec<Candidate>,
}

struct PeerInner {
    pc: Arc<RTCPeerConnection>,
    ice: Mutex<IceQueue>,
    remote_max: Arc<AtomicUsize>,
    channels: Mutex<Vec<RtcChannel>>,
    closed: AtomicBool,
    ignore_remote_max: AtomicBool,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::SeqCst) {
            let pc = Arc::clone(&self.pc);
            crate::stack::spawn(async move {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, pc.close()).await;
            });
        }
    }
}

fn map_state(s: RTCPeerConnectionState) -> PeerState {
    match s {
        RTCPeerConnectionState::Unspecified | RTCPeerConnectionState::New => PeerState::New,
        RTCPeerConnectionState::Connecting => PeerState::Connecting,
        RTCPeerConnectionState::Connected => PeerState::Connected,
        RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
        RTCPeerConnectionState::Failed => PeerState::Failed,
        RTCPeerConnectionState::Closed => PeerState::Closed,
    }
}

fn local_candidate(c: &RTCIceCandidate) -> Option<Candidate> {
    let init = c.to_json().ok()?;
    // The library reports an empty mid; ours is always the single bundled
    // application section "0".
    let mid = init
        .sdp_mid
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "0".to_owned());
    Some(Candidate {
        candidate: init.candidate,
        sdp_mid: Some(mid),
        sdp_m_line_index: Some(init.sdp_mline_index.unwrap_or(0)),
    })
}

impl RtcPeer {
    /// Builds a peer connection and its bounded event receiver.
    pub async fn new(config: &RtcConfig) -> Result<(RtcPeer, mpsc::Receiver<RtcEvent>), RtcError> {
        Self::with_send_limit(config, MAX_MESSAGE_SIZE).await
    }

    /// Test hook for hostile-peer tests: like [`RtcPeer::new`] but the library
    /// may send messages up to `send_limit` bytes. Combined with
    /// [`RtcPeer::ignore_remote_max_message_size`] and
    /// [`RtcChannel::send_unchecked`] it lets a test peer send messages larger
    /// than the remote side advertised.
    pub async fn with_send_limit(
        config: &RtcConfig,
        send_limit: usize,
    ) -> Result<(RtcPeer, mpsc::Receiver<RtcEvent>), RtcError> {
        let api = config.api(send_limit);
        let rtc_config = config.rtc_configuration();
        let pc = Arc::new(
            crate::stack::on_stack(async move { api.new_peer_connection(rtc_config).await })
                .await??,
        );
        let inner = Arc::new(PeerInner {
            pc: Arc::clone(&pc),
            ice: Mutex::new(IceQueue::default()),
            remote_max: Arc::new(AtomicUsize::new(DEFAULT_REMOTE_MAX_MESSAGE)),
            channels: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            ignore_remote_max: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);

        let ev = tx.clone();
        pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
            // The library reports candidates and then None, in order, from one
            // task per ICE agent: None ends this generation's gathering.
            match c.as_ref() {
                Some(c) => {
                    if let Some(cand) = local_candidate(c) {
                        emit(&ev, RtcEvent::LocalCandidate(cand));
                    }
                }
                None => emit(&ev, RtcEvent::GatheringComplete),
            }
            Box::pin(async {})
        }));

        let ev = tx.clone();
        pc.on_peer_connection_state_change(Box::new(move |s: RTCPeerConnectionState| {
            emit(&ev, RtcEvent::State(map_state(s)));
            Box::pin(async {})
        }));

        // Callbacks are owned by the connection, which the peer owns: weak only.
        let weak: Weak<PeerInner> = Arc::downgrade(&inner);
        let ev = tx;
        pc.on_data_channel(Box::new(move |dc| {
            if let Some(inner) = weak.upgrade() {
                let ch = RtcChannel::new(dc, Arc::clone(&inner.remote_max));
                if inner.closed.load(Ordering::SeqCst) {
                    ch.close();
                } else {
                    lock(&inner.channels).push(ch.clone());
                    emit(&ev, RtcEvent::DataChannel(ch));
                }
            }
            Box::pin(async {})
        }));

        Ok((RtcPeer { inner }, rx))
    }

    /// Offerer: creates an ordered, reliable, in-band negotiated DataChannel
    /// (the `terminal` channel, before the offer).
    pub async fn create_data_channel(&self, label: &str) -> Result<RtcChannel, RtcError> {
        self.create_data_channel_with(label, crate::options::ChannelOptions::reliable())
            .await
    }

    /// Either side: creates an in-band negotiated DataChannel with these
    /// delivery options. Before the connection is up it opens with it; on a
    /// connected peer SCTP announces it at once (DCEP, no renegotiation) and
    /// the other side sees [`RtcEvent::DataChannel`].
    pub async fn create_data_channel_with(
        &self,
        label: &str,
        options: crate::options::ChannelOptions,
    ) -> Result<RtcChannel, RtcError> {
        self.check_open()?;
        let init = RTCDataChannelInit {
            ordered: Some(options.ordered),
            max_retransmits: options.max_retransmits,
            ..Default::default()
        };
        let pc = Arc::clone(&self.inner.pc);
        let label = label.to_owned();
        let dc =
            crate::stack::on_stack(async move { pc.create_data_channel(&label, Some(init)).await })
                .await??;
        let ch = RtcChannel::new(dc, Arc::clone(&self.inner.remote_max));
        lock(&self.inner.channels).push(ch.clone());
        Ok(ch)
    }

    /// Offerer: creates an offer (with fresh ICE credentials when `ice_restart`),
    /// sets it as the local description and returns its SDP, which advertises
    /// `a=max-message-size:1048576`. Until the next answer is set, remote
    /// candidates are queued again.
    pub async fn create_offer(&self, ice_restart: bool) -> Result<String, RtcError> {
        self.check_open()?;
        let opts = RTCOfferOptions {
            ice_restart,
            ..Default::default()
        };
        let pc = Arc::clone(&self.inner.pc);
        let offer =
            crate::stack::on_stack(async move { pc.create_offer(Some(opts)).await }).await??;
        // The library refuses a local description that differs from the offer it
        // generated (ErrSDPDoesNotMatchOffer), so the attribute is added only to
        // the text sent to the remote side.
        let sdp = advertise_max_message_size(&offer.sdp);
        if ice_restart {
            let mut q = lock(&self.inner.ice);
            q.remote_set = false;
            q.pending.clear();
        }
        let pc = Arc::clone(&self.inner.pc);
        crate::stack::on_stack(async move { pc.set_local_description(offer).await }).await??;
        Ok(sdp)
    }

    /// Offerer: applies the remote answer, then the queued candidates.
    pub async fn set_remote_answer(&self, sdp: &str) -> Result<(), RtcError> {
        self.check_open()?;
        let sdp = self.incoming_sdp(sdp)?;
        let desc = RTCSessionDescription::answer(sdp)?;
        let pc = Arc::clone(&self.inner.pc);
        crate::stack::on_stack(async move { pc.set_remote_description(desc).await }).await??;
        self.remote_description_set().await;
        Ok(())
    }

    /// Answerer: applies a remote offer (first one or an ICE-restart offer on the
    /// same connection), applies queued candidates, creates and sets the answer
    /// and returns its SDP.
    pub async fn accept_offer(&self, sdp: &str) -> Result<String, RtcError> {
        self.check_open()?;
        let sdp = self.incoming_sdp(sdp)?;
        let desc = RTCSessionDescription::offer(sdp)?;
        let pc = Arc::clone(&self.inner.pc);
        let out = crate::stack::on_stack(async move {
            pc.set_remote_description(desc).await?;
            let answer = pc.create_answer(None).await?;
            let out = advertise_max_message_size(&answer.sdp);
            pc.set_local_description(answer).await?;
            Ok::<_, webrtc::Error>(out)
        })
        .await??;
        self.remote_description_set().await;
        Ok(out)
    }

    /// Adds a remote candidate, or queues it (at most 64, extra ones dropped with
    /// a log) while no remote description is set. An empty candidate is ignored.
    pub async fn add_remote_candidate(&self, candidate: Candidate) -> Result<(), RtcError> {
        self.check_open()?;
        let value = candidate.candidate.trim();
        if value.is_empty() || value == "candidate:" {
            return Ok(());
        }
        {
            let mut q = lock(&self.inner.ice);
            if !q.remote_set {
                if q.pending.len() >= MAX_PENDING_CANDIDATES {
                    tracing::warn!("remote candidate queue full; candidate dropped");
                } else {
                    q.pending.push(candidate);
                }
                return Ok(());
            }
        }
        self.apply_candidate(candidate).await
    }

    /// Closes every channel (waking their waiters at once) and then the
    /// connection; gives up waiting for the library after 5 s.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let channels = std::mem::take(&mut *lock(&self.inner.channels));
        for ch in &channels {
            ch.close();
        }
        let pc = Arc::clone(&self.inner.pc);
        let closed =
            crate::stack::on_stack(
                async move { tokio::time::timeout(CLOSE_TIMEOUT, pc.close()).await },
            )
            .await;
        if !matches!(closed, Ok(Ok(_))) {
            tracing::debug!("peer connection close timed out");
        }
    }

    /// SHA-256 fingerprints of our DTLS certificate and of the certificate the
    /// remote end presented in the handshake. Known once DTLS is up, which is
    /// before any DataChannel opens; before that (or if the library kept no
    /// certificate) this fails and the caller must not authenticate the channel.
    pub async fn dtls_fingerprints(&self) -> Result<DtlsFingerprints, RtcError> {
        self.check_open()?;
        let dtls = self.inner.pc.dtls_transport();
        let remote = dtls.get_remote_certificate().await;
        if remote.is_empty() {
            return Err(RtcError::NoFingerprint(
                "the remote end presented no certificate",
            ));
        }
        let local = dtls
            .get_local_parameters()?
            .fingerprints
            .iter()
            .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
            .and_then(|f| parse_fingerprint(&f.value))
            .ok_or(RtcError::NoFingerprint(
                "our certificate has no sha-256 fingerprint",
            ))?;
        Ok(DtlsFingerprints {
            local,
            remote: fingerprint_of_der(&remote),
        })
    }

    /// The connection's current state.
    pub fn state(&self) -> PeerState {
        if self.inner.closed.load(Ordering::SeqCst) {
            return PeerState::Closed;
        }
        map_state(self.inner.pc.connection_state())
    }

    /// The remote side's max-message-size (65 536 until a remote description
    /// advertising another value is set).
    pub fn remote_max_message_size(&self) -> usize {
        self.inner.remote_max.load(Ordering::Relaxed)
    }

    /// Test hook for hostile-peer tests: replace the remote side's
    /// `a=max-message-size` in later remote descriptions by 0 (no limit), so the library
    /// applies only our own send limit (see [`RtcPeer::with_send_limit`]);
    /// [`RtcPeer::remote_max_message_size`] then keeps its earlier value.
    pub fn ignore_remote_max_message_size(&self, ignore: bool) {
        self.inner.ignore_remote_max.store(ignore, Ordering::SeqCst);
    }

    fn check_open(&self) -> Result<(), RtcError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(RtcError::Closed)
        } else {
            Ok(())
        }
    }

    fn incoming_sdp(&self, sdp: &str) -> Result<String, RtcError> {
        if sdp.trim().is_empty() {
            return Err(RtcError::Invalid("empty session description".to_owned()));
        }
        let sdp = if self.inner.ignore_remote_max.load(Ordering::SeqCst) {
            unlimit_max_message_size(sdp)
        } else {
            sdp.to_owned()
        };
        if !self.inner.ignore_remote_max.load(Ordering::SeqCst) {
            self.inner
                .remote_max
                .store(parse_max_message_size(&sdp), Ordering::Relaxed);
        }
        Ok(crate::prflx::rank_sdp_hosts_below_prflx(&sdp))
    }

    async fn remote_description_set(&self) {
        let pending = {
            let mut q = lock(&self.inner.ice);
            q.remote_set = true;
            std::mem::take(&mut q.pending)
        };
        for c in pending {
            if let Err(e) = self.apply_candidate(c).await {
                tracing::debug!(error = %e, "queued remote candidate rejected");
            }
        }
    }

    async fn apply_candidate(&self, c: Candidate) -> Result<(), RtcError> {
        let init = RTCIceCandidateInit {
            candidate: crate::prflx::rank_host_below_prflx(&c.candidate),
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: None,
        };
        let pc = Arc::clone(&self.inner.pc);
        crate::stack::on_stack(async move { pc.add_ice_candidate(init).await }).await??;
        Ok(())
    }
}

fn emit(tx: &mpsc::Sender<RtcEvent>, ev: RtcEvent) {
    if let Err(e) = tx.try_send(ev) {
        match e {
            mpsc::error::TrySendError::Full(ev) => {
                tracing::warn!(?ev, "rtc event queue full; event dropped");
            }
            mpsc::error::TrySendError::Closed(_) => {}
        }
    }
}

/// Locks a std mutex, recovering from poisoning (the guarded data stays valid:
/// every critical section is a few plain assignments).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
