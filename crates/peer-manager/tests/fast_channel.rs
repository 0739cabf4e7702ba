//! The fast channel (docs/stream-v2.md §4) over real WebRTC on loopback: the
//! phone opens `terminal-fast` on the connected peer; the host closes one
//! opened before channel authentication (its input never reaches the handler),
//! a second one and any other label; after authentication its numbered
//! `input` copies reach `handle_fast_message`, garbage on it closes nothing,
//! and `Peer::send_fast` delivers copies to the phone.

#![allow(clippy::unwrap_used)]

mod harness;

use std::sync::Arc;

use harness::*;
use peer_manager::{Peer, PeerManager, ProtocolHandler};
use rtc_transport::{ChannelOptions, RtcChannel};
use terminal_protocol::{Event, FAST_CHANNEL_LABEL, MAX_FAST_COPY, Request};
use tokio::sync::mpsc;

const SECRET: [u8; 32] = [0x42; 32];
const PHONE: &str = "phone000000000000000000000000001";
/// The pane id the test handler puts on its fast output copies.
const PANE: &str = "%1";

/// What the handler heard, in the order it heard it.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Reliable(Request),
    Fast(Request),
    /// The result of `Peer::send_fast` for the copy of an input it just heard.
    FastSent(bool),
    Disconnected,
}

/// Records everything; answers every `input` (from either path) with a fast
/// `output` copy of the same bytes.
struct FastHandler {
    tx: mpsc::Sender<Heard>,
}

fn copy_of(request: &Request) -> Option<Event> {
    match request {
        Request::Input { data, offset } => Some(Event::Output {
            data: data.clone(),
            offset: *offset,
            snapshot: false,
            pane_id: Some(PANE.to_owned()),
        }),
        _ => None,
    }
}

#[async_trait::async_trait]
impl ProtocolHandler for FastHandler {
    async fn handle_message(&self, peer: Arc<Peer>, request: Request) {
        let copy = copy_of(&request);
        let _ = self.tx.send(Heard::Reliable(request)).await;
        if let Some(copy) = copy {
            let _ = self.tx.send(Heard::FastSent(peer.send_fast(&copy))).await;
        }
    }

    async fn handle_fast_message(&self, peer: Arc<Peer>, request: Request) {
        let copy = copy_of(&request);
        let _ = self.tx.send(Heard::Fast(request)).await;
        if let Some(copy) = copy {
            let _ = self.tx.send(Heard::FastSent(peer.send_fast(&copy))).await;
        }
    }

    async fn peer_disconnected(&self, _device_id: &str) {
        let _ = self.tx.send(Heard::Disconnected).await;
    }
}

struct Setup {
    net: Arc<Net>,
    pm: Arc<PeerManager>,
    heard: mpsc::Receiver<Heard>,
}

fn setup() -> Setup {
    let (net, sink) = Net::new();
    let (tx, heard) = mpsc::channel(1024);
    let config = Net::host_config(PHONE, SECRET);
    let pm = PeerManager::new(
        config,
        sink,
        Arc::new(String::new),
        Arc::new(FastHandler { tx }),
    );
    net.set_host(pm.clone());
    Setup { net, pm, heard }
}

async fn next_heard(heard: &mut mpsc::Receiver<Heard>) -> Heard {
    tokio::time::timeout(WAIT, heard.recv())
        .await
        .expect("the handler heard nothing in time")
        .expect("handler gone")
}

fn numbered(data: &[u8], offset: u64) -> Vec<u8> {
    Request::Input {
        data: data.to_vec(),
        offset: Some(offset),
    }
    .encode()
}

/// Opens a channel with `label` and the fast options from the phone's side of
/// the connected peer.
async fn open(phone: &Phone, label: &str) -> RtcChannel {
    let ch = phone
        .rtc()
        .create_data_channel_with(label, ChannelOptions::fast())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, ch.wait_open())
        .await
        .expect("channel open timed out")
        .expect("channel failed to open");
    ch
}

/// Opens a channel with `label` that the host must refuse: it is closed, or
/// it never opens. The host closes it on arrival; but when the host closed a
/// channel of the phone before, the `rtc` core on the host answers the
/// phone's reset of that stream with a second reset, which closes a channel
/// the phone opened on the freed stream id meanwhile, or leaves it unopened
/// (rtc-transport's crate docs). Two round trips on the reliable channel
/// `rel` give the host time to accept it, which it must not.
async fn open_refused(phone: &Phone, rel: &RtcChannel, label: &str) {
    let ch = phone
        .rtc()
        .create_data_channel_with(label, ChannelOptions::fast())
        .await
        .unwrap();
    ping_pong(rel).await;
    ping_pong(rel).await;
    if ch.is_open() || ch.is_closed() {
        wait_closed(&ch).await;
    }
    assert!(!ch.is_open(), "the host kept {label}");
}

