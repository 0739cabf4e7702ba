//! The end of candidate gathering is reported: on loopback each ICE
//! generation's local candidates are followed by one
//! [`RtcEvent::GatheringComplete`], on the offerer, on the answerer, and again
//! after an ICE restart. A phone that writes its candidates into the answer
//! sends it on this report instead of waiting for a quiet period.
#![allow(clippy::unwrap_used)]

mod common;

use common::candidates_until_complete;
use rtc_transport::{RtcConfig, RtcPeer};

#[tokio::test]
async fn each_side_reports_the_end_of_gathering_after_its_candidates() {
    let (offerer, mut off_events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
    let _channel = offerer.create_data_channel("terminal").await.unwrap();
    let offer = offerer.create_offer(false).await.unwrap();
    let offered = candidates_until_complete(&mut off_events).await;
    assert!(!offered.is_empty(), "offerer gathered nothing");
    assert!(
        offered.iter().all(|c| c.contains("127.0.0.1")),
        "{offered:?}"
    );

    let (answerer, mut ans_events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
    let _answer = answerer.accept_offer(&offer).await.unwrap();
    let answered = candidates_until_complete(&mut ans_events).await;
    assert!(!answered.is_empty(), "answerer gathered nothing");

    // An ICE restart gathers a new generation and reports its end again.
    let _restart = offerer.create_offer(true).await.unwrap();
    let regathered = candidates_until_complete(&mut off_events).await;
    assert!(!regathered.is_empty(), "restart gathered nothing");
    // The sockets are kept across a restart, which ICE allows: the same
    // host candidates come again under the new credentials.
    assert_eq!(
        regathered.len(),
        offered.len(),
        "{offered:?} then {regathered:?}"
    );

    answerer.close().await;
    offerer.close().await;
}
