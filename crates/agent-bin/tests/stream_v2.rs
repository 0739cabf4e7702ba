//! Stream v2 on the host (docs/stream-v2.md): offsets, snapshots with
//! offsets, resume inside and outside the ring, the lag bound under a flood
//! to a phone that does not take anything, fast-channel copies and input
//! dedupe — the handler against a real tmux server on a private socket, with
//! a channel standing in for the phone's two DataChannels.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use agent_bin::handler::{Handler, PeerLink};
use terminal_protocol::{Attach, Decompressor, Event, MAX_FAST_COPY, RESUME_RING_BYTES, Request};
use test_support::PrivateTmux;
use tmux_bridge::{BridgeConfig, TmuxBridge};
use tokio::sync::{Semaphore, mpsc};

const WAIT: Duration = Duration::from_secs(20);
const DEVICE: &str = "0123456789abcdef0123456789abcdef";

/// Which channel an event went out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chan {
    Reliable,
    Fast,
}

/// A phone stand-in: both channels land in one channel, in sending order.
/// Reliable sends first take a permit of `gate` (a phone that accepts only
/// as much as the test releases); fast copies never wait.
struct Phone {
    tx: mpsc::Sender<(Chan, Event)>,
    gate: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl PeerLink for Phone {
    fn device_id(&self) -> &str {
        DEVICE
    }
    async fn send_event(&self, event: &Event) -> Result<(), String> {
        self.gate
            .acquire()
            .await
            .map_err(|e| e.to_string())?
            .forget();
        self.tx
            .send((Chan::Reliable, event.clone()))
            .await
            .map_err(|e| e.to_string())
    }
    fn max_message_size(&self) -> usize {
        65_536
    }
    async fn send_fast(&self, event: &Event) -> bool {
        self.tx.try_send((Chan::Fast, event.clone())).is_ok()
    }
}

/// Types `line` into `pane` and returns once the shell has run it and then
/// signalled `channel` (tmux `wait-for`): the pane's output is done.
async fn run_in_pane(tmux: &PrivateTmux, pane: &str, line: &str, channel: &str) {
    type_line(tmux, pane, &format!("{line}; tmux wait-for -S {channel}"));
    wait_for(tmux, channel).await;
}

/// Types `line` and Enter into `pane`.
fn type_line(tmux: &PrivateTmux, pane: &str, line: &str) {
    tmux.tmux(&["send-keys", "-t", pane, "-l", line]);
    tmux.tmux(&["send-keys", "-t", pane, "Enter"]);
}

/// Returns once something in a pane signalled `channel` (tmux `wait-for -S`).
async fn wait_for(tmux: &PrivateTmux, channel: &str) {
    let mut wait = tmux.command();
    wait.args(["wait-for", channel]);
    let status = tokio::task::spawn_blocking(move || wait.status())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "tmux wait-for {channel}: {status}");
}

/// One connected phone (one peer object) and what it received.
struct Link {
    link: Arc<dyn PeerLink>,
    rx: mpsc::Receiver<(Chan, Event)>,
    gate: Arc<Semaphore>,
}

fn phone(permits: usize) -> Link {
    let (tx, rx) = mpsc::channel(4096);
    let gate = Arc::new(Semaphore::new(permits));
    let link: Arc<dyn PeerLink> = Arc::new(Phone {
        tx,
        gate: gate.clone(),
    });
    Link { link, rx, gate }
}

impl Link {
    async fn next(&mut self) -> (Chan, Event) {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no event in time")
            .expect("channel closed")
    }
    async fn reliable(&mut self) -> Event {
        loop {
            if let (Chan::Reliable, e) = self.next().await {
                return e;
            }
        }
    }
}

struct Rig {
    tmux: PrivateTmux,
    handler: Handler,
    pane: String,
}

