//! Two RtcPeers in one process over loopback: setup with trickle ICE and helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use rtc_transport::{Candidate, PeerState, RtcChannel, RtcConfig, RtcEvent, RtcPeer};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Upper bound for any single wait in these tests (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(15);

/// One peer with its events split by kind.
pub struct Side {
    pub peer: RtcPeer,
    pub cands: mpsc::Receiver<Candidate>,
    pub states: mpsc::Receiver<PeerState>,
    pub channels: mpsc::Receiver<RtcChannel>,
}

pub async fn side() -> Side {
    side_from(&RtcConfig::loopback()).await
}

/// [`side`] on any configuration.
pub async fn side_from(config: &RtcConfig) -> Side {
    let (peer, mut rx) = RtcPeer::new(config).await.unwrap();
    let (ct, cands) = mpsc::channel(64);
    let (st, states) = mpsc::channel(64);
    let (cht, channels) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                RtcEvent::LocalCandidate(c) => {
                    let _ = ct.try_send(c);
                }
                RtcEvent::State(s) => {
                    let _ = st.try_send(s);
                }
                RtcEvent::DataChannel(ch) => {
                    let _ = cht.try_send(ch);
                }
                // These tests trickle; `tests/gathering.rs` reads this one.
                RtcEvent::GatheringComplete => {}
            }
        }
    });
    Side {
        peer,
        cands,
        states,
        channels,
    }
}

/// Moves every candidate `from` gathers to `to` from now on, optionally
/// without the `candidate:` prefix.
pub fn forward(mut from: mpsc::Receiver<Candidate>, to: RtcPeer, strip_prefix: bool) {
    tokio::spawn(async move {
        while let Some(mut c) = from.recv().await {
            if strip_prefix {
                c.candidate = c.candidate.trim_start_matches("candidate:").to_owned();
            }
            let _ = to.add_remote_candidate(c).await;
        }
    });
}

pub async fn wait_state(states: &mut mpsc::Receiver<PeerState>, want: PeerState) {
    timeout(WAIT, async {
        while let Some(s) = states.recv().await {
            if s == want {
                return;
            }
        }
        panic!("state stream ended before {want}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {want} state"));
}

/// A connected pair: the offerer's channel and the answerer's channel, both
/// open. Candidates are delivered BEFORE the remote description on both sides,
/// so every connect exercises the pre-description queue.
pub struct Pair {
    pub offerer: RtcPeer,
    pub answerer: RtcPeer,
    pub off_ch: RtcChannel,
    pub ans_ch: RtcChannel,
    pub off_states: mpsc::Receiver<PeerState>,
    pub ans_states: mpsc::Receiver<PeerState>,
    pub offer_sdp: String,
    pub answer_sdp: String,
}

pub async fn connect(strip_prefix: bool) -> Pair {
    connect_from(&RtcConfig::loopback(), strip_prefix).await
}

/// [`connect`] with both sides on `config`.
pub async fn connect_from(config: &RtcConfig, strip_prefix: bool) -> Pair {
    let mut o = side_from(config).await;
    let mut a = side_from(config).await;
    let off_ch = o.peer.create_data_channel("terminal").await.unwrap();
    let offer_sdp = o.peer.create_offer(false).await.unwrap();
    // Offerer candidates reach the answerer before it has any description.
    let c = timeout(WAIT, o.cands.recv()).await.unwrap().unwrap();
    a.peer
        .add_remote_candidate(strip(c, strip_prefix))
        .await
        .unwrap();
    let answer_sdp = a.peer.accept_offer(&offer_sdp).await.unwrap();
    // Answerer candidates reach the offerer before the answer does.
    let c = timeout(WAIT, a.cands.recv()).await.unwrap().unwrap();
    o.peer
        .add_remote_candidate(strip(c, strip_prefix))
        .await
        .unwrap();
    o.peer.set_remote_answer(&answer_sdp).await.unwrap();
    forward(o.cands, a.peer.clone(), strip_prefix);
    forward(a.cands, o.peer.clone(), strip_prefix);
    let ans_ch = timeout(WAIT, a.channels.recv()).await.unwrap().unwrap();
    timeout(WAIT, off_ch.wait_open()).await.unwrap().unwrap();
    timeout(WAIT, ans_ch.wait_open()).await.unwrap().unwrap();
    Pair {
        offerer: o.peer,
        answerer: a.peer,
        off_ch,
        ans_ch,
        off_states: o.states,
        ans_states: a.states,
        offer_sdp,
        answer_sdp,
    }
}

fn strip(mut c: Candidate, strip_prefix: bool) -> Candidate {
    if strip_prefix {
        c.candidate = c.candidate.trim_start_matches("candidate:").to_owned();
    }
    c
}

pub async fn recv(ch: &RtcChannel) -> bytes::Bytes {
    timeout(WAIT, ch.recv()).await.unwrap().unwrap()
}

/// Reads events until [`RtcEvent::GatheringComplete`]; returns the candidates
/// seen before it.
pub async fn candidates_until_complete(events: &mut mpsc::Receiver<RtcEvent>) -> Vec<String> {
    let mut got = Vec::new();
    timeout(WAIT, async {
        loop {
            match events.recv().await.expect("event stream ended") {
                RtcEvent::LocalCandidate(c) => got.push(c.candidate),
                RtcEvent::GatheringComplete => return,
                RtcEvent::State(_) => {}
                RtcEvent::DataChannel(_) => panic!("unexpected data channel"),
            }
        }
    })
    .await
    .expect("gathering never reported complete");
    got
}
