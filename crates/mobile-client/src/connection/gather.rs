//! How the phone hands its ICE candidates to the host: trickled one by one
//! over signaling after the answer (the default), or gathered first and
//! written into the SDP answer itself (non-trickle, as a client that waits
//! for ICE gathering to complete would send it). The bench times both.
//!
//! rtc-transport does not report the end of gathering (webrtc's final empty
//! candidate), so the non-trickle answer waits until no new local candidate
//! arrived for a caller-chosen quiet time, bounded by [`GATHER_LIMIT`].
//! Candidates gathered later (a late interface, an ICE restart) still trickle.

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
    /// `a=candidate` lines with `a=end-of-candidates`; gathering counts as
    /// complete once no new candidate arrived for `quiet` (at most
    /// [`GATHER_LIMIT`] in all).
    InAnswer {
        /// Silence after the last candidate that ends the wait.
        quiet: Duration,
    },
}

/// Collects local candidates from `events` until `quiet` passed without a new
/// one, and returns `answer` with them in it, plus the last peer state seen
/// meanwhile (the signal pump takes over the receiver afterwards).
pub(super) async fn candidates_into_answer(
    answer: &str,
    events: &mut mpsc::Receiver<RtcEvent>,
    quiet: Duration,
) -> (String, Option<PeerState>) {
    let limit = Instant::now() + GATHER_LIMIT;
    let mut last = Instant::now();
    let mut lines = Vec::new();
    let mut state = None;
    loop {
        let until = (last + quiet).min(limit);
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(RtcEvent::LocalCandidate(c))) => {
                lines.push(c.candidate);
                last = Instant::now();
            }
            Ok(Some(RtcEvent::State(s))) => state = Some(s),
            // The host opens the channel only after ICE and DTLS, and ICE
            // needs this answer's credentials: a channel cannot arrive here.
            Ok(Some(RtcEvent::DataChannel(ch))) => {
                tracing::warn!("data channel before the answer; closed");
                ch.close();
            }
            Ok(None) | Err(_) => break,
        }
    }
    (with_candidates(answer, &lines), state)
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
