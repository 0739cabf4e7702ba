//! Loopback measurements (ignored by default): 64 B round-trip p50/p99 and 40 MiB
//! bulk throughput. Run: `cargo test -p rtc-transport --test bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints numbers"]
async fn rtt_and_bulk() {
    let setup = Instant::now();
    let p = connect(false).await;
    println!(
        "connect (offer to both channels open): {:?}",
        setup.elapsed()
    );

    // Echo on the answerer side.
    let echo = p.ans_ch.clone();
    let echo_task = tokio::spawn(async move {
        while let Some(m) = echo.recv().await {
            if m.len() == 64 && echo.send(&m).await.is_err() {
                break;
            }
        }
    });
    let msg = [0x5au8; 64];
    let mut rtts = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = Instant::now();
        p.off_ch.send(&msg).await.unwrap();
        let back = recv(&p.off_ch).await;
        rtts.push(t.elapsed());
        assert_eq!(back.len(), 64);
    }
    rtts.sort();
    println!(
        "64 B round trip: p50 {:?} p99 {:?} ({} samples)",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100],
        rtts.len()
    );

    // Bulk: 40 MiB in 16 KiB messages offerer -> answerer (echo ignores them).
    const TOTAL: usize = 40 * 1024 * 1024;
    const CHUNK: usize = 16 * 1024;
    let counter = p.ans_ch.clone();
    echo_task.abort();
    let recv_task = tokio::spawn(async move {
        let mut got = 0usize;
        while got < TOTAL {
            match counter.recv().await {
                Some(m) => got += m.len(),
                None => break,
            }
        }
        got
    });
    let chunk = vec![0xa5u8; CHUNK];
    let t = Instant::now();
    for _ in 0..TOTAL / CHUNK {
        p.off_ch.send(&chunk).await.unwrap();
    }
    let got = tokio::time::timeout(std::time::Duration::from_secs(120), recv_task)
        .await
        .unwrap()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, TOTAL);
    println!(
        "40 MiB bulk: {:.1} MB/s ({secs:.2} s)",
        TOTAL as f64 / 1e6 / secs
    );
    p.offerer.close().await;
    p.answerer.close().await;
}
