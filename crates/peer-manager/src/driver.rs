//! Thin tokio tasks of one peer: the control task (build, offer/answer, trickle
//! ICE, lifecycle timers, cleanup), the reader (auth gate) and the dispatcher.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtc_transport::{Candidate, PeerState, RtcChannel, RtcConfig, RtcEvent, RtcPeer};
use signaling_proto::SignalingMessage;
use signaling_proto::consts::DATA_CHANNEL_LABEL;
use terminal_protocol::{Event, Request};
use tokio::sync::mpsc;

use crate::admission::RejectReason;
use crate::auth_gate::{AuthGate, GateVerdict};
use crate::candidates::{CandidateBuffer, Push};
use crate::lifecycle::{Lifecycle, LifecycleAction, LinkState};
use crate::manager::{PeerManager, Settings};
use crate::peer::{Peer, PeerCmd};

/// Requests and replies waiting for the handler, per peer.
const DISPATCH_QUEUE: usize = 64;
/// Longest wait for the WebRTC stack to close a peer connection.
const RTC_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Monotonic now on tokio's clock (so `tokio::time::pause` applies), as std.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn link_state(s: PeerState) -> LinkState {
    match s {
        PeerState::New => LinkState::New,
        PeerState::Connecting => LinkState::Connecting,
        PeerState::Connected => LinkState::Connected,
        PeerState::Disconnected => LinkState::Disconnected,
        PeerState::Failed => LinkState::Failed,
        PeerState::Closed => LinkState::Closed,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Everything the control task needs after a successful build.
struct Built {
    rtc: RtcPeer,
    events: mpsc::Receiver<RtcEvent>,
    reader: tokio::task::JoinHandle<()>,
}

/// Control task of one peer: runs until the peer is closed, fails or is
/// replaced, then cleans up (handler notice and map removal only if current).
pub(crate) async fn run_peer(
    mgr: Arc<PeerManager>,
    peer: Arc<Peer>,
    cmd_rx: mpsc::Receiver<PeerCmd>,
    secret: [u8; 32],
    settings: Settings,
) {
    let cancel = peer.cancel_token().clone();
    let built = tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        b = build(&mgr, &peer, secret, &settings) => match b {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(device_id = peer.device_id, "peer setup failed: {e}");
                if !peer.is_silenced() && !cancel.is_cancelled() {
                    mgr.reject(&peer.device_id, RejectReason::InternalError);
                }
                None
            }
        },
    };
    let Some(Built {
        rtc,
        events,
        reader,
    }) = built
    else {
        peer.close();
        finish(&mgr, &peer, None, None).await;
        return;
    };
    control_loop(&mgr, &peer, &rtc, events, cmd_rx, &settings).await;
    peer.close();
    finish(&mgr, &peer, Some(reader), Some(rtc)).await;
}

async fn build(
    mgr: &Arc<PeerManager>,
    peer: &Arc<Peer>,
    secret: [u8; 32],
    settings: &Settings,
) -> Result<Built, String> {
    let config = match &settings.rtc_override {
        Some(c) => c.clone(),
        None => {
            let jwt = (mgr.jwt_fn)();
            let servers = crate::ice_servers::ice_servers(
                &mgr.server_url,
                jwt,
                &mgr.hmac_secret,
                &settings.stun_url,
            )
            .await;
            RtcConfig {
                ice_servers: servers,
                relay_only: settings.relay_only,
                ..RtcConfig::default()
            }
        }
    };
    let (rtc, events) = RtcPeer::new(&config)
        .await
        .map_err(|e| format!("create peer connection: {e}"))?;
    let built = async {
        let channel = rtc
            .create_data_channel(DATA_CHANNEL_LABEL)
            .await
            .map_err(|e| format!("create data channel: {e}"))?;
        peer.set_channel(channel.clone());
        let offer = rtc
            .create_offer(false)
            .await
            .map_err(|e| format!("create offer: {e}"))?;
        let mut m = SignalingMessage::new("sdp_offer");
        m.target_device_id = peer.device_id.clone();
        m.sdp = offer;
        if !mgr.send_signal(peer, m) {
            return Err("sdp_offer not sent".to_owned());
        }
        let reader = mgr.tracker.spawn(run_reader(
            mgr.clone(),
            peer.clone(),
            rtc.clone(),
            channel,
            secret,
            settings.auth_timeout,
            settings.nonce,
        ));
        Ok(reader)
    }
    .await;
    match built {
        Ok(reader) => Ok(Built {
            rtc,
            events,
            reader,
        }),
        Err(e) => {
            close_rtc(&rtc).await;
            Err(e)
        }
    }
}

async fn close_rtc(rtc: &RtcPeer) {
    if tokio::time::timeout(RTC_CLOSE_TIMEOUT, rtc.close())
        .await
        .is_err()
    {
        tracing::warn!("peer connection close timed out");
    }
}

