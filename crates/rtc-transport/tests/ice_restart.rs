//! ICE restart: the offerer renegotiates with fresh credentials on the same
//! connection and the DataChannel keeps working.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_renegotiates_on_the_same_channel() {
    let p = connect(false).await;
    p.off_ch.send(b"before").await.unwrap();
    assert_eq!(&recv(&p.ans_ch).await[..], b"before");

    let ufrag = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .unwrap()
            .to_owned()
    };
    let offer = p.offerer.create_offer(true).await.unwrap();
    assert_ne!(ufrag(&offer), ufrag(&p.offer_sdp));
    assert!(offer.contains("a=max-message-size:1048576"));
    let answer = p.answerer.accept_offer(&offer).await.unwrap();
    assert_ne!(ufrag(&answer), ufrag(&p.answer_sdp));
    p.offerer.set_remote_answer(&answer).await.unwrap();

    for i in 0..20u8 {
        p.off_ch.send(&[i]).await.unwrap();
        p.ans_ch.send(&[i, i]).await.unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(&recv(&p.ans_ch).await[..], &[i]);
        assert_eq!(&recv(&p.off_ch).await[..], &[i, i]);
    }
    p.offerer.close().await;
    p.answerer.close().await;
}
