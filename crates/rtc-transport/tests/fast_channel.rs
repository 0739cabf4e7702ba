//! The fast channel of stream v2 (docs/stream-v2.md §4) at the transport: the
//! answerer opens an unordered, never-retransmitted channel on an already
//! connected peer, SCTP announces it in band, both ends see it open with the
//! same options, messages flow both ways with the non-waiting send, and that
//! send drops instead of waiting when there is no room.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use rtc_transport::{ChannelOptions, RtcChannel, RtcPeer, TRY_SEND_LIMIT};
use tokio::sync::mpsc;
use tokio::time::timeout;

const FAST: &str = "terminal-fast";

/// A connected pair like `common::connect`, keeping each side's receiver of
/// channels the other side opens later.
struct Connected {
    offerer: RtcPeer,
    answerer: RtcPeer,
    off_ch: RtcChannel,
    ans_ch: RtcChannel,
    off_opened: mpsc::Receiver<RtcChannel>,
    ans_opened: mpsc::Receiver<RtcChannel>,
}

async fn connected() -> Connected {
    let mut o = side().await;
    let mut a = side().await;
    let off_ch = o.peer.create_data_channel("terminal").await.unwrap();
    let offer = o.peer.create_offer(false).await.unwrap();
    let answer = a.peer.accept_offer(&offer).await.unwrap();
    o.peer.set_remote_answer(&answer).await.unwrap();
    forward(o.cands, a.peer.clone(), false);
    forward(a.cands, o.peer.clone(), false);
    wait_state(&mut o.states, rtc_transport::PeerState::Connected).await;
    let ans_ch = timeout(WAIT, a.channels.recv()).await.unwrap().unwrap();
    timeout(WAIT, off_ch.wait_open()).await.unwrap().unwrap();
    timeout(WAIT, ans_ch.wait_open()).await.unwrap().unwrap();
    Connected {
        offerer: o.peer,
        answerer: a.peer,
        off_ch,
        ans_ch,
        off_opened: o.channels,
        ans_opened: a.channels,
    }
}

/// The answerer opens the fast channel after the connection is up: the
/// offerer sees it arrive, both ends report the fast options, and both
/// directions carry messages while the terminal channel keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answerer_opens_a_fast_channel_on_a_connected_peer() {
    let mut c = connected().await;
    assert!(c.ans_ch.ordered());
    assert_eq!(c.ans_ch.options(), ChannelOptions::reliable());

    let ans_fast = c
        .answerer
        .create_data_channel_with(FAST, ChannelOptions::fast())
        .await
        .unwrap();
    let off_fast = timeout(WAIT, c.off_opened.recv()).await.unwrap().unwrap();
    timeout(WAIT, ans_fast.wait_open()).await.unwrap().unwrap();
    timeout(WAIT, off_fast.wait_open()).await.unwrap().unwrap();
    assert_eq!(off_fast.label(), FAST);
    assert_eq!(ans_fast.label(), FAST);
    assert!(!off_fast.ordered());
    // The core keeps only `ordered` of a channel the other side opened
    // (rtc-transport's crate docs); delivery follows the real options.
    assert_eq!(off_fast.options().max_retransmits, None);
    assert_eq!(ans_fast.options(), ChannelOptions::fast());
    assert!(!ChannelOptions::fast().is_reliable());

    // Unordered: compare as sets. Loopback loses nothing, so every copy arrives.
    let want: BTreeSet<Vec<u8>> = (0..20u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
    for m in &want {
        assert!(ans_fast.try_send(m));
    }
    let mut got = BTreeSet::new();
    while got.len() < want.len() {
        got.insert(recv(&off_fast).await.to_vec());
    }
    assert_eq!(got, want);
    for m in &want {
        assert!(off_fast.try_send(m));
    }
    let mut got = BTreeSet::new();
    while got.len() < want.len() {
        got.insert(recv(&ans_fast).await.to_vec());
    }
    assert_eq!(got, want);

    // The reliable channel is untouched, and the ordinary send works on a fast channel too.
    c.off_ch.send(b"still here").await.unwrap();
    assert_eq!(&recv(&c.ans_ch).await[..], b"still here");
    off_fast.send(b"waiting send").await.unwrap();
    assert_eq!(&recv(&ans_fast).await[..], b"waiting send");

    // Closing the fast channel leaves the terminal channel open.
    ans_fast.close();
    assert!(timeout(WAIT, off_fast.recv()).await.unwrap().is_none());
    assert!(!ans_fast.try_send(b"after close"));
    assert!(!off_fast.try_send(b"after close"));
    c.ans_ch.send(b"after fast close").await.unwrap();
    assert_eq!(&recv(&c.off_ch).await[..], b"after fast close");
    c.offerer.close().await;
    c.answerer.close().await;
}