async fn rig(tag: &str) -> Rig {
    let tmux = PrivateTmux::tagged(&format!("s2-{tag}"));
    let pane = tmux.new_session("work", 100, 30).unwrap();
    let mut cfg = BridgeConfig::new(&tmux.socket);
    cfg.timeout = Duration::from_secs(30);
    // As the agent runs it: pane output handed over by its own binary.
    cfg.pipe_helper = Some(agent_bin::pane_pipe_helper(env!("CARGO_BIN_EXE_muxlink")));
    let bridge = TmuxBridge::start_with(cfg).await.unwrap();
    Rig {
        tmux,
        handler: Handler::new(bridge),
        pane,
    }
}

fn attach(pane: &str, compression: bool, offsets: bool, resume_from: Option<u64>) -> Request {
    Request::Attach(Attach {
        pane_id: pane.to_string(),
        cols: 80,
        rows: 24,
        reattach: resume_from.is_some(),
        compression: compression.then(|| "deflate".to_string()),
        offsets,
        resume_from,
    })
}

/// The phone's side of one attachment with offsets: applies every reliable
/// output in order and checks that offsets follow plaintext lengths.
struct Screen {
    inflate: Option<Decompressor>,
    next: u64,
    /// Stream plaintext since the last snapshot.
    text: Vec<u8>,
    snapshots: usize,
    fast_copies: usize,
    /// Copies whose originals have not come yet, in stream order: later
    /// copies may go before an earlier one's original (§4's lead).
    pending_fast: VecDeque<(u64, Vec<u8>)>,
}

impl Screen {
    /// Reads `attached` and returns the screen state it announces.
    async fn attached(p: &mut Link, deflate: bool) -> (Screen, bool) {
        let Event::Attached {
            offset, resumed, ..
        } = p.reliable().await
        else {
            panic!("no attached")
        };
        let screen = Screen {
            inflate: deflate.then(Decompressor::new),
            next: offset.expect("attached.offset with offsets"),
            text: Vec::new(),
            snapshots: 0,
            fast_copies: 0,
            pending_fast: VecDeque::new(),
        };
        (screen, resumed)
    }

    /// Applies events until the stream text holds `needle`.
    async fn until(&mut self, p: &mut Link, pane: &str, needle: &str) {
        let needle = needle.as_bytes();
        self.apply_until(p, pane, |s| {
            s.text.windows(needle.len()).any(|w| w == needle)
        })
        .await;
    }

