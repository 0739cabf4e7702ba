//! Peer-lifecycle rules §1–§2 on the pair harness (synthetic time, no WebRTC):
//! admission and rejection, the offer, the answer's bounds, trickle ICE both
//! ways with early candidates buffered and every round bounded.

#![allow(clippy::unwrap_used)]

mod pair;

use std::sync::Arc;

use pair::*;
use peer_manager::admission::{Admission, AdmissionRequest, RejectReason, admit};
use peer_manager::core::candidates::{MAX_EARLY_CANDIDATES, MAX_LATE_CANDIDATES};
use peer_manager::core::{CloseReason, LinkState};
use peer_manager::map::PeerMap;
use peer_manager::throttle::ConnectThrottle;

/// §1 steps 1–4 in order: the allowed id (fail closed, sentinels never match),
/// the secret, the limit, and a reconnect that replaces instead of counting.
#[test]
fn admission_checks_run_in_spec_order() {
    let mut map: PeerMap<u8> = PeerMap::default();
    let ask = |map: &PeerMap<u8>, allowed: &str, device: &str, secret: bool| {
        admit(&AdmissionRequest {
            allowed_device_id: allowed,
            device_id: device,
            secret_loaded: secret,
            has_peer: map.contains(device),
            peer_count: map.len(),
            max_peers: 1,
        })
    };
    let not_paired = Admission::Reject(RejectReason::NotPaired);
    assert_eq!(ask(&map, PHONE, "phone2", true), not_paired);
    assert_eq!(ask(&map, "", "", true), not_paired);
    assert_eq!(ask(&map, "!unpaired", "!unpaired", true), not_paired);
    assert_eq!(ask(&map, PHONE, PHONE, false), not_paired);
    assert_eq!(
        ask(&map, PHONE, PHONE, true),
        Admission::Admit { replace: false }
    );
    map.insert(PHONE, Arc::new(1));
    // The same phone again replaces its peer; another one is over the limit.
    assert_eq!(
        ask(&map, PHONE, PHONE, true),
        Admission::Admit { replace: true }
    );
    assert_eq!(
        ask(&map, "phone2", "phone2", true),
        Admission::Reject(RejectReason::AlreadyConnected)
    );
    assert_eq!(RejectReason::AlreadyConnected.as_str(), "already_connected");
}

/// A phone asking in a loop builds at most a burst of peers, then one a second.
#[test]
fn connect_requests_over_the_rate_are_dropped() {
    let t0 = std::time::Instant::now();
    let mut th = ConnectThrottle::default();
    let admitted = (0..20).filter(|_| th.allow(t0, PHONE)).count();
    assert_eq!(admitted, 6);
    assert!(th.allow(t0 + secs(1), PHONE));
}

/// An admitted peer offers first, then everything flows to an authenticated channel.
#[test]
fn admitted_peer_offers_and_reaches_an_authenticated_channel() {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_until_authenticated();
    assert_eq!(p.offers, vec![false]);
    assert_eq!(p.signals[0].kind, "sdp_offer");
    assert_eq!(p.signals[0].target_device_id, PHONE);
    assert_eq!(p.answers_applied, 1);
    assert!(p.host.is_authenticated());
    assert_eq!(p.host.link_state(), LinkState::Connected);
    assert!(p.closes.is_empty());
}

/// Steps 5–8 failing (§9.2): the phone hears `internal_error` and the peer closes.
#[test]
fn offer_failure_rejects_internal_error_and_closes() {
    let mut p = Pair::new(PhoneOpts {
        offers_work: false,
        ..PhoneOpts::default()
    });
    assert_eq!(p.run_until_closed(secs(1)), CloseReason::SetupFailed);
    p.run_for(secs(1));
    assert_eq!(p.rejections, vec!["internal_error".to_owned()]);
}

/// A peer connection that cannot be built is the same failure.
#[test]
fn setup_failure_rejects_internal_error_once() {
    let mut p = Pair::new(PhoneOpts::default());
    p.host.handle_setup_failed(p.now);
    p.host.handle_setup_failed(p.now);
    assert_eq!(p.run_until_closed(secs(1)), CloseReason::SetupFailed);
    p.run_for(secs(1));
    assert_eq!(p.rejections, vec!["internal_error".to_owned()]);
}

/// Candidates that arrive before the answer wait for it and are added in
/// arrival order right after it; later ones are added at once.
#[test]
fn early_candidates_are_buffered_until_the_answer_in_order() {
    let mut p = Pair::new(PhoneOpts {
        early_candidates: 3,
        late_candidates: 2,
        ..PhoneOpts::default()
    });
    p.run_until_authenticated();
    let want: Vec<String> = [0, 1, 2, 1000, 1001]
        .iter()
        .map(|i| candidate_of(*i))
        .collect();
    assert_eq!(p.candidates_added, want);
}

/// At most 64 buffered before the answer and 64 added after it; the rest dropped.
#[test]
fn remote_candidates_are_bounded_per_round() {
    let mut p = Pair::new(PhoneOpts {
        answers: false,
        ..PhoneOpts::default()
    });
    p.run_for(secs(1));
    for i in 0..100 {
        p.phone_signal(bare_candidate(i));
    }
    p.run_for(secs(1));
    assert!(p.candidates_added.is_empty(), "nothing before the answer");
    p.phone_signal(answer("v=0\r\n"));
    p.run_for(secs(1));
    assert_eq!(p.candidates_added.len(), MAX_EARLY_CANDIDATES);
    // Without the prefix on the wire, with it when added (§9.1).
    assert_eq!(p.candidates_added[0], candidate_of(0));
    for i in 200..400 {
        p.phone_signal(bare_candidate(i));
    }
    p.run_for(secs(1));
    assert_eq!(
        p.candidates_added.len(),
        MAX_EARLY_CANDIDATES + MAX_LATE_CANDIDATES
    );
}

/// An empty or oversize answer is refused (log only) and the real one still
/// applies; an answer nobody waits for is dropped instead of breaking the peer.
#[test]
fn answer_out_of_bounds_or_unexpected_is_ignored() {
    let mut p = Pair::new(PhoneOpts {
        answers: false,
        ..PhoneOpts::default()
    });
    p.run_for(secs(1));
    p.phone_signal(answer(""));
    p.phone_signal(answer(&"a".repeat(65_537)));
    p.run_for(secs(1));
    assert_eq!(p.answers_applied, 0);
    p.phone_signal(answer("v=0\r\n"));
    p.phone_signal(answer("v=0\r\n"));
    p.run_for(secs(1));
    assert_eq!(p.answers_applied, 1);
    assert!(p.closes.is_empty());
}

/// An answer the stack refuses closes the peer.
#[test]
fn answer_that_cannot_be_applied_closes() {
    let mut p = Pair::new(PhoneOpts {
        answer_applies: false,
        ..PhoneOpts::default()
    });
    assert_eq!(p.run_until_closed(secs(5)), CloseReason::AnswerFailed);
}

/// Local candidates go to the phone; the end of gathering (empty) does not.
#[test]
fn local_candidates_are_trickled_to_the_phone() {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_for(secs(1));
    p.host.handle_local_candidate(
        p.now,
        local_candidate("candidate:1 1 udp 1 10.0.0.1 9 typ host"),
    );
    p.host.handle_local_candidate(p.now, local_candidate(""));
    p.run_for(secs(1));
    let sent: Vec<_> = p
        .signals
        .iter()
        .filter(|m| m.kind == "ice_candidate")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target_device_id, PHONE);
    assert_eq!(sent[0].sdp_mid, "0");
}
