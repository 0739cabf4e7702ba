//! Keystroke round trips over a lossy path, with and without the fast channel
//! (docs/stream-v2.md §4), through the real peer manager (ignored by default:
//! it prints numbers, it asserts none). Run:
//! `cargo nextest run -p peer-manager --test fast_bench --run-ignored only --no-capture`.
//!
//! Everything between phone and host crosses UDP relays that drop each
//! datagram with a probability and delay the rest. One keystroke at a time
//! (nothing sent behind it, the case SCTP's 1 s minimum RTO hurts most): the
//! phone sends `input{offset}` (first as a fast copy when it has the fast
//! channel), the host applies each offset once (`InOrder`) and echoes it as
//! `output` (fast copy first), and the phone takes whichever echo arrives first.

#![allow(clippy::unwrap_used)]

mod harness;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use peer_manager::{Peer, PeerManager, ProtocolHandler};
use rtc_transport::{ChannelOptions, RtcChannel};
use terminal_protocol::{Event, FAST_CHANNEL_LABEL, InOrder, Request, Verdict, Via};

const SECRET: [u8; 32] = [0x42; 32];
const PHONE: &str = "phone000000000000000000000000001";
const KEYSTROKES: u64 = 200;
/// One-way delay added by the relays (each datagram crosses one).
const DELAY: Duration = Duration::from_millis(10);

/// Applies each input byte once, from either path, and echoes it.
struct Echo {
    input: Mutex<InOrder>,
}

impl Echo {
    async fn on_input(&self, peer: &Peer, request: Request, via: Via) {
        let Request::Input {
            data,
            offset: Some(offset),
        } = request
        else {
            return;
        };
        let verdict = self.input.lock().unwrap().accept(offset, data.len(), via);
        if let Verdict::Apply { skip: 0 } = verdict {
            let copy = Event::Output {
                data: data.clone(),
                offset: Some(offset),
                snapshot: false,
                pane_id: Some("%1".to_owned()),
            };
            peer.send_fast(&copy);
            let out = Event::Output {
                data,
                offset: Some(offset),
                snapshot: false,
                pane_id: None,
            };
            let _ = peer.send_message(&out).await;
        }
    }
}

#[async_trait::async_trait]
impl ProtocolHandler for Echo {
    async fn handle_message(&self, peer: Arc<Peer>, request: Request) {
        self.on_input(&peer, request, Via::Reliable).await;
    }
    async fn handle_fast_message(&self, peer: Arc<Peer>, request: Request) {
        self.on_input(&peer, request, Via::Fast).await;
    }
    async fn peer_disconnected(&self, _device_id: &str) {}
}

/// The first echo of `offset` on either channel (older ones are skipped).
async fn echo_of(ch: &RtcChannel, fast: Option<&RtcChannel>, offset: u64) {
    loop {
        let bytes = tokio::select! {
            m = ch.recv() => m.expect("terminal channel closed"),
            m = async {
                match fast {
                    Some(f) => f.recv().await,
                    None => std::future::pending().await,
                }
            } => m.expect("fast channel closed"),
        };
        if let Ok(Event::Output {
            offset: Some(o), ..
        }) = Event::decode(&bytes)
            && o == offset
        {
            return;
        }
    }
}

async fn keystrokes(ch: &RtcChannel, fast: Option<&RtcChannel>, first: u64) -> Vec<Duration> {
    let mut rtts = Vec::new();
    for offset in first..first + KEYSTROKES {
        let input = Request::Input {
            data: b"k".to_vec(),
            offset: Some(offset),
        }
        .encode();
        let t = Instant::now();
        if let Some(f) = fast {
            // Like the host: the original leaves after the copy, not in its datagram.
            if f.try_send(&input) {
                tokio::time::sleep(rtc_transport::FAST_COPY_LEAD).await;
            }
        }
        ch.send(&input).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), echo_of(ch, fast, offset))
            .await
            .expect("no echo within 30 s");
        rtts.push(t.elapsed());
    }
    rtts.sort();
    rtts
}

fn summary(label: &str, rtts: &[Duration]) {
    let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q).round() as usize];
    let over = |d: Duration| rtts.iter().filter(|r| **r > d).count();
    println!(
        "{label}: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  >250ms {}/{}  >900ms {}/{}",
        at(0.5),
        at(0.9),
        at(0.99),
        rtts[rtts.len() - 1],
        over(Duration::from_millis(250)),
        rtts.len(),
        over(Duration::from_millis(900)),
        rtts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints numbers"]
async fn keystroke_round_trips_with_and_without_the_fast_channel() {
    for loss in [0.0, 0.02, 0.05] {
        let (net, sink) = Net::new();
        let mut config = Net::host_config(PHONE, SECRET);
        config.core.idle = Duration::from_secs(3600);
        let echo = Arc::new(Echo {
            input: Mutex::new(InOrder::starting_at(0)),
        });
        let pm = PeerManager::new(config, sink, Arc::new(String::new), echo);
        net.set_host(pm.clone());
        net.use_relays();
        net.drop_host_candidates
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut phone = Phone::new(&net, PHONE, PhoneOpts::default());
        let ch = phone.connect_and_auth(&SECRET).await;
        net.relay_faults(loss, DELAY);

        let reliable = keystrokes(&ch, None, 0).await;
        let fast = phone
            .rtc()
            .create_data_channel_with(FAST_CHANNEL_LABEL, ChannelOptions::fast())
            .await
            .unwrap();
        fast.wait_open().await.unwrap();
        // Measured once the host has accepted it.
        wait_until("the host accepted the fast channel", || {
            pm.peer(PHONE).is_some_and(|p| p.has_fast_channel())
        })
        .await;
        let dual = keystrokes(&ch, Some(&fast), KEYSTROKES).await;
        println!(
            "loss {:.0} % per datagram, {DELAY:?} each way:",
            loss * 100.0
        );
        summary("  reliable only     ", &reliable);
        summary("  with fast channel ", &dual);
        pm.close_all().await;
    }
}
