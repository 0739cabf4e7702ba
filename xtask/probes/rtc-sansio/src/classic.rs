//! The same measurement as `main.rs` with the product's current stack, the
//! `webrtc` 0.17.2 crate (its own tasks per peer), each peer on its own
//! current-thread runtime and thread, loopback host candidates only, written
//! into the descriptions (no trickle). `PINGS` and `BULK_MB` as there;
//! 0.17.2 has no check-interval setting and binds its sockets itself, so
//! `CHECK_MS` and `SOCKBUF` do not apply.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use webrtc::api::APIBuilder;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data::data_channel::DataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

mod common;
use common::{AHEAD, MESSAGE, PING, cpu, env_num, host_and_phone};

/// The whole process's CPU seconds (0.17.2 spreads a peer over its runtime
/// thread and the blocking pool, so a thread's time says little).
fn process_cpu() -> f64 {
    cpu(libc::RUSAGE_SELF)
}

async fn run(
    host: bool,
    out: mpsc::Sender<RTCSessionDescription>,
    mut inbox: mpsc::Receiver<RTCSessionDescription>,
    started: Instant,
) -> Result<()> {
    let mut se = SettingEngine::default();
    se.detach_data_channels();
    se.set_include_loopback_candidate(true);
    se.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    se.set_network_types(vec![NetworkType::Udp4]);
    se.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    let api = APIBuilder::new().with_setting_engine(se).build();
    let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
    let (chan_tx, mut chan_rx) = mpsc::channel(1);
    let closed = || anyhow!("the other side went away");
    if host {
        let dc = pc
            .create_data_channel(
                "terminal",
                Some(RTCDataChannelInit {
                    ordered: Some(true),
                    ..Default::default()
                }),
            )
            .await?;
        let d2 = Arc::clone(&dc);
        dc.on_open(Box::new(move || {
            let d2 = Arc::clone(&d2);
            Box::pin(async move {
                if let Ok(raw) = d2.detach().await {
                    let _ = chan_tx.send((raw, d2)).await;
                }
            })
        }));
        let offer = pc.create_offer(None).await?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(offer).await?;
        let _ = gathered.recv().await;
        out.send(pc.local_description().await.ok_or_else(closed)?)
            .await?;
        pc.set_remote_description(inbox.recv().await.ok_or_else(closed)?)
            .await?;
    } else {
        pc.on_data_channel(Box::new(move |dc| {
            let chan_tx = chan_tx.clone();
            Box::pin(async move {
                let d2 = Arc::clone(&dc);
                dc.on_open(Box::new(move || {
                    let d2 = Arc::clone(&d2);
                    Box::pin(async move {
                        if let Ok(raw) = d2.detach().await {
                            let _ = chan_tx.send((raw, d2)).await;
                        }
                    })
                }));
            })
        }));
        pc.set_remote_description(inbox.recv().await.ok_or_else(closed)?)
            .await?;
        let answer = pc.create_answer(None).await?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(answer).await?;
        let _ = gathered.recv().await;
        out.send(pc.local_description().await.ok_or_else(closed)?)
            .await?;
    }
    let (raw, dc): (Arc<DataChannel>, _) = chan_rx.recv().await.ok_or_else(closed)?;
    let who = if host { "host" } else { "phone" };
    println!(
        "{who}: channel open {:.1} ms after the offer",
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut buf = vec![0u8; 70 * 1024];
    let bulk_total = env_num("BULK_MB", 48) as usize * 1_000_000;
    if host {
        loop {
            let n = raw.read(&mut buf).await?;
            if n == PING {
                raw.write(&Bytes::copy_from_slice(&buf[..n])).await?;
                continue;
            }
            let low = Arc::new(Notify::new());
            let l2 = Arc::clone(&low);
            dc.set_buffered_amount_low_threshold(AHEAD / 2).await;
            dc.on_buffered_amount_low(Box::new(move || {
                l2.notify_one();
                Box::pin(async {})
            }))
            .await;
            let cpu0 = process_cpu();
            let payload = Bytes::from(vec![7u8; MESSAGE]);
            let mut left = bulk_total;
            while left > 0 {
                if dc.buffered_amount().await >= AHEAD {
                    low.notified().await;
                    continue;
                }
                raw.write(&payload).await?;
                left = left.saturating_sub(MESSAGE);
            }
            println!(
                "process CPU until the last message was queued: {:.2} s",
                process_cpu() - cpu0
            );
            std::future::pending::<()>().await;
        }
    }
    let pings = env_num("PINGS", 2000) as usize;
    let mut rtts = Vec::with_capacity(pings);
    let ping = Bytes::from(vec![1u8; PING]);
    for _ in 0..pings {
        let t = Instant::now();
        raw.write(&ping).await?;
        raw.read(&mut buf).await?;
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    println!(
        "round trip ({} × {PING} B): p50 {:.0} µs, p99 {:.0} µs",
        rtts.len(),
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100]
    );
    let cpu0 = process_cpu();
    let t = Instant::now();
    raw.write(&Bytes::from_static(b"bulk!")).await?;
    let mut got = 0;
    while got < bulk_total {
        got += raw.read(&mut buf).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "bulk {:.0} MB in {secs:.2} s = {:.1} MB/s; process CPU (both peers) {:.2} s",
        bulk_total as f64 / 1e6,
        bulk_total as f64 / secs / 1e6,
        process_cpu() - cpu0
    );
    Ok(())
}

fn main() -> Result<()> {
    host_and_phone(run)
}