/// The non-waiting send refuses what it cannot hand on at once: anything on
/// a channel that is not open (yet, or any more), empty messages and messages
/// above its buffer limit. The offerer may open a channel with other options
/// on a connected peer too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_send_refuses_instead_of_waiting() {
    let lone = side().await;
    let unborn = lone
        .peer
        .create_data_channel_with(FAST, ChannelOptions::fast())
        .await
        .unwrap();
    assert!(!unborn.is_open());
    assert!(!unborn.try_send(b"not open"));
    lone.peer.close().await;

    let mut c = connected().await;
    let options = ChannelOptions {
        ordered: false,
        max_retransmits: Some(2),
    };
    let mine = c
        .offerer
        .create_data_channel_with("other", options)
        .await
        .unwrap();
    timeout(WAIT, mine.wait_open()).await.unwrap().unwrap();
    assert_eq!(mine.options(), options);
    let theirs = timeout(WAIT, c.ans_opened.recv()).await.unwrap().unwrap();
    timeout(WAIT, theirs.wait_open()).await.unwrap().unwrap();
    assert_eq!(theirs.label(), "other");
    assert_eq!(theirs.options().ordered, options.ordered);
    assert!(
        c.off_opened.try_recv().is_err(),
        "the offerer was told of its own channel"
    );

    assert!(!mine.try_send(b""));
    assert!(!mine.try_send(&vec![0u8; TRY_SEND_LIMIT + 1]));
    assert!(mine.try_send(&[1u8; 1024]));
    c.offerer.close().await;
    assert!(!mine.try_send(b"closed"));
    assert!(!c.off_ch.try_send(b"closed"));
    c.answerer.close().await;
}

/// When the connection has no room because the reliable channel's receiver
/// stopped reading (its SCTP window closes, then SCTP's queue, shared by every
/// channel of the connection, fills), the non-waiting send never blocks: it
/// accepts a bounded number of messages (parked writes, or up to its buffer
/// limit), then drops. Once the receiver reads again, the fast channel
/// carries messages again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_association_makes_try_send_drop_not_wait() {
    let c = connected().await;
    let ans_fast = c
        .answerer
        .create_data_channel_with(FAST, ChannelOptions::fast())
        .await
        .unwrap();
    timeout(WAIT, ans_fast.wait_open()).await.unwrap().unwrap();
    let mut off_opened = c.off_opened;
    let off_fast = timeout(WAIT, off_opened.recv()).await.unwrap().unwrap();
    timeout(WAIT, off_fast.wait_open()).await.unwrap().unwrap();

    // Bulk on the answerer's terminal channel, which the offerer does not read.
    let bulk = c.ans_ch.clone();
    let filler = tokio::spawn(async move {
        let chunk = vec![9u8; 16 * 1024];
        while bulk.send(&chunk).await.is_ok() {}
    });
    // Fast copies are tried until one is refused (the connection fills up, so
    // one is); every try returns at once.
    let mut accepted = 0usize;
    timeout(WAIT, async {
        while ans_fast.try_send(&[7u8; 1024]) {
            accepted += 1;
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the non-waiting send never refused while the connection filled up");
    assert!(ans_fast.is_open());
    println!(
        "{accepted} fast messages accepted before the first refusal; fast channel buffered {} bytes then",
        ans_fast.buffered_amount()
    );

    // The offerer reads again: the terminal channel drains, the parked fast
    // writes complete, and a new fast message gets through.
    let drain_ch = c.off_ch.clone();
    let drain = tokio::spawn(async move { while drain_ch.recv().await.is_some() {} });
    let mut seen = 0usize;
    timeout(WAIT, async {
        loop {
            if ans_fast.try_send(b"after") {
                let m = off_fast.recv().await.unwrap();
                if &m[..] == b"after" {
                    break;
                }
                seen += 1;
            } else {
                tokio::task::yield_now().await;
            }
        }
    })
    .await
    .expect("the fast channel did not recover once the receiver read again");
    println!("{seen} earlier fast messages seen before 'after'");
    c.offerer.close().await;
    c.answerer.close().await;
    let _ = timeout(WAIT, filler).await.unwrap();
    let _ = timeout(WAIT, drain).await;
}

/// How the host treats the phone's extra channels: the one it keeps, one it
/// refuses (closes at once on arrival), and, after the opener closed the kept
/// one, the next opens again on both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the rtc core of the side that closed a channel resets the stream a second time when the other side's reset arrives, and the other side has already reused the id (crate docs); the product's phones open one fast channel and are never refused"]
async fn channels_refused_or_closed_do_not_stop_the_next_from_opening() {
    let mut c = connected().await;
    let open = |label: &'static str| {
        let answerer = c.answerer.clone();
        async move {
            let ch = answerer
                .create_data_channel_with(label, ChannelOptions::fast())
                .await
                .unwrap();
            timeout(WAIT, ch.wait_open())
                .await
                .expect("open timed out")
                .expect("open failed");
            ch
        }
    };
    let kept = open(FAST).await;
    let kept_far = timeout(WAIT, c.off_opened.recv()).await.unwrap().unwrap();
    assert!(kept.try_send(b"one"));
    assert_eq!(&recv(&kept_far).await[..], b"one");

    let refused = open(FAST).await;
    let refused_far = timeout(WAIT, c.off_opened.recv()).await.unwrap().unwrap();
    refused_far.close();
    assert!(timeout(WAIT, refused.recv()).await.unwrap().is_none());

    kept.close();
    assert!(timeout(WAIT, kept_far.recv()).await.unwrap().is_none());

    let next = open(FAST).await;
    let next_far = timeout(WAIT, c.off_opened.recv()).await.unwrap().unwrap();
    assert!(next.try_send(b"two"));
    assert_eq!(&recv(&next_far).await[..], b"two");
    c.ans_ch.send(b"terminal").await.unwrap();
    assert_eq!(&recv(&c.off_ch).await[..], b"terminal");
    c.offerer.close().await;
    c.answerer.close().await;
}