async fn control_loop(
    mgr: &Arc<PeerManager>,
    peer: &Arc<Peer>,
    rtc: &RtcPeer,
    mut events: mpsc::Receiver<RtcEvent>,
    mut cmd_rx: mpsc::Receiver<PeerCmd>,
    settings: &Settings,
) {
    let cancel = peer.cancel_token().clone();
    let mut life = Lifecycle::new(settings.grace, settings.watchdog);
    let mut candidates: CandidateBuffer<Candidate> = CandidateBuffer::default();
    let device_id = peer.device_id.clone();
    loop {
        let actions = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            ev = events.recv() => match ev {
                None => return,
                Some(RtcEvent::State(s)) => {
                    tracing::debug!(device_id, state = s.as_str(), "peer state");
                    peer.set_state(s.as_str());
                    life.handle_state(now(), SystemTime::now(), link_state(s))
                }
                Some(RtcEvent::LocalCandidate(c)) => {
                    let mut m = SignalingMessage::new("ice_candidate");
                    m.target_device_id = device_id.clone();
                    m.candidate = c.candidate;
                    m.sdp_mid = c.sdp_mid.unwrap_or_default();
                    m.sdp_m_line_index = c.sdp_m_line_index;
                    mgr.send_signal(peer, m);
                    Vec::new()
                }
                Some(RtcEvent::DataChannel(ch)) => {
                    // The host is the offerer; a channel opened by the phone is not ours.
                    tracing::info!(device_id, "unexpected remote data channel closed");
                    ch.close();
                    Vec::new()
                }
            },
            cmd = cmd_rx.recv() => match cmd {
                None => return,
                Some(PeerCmd::Answer(sdp)) => {
                    if let Err(e) = rtc.set_remote_answer(&sdp).await {
                        tracing::warn!(device_id, "set remote answer failed: {e}");
                        return;
                    }
                    for c in candidates.set_remote() {
                        add_candidate(rtc, &device_id, c).await;
                    }
                    Vec::new()
                }
                Some(PeerCmd::Candidate(c)) => {
                    match candidates.push(c) {
                        Push::AddNow(c) => add_candidate(rtc, &device_id, c).await,
                        Push::Buffered => {}
                        Push::Dropped => {
                            tracing::debug!(
                                device_id,
                                dropped = candidates.dropped(),
                                "remote ice candidate dropped: per-peer limit reached"
                            );
                        }
                    }
                    Vec::new()
                }
            },
            _ = sleep_until_opt(life.poll_timeout()) => {
                life.handle_timeout(now(), SystemTime::now())
            }
        };
        for action in actions {
            match action {
                LifecycleAction::GraceStarted => {
                    tracing::info!(device_id, "peer disconnected; grace period started");
                }
                LifecycleAction::WatchdogArmed => {
                    tracing::debug!(device_id, "answer watchdog armed");
                }
                LifecycleAction::IceRestart => {
                    tracing::info!(device_id, "restarting ICE");
                    let ok = match rtc.create_offer(true).await {
                        Ok(sdp) => {
                            candidates.reset();
                            let mut m = SignalingMessage::new("sdp_offer");
                            m.target_device_id = device_id.clone();
                            m.sdp = sdp;
                            mgr.send_signal(peer, m)
                        }
                        Err(e) => {
                            tracing::warn!(device_id, "ice restart offer failed: {e}");
                            false
                        }
                    };
                    if !ok
                        && life
                            .handle_restart_failed()
                            .contains(&LifecycleAction::Cleanup)
                    {
                        return;
                    }
                }
                LifecycleAction::Cleanup => {
                    tracing::info!(device_id, "peer connection ended; cleaning up");
                    return;
                }
            }
        }
    }
}

async fn add_candidate(rtc: &RtcPeer, device_id: &str, c: Candidate) {
    if let Err(e) = rtc.add_remote_candidate(c).await {
        tracing::info!(device_id, "remote ice candidate not added: {e}");
    }
}

/// Cleanup of a closed peer: wait for its reader and dispatcher, tell the
/// handler once if the peer is still current, remove it with the identity check,
/// close the peer connection.
async fn finish(
    mgr: &Arc<PeerManager>,
    peer: &Arc<Peer>,
    reader: Option<tokio::task::JoinHandle<()>>,
    rtc: Option<RtcPeer>,
) {
    if let Some(r) = reader {
        let _ = r.await;
    }
    mgr.report_disconnect(peer).await;
    mgr.remove_if_current(peer);
    if let Some(rtc) = rtc {
        close_rtc(&rtc).await;
    }
    tracing::debug!(device_id = peer.device_id, "peer cleaned up");
}

/// One item for the per-peer dispatcher, kept in arrival order.
enum Dispatch {
    Request(Request),
    Reply(Event),
}