/// Sends `bytes` once on the fast channel (loopback loses nothing) and waits
/// until the handler hears `want` on its fast path; everything else it heard
/// first is returned.
async fn fast_until_heard(
    fast: &RtcChannel,
    bytes: &[u8],
    heard: &mut mpsc::Receiver<Heard>,
    want: &Request,
) -> Vec<Heard> {
    assert!(fast.try_send(bytes), "fast copy not handed on");
    let mut other = Vec::new();
    loop {
        match next_heard(heard).await {
            Heard::Fast(r) if &r == want => return other,
            h => other.push(h),
        }
    }
}

async fn ping_pong(ch: &RtcChannel) {
    ch.send(&Request::Ping.encode()).await.unwrap();
    match next_event(ch).await {
        Event::Pong { .. } => {}
        other => panic!("expected pong, got {other:?}"),
    }
}

/// A fast channel opened before the proof is closed by the host and its
/// input never reaches the handler; the refusal does not count against the
/// phone, whose peer authenticates and is served. (A fast channel the same
/// phone opens afterwards may land on the refused one's stream id, which the
/// `rtc` core on the host resets a second time: see [`open_refused`]. The
/// product's phones open their one fast channel after `auth_ok`, which
/// `fast_input_reaches_the_handler_and_send_fast_reaches_the_phone` covers.)
#[tokio::test]
async fn a_fast_channel_before_authentication_is_closed_unread() {
    let Setup { net, pm, mut heard } = setup();
    let mut phone = Phone::new(&net, PHONE, PhoneOpts::default());
    phone.connect_request().await;
    let ch = phone.channel().await;
    // The host may close it before the phone has seen it open.
    let early = phone
        .rtc()
        .create_data_channel_with(FAST_CHANNEL_LABEL, ChannelOptions::fast())
        .await
        .unwrap();
    if tokio::time::timeout(WAIT, early.wait_open())
        .await
        .is_ok_and(|r| r.is_ok())
    {
        let _ = early.try_send(&numbered(b"early", 0));
    }
    wait_closed(&early).await;
    phone.prove(&ch, &SECRET).await;
    assert!(!pm.peer(PHONE).unwrap().has_fast_channel());

    ch.send(&Request::ListSessions.encode()).await.unwrap();
    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Reliable(Request::ListSessions)
    );
    ping_pong(&ch).await;
    // The early copy never reached the handler, on either path.
    assert!(heard.try_recv().is_err());
    assert_eq!(pm.peer_count(), 1);
}

