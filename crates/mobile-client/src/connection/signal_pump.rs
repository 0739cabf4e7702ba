//! The signaling side of a connection: remote ICE candidates and
//! ICE-restart offers in, local candidates out, and the peer's state and
//! DataChannel reported, for as long as the connection lives.

use std::sync::Arc;

use rtc_transport::{Candidate, PeerState, RtcChannel, RtcEvent, RtcPeer};
use signaling_proto::SignalingMessage;
use tokio::sync::{mpsc, oneshot, watch};

use crate::signaling::Signaling;

pub(super) async fn add_candidate(peer: &RtcPeer, m: &SignalingMessage) {
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
pub(super) async fn signal_pump(
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
