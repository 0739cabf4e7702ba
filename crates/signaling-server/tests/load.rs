//! Bounded load test on loopback: 500 authenticated sockets (250 paired
//! host/mobile pairs) against the server binary; prints presence RTT, relay
//! latency percentiles and server memory per idle socket. Timings are
//! reported, never asserted. See the numbers with `cargo test -p signaling-server
//! --test load -- --nocapture`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use signaling_proto::SignalingMessage;

const PAIRS: usize = 250;
const PRESENCE_ROUNDS: usize = 10;
const RELAY_ROUNDS: usize = 20;

fn auth_ok() -> SignalingMessage {
    SignalingMessage {
        status: "ok".into(),
        ..SignalingMessage::new("auth")
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
        v.len(),
        pct(&v, 0.50),
        pct(&v, 0.90),
        pct(&v, 0.99),
        v[v.len() - 1]
    );
}

/// Registers, pairs and fetches tokens for all pairs, a few at a time.
async fn setup(http: &Http) -> Vec<(DeviceKeys, String, DeviceKeys, String)> {
    let mut out = Vec::new();
    for chunk in (0..PAIRS).collect::<Vec<_>>().chunks(25) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|_| {
                let http = http.clone();
                tokio::spawn(async move {
                    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
                    http.pair(&host, &mobile).await;
                    let (ht, mt) = (http.token(&host).await, http.token(&mobile).await);
                    (host, ht, mobile, mt)
                })
            })
            .collect();
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sockets() {
    let overall = tokio::time::timeout(Duration::from_secs(120), run()).await;
    overall.expect("load test exceeded its time budget");
}

