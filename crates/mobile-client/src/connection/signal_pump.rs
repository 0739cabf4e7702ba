//! The signaling side of a connection: remote ICE candidates and
//! ICE-restart offers in, local candidates out, and the peer's state and
//! DataChannel reported, for as long as the connection lives.

use std::sync::Arc;

use rtc_transport::{Candidate, PeerState, RtcChannel, RtcEvent, RtcPeer};
use signaling_proto::Signal;
use tokio::sync::{mpsc, oneshot, watch};

use crate::signaling::Signaling;

/// Hands a relayed `ice_candidate`'s fields to the peer (an empty `sdp_mid`
/// is absent).
pub(super) async fn add_candidate(
    peer: &RtcPeer,
    candidate: String,
    sdp_mid: String,
    sdp_m_line_index: Option<u16>,
) {
    let c = Candidate {
        candidate,
        sdp_mid: (!sdp_mid.is_empty()).then_some(sdp_mid),
        sdp_m_line_index,
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
    mut route: mpsc::Receiver<Signal>,
    mut events: mpsc::Receiver<RtcEvent>,
    state: watch::Sender<PeerState>,
    chan_tx: oneshot::Sender<RtcChannel>,
) {
    let mut chan_tx = Some(chan_tx);
    let mut route_open = true;
    loop {
        tokio::select! {
            m = route.recv(), if route_open => match m {
                Some(m) => match m {
                    Signal::IceCandidate { candidate, sdp_mid, sdp_m_line_index, .. } => {
                        add_candidate(&peer, candidate, sdp_mid, sdp_m_line_index).await
                    }
                    Signal::SdpOffer { sdp, .. } => {
                        // ICE restart (or renegotiation) on the same connection.
                        match peer.accept_offer(&sdp).await {
                            Ok(answer) => {
                                let ans = Signal::SdpAnswer {
                                    target_device_id: host.clone(),
                                    sdp: answer,
                                };
                                if signaling.send(ans).await.is_err() {
                                    tracing::debug!("answer to a restart offer not sent");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "restart offer rejected"),
                        }
                    }
                    other => tracing::debug!(kind = other.kind(), "signaling message for the connection ignored"),
                },
                // Signaling gone: the established connection carries on.
                None => route_open = false,
            },
            ev = events.recv() => match ev {
                Some(RtcEvent::LocalCandidate(c)) => {
                    let m = Signal::IceCandidate {
                        target_device_id: host.clone(),
                        candidate: c.candidate,
                        sdp_mid: c.sdp_mid.unwrap_or_default(),
                        sdp_m_line_index: c.sdp_m_line_index,
                    };
                    let _ = signaling.send(m).await;
                }
                Some(RtcEvent::State(s)) => {
                    state.send_replace(s);
                }
                // Candidates are trickled; their end needs no message.
                Some(RtcEvent::GatheringComplete) => {}
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
