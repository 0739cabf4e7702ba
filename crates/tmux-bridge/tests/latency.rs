//! Measurement, not a check (`cargo test -p tmux-bridge --test latency --
//! --ignored --nocapture`): keystroke → echo through the bridge, to compare
//! with design.md's 0.092 ms p50 for a persistent control client.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{PrivateTmux, TmuxExt, read_until};

#[tokio::test]
#[ignore = "measurement; prints figures"]
async fn keystroke_echo_latency() {
    let server = PrivateTmux::with_session("latency", "s", Some("stty raw -echo; printf R; cat"));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    let snap = out.take_snapshot().unwrap();
    if !common::contains(&snap, b"R") {
        read_until(&mut out, b"", b"R").await;
    }
    let mut send_only = Vec::new();
    let mut round_trip = Vec::new();
    for i in 0..2000u32 {
        let key = [b'a' + (i % 26) as u8];
        let t0 = Instant::now();
        bridge.send_input(&pane, &key).await.unwrap();
        send_only.push(t0.elapsed());
        let mut got = Vec::new();
        while !got.contains(&key[0]) {
            got.extend(out.read().await.unwrap().unwrap());
        }
        round_trip.push(t0.elapsed());
    }
    let pct = |v: &mut Vec<std::time::Duration>, p: f64| {
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i].as_secs_f64() * 1000.0
    };
    println!(
        "send_input answered by tmux: p50 {:.3} ms, p99 {:.3} ms",
        pct(&mut send_only, 0.5),
        pct(&mut send_only, 0.99)
    );
    println!(
        "keystroke -> echo read from the pipe: p50 {:.3} ms, p99 {:.3} ms (n={})",
        pct(&mut round_trip, 0.5),
        pct(&mut round_trip, 0.99),
        round_trip.len()
    );
    out.close().await.unwrap();
}
