//! Backpressure: a receiver that never reads makes the sender wait, with bounded
//! memory, and a close wakes a waiting sender at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use rtc_transport::RtcError;

const CHUNK: usize = 16 * 1024;
/// Far more than any buffer on the path (receive queue 32 × 16 KiB, SCTP
/// window 1 MiB, send high mark 512 KiB).
const CAP: usize = 64 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_receiver_makes_send_time_out_with_bounded_buffering() {
    let p = connect(false).await;
    let chunk = vec![7u8; CHUNK];
    let mut sent = 0usize;
    let err = loop {
        match p.off_ch.send(&chunk).await {
            Ok(()) => sent += CHUNK,
            Err(e) => break e,
        }
        assert!(sent < CAP, "sender never blocked");
        assert!(p.off_ch.buffered_amount() <= 2 * 1024 * 1024);
    };
    assert!(matches!(err, RtcError::SendTimeout), "{err}");
    println!("sent {sent} bytes before the send timed out");
    p.offerer.close().await;
    p.answerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_unblocks_a_waiting_sender_at_once() {
    let p = connect(false).await;
    let ch = p.off_ch.clone();
    let (blocked_tx, mut blocked_rx) = tokio::sync::mpsc::channel::<()>(1);
    let sender = tokio::spawn(async move {
        let chunk = vec![1u8; CHUNK];
        let mut sent = 0usize;
        loop {
            // A send that does not finish promptly is waiting for room: say so once.
            let send = ch.send(&chunk);
            tokio::pin!(send);
            let r = tokio::select! {
                r = &mut send => r,
                _ = tokio::time::sleep(Duration::from_millis(300)) => {
                    let _ = blocked_tx.try_send(());
                    send.await
                }
            };
            match r {
                Ok(()) => sent += CHUNK,
                Err(e) => return e,
            }
            assert!(sent < CAP);
        }
    });
    tokio::time::timeout(WAIT, blocked_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    p.offerer.close().await;
    let err = tokio::time::timeout(WAIT, sender).await.unwrap().unwrap();
    assert!(matches!(err, RtcError::Closed), "{err}");
    // Not a timing assertion on the library: only that close beat the 5 s send timeout.
    assert!(started.elapsed() < rtc_transport::SEND_TIMEOUT);
    p.answerer.close().await;
}
