//! Two RtcPeers over loopback: connect, messages both ways, limits, close.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rtc_transport::{Candidate, MAX_TRANSPORT_MESSAGE, PeerState, RtcError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_and_exchanges_messages_both_ways() {
    let p = connect(false).await;
    assert_eq!(p.off_ch.label(), "terminal");
    assert_eq!(p.ans_ch.label(), "terminal");
    assert!(p.offer_sdp.contains("a=max-message-size:1048576"));
    assert!(p.answer_sdp.contains("a=max-message-size:1048576"));
    assert_eq!(p.off_ch.remote_max_message_size(), 1_048_576);
    assert_eq!(p.ans_ch.remote_max_message_size(), 1_048_576);
    for i in 0..100u32 {
        p.off_ch.send(&i.to_be_bytes()).await.unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(&recv(&p.ans_ch).await[..], &i.to_be_bytes());
    }
    for i in 0..100u32 {
        p.ans_ch.send(format!("pong {i}").as_bytes()).await.unwrap();
        assert_eq!(&recv(&p.off_ch).await[..], format!("pong {i}").as_bytes());
    }
    assert_eq!(p.offerer.state(), PeerState::Connected);
    p.offerer.close().await;
    p.answerer.close().await;
    assert_eq!(p.offerer.state(), PeerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_without_prefix_are_accepted() {
    let p = connect(true).await;
    p.off_ch.send(b"hi").await.unwrap();
    assert_eq!(&recv(&p.ans_ch).await[..], b"hi");
    p.offerer.close().await;
    p.answerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_candidates_are_ignored_and_the_queue_is_bounded() {
    let o = side().await;
    for _ in 0..3 {
        let empty = Candidate {
            candidate: String::new(),
            ..Default::default()
        };
        o.peer.add_remote_candidate(empty).await.unwrap();
    }
    // More than 64 queued candidates: the extra ones are dropped, not an error.
    for port in 0..80u16 {
        let c = Candidate {
            candidate: format!(
                "candidate:1 1 udp 2130706431 127.0.0.1 {} typ host",
                40000 + port
            ),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        };
        o.peer.add_remote_candidate(c).await.unwrap();
    }
    o.peer.close().await;
    let err = o.peer.create_offer(false).await.unwrap_err();
    assert!(matches!(err, RtcError::Closed));
}

/// The core's ceiling is 256 KiB each way although both ends advertise the
/// protocol's 1 MiB: a message of the ceiling arrives whole; a larger one is
/// refused before it reaches the core, even through `send_unchecked`,
/// and the channel stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_transport_message_arrives_whole_and_larger_is_refused() {
    let p = connect(false).await;
    let big: Vec<u8> = (0..MAX_TRANSPORT_MESSAGE as u32)
        .map(|i| (i % 251) as u8)
        .collect();
    p.off_ch.send(&big).await.unwrap();
    let got = recv(&p.ans_ch).await;
    assert_eq!(got.len(), big.len());
    assert!(got[..] == big[..]);
    let too_big = vec![0u8; MAX_TRANSPORT_MESSAGE + 1];
    for err in [
        p.ans_ch.send(&too_big).await.unwrap_err(),
        p.ans_ch.send_unchecked(&too_big).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, RtcError::TooLarge { limit, .. } if limit == MAX_TRANSPORT_MESSAGE),
            "{err}"
        );
    }
    assert!(!p.ans_ch.try_send(&too_big));
    p.ans_ch.send(b"still open").await.unwrap();
    assert_eq!(&recv(&p.off_ch).await[..], b"still open");
    p.offerer.close().await;
    p.answerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_close_ends_recv() {
    let p = connect(false).await;
    p.off_ch.send(b"last").await.unwrap();
    assert_eq!(&recv(&p.ans_ch).await[..], b"last");
    p.offerer.close().await;
    let end = tokio::time::timeout(WAIT, p.ans_ch.recv()).await.unwrap();
    assert!(end.is_none());
    assert!(matches!(p.off_ch.send(b"x").await, Err(RtcError::Closed)));
    p.answerer.close().await;
}

/// Channel authentication v2 needs each end's view of both DTLS certificates:
/// one end's local fingerprint is what the other saw presented, and it equals
/// the SDP form that end advertised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_fingerprints_match_across_the_two_ends_and_the_sdp() {
    let p = connect(false).await;
    let off = p.offerer.dtls_fingerprints().await.unwrap();
    let ans = p.answerer.dtls_fingerprints().await.unwrap();
    assert_eq!(off.local, ans.remote);
    assert_eq!(ans.local, off.remote);
    assert_ne!(off.local, ans.local);
    assert_eq!(
        rtc_transport::sdp_fingerprints(&p.offer_sdp),
        vec![Some(off.local)]
    );
    assert_eq!(
        rtc_transport::sdp_fingerprints(&p.answer_sdp),
        vec![Some(ans.local)]
    );
    p.offerer.close().await;
    assert!(matches!(
        p.offerer.dtls_fingerprints().await,
        Err(RtcError::Closed)
    ));
    p.answerer.close().await;
}

/// Before DTLS has run there is no remote certificate: the caller gets an
/// error (and closes) instead of a fingerprint of nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_remote_certificate_before_dtls_is_an_error() {
    let o = side().await;
    let _ch = o.peer.create_data_channel("terminal").await.unwrap();
    let _offer = o.peer.create_offer(false).await.unwrap();
    assert!(matches!(
        o.peer.dtls_fingerprints().await,
        Err(RtcError::NoFingerprint(_))
    ));
    o.peer.close().await;
}