    /// Applies events until `done` holds.
    async fn apply_until(&mut self, p: &mut Link, pane: &str, done: impl Fn(&Screen) -> bool) {
        while !done(self) {
            match p.next().await {
                (
                    Chan::Fast,
                    Event::Output {
                        data,
                        offset,
                        snapshot,
                        pane_id,
                    },
                ) => {
                    assert!(!snapshot);
                    assert_eq!(pane_id.as_deref(), Some(pane));
                    assert!(data.len() <= MAX_FAST_COPY);
                    self.pending_fast.push_back((offset.unwrap(), data));
                    self.fast_copies += 1;
                }
                (
                    Chan::Reliable,
                    Event::Output {
                        data,
                        offset,
                        snapshot,
                        pane_id,
                    },
                ) => {
                    assert_eq!(pane_id, None);
                    let plain = match self.inflate.as_mut() {
                        Some(d) => d.decompress(&data).unwrap(),
                        None => data,
                    };
                    let offset = offset.expect("offset on every output");
                    if snapshot {
                        assert!(offset >= self.next, "snapshot moves forward");
                        // Copies of skipped bytes never get their originals.
                        self.pending_fast.retain(|(o, _)| *o >= offset);
                        self.next = offset;
                        self.text.clear();
                        self.snapshots += 1;
                        continue;
                    }
                    assert_eq!(offset, self.next, "no byte lost or doubled");
                    // A copy, if this output has one, went first with the
                    // same bytes; outputs without one (too big for a copy, or
                    // the rest of such a run) may leave after later copies.
                    match self.pending_fast.front() {
                        Some((fast_offset, fast)) if *fast_offset == offset => {
                            assert_eq!(fast, &plain, "a copy and its original differ");
                            self.pending_fast.pop_front();
                        }
                        Some((fast_offset, _)) => assert!(
                            *fast_offset >= offset + plain.len() as u64,
                            "a copy at {fast_offset} overlaps an output without one at {offset}"
                        ),
                        None => {}
                    }
                    self.next += plain.len() as u64;
                    self.text.extend_from_slice(&plain);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn offsets_follow_plaintext_and_fast_copies_go_first() {
    let r = rig("offsets").await;
    let mut p = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(p.link.clone(), attach(&r.pane, true, true, None))
        .await;
    let (mut screen, resumed) = Screen::attached(&mut p, true).await;
    assert!(!resumed);
    let start = screen.next;
    // A fresh attach: the snapshot comes first, numbered where the stream
    // continues, i.e. `attached.offset`.
    run_in_pane(&r.tmux, &r.pane, "echo mux$((40+2))link", "w1").await;
    screen.until(&mut p, &r.pane, "mux42link").await;
    assert_eq!(screen.snapshots, 1);
    assert!(screen.fast_copies > 0);
    // A big output: several messages, continuous offsets.
    run_in_pane(&r.tmux, &r.pane, "seq 1 40000; echo big$((1+1))done", "w2").await;
    screen.until(&mut p, &r.pane, "big2done").await;
    assert!(screen.next - start > 200_000);
    assert_eq!(screen.snapshots, 1);
}

#[tokio::test]
async fn a_phone_without_offsets_sees_no_new_fields() {
    let r = rig("plain").await;
    let mut p = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(p.link.clone(), attach(&r.pane, false, false, None))
        .await;
    assert_eq!(p.reliable().await, Event::attached(r.pane.clone(), None));
    run_in_pane(&r.tmux, &r.pane, "echo mux$((40+2))link", "w").await;
    let mut text = String::new();
    while !text.contains("mux42link") {
        match p.next().await {
            (
                Chan::Reliable,
                Event::Output {
                    data,
                    offset: None,
                    snapshot: false,
                    pane_id: None,
                },
            ) => {
                text.push_str(&String::from_utf8_lossy(&data));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn resume_inside_the_ring_replays_exactly() {
    let r = rig("resume").await;
    let mut first = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(first.link.clone(), attach(&r.pane, true, true, None))
        .await;
    let (mut screen, _) = Screen::attached(&mut first, true).await;
    run_in_pane(&r.tmux, &r.pane, "echo one$((0+1))", "w1").await;
    screen.until(&mut first, &r.pane, "one1").await;
    // The phone goes away; the pane keeps printing meanwhile.
    r.handler.peer_disconnected(DEVICE).await;
    run_in_pane(&r.tmux, &r.pane, "seq 1 5000; echo two$((1+1))", "w2").await;
    let resume_at = screen.next;
    let mut second = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(
            second.link.clone(),
            attach(&r.pane, true, true, Some(resume_at)),
        )
        .await;
    let (mut resumed_screen, resumed) = Screen::attached(&mut second, true).await;
    assert!(resumed);
    assert_eq!(resumed_screen.next, resume_at);
    resumed_screen.until(&mut second, &r.pane, "two2").await;
    // No snapshot: the bytes printed while away arrive in order, once.
    assert_eq!(resumed_screen.snapshots, 0);
    let text = String::from_utf8_lossy(&resumed_screen.text);
    assert!(text.contains("\n4999\r\n5000\r\n"), "{text:?}");
    assert!(
        !text.contains("one1"),
        "nothing before resumeFrom is sent again"
    );
}

#[tokio::test]
async fn resume_outside_the_ring_falls_back_to_a_snapshot() {
    let r = rig("noresume").await;
    let mut first = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(first.link.clone(), attach(&r.pane, false, true, None))
        .await;
    let (mut screen, _) = Screen::attached(&mut first, false).await;
    run_in_pane(&r.tmux, &r.pane, "echo one$((0+1))", "w1").await;
    screen.until(&mut first, &r.pane, "one1").await;
    r.handler.peer_disconnected(DEVICE).await;
    // Four times the ring while away.
    let flood = 4 * RESUME_RING_BYTES;
    let line = format!("yes 0123456789abcdef | head -c {flood}; echo; echo flood$((0+1))over");
    run_in_pane(&r.tmux, &r.pane, &line, "w2").await;
    let mut second = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(
            second.link.clone(),
            attach(&r.pane, false, true, Some(screen.next)),
        )
        .await;
    let (mut fresh, resumed) = Screen::attached(&mut second, false).await;
    assert!(!resumed);
    assert!(fresh.next > screen.next + RESUME_RING_BYTES as u64);
    // The snapshot carries `attached.offset`; the stream continues there.
    let snapshot_at = fresh.next;
    match second.reliable().await {
        Event::Output {
            offset, snapshot, ..
        } => assert_eq!((offset, snapshot), (Some(snapshot_at), true)),
        other => panic!("{other:?}"),
    }
    run_in_pane(&r.tmux, &r.pane, "echo three$((1+2))", "w3").await;
    fresh.until(&mut second, &r.pane, "three3").await;
}

#[tokio::test]
async fn a_phone_that_takes_nothing_during_a_flood_gets_a_snapshot() {
    let r = rig("lag").await;
    // Two sends allowed: `attached` and the snapshot.
    let mut p = phone(2);
    r.handler
        .handle(p.link.clone(), attach(&r.pane, true, true, None))
        .await;
    let (mut screen, _) = Screen::attached(&mut p, true).await;
    let start = screen.next;
    // The pane floods while the phone accepts nothing more: the flood
    // finishes all the same (the pane is read at full speed into the ring).
    let flood = 8 * RESUME_RING_BYTES;
    let line = format!("yes 0123456789abcdef | head -c {flood}; echo; echo flood$((0+1))over");
    run_in_pane(&r.tmux, &r.pane, &line, "w").await;
    p.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    // What was handed to the channel goes out, then the lag snapshot; the
    // stream continues after it.
    screen
        .apply_until(&mut p, &r.pane, |s| s.snapshots == 2)
        .await;
    run_in_pane(&r.tmux, &r.pane, "echo after$((1+1))", "w2").await;
    screen.until(&mut p, &r.pane, "after2").await;
    // The attach snapshot, then one for the lag (and perhaps the lag one
    // again, settled, when the flood ended within 50 ms of its capture); far
    // less than the flood reached the phone.
    assert!((2..=3).contains(&screen.snapshots), "{}", screen.snapshots);
    let stats = r.handler.stream_stats();
    assert_eq!(stats.lag_snapshots, 1);
    assert!(
        stats.skipped_bytes > (flood - 2 * RESUME_RING_BYTES) as u64,
        "{stats:?}"
    );
    let sent = screen.next - start - stats.skipped_bytes;
    assert!(
        sent < (3 * RESUME_RING_BYTES) as u64,
        "{sent} bytes sent of {flood}"
    );
}

#[tokio::test]
async fn a_snapshot_taken_during_a_flood_is_sent_again_once_the_pane_is_quiet() {
    let r = rig("settle").await;
    let mut p = phone(2);
    r.handler
        .handle(p.link.clone(), attach(&r.pane, false, true, None))
        .await;
    let (mut screen, _) = Screen::attached(&mut p, false).await;
    // Eight rings' worth while the phone takes nothing, then a flood that
    // goes on until stopped: the lag snapshot is captured mid-flood, with
    // bytes between tmux's screen and the ring.
    let line = "yes 0123456789abcdef | head -c 8388608; tmux wait-for -S w1; yes 0123456789abcdef";
    type_line(&r.tmux, &r.pane, line);
    wait_for(&r.tmux, "w1").await;
    p.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    screen
        .apply_until(&mut p, &r.pane, |s| s.snapshots == 2)
        .await;
    // Still flooding: nothing is settled yet.
    assert_eq!(r.handler.stream_stats().settle_snapshots, 0);
    r.tmux.tmux(&["send-keys", "-t", &r.pane, "C-c"]);
    run_in_pane(&r.tmux, &r.pane, "clear; echo quiet$((1+1))", "w2").await;
    // Once the pane is quiet the screen comes once more, at the offset the
    // phone has reached (`apply_until` checks that it moves no byte).
    let handler = r.handler.clone();
    screen
        .apply_until(&mut p, &r.pane, |_| {
            handler.stream_stats().settle_snapshots == 1
        })
        .await;
    run_in_pane(&r.tmux, &r.pane, "echo after$((1+2))", "w3").await;
    screen.until(&mut p, &r.pane, "after3").await;
    let stats = r.handler.stream_stats();
    assert!(stats.lag_snapshots >= 1, "{stats:?}");
    assert_eq!(stats.settle_snapshots, 1, "{stats:?}");
    assert_eq!(
        screen.snapshots as u64,
        1 + stats.lag_snapshots + stats.settle_snapshots
    );
}

#[tokio::test]
async fn numbered_input_is_typed_once() {
    let r = rig("dedupe").await;
    let mut p = phone(Semaphore::MAX_PERMITS);
    let input = |data: &[u8], offset: u64| Request::Input {
        data: data.to_vec(),
        offset: Some(offset),
    };
    // Not attached: the fast copy is dropped unanswered, the reliable one
    // gets `not_attached` once, its duplicate nothing.
    r.handler.handle_fast(p.link.clone(), input(b"zz", 0)).await;
    r.handler.handle(p.link.clone(), input(b"zz", 0)).await;
    r.handler.handle(p.link.clone(), input(b"zz", 0)).await;
    r.handler
        .handle(p.link.clone(), Request::ListSessions)
        .await;
    assert!(matches!(p.reliable().await, Event::Error { code, .. } if code == "not_attached"));
    assert!(matches!(p.reliable().await, Event::Sessions { .. }));

    r.handler
        .handle(p.link.clone(), attach(&r.pane, false, true, None))
        .await;
    let (mut screen, _) = Screen::attached(&mut p, false).await;
    // The fast copy wins; the reliable copy and a repeat are duplicates; an
    // overlapping message applies only its new tail.
    r.handler
        .handle_fast(p.link.clone(), input(b"echo ab", 2))
        .await;
    r.handler.handle(p.link.clone(), input(b"echo ab", 2)).await;
    r.handler.handle(p.link.clone(), input(b"echo ab", 2)).await;
    r.handler.handle(p.link.clone(), input(b"abcd\r", 7)).await;
    // A fast copy from beyond the next byte waits for its reliable copy.
    r.handler.handle_fast(p.link.clone(), input(b"X", 99)).await;
    // The typed line's echo and the command's output both hold "abcd"; wait
    // for both (on a loaded machine the shell may print its first prompt
    // only after the typed line's echo, so the output follows "# ", not a
    // newline).
    screen
        .apply_until(&mut p, &r.pane, |s| {
            String::from_utf8_lossy(&s.text).matches("abcd").count() >= 2
        })
        .await;
    let text = String::from_utf8_lossy(&screen.text).into_owned();
    assert_eq!(text.matches("echo ab").count(), 1, "{text:?}");
    assert!(text.contains("echo abcd\r\n"), "{text:?}");
    assert!(!text.contains('X'), "{text:?}");
}

#[tokio::test]
async fn after_the_resume_window_a_resume_gets_a_snapshot() {
    let r = rig("window").await;
    let mut first = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(first.link.clone(), attach(&r.pane, false, true, None))
        .await;
    let (mut screen, _) = Screen::attached(&mut first, false).await;
    run_in_pane(&r.tmux, &r.pane, "echo one$((0+1))", "w1").await;
    screen.until(&mut first, &r.pane, "one1").await;
    r.handler.peer_disconnected(DEVICE).await;
    // The window passes on tokio's clock; its timer closes the kept stream.
    tokio::time::pause();
    tokio::time::advance(terminal_protocol::RESUME_WINDOW + Duration::from_secs(1)).await;
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    tokio::time::resume();
    let mut second = phone(Semaphore::MAX_PERMITS);
    r.handler
        .handle(
            second.link.clone(),
            attach(&r.pane, false, true, Some(screen.next)),
        )
        .await;
    let (fresh, resumed) = Screen::attached(&mut second, false).await;
    assert!(!resumed);
    match second.reliable().await {
        Event::Output {
            offset, snapshot, ..
        } => assert_eq!((offset, snapshot), (Some(fresh.next), true)),
        other => panic!("{other:?}"),
    }
}