/// Reader task: channel authentication v2 (the challenge once the channel is
/// open and both DTLS fingerprints are known, the phone's proof, `auth_ok`
/// with ours), then decoded requests into the bounded dispatch queue. Closes
/// the peer on auth failure or when the channel ends.
async fn run_reader(
    mgr: Arc<PeerManager>,
    peer: Arc<Peer>,
    rtc: RtcPeer,
    channel: RtcChannel,
    secret: [u8; 32],
    auth_timeout: Duration,
    nonce_source: crate::manager::NonceSource,
) {
    let cancel = peer.cancel_token().clone();
    let opened = tokio::select! {
        biased;
        _ = cancel.cancelled() => false,
        r = channel.wait_open() => r.is_ok(),
    };
    if !opened {
        peer.close();
        return;
    }
    let device_id = peer.device_id.clone();
    let mut gate = AuthGate::new(secret, auth_timeout);
    // Channel authentication v2 binds the proof to the DTLS certificates as the
    // handshake saw them; without them, or without a nonce, the peer is closed.
    let fingerprints = match rtc.dtls_fingerprints().await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(device_id, "channel cannot be authenticated: {e}");
            let _ = gate.handle_send_failed();
            peer.close();
            return;
        }
    };
    let Ok(nonce) = nonce_source() else {
        tracing::warn!(device_id, "random source failed; closing peer");
        let _ = gate.handle_send_failed();
        peer.close();
        return;
    };
    drop(rtc);
    let challenge = gate.handle_open(now(), nonce, fingerprints.local, fingerprints.remote);
    if let Err(e) = peer.send_message(&challenge).await {
        tracing::warn!(device_id, "auth challenge not sent: {e}");
        let _ = gate.handle_send_failed();
        peer.close();
        return;
    }
    let (tx, rx) = mpsc::channel::<Dispatch>(DISPATCH_QUEUE);
    let mut rx = Some(rx);
    let mut dispatcher: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let verdict = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = sleep_until_opt(gate.poll_timeout()) => {
                match gate.handle_timeout(now()) {
                    Some(why) => {
                        tracing::info!(device_id, ?why, "channel authentication failed; closing peer");
                        peer.close();
                        break;
                    }
                    None => continue,
                }
            }
            msg = channel.recv() => match msg {
                None => {
                    tracing::info!(device_id, "data channel closed");
                    peer.close();
                    break;
                }
                Some(bytes) => gate.handle_message(now(), &bytes),
            },
        };
        let item = match verdict {
            GateVerdict::Authenticated(ok) => {
                peer.mark_authenticated(now());
                tracing::info!(device_id, "peer authenticated");
                if let Err(e) = peer.send_message(&ok).await {
                    tracing::warn!(device_id, "auth_ok not sent: {e}");
                    peer.close();
                    break;
                }
                if let Some(rx) = rx.take() {
                    dispatcher = Some(mgr.tracker.spawn(run_dispatcher(
                        mgr.clone(),
                        peer.clone(),
                        rx,
                    )));
                }
                continue;
            }
            GateVerdict::Close(why) => {
                tracing::info!(
                    device_id,
                    ?why,
                    "channel authentication failed; closing peer"
                );
                peer.close();
                break;
            }
            GateVerdict::Drop => continue,
            GateVerdict::Deliver(Request::Ping) => {
                // Answered here, never queued behind the handler: a request
                // stuck on a hung tmux (up to its 10 s timeout) must not delay
                // `pong` (peer-lifecycle §9), or the phone would think the
                // connection dead.
                peer.touch_ping(now());
                if let Err(e) = peer.send_message(&Event::Pong { latency: 0 }).await {
                    tracing::info!(device_id, "pong not sent: {e}");
                }
                continue;
            }
            GateVerdict::Deliver(req) => Dispatch::Request(req),
            GateVerdict::Reply(ev) => Dispatch::Reply(ev),
        };
        // Waiting here (queue full) is the backpressure on a slow handler.
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = tx.send(item) => if r.is_err() { break },
        }
    }
    drop(tx);
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
}

/// Dispatcher task: hands requests to the handler and sends error replies, in
/// arrival order, until the peer closes.
async fn run_dispatcher(mgr: Arc<PeerManager>, peer: Arc<Peer>, mut rx: mpsc::Receiver<Dispatch>) {
    let cancel = peer.cancel_token().clone();
    loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            item = rx.recv() => match item {
                None => return,
                Some(i) => i,
            },
        };
        match item {
            Dispatch::Request(req) => mgr.handler.handle_message(peer.clone(), req).await,
            Dispatch::Reply(ev) => {
                if let Err(e) = peer.send_message(&ev).await {
                    tracing::info!(device_id = peer.device_id, "error reply not sent: {e}");
                }
            }
        }
    }
}