async fn run() {
    let proc = ServerProcess::spawn(
        &[
            "--bind",
            "127.0.0.1:0",
            "--rate-limits",
            "false",
            "--jwt-secret",
            "load-test-secret-0123456789abcdefghij",
            // Every socket comes from 127.0.0.1.
            "--max-sockets-per-client",
            "1000",
            "--max-connections-per-client",
            "1000",
        ],
        &[],
    );
    let http = Http {
        url: proc.url.clone(),
        version: "v1".into(),
        hmac: String::new(),
        clock: signaling_server::Clock::system(),
        ca: None,
    };
    let started = Instant::now();
    let devices = setup(&http).await;
    println!(
        "setup: {PAIRS} pairs registered, paired and tokened in {:?}",
        started.elapsed()
    );

    // Baseline after a warm-up socket, so one-time allocations are excluded.
    let warm = Ws::connect(&http, Sign::Now).await.unwrap();
    drop(warm);
    let rss_before = proc.rss_kib();
    let t_connect = Instant::now();
    let mut hosts = Vec::new();
    for chunk in devices.chunks(50) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|(_, ht, _, _)| {
                let (http, ht) = (http.clone(), ht.clone());
                tokio::spawn(async move {
                    let mut h = Ws::connect(&http, Sign::Now).await.unwrap();
                    assert_eq!(h.auth(&ht, "host").await, Got::Msg(auth_ok()));
                    h
                })
            })
            .collect();
        for t in tasks {
            hosts.push(t.await.unwrap());
        }
    }
    let mut mobiles = Vec::new();
    for chunk in devices.chunks(50) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|(_, _, _, mt)| {
                let (http, mt) = (http.clone(), mt.clone());
                tokio::spawn(async move {
                    let mut m = Ws::connect(&http, Sign::Now).await.unwrap();
                    assert_eq!(m.auth(&mt, "phone").await, Got::Msg(auth_ok()));
                    // Snapshot: its host is online.
                    assert_eq!(m.msg().await.kind, "host_online");
                    m
                })
            })
            .collect();
        for t in tasks {
            mobiles.push(t.await.unwrap());
        }
    }
    println!("connect+auth of 500 sockets: {:?}", t_connect.elapsed());
    let rss_after = proc.rss_kib();
    let sockets = hosts.len() + mobiles.len();
    println!(
        "memory: server RSS {rss_before} KiB -> {rss_after} KiB with {sockets} authenticated idle sockets = {:.1} KiB/socket",
        (rss_after.saturating_sub(rss_before)) as f64 / sockets as f64
    );

    // Presence round trips on every socket at once.
    let mut tasks = Vec::new();
    for mut ws in hosts.into_iter().chain(mobiles) {
        tasks.push(tokio::spawn(async move {
            let mut rtts = Vec::with_capacity(PRESENCE_ROUNDS);
            for _ in 0..PRESENCE_ROUNDS {
                let t0 = Instant::now();
                ws.ping().await;
                rtts.push(t0.elapsed());
            }
            (ws, rtts)
        }));
    }
    let mut all = Vec::new();
    let mut socks = Vec::new();
    for t in tasks {
        let (ws, rtts) = t.await.unwrap();
        all.extend(rtts);
        socks.push(ws);
    }
    println!("presence phase done at {:?}", started.elapsed());
    report("presence->presence_ack RTT (500 sockets concurrently)", all);
    let mut mobiles = socks.split_off(PAIRS);
    let mut hosts = socks;

    // One pair at a time while the other 498 sockets sit idle: the relay
    // latency without contention from the load generator itself.
    let (host0, _, mobile0, _) = &devices[0];
    let mut quiet = Vec::with_capacity(200);
    for i in 0..200u32 {
        let t0 = Instant::now();
        let out = SignalingMessage {
            target_device_id: host0.id.clone(),
            candidate: i.to_string(),
            ..SignalingMessage::new("ice_candidate")
        };
        mobiles[0].send(&out).await;
        let got = hosts[0].msg().await;
        assert_eq!(
            (got.candidate, got.target_device_id.as_str()),
            (i.to_string(), mobile0.id.as_str())
        );
        quiet.push(t0.elapsed());
    }
    report(
        "relay one-way mobile->host, single pair, 498 idle sockets",
        quiet,
    );

    // Relay ping-pong per pair: mobile → host (one-way latency measured on a
    // shared clock), host echoes back → mobile (round trip).
    let epoch = Arc::new(Instant::now());
    let mut host_tasks = Vec::new();
    let mut mobile_tasks = Vec::new();
    for ((mut h, mut m), (host, _, mobile, _)) in
        hosts.into_iter().zip(mobiles).zip(devices.iter().cloned())
    {
        let e = Arc::clone(&epoch);
        host_tasks.push(tokio::spawn(async move {
            let mut one_way = Vec::with_capacity(RELAY_ROUNDS);
            for _ in 0..RELAY_ROUNDS {
                let got = h.msg().await;
                assert_eq!(
                    (got.kind.as_str(), got.target_device_id.as_str()),
                    ("ice_candidate", mobile.id.as_str())
                );
                let sent: u64 = got.candidate.parse().unwrap();
                one_way.push(e.elapsed() - Duration::from_micros(sent));
                let echo = SignalingMessage {
                    target_device_id: mobile.id.clone(),
                    candidate: got.candidate,
                    sdp_m_line_index: Some(0),
                    ..SignalingMessage::new("ice_candidate")
                };
                h.send(&echo).await;
            }
            one_way
        }));
        let e = Arc::clone(&epoch);
        mobile_tasks.push(tokio::spawn(async move {
            let mut rtt = Vec::with_capacity(RELAY_ROUNDS);
            for _ in 0..RELAY_ROUNDS {
                let t0 = e.elapsed();
                let out = SignalingMessage {
                    target_device_id: host.id.clone(),
                    candidate: t0.as_micros().to_string(),
                    sdp_mid: "0".into(),
                    ..SignalingMessage::new("ice_candidate")
                };
                m.send(&out).await;
                let back = m.msg().await;
                assert_eq!(back.target_device_id, host.id);
                rtt.push(e.elapsed() - t0);
            }
            rtt
        }));
    }
    let mut one_way = Vec::new();
    for t in host_tasks {
        one_way.extend(t.await.unwrap());
    }
    let mut rtt = Vec::new();
    for t in mobile_tasks {
        rtt.extend(t.await.unwrap());
    }
    report(
        "relay one-way mobile->host (250 pairs concurrently)",
        one_way,
    );
    report("relay round trip mobile->host->mobile", rtt);
    let status = tokio::task::spawn_blocking(move || proc.terminate())
        .await
        .unwrap();
    assert!(status.success());
    println!("total {:?}", started.elapsed());
}
