//! How the phone hands its ICE candidates to the host: trickled one by one
//! over signaling after the answer (the default), or gathered first and
//! written into the SDP answer itself (non-trickle, as a client that waits
//! for ICE gathering to complete would send it). The bench times both.
//!
//! The non-trickle answer goes out when rtc-transport reports the end of
//! gathering ([`RtcEvent::GatheringComplete`], webrtc's final empty
//! candidate); as a fallback, should that report not come, once no new local
//! candidate arrived for a caller-chosen quiet time, and in all within
//! [`GATHER_LIMIT`]. Candidates gathered later (a late interface, an ICE
//! restart) still trickle.

use std::time::Duration;

use rtc_transport::{PeerState, RtcEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Longest the non-trickle answer waits for candidates in all.
pub const GATHER_LIMIT: Duration = Duration::from_secs(10);

/// Where the phone's ICE candidates go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CandidateStyle {
    /// Sent as `ice_candidate` messages as they are gathered, after the answer.
    #[default]
    Trickle,
    /// Gathered before the answer is sent and written into it as
    /// `a=candidate` lines with `a=end-of-candidates`; the answer goes out
    /// when gathering is complete, or (a fallback) once no new candidate
    /// arrived for `quiet` (at most [`GATHER_LIMIT`] in all).
    InAnswer {
        /// Silence after the last candidate that ends the wait should the
        /// end of gathering not be reported.
        quiet: Duration,
    },
}

/// Collects local candidates from `events` until gathering is complete (or,
/// failing that report, until `quiet` passed without a new one), and returns
/// `answer` with them in it, plus the last peer state seen meanwhile (the
/// signal pump takes over the receiver afterwards).
pub(super) async fn candidates_into_answer(
    answer: &str,
    events: &mut mpsc::Receiver<RtcEvent>,
    quiet: Duration,
) -> (String, Option<PeerState>) {
    let started = Instant::now();
    let got = gather(events, quiet).await;
    tracing::debug!(
        candidates = got.lines.len(),
        complete = got.complete,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "candidates gathered for the answer"
    );
    (with_candidates(answer, &got.lines), got.state)
}

/// What [`gather`] collected.
struct Gathered {
    /// Candidate attribute values, in gathering order.
    lines: Vec<String>,
    /// The last peer state reported meanwhile.
    state: Option<PeerState>,
    /// Whether the transport reported the end of gathering (rather than the
    /// quiet time, the overall limit or the end of the event stream ending it).
    complete: bool,
}

async fn gather(events: &mut mpsc::Receiver<RtcEvent>, quiet: Duration) -> Gathered {
    let limit = Instant::now() + GATHER_LIMIT;
    let mut last = Instant::now();
    let mut got = Gathered {
        lines: Vec::new(),
        state: None,
        complete: false,
    };
    loop {
        let until = (last + quiet).min(limit);
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(RtcEvent::LocalCandidate(c))) => {
                got.lines.push(c.candidate);
                last = Instant::now();
            }
            Ok(Some(RtcEvent::GatheringComplete)) => {
                got.complete = true;
                break;
            }
            Ok(Some(RtcEvent::State(s))) => got.state = Some(s),
            // The host opens the channel only after ICE and DTLS, and ICE
            // needs this answer's credentials: a channel cannot arrive here.
            Ok(Some(RtcEvent::DataChannel(ch))) => {
                tracing::warn!("data channel before the answer; closed");
                ch.close();
            }
            Ok(None) | Err(_) => break,
        }
    }
    got
}

/// `sdp` with `a=candidate` lines and `a=end-of-candidates` appended. They
/// belong to the last media section, which is the only one: the session is
/// one bundled application section (the "terminal" DataChannel).
pub(super) fn with_candidates(sdp: &str, candidates: &[String]) -> String {
    let mut out = sdp.trim_end_matches(['\r', '\n']).to_owned();
    out.push_str("\r\n");
    for c in candidates {
        let value = c.trim();
        let value = value.strip_prefix("a=").unwrap_or(value);
        if value.is_empty() {
            continue;
        }
        if !value.starts_with("candidate:") {
            out.push_str("a=candidate:");
        } else {
            out.push_str("a=");
        }
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_transport::{RtcConfig, RtcPeer};

    /// On loopback the answer waits for the transport's end-of-gathering
    /// report, never for the quiet fallback (set far beyond the overall
    /// limit here, so only the report can end the wait as `complete`).
    #[tokio::test]
    async fn the_answer_waits_for_the_end_of_gathering_on_loopback() {
        let (host, _host_events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
        let _channel = host.create_data_channel("terminal").await.unwrap();
        let offer = host.create_offer(false).await.unwrap();
        let (phone, mut events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
        let answer = phone.accept_offer(&offer).await.unwrap();

        let got = gather(&mut events, GATHER_LIMIT * 2).await;
        assert!(got.complete, "gathering ended without the report");
        assert!(!got.lines.is_empty(), "no local candidate gathered");
        assert!(got.lines.iter().all(|c| c.contains(" typ host")));
        let sdp = with_candidates(&answer, &got.lines);
        assert!(sdp.ends_with("a=end-of-candidates\r\n"));
        // Nothing of this generation comes after the report.
        assert!(
            !matches!(events.try_recv(), Ok(RtcEvent::LocalCandidate(_))),
            "a candidate after the end of gathering"
        );
        phone.close().await;
        host.close().await;
    }

    #[test]
    fn candidates_go_to_the_end_of_the_answer() {
        let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n";
        let got = with_candidates(
            sdp,
            &[
                "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
                "2 1 udp 2130706431 127.0.0.1 5001 typ host".into(),
            ],
        );
        assert_eq!(
            got,
            "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
             a=candidate:2 1 udp 2130706431 127.0.0.1 5001 typ host\r\n\
             a=end-of-candidates\r\n"
        );
    }
}
