//! The fast-channel gate of the core (docs/stream-v2.md §4) on the pair
//! harness: a channel the phone opens is accepted only as `terminal-fast`,
//! only after channel authentication and only once per peer; on it only
//! numbered `input` copies of at most 1024 bytes go on, everything else is
//! dropped without an answer and nothing closes the peer.

#![allow(clippy::unwrap_used)]

mod pair;

use pair::*;
use peer_manager::core::fast::{Refusal, RemoteChannel};
use terminal_protocol::{FAST_CHANNEL_LABEL, MAX_FAST_COPY, Request};

fn numbered(data: &[u8], offset: u64) -> Request {
    Request::Input {
        data: data.to_vec(),
        offset: Some(offset),
    }
}

#[test]
fn a_fast_channel_before_authentication_is_refused() {
    let mut p = Pair::new(PhoneOpts::default());
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Refuse(Refusal::NotAuthenticated)
    );
    // Nothing on it is ever handed on, whatever arrives.
    assert_eq!(
        p.host
            .handle_fast_received(p.now, &numbered(b"x", 0).encode()),
        None
    );
    // The refusal does not count: once authenticated, the phone's fast channel is accepted.
    p.run_until_authenticated();
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Fast
    );
    assert!(p.host.has_fast_channel());
    assert!(p.delivered.is_empty());
}

#[test]
fn only_one_fast_channel_per_peer_and_no_other_label() {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_until_authenticated();
    assert_eq!(
        p.host.handle_remote_channel(p.now, "terminal"),
        RemoteChannel::Refuse(Refusal::UnknownLabel)
    );
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Fast
    );
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Refuse(Refusal::SecondFast)
    );
    // Still one per peer after the first closed; the peer itself stays.
    p.host.handle_fast_closed(p.now);
    assert!(!p.host.has_fast_channel());
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Refuse(Refusal::SecondFast)
    );
    assert_eq!(
        p.host
            .handle_fast_received(p.now, &numbered(b"late", 9).encode()),
        None
    );
    assert!(!p.host.is_closed());
    p.host.handle_close(p.now);
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Refuse(Refusal::PeerClosed)
    );
}

#[test]
fn only_numbered_small_input_copies_go_on_and_nothing_is_answered() {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_until_authenticated();
    let got_before = p.phone_got.len();
    assert_eq!(
        p.host.handle_remote_channel(p.now, FAST_CHANNEL_LABEL),
        RemoteChannel::Fast
    );
    let ok = numbered(b"l", 42);
    assert_eq!(
        p.host.handle_fast_received(p.now, &ok.encode()),
        Some(ok.clone())
    );
    let largest = numbered(&[b'a'; MAX_FAST_COPY], 43);
    assert_eq!(
        p.host.handle_fast_received(p.now, &largest.encode()),
        Some(largest.clone())
    );
    let dropped: Vec<Vec<u8>> = vec![
        numbered(&[b'a'; MAX_FAST_COPY + 1], 1067).encode(),
        Request::input(b"no offset".to_vec()).encode(),
        Request::Ping.encode(),
        Request::ListSessions.encode(),
        Request::Resize { cols: 80, rows: 24 }.encode(),
        b"\xc1".to_vec(),
        b"\x81\xa4type\xa7unknown".to_vec(),
        Vec::new(),
        vec![0xff; 300],
        // S7: an offset of 2^53 does not decode.
        hex_bytes("83a474797065a5696e707574a464617461c4016ca66f6666736574cf0020000000000000"),
    ];
    for bytes in &dropped {
        assert_eq!(
            p.host.handle_fast_received(p.now, bytes),
            None,
            "{bytes:x?}"
        );
    }
    // No action at all: no reply, no pong, no close, nothing for the handler's
    // ordinary path.
    assert!(p.host.poll_action().is_none());
    p.run_for(secs(1));
    assert!(!p.host.is_closed());
    assert!(p.delivered.is_empty());
    assert!(p.replies.is_empty());
    assert_eq!(p.phone_got.len(), got_before);
    assert!(p.host.has_fast_channel());
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
