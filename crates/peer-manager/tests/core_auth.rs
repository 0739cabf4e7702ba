//! Channel authentication (terminal-protocol.md §12, peer-lifecycle.md §3) on
//! the pair harness: success, wrong key, a relay's certificate, a request
//! before the proof, the 10 s deadline, no fingerprints, no nonce; nothing
//! reaches the handler before the proof, and ping never goes to it.

#![allow(clippy::unwrap_used)]

mod pair;

use pair::*;
use peer_manager::core::auth_gate::AuthFailure;
use peer_manager::core::{CloseReason, Timer};
use terminal_protocol::{AUTH_TIMEOUT, Event, Request};

fn closes_with(opts: PhoneOpts, why: CloseReason) -> Pair {
    let mut p = Pair::new(opts);
    assert_eq!(p.run_until_closed(secs(30)), why);
    assert!(p.delivered.is_empty());
    assert!(
        !p.phone_got
            .iter()
            .any(|e| matches!(e, Event::AuthOk { .. }))
    );
    p
}

/// The proof over both nonces and both certificates authenticates; the host's
/// own proof (`auth_ok`) verifies on the phone and comes before anything else;
/// requests then reach the handler in order, and `ping` is answered by the
/// core itself.
#[test]
fn proof_authenticates_and_requests_flow_after_it() {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_until_authenticated();
    assert!(matches!(p.phone_got[0], Event::AuthChallenge { .. }));
    assert!(matches!(p.phone_got[1], Event::AuthOk { .. }));
    assert_eq!(p.timer(Timer::Auth), None);
    p.phone_send(Request::ListSessions.encode());
    p.phone_send(Request::Ping.encode());
    p.phone_send(b"\xc1".to_vec());
    p.run_for(secs(1));
    assert_eq!(p.delivered, vec![Request::ListSessions]);
    assert!(p.pongs >= 1);
    assert!(matches!(&p.replies[..], [Event::Error { code, .. }] if code == "invalid_request"));
}

#[test]
fn wrong_key_closes_before_anything_is_delivered() {
    closes_with(
        PhoneOpts {
            proof: Proof::WrongKey,
            ..PhoneOpts::default()
        },
        CloseReason::Auth(AuthFailure::BadMac),
    );
}

/// A relay terminating DTLS on both sides makes the transcripts differ.
#[test]
fn proof_over_another_certificate_closes() {
    closes_with(
        PhoneOpts {
            proof: Proof::OtherCertificate,
            ..PhoneOpts::default()
        },
        CloseReason::Auth(AuthFailure::BadMac),
    );
}

#[test]
fn request_before_the_proof_closes() {
    closes_with(
        PhoneOpts {
            proof: Proof::RequestFirst,
            ..PhoneOpts::default()
        },
        CloseReason::Auth(AuthFailure::UnexpectedType),
    );
}

/// No proof: closed exactly 10 s after the challenge went out.
#[test]
fn no_proof_closes_at_the_10s_deadline() {
    let mut p = Pair::new(PhoneOpts {
        proof: Proof::Silent,
        ..PhoneOpts::default()
    });
    let limit = p.now + secs(5);
    while p.timer(Timer::Auth).is_none() {
        assert!(p.step(limit));
    }
    let challenged = p.now;
    assert_eq!(p.timer(Timer::Auth), Some(challenged + AUTH_TIMEOUT));
    assert_eq!(
        p.run_until_closed(secs(30)),
        CloseReason::Auth(AuthFailure::Timeout)
    );
    assert_eq!(p.closes[0].0, challenged + AUTH_TIMEOUT);
}

/// A proof arriving at the deadline, before the timer ran, is late.
#[test]
fn proof_at_the_deadline_is_late() {
    let mut p = Pair::new(PhoneOpts {
        proof: Proof::Silent,
        ..PhoneOpts::default()
    });
    let limit = p.now + secs(5);
    while p.timer(Timer::Auth).is_none() {
        assert!(p.step(limit));
    }
    let deadline = p.timer(Timer::Auth).unwrap();
    let t = terminal_protocol::AuthTranscript {
        host_nonce: HOST_NONCE,
        mobile_nonce: PHONE_NONCE,
        host_fingerprint: FP_H,
        mobile_fingerprint: FP_M,
    };
    let proof = Request::AuthResponse {
        nonce: terminal_protocol::nonce_b64(&PHONE_NONCE),
        mac: t.mobile_mac_b64(&SECRET),
    };
    p.host.handle_received(deadline, &proof.encode());
    p.run_for(secs(1));
    assert_eq!(p.closed_once(), CloseReason::Auth(AuthFailure::Timeout));
}

/// Fingerprints that cannot be read, or a failing random source: the channel
/// cannot be authenticated and the peer closes without a challenge.
#[test]
fn channel_without_fingerprints_or_nonce_closes() {
    for opts in [
        PhoneOpts {
            fingerprints: false,
            ..PhoneOpts::default()
        },
        PhoneOpts {
            nonce: false,
            ..PhoneOpts::default()
        },
    ] {
        let p = closes_with(opts, CloseReason::Auth(AuthFailure::NoChallenge));
        assert!(p.phone_got.is_empty(), "no challenge");
    }
}

/// The challenge or `auth_ok` cannot be sent: the peer closes.
#[test]
fn required_send_failure_closes() {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_until_authenticated();
    p.host.handle_send_failed(p.now);
    p.run_for(secs(1));
    assert_eq!(p.closed_once(), CloseReason::SendFailed);
}
