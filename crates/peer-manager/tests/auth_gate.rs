//! The channel-authentication part of the peer core on its own
//! (terminal-protocol.md §12): the proof, its deadline, the direction gate and
//! decode-error replies, with the spec's vectors.

#![allow(clippy::unwrap_used)]
use std::time::{Duration, Instant};

use peer_manager::core::auth_gate::{AuthFailure, AuthGate, GateVerdict};
use terminal_protocol::{Attach, nonce_b64};
use terminal_protocol::{AuthTranscript, ErrorCode, Event, MAX_MESSAGE_SIZE, Request};

const SECRET: [u8; 32] = [7; 32];
const NONCE: [u8; 32] = [9; 32];
const MOBILE_NONCE: [u8; 32] = [3; 32];
const FP_HOST: [u8; 32] = [0x40; 32];
const FP_MOBILE: [u8; 32] = [0x60; 32];
const T: Duration = Duration::from_secs(10);

fn challenged() -> (AuthGate, Instant) {
    let mut g = AuthGate::new(SECRET, T);
    let t0 = Instant::now();
    let ev = g.handle_open(t0, NONCE, FP_HOST, FP_MOBILE);
    match ev {
        Event::AuthChallenge { nonce } => assert_eq!(nonce, nonce_b64(&NONCE)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(g.poll_timeout(), Some(t0 + T));
    (g, t0)
}

/// The transcript as the phone sees it: `fp_host` is the certificate it was
/// presented (a relay's, in the man-in-the-middle case).
fn phone_view(fp_host: [u8; 32], fp_mobile: [u8; 32]) -> AuthTranscript {
    AuthTranscript {
        host_nonce: NONCE,
        mobile_nonce: MOBILE_NONCE,
        host_fingerprint: fp_host,
        mobile_fingerprint: fp_mobile,
    }
}

fn proof_of(view: &AuthTranscript, secret: &[u8; 32]) -> Vec<u8> {
    Request::AuthResponse {
        nonce: nonce_b64(&view.mobile_nonce),
        mac: view.mobile_mac_b64(secret),
    }
    .encode()
}

fn proof(secret: &[u8; 32]) -> Vec<u8> {
    proof_of(&phone_view(FP_HOST, FP_MOBILE), secret)
}

fn authed() -> (AuthGate, Instant) {
    let (mut g, t0) = challenged();
    match g.handle_message(t0, &proof(&SECRET)) {
        GateVerdict::Authenticated(Event::AuthOk { mac }) => {
            // The host's proof verifies on the phone's side of the same transcript.
            phone_view(FP_HOST, FP_MOBILE)
                .verify_host_mac(&SECRET, &mac)
                .unwrap();
        }
        other => panic!("expected auth_ok, got {other:?}"),
    }
    (g, t0)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn assert_closed(v: GateVerdict, why: AuthFailure) {
    match v {
        GateVerdict::Close(w) => assert_eq!(w, why),
        other => panic!("expected close {why:?}, got {other:?}"),
    }
}

fn assert_error_reply(v: GateVerdict, want_code: &str) -> String {
    match v {
        GateVerdict::Reply(Event::Error { code, message }) => {
            assert_eq!(code, want_code);
            message
        }
        other => panic!("expected error {want_code}, got {other:?}"),
    }
}

#[test]
fn valid_proof_authenticates_and_cancels_timer() {
    let (mut g, t0) = authed();
    assert!(g.is_authenticated());
    assert_eq!(g.poll_timeout(), None);
    assert_eq!(
        g.handle_timeout(t0 + T * 2),
        None,
        "success wins over timeout"
    );
}

#[test]
fn wrong_mac_closes() {
    let (mut g, t0) = challenged();
    assert_closed(g.handle_message(t0, &proof(&[8; 32])), AuthFailure::BadMac);
    // Nothing after a failure gets through, not even the right proof.
    assert!(matches!(
        g.handle_message(t0, &proof(&SECRET)),
        GateVerdict::Drop
    ));
    assert!(!g.is_authenticated());
}

#[test]
fn bad_base64_closes() {
    let (mut g, t0) = challenged();
    let req = Request::AuthResponse {
        nonce: nonce_b64(&MOBILE_NONCE),
        mac: "not base64!!".into(),
    }
    .encode();
    assert_closed(g.handle_message(t0, &req), AuthFailure::BadMac);
}

#[test]
fn malformed_phone_nonce_closes() {
    for nonce in ["AAAA".to_owned(), "not base64!".into(), "A".repeat(129)] {
        let (mut g, t0) = challenged();
        let req = Request::AuthResponse {
            nonce,
            mac: phone_view(FP_HOST, FP_MOBILE).mobile_mac_b64(&SECRET),
        };
        let v = g.handle_message(t0, &req.encode());
        assert!(matches!(v, GateVerdict::Close(_)), "{v:?}");
    }
}

#[test]
fn overlong_or_empty_mac_closes() {
    for mac in [String::new(), "A".repeat(129)] {
        let (mut g, t0) = challenged();
        // Rejected either by the decoder's bound or by the gate's own check.
        let req = Request::AuthResponse {
            nonce: nonce_b64(&MOBILE_NONCE),
            mac,
        };
        let v = g.handle_message(t0, &req.encode());
        assert!(matches!(v, GateVerdict::Close(_)), "{v:?}");
    }
}

/// A relay that terminates DTLS on both sides presents its own
/// certificates: the phone's MAC covers the relay's certificate as `FP_H`
/// (or the host sees the relay's as `FP_M`), and the host closes.
#[test]
fn proof_over_another_certificate_closes() {
    for view in [
        phone_view([0x41; 32], FP_MOBILE),
        phone_view(FP_HOST, [0x61; 32]),
    ] {
        let (mut g, t0) = challenged();
        assert_closed(
            g.handle_message(t0, &proof_of(&view, &SECRET)),
            AuthFailure::BadMac,
        );
    }
}

/// The v1 proof (an HMAC over the host nonce alone) no longer authenticates.
#[test]
fn v1_response_without_nonce_closes() {
    let (mut g, t0) = challenged();
    // {"type":"auth_response","mac":"AAAA"}
    let v1 = hex("82a474797065ad617574685f726573706f6e7365a36d6163a441414141");
    assert!(matches!(
        g.handle_message(t0, &v1),
        GateVerdict::Close(AuthFailure::Undecodable)
    ));
}

#[test]
fn first_message_of_another_type_closes() {
    let (mut g, t0) = challenged();
    assert_closed(
        g.handle_message(t0, &Request::Ping.encode()),
        AuthFailure::UnexpectedType,
    );
}

#[test]
fn unknown_type_before_auth_closes() {
    let (mut g, t0) = challenged();
    // {"type":"hello"}
    assert_closed(
        g.handle_message(t0, &hex("81a474797065a568656c6c6f")),
        AuthFailure::UnexpectedType,
    );
}

#[test]
fn undecodable_first_message_closes() {
    let (mut g, t0) = challenged();
    assert_closed(
        g.handle_message(t0, b"\xc1garbage"),
        AuthFailure::Undecodable,
    );
}

#[test]
fn oversize_first_message_closes() {
    let (mut g, t0) = challenged();
    let big = vec![0u8; MAX_MESSAGE_SIZE + 1];
    assert_closed(g.handle_message(t0, &big), AuthFailure::TooLarge);
}

#[test]
fn no_proof_times_out_at_10s_and_late_proof_is_refused() {
    let (mut g, t0) = challenged();
    assert_eq!(g.handle_timeout(t0 + T - Duration::from_millis(1)), None);
    assert_eq!(g.handle_timeout(t0 + T), Some(AuthFailure::Timeout));
    assert_eq!(g.handle_timeout(t0 + T), None, "reported once");
    assert!(matches!(
        g.handle_message(t0 + T, &proof(&SECRET)),
        GateVerdict::Drop
    ));
    assert!(!g.is_authenticated());
}

#[test]
fn proof_arriving_at_deadline_before_timer_is_late() {
    let (mut g, t0) = challenged();
    assert_closed(
        g.handle_message(t0 + T, &proof(&SECRET)),
        AuthFailure::Timeout,
    );
    assert_eq!(g.handle_timeout(t0 + T), None);
}

#[test]
fn message_before_challenge_closes() {
    let mut g = AuthGate::new(SECRET, T);
    assert_closed(
        g.handle_message(Instant::now(), &proof(&SECRET)),
        AuthFailure::NoChallenge,
    );
}

#[test]
fn requests_after_auth_are_delivered_in_order() {
    let (mut g, t0) = authed();
    assert!(matches!(
        g.handle_message(t0, &Request::Ping.encode()),
        GateVerdict::Deliver(Request::Ping)
    ));
    let attach = Request::Attach(Attach {
        pane_id: "%1".into(),
        cols: 80,
        rows: 24,
        reattach: false,
        compression: None,
        offsets: false,
        resume_from: None,
    });
    assert!(matches!(
        g.handle_message(t0, &attach.encode()),
        GateVerdict::Deliver(Request::Attach(_))
    ));
}

#[test]
fn repeated_auth_response_after_auth_is_dropped() {
    let (mut g, t0) = authed();
    assert!(matches!(
        g.handle_message(t0, &proof(&SECRET)),
        GateVerdict::Drop
    ));
    assert!(matches!(
        g.handle_message(t0, &proof(&[1; 32])),
        GateVerdict::Drop
    ));
    assert!(g.is_authenticated());
}

#[test]
fn event_types_and_unknown_types_after_auth_are_dropped() {
    let (mut g, t0) = authed();
    // {"type":"auth_ok"}, an event sent by the wrong side.
    assert!(matches!(
        g.handle_message(t0, &hex("81a474797065a7617574685f6f6b")),
        GateVerdict::Drop
    ));
    // {"type":"hello"}
    assert!(matches!(
        g.handle_message(t0, &hex("81a474797065a568656c6c6f")),
        GateVerdict::Drop
    ));
}

#[test]
fn float_dimension_after_auth_answers_invalid_request_v10() {
    let (mut g, t0) = authed();
    // {"type":"attach","paneId":"%1","cols":80.0,"rows":24}
    let msg = hex(
        "84a474797065a6617474616368a670616e654964a22531a4636f6c73cb4054000000000000a4726f777318",
    );
    let m = assert_error_reply(g.handle_message(t0, &msg), "invalid_request");
    assert_eq!(m, "attach.cols: expected an integer");
    // V10: the reply's bytes.
    let ev = Event::error(ErrorCode::InvalidRequest, m);
    assert_eq!(
        ev.encode(),
        hex(
            "83a474797065a56572726f72a4636f6465af696e76616c69645f72657175657374a76d657373616765d9206174746163682e636f6c733a20657870656374656420616e20696e7465676572"
        )
    );
}

#[test]
fn garbage_after_auth_answers_invalid_request_and_keeps_going() {
    let (mut g, t0) = authed();
    assert_error_reply(g.handle_message(t0, b"\xc1"), "invalid_request");
    assert!(matches!(
        g.handle_message(t0, &Request::Ping.encode()),
        GateVerdict::Deliver(Request::Ping)
    ));
}

#[test]
fn oversize_after_auth_answers_message_too_large() {
    let (mut g, t0) = authed();
    let big = vec![0u8; MAX_MESSAGE_SIZE + 1];
    assert_error_reply(g.handle_message(t0, &big), "message_too_large");
    assert!(g.is_authenticated());
}

#[test]
fn input_over_16k_answers_input_too_large() {
    let (mut g, t0) = authed();
    let req = Request::Input {
        data: vec![b'x'; 16_385],
        offset: None,
    }
    .encode();
    assert_error_reply(g.handle_message(t0, &req), "input_too_large");
}

#[test]
fn dims_out_of_range_answer_the_requests_own_code() {
    let (mut g, t0) = authed();
    let attach = Request::Attach(Attach {
        pane_id: "%1".into(),
        cols: 0,
        rows: 24,
        reattach: false,
        compression: None,
        offsets: false,
        resume_from: None,
    })
    .encode();
    assert_error_reply(g.handle_message(t0, &attach), "attach_failed");
    let resize = Request::Resize {
        cols: 501,
        rows: 24,
    }
    .encode();
    assert_error_reply(g.handle_message(t0, &resize), "resize_failed");
}
