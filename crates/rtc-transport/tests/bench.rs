//! Loopback measurements (ignored by default): 64 B round-trip p50/p99 and 40 MiB
//! bulk throughput with both peers in this process, and 1-byte round trips
//! between two processes (the agent's and the phone's stacks without tmux).
//! Run: `cargo test --release -p rtc-transport --test bench -- --ignored --nocapture --test-threads=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::*;
use rtc_transport::{RtcConfig, RtcEvent, RtcPeer};

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

/// Round trips of 1-byte messages between two peers in two processes, as the
/// agent and the phone are: the two webrtc stacks alone, without tmux. The
/// echoing peer is this test binary run again ([`echo_peer_process`]); the
/// descriptions, with the candidates written in, go over its stdin and
/// stdout. Prints p50/p90/p99 of [`ECHO_ROUNDS`] after [`ECHO_WARMUP`]
/// unmeasured ones, back to back and then [`ECHO_GAP`] apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints numbers"]
async fn one_byte_echo_between_two_processes() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "echo_peer_process", "--nocapture"])
        .env(ECHO_PEER_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap()).lines();

    let (peer, mut events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
    let ch = peer.create_data_channel("terminal").await.unwrap();
    let offer = peer.create_offer(false).await.unwrap();
    let offer = with_candidates(&offer, &mut events).await;
    to_child
        .write_all(one_line(&offer).as_bytes())
        .await
        .unwrap();
    let answer = loop {
        let line = tokio::time::timeout(WAIT, from_child.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("echo peer ended without an answer");
        if let Some(sdp) = line.strip_prefix("sdp ") {
            break sdp.replace('|', "\r\n");
        }
    };
    peer.set_remote_answer(&answer).await.unwrap();
    tokio::time::timeout(WAIT, ch.wait_open())
        .await
        .unwrap()
        .unwrap();
    // Back to back, then [`ECHO_GAP`] apart as the product's bench types:
    // the second shows what waking idle threads costs.
    for gap in [None, Some(ECHO_GAP)] {
        let mut rtts = Vec::with_capacity(ECHO_ROUNDS);
        for i in 0..ECHO_WARMUP + ECHO_ROUNDS {
            if let Some(gap) = gap {
                tokio::time::sleep(gap).await;
            }
            let t = Instant::now();
            ch.send(&[0x61]).await.unwrap();
            let back = recv(&ch).await;
            if i >= ECHO_WARMUP {
                rtts.push(t.elapsed());
            }
            assert_eq!(&back[..], &[0x61]);
        }
        rtts.sort();
        let at = |q: usize| rtts[rtts.len() * q / 100].as_secs_f64() * 1e6;
        println!(
            "1 B round trip, two processes, {}: p50 {:.0} µs p90 {:.0} µs p99 {:.0} µs ({} rounds)",
            gap.map_or("back to back".to_owned(), |g| format!(
                "{} ms apart",
                g.as_millis()
            )),
            at(50),
            at(90),
            at(99),
            rtts.len()
        );
    }
    peer.close().await;
    drop(to_child);
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
}

/// The echoing peer of [`one_byte_echo_between_two_processes`]; does nothing
/// unless started by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by one_byte_echo_between_two_processes"]
async fn echo_peer_process() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    if std::env::var_os(ECHO_PEER_ENV).is_none() {
        return;
    }
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let offer = stdin
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .replace('|', "\r\n");
    let (peer, mut events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
    let answer = peer.accept_offer(&offer).await.unwrap();
    let answer = with_candidates(&answer, &mut events).await;
    let mut out = tokio::io::stdout();
    out.write_all(format!("sdp {}", one_line(&answer)).as_bytes())
        .await
        .unwrap();
    out.flush().await.unwrap();
    let ch = loop {
        match tokio::time::timeout(WAIT, events.recv()).await.unwrap() {
            Some(RtcEvent::DataChannel(ch)) => break ch,
            Some(_) => {}
            None => panic!("events ended"),
        }
    };
    ch.wait_open().await.unwrap();
    tokio::select! {
        _ = async {
            while let Some(m) = ch.recv().await {
                if ch.send(&m).await.is_err() {
                    break;
                }
            }
        } => {}
        _ = stdin.next_line() => {}
    }
    peer.close().await;
}

const ECHO_PEER_ENV: &str = "RTC_TRANSPORT_ECHO_PEER";
const ECHO_ROUNDS: usize = 2000;
const ECHO_WARMUP: usize = 200;
/// The product bench's key gap (`tests/bench/echo.rs`, `KEY_GAP`).
const ECHO_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// `sdp` with this side's candidates written in, up to the end of gathering.
async fn with_candidates(sdp: &str, events: &mut tokio::sync::mpsc::Receiver<RtcEvent>) -> String {
    let mut out = sdp.trim_end().to_owned();
    out.push_str("\r\n");
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await.unwrap() {
            Some(RtcEvent::LocalCandidate(c)) => {
                out.push_str("a=");
                out.push_str(&c.candidate);
                out.push_str("\r\n");
            }
            Some(RtcEvent::GatheringComplete) => break,
            Some(_) => {}
            None => panic!("events ended"),
        }
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

/// An SDP on one line (CRLF as `|`), newline-terminated.
fn one_line(sdp: &str) -> String {
    format!("{}\n", sdp.trim_end().replace("\r\n", "|"))
}