/// After authentication the fast channel's `input` copies reach
/// `handle_fast_message`, and `send_fast` delivers copies to the phone; before
/// the phone opened one, `send_fast` says false.
#[tokio::test]
async fn fast_input_reaches_the_handler_and_send_fast_reaches_the_phone() {
    let Setup { net, pm, mut heard } = setup();
    let mut phone = Phone::new(&net, PHONE, PhoneOpts::default());
    let ch = phone.connect_and_auth(&SECRET).await;

    ch.send(&numbered(b"a", 0)).await.unwrap();
    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Reliable(Request::Input {
            data: b"a".to_vec(),
            offset: Some(0)
        })
    );
    assert_eq!(next_heard(&mut heard).await, Heard::FastSent(false));

    let fast = open(&phone, FAST_CHANNEL_LABEL).await;
    let want = Request::Input {
        data: b"b".to_vec(),
        offset: Some(1),
    };
    let other = fast_until_heard(&fast, &numbered(b"b", 1), &mut heard, &want).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(next_heard(&mut heard).await, Heard::FastSent(true));
    let got = Event::decode(
        &tokio::time::timeout(WAIT, fast.recv())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        got,
        Event::Output {
            data: b"b".to_vec(),
            offset: Some(1),
            snapshot: false,
            pane_id: Some(PANE.to_owned()),
        }
    );

    // The largest copy goes both ways too; a reliable input's copy arrives on
    // the fast channel while the reliable channel carries nothing extra.
    let big = vec![b'z'; MAX_FAST_COPY];
    let want = Request::Input {
        data: big.clone(),
        offset: Some(2),
    };
    fast_until_heard(&fast, &numbered(&big, 2), &mut heard, &want).await;
    assert_eq!(next_heard(&mut heard).await, Heard::FastSent(true));
    match Event::decode(
        &tokio::time::timeout(WAIT, fast.recv())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap()
    {
        Event::Output { data, offset, .. } => assert_eq!((data, offset), (big, Some(2))),
        other => panic!("expected an output copy, got {other:?}"),
    }
    ch.send(&numbered(b"c", 1026)).await.unwrap();
    assert!(matches!(next_heard(&mut heard).await, Heard::Reliable(_)));
    assert_eq!(next_heard(&mut heard).await, Heard::FastSent(true));
    match Event::decode(
        &tokio::time::timeout(WAIT, fast.recv())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap()
    {
        Event::Output { data, offset, .. } => {
            assert_eq!((data, offset), (b"c".to_vec(), Some(1026)))
        }
        other => panic!("expected an output copy, got {other:?}"),
    }
    ping_pong(&ch).await;

    // The host closes the peer: its fast channel closes with it.
    let peer = pm.peer(PHONE).unwrap();
    peer.close();
    wait_closed(&fast).await;
    assert!(!peer.send_fast(&Event::output(b"x".to_vec())));
}

/// One fast channel per peer: a second one and a channel with another label
/// are closed, the first keeps working; once the phone closes it the peer
/// stays, `send_fast` says false and no new fast channel is accepted.
#[tokio::test]
async fn a_second_fast_channel_and_other_labels_are_closed() {
    let Setup { net, pm, mut heard } = setup();
    let mut phone = Phone::new(&net, PHONE, PhoneOpts::default());
    let ch = phone.connect_and_auth(&SECRET).await;
    let first = open(&phone, FAST_CHANNEL_LABEL).await;
    let want = Request::Input {
        data: b"1".to_vec(),
        offset: Some(0),
    };
    fast_until_heard(&first, &numbered(b"1", 0), &mut heard, &want).await;

    open_refused(&phone, &ch, FAST_CHANNEL_LABEL).await;
    open_refused(&phone, &ch, "something-else").await;
    let want = Request::Input {
        data: b"2".to_vec(),
        offset: Some(1),
    };
    fast_until_heard(&first, &numbered(b"2", 1), &mut heard, &want).await;

    first.close();
    wait_until("the host forgets the closed fast channel", || {
        pm.peer(PHONE).is_some_and(|p| !p.has_fast_channel())
    })
    .await;
    ping_pong(&ch).await;
    open_refused(&phone, &ch, FAST_CHANNEL_LABEL).await;
    ch.send(&numbered(b"3", 2)).await.unwrap();
    loop {
        match next_heard(&mut heard).await {
            Heard::Reliable(_) => break,
            Heard::FastSent(true) => {} // copies of the earlier fast inputs
            h => panic!("unexpected {h:?}"),
        }
    }
    assert_eq!(next_heard(&mut heard).await, Heard::FastSent(false));
    assert_eq!(pm.peer_count(), 1);
}

/// Garbage and every message other than a numbered small `input` on the fast
/// channel are dropped: nothing reaches the handler, nothing is answered on
/// either channel, and the peer stays up.
#[tokio::test]
async fn garbage_on_the_fast_channel_closes_nothing() {
    let Setup { net, pm, mut heard } = setup();
    let mut phone = Phone::new(&net, PHONE, PhoneOpts::default());
    let ch = phone.connect_and_auth(&SECRET).await;
    let fast = open(&phone, FAST_CHANNEL_LABEL).await;
    let junk: Vec<Vec<u8>> = vec![
        b"\xc1".to_vec(),
        vec![0xff; 300],
        b"\x81\xa4type\xa7unknown".to_vec(),
        Request::ListSessions.encode(),
        Request::Ping.encode(),
        Request::Detach.encode(),
        Request::input(b"no offset".to_vec()).encode(),
        numbered(&[b'x'; MAX_FAST_COPY + 1], 0),
        Request::AuthResponse {
            nonce: "bm9uY2U=".into(),
            mac: "bWFj".into(),
        }
        .encode(),
    ];
    for j in &junk {
        assert!(fast.try_send(j));
    }
    // Sent last, so on this lossless, in-order loopback path it is heard
    // after the junk was dropped.
    let want = Request::Input {
        data: b"ok".to_vec(),
        offset: Some(0),
    };
    let other = fast_until_heard(&fast, &numbered(b"ok", 0), &mut heard, &want).await;
    assert!(other.is_empty(), "junk reached the handler: {other:?}");
    assert_eq!(next_heard(&mut heard).await, Heard::FastSent(true));
    // Only the copy of "ok" came back on the fast channel, and the reliable
    // channel has nothing before the pong (no `error`, no second `pong`).
    match Event::decode(
        &tokio::time::timeout(WAIT, fast.recv())
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap()
    {
        Event::Output { data, .. } => assert_eq!(data, b"ok"),
        other => panic!("expected the copy of ok, got {other:?}"),
    }
    ping_pong(&ch).await;
    assert!(pm.peer(PHONE).unwrap().has_fast_channel());
    assert!(!pm.peer(PHONE).unwrap().is_closed());
    assert!(heard.try_recv().is_err());
}
