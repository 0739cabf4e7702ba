//! Stream v2 (docs/stream-v2.md) end to end: the Rust phone against the real
//! agent, server and tmux. Fast-channel copies are applied once (both copies
//! arrive, one is dropped); a phone whose connection went away resumes the
//! pane's byte stream exactly when the host's ring still holds it, and gets a
//! snapshot (and the skipped bytes counted) when it does not; a phone that
//! gives up on a black-holed path and comes back as a new peer resumes
//! exactly; a phone without stream v2 still works; and the `muxlink-phone`
//! viewer connects again when its connection drops.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mobile_client::{
    AttachOptions, Event, PeerState, PhoneClient, PhoneConnection, ResumePoint, RtcConfig,
};
use muxlink_e2e::Tmux;
use muxlink_e2e::faults::{Netns, Rig, RigOptions, STEP, blocking};
use terminal_protocol::RESUME_RING_BYTES;

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const PHONE_CLI: &str = env!("CARGO_BIN_EXE_muxlink-e2e-phone-cli");

/// The output a phone has been handed, in order.
#[derive(Default)]
struct Seen {
    /// All output bytes as text.
    text: String,
    /// Whether each output event was (part of) a snapshot, in order.
    snapshots: Vec<bool>,
}

impl Seen {
    /// Reads events until the text contains `needle`; other events skipped.
    async fn until(&mut self, conn: &PhoneConnection, needle: &str, timeout: Duration) {
        let found = tokio::time::timeout(timeout, async {
            loop {
                match conn.next_event().await {
                    Some(Event::Output { data, snapshot, .. }) => {
                        self.text.push_str(&String::from_utf8_lossy(&data));
                        self.snapshots.push(snapshot);
                        if self.text.contains(needle) {
                            return true;
                        }
                    }
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await;
        match found {
            Ok(true) => {}
            Ok(false) => panic!(
                "closed while waiting for {needle:?}; output: {:?}",
                self.text
            ),
            Err(_) => panic!("no {needle:?} within {timeout:?}; output: {:?}", self.text),
        }
    }

    /// Reads the rest of a closed connection's events (its queue drains).
    async fn drain(&mut self, conn: &PhoneConnection) {
        let drained = tokio::time::timeout(STEP, async {
            while let Some(ev) = conn.next_event().await {
                if let Event::Output { data, snapshot, .. } = ev {
                    self.text.push_str(&String::from_utf8_lossy(&data));
                    self.snapshots.push(snapshot);
                }
            }
        })
        .await;
        assert!(
            drained.is_ok(),
            "the closed connection's events never ended"
        );
    }
}

/// The `N<n>` (or `L<n>`) lines of a stream, in arrival order.
fn numbered_lines(text: &str, prefix: char) -> Vec<usize> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.strip_prefix(prefix))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|n| n.parse().unwrap())
        .collect()
}

fn compressed() -> AttachOptions {
    AttachOptions {
        compress: true,
        ..AttachOptions::default()
    }
}

/// Types `line` into the pane with tmux itself (no phone connected).
fn type_in_pane(rig: &Rig, line: &str) {
    rig.tmux
        .run(&["send-keys", "-t", &rig.pane, "-l", line])
        .unwrap();
    rig.tmux
        .run(&["send-keys", "-t", &rig.pane, "Enter"])
        .unwrap();
}

/// Waits until a line of the pane's screen is exactly `line`.
async fn pane_shows(rig: &Rig, line: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let text = blocking(|| rig.pane_text()).unwrap();
        if text.lines().any(|l| l.trim_end() == line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pane never showed {line:?}:\n{text}"
        );
        // tmux tells nobody when a pane's screen changes; re-reading is the way.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Closes `conn` as a phone that goes away, reads what it had queued, and
/// returns where its stream stopped; then waits until the agent let the peer go.
async fn go_away(rig: &Rig, conn: PhoneConnection, seen: &mut Seen) -> ResumePoint {
    conn.close().await;
    seen.drain(&conn).await;
    let point = conn.resume_point().expect("attached with offsets");
    drop(conn);
    rig.status_until(STEP, |v| {
        v["peers"].as_array().is_some_and(|p| p.is_empty())
    })
    .await
    .unwrap();
    point
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_copies_arrive_twice_and_are_applied_once() {
    let rig = Rig::start(BIN).await.unwrap();
    let conn = rig.connect().await.unwrap();
    let ready = tokio::time::timeout(STEP, conn.fast_channel_ready()).await;
    assert_eq!(ready, Ok(true), "the fast channel did not open");
    let a = conn
        .attach_with(&rig.pane, 100, 30, &compressed())
        .await
        .unwrap();
    assert!(a.offset.is_some(), "attached without an offset: {a:?}");
    let mut seen = Seen::default();

    // Typed key by key, each echo awaited, as a person types.
    let typed = "echo fast-0123456789-abcdefghij-$((6*7))";
    for (i, key) in typed.char_indices() {
        conn.input(key.to_string().as_bytes()).await.unwrap();
        seen.until(&conn, &typed[..=i], STEP).await;
    }
    conn.input(b"\r").await.unwrap();
    seen.until(&conn, "fast-0123456789-abcdefghij-42", STEP)
        .await;

    assert_eq!(seen.text.matches(typed).count(), 1, "{:?}", seen.text);
    assert_eq!(
        seen.text.matches("fast-0123456789-abcdefghij-42").count(),
        1,
        "{:?}",
        seen.text
    );
    let st = conn.stream_stats();
    eprintln!("{st:?}");
    assert_eq!(st.fast_inputs_sent, typed.len() as u64 + 1);
    assert!(st.fast_applied > 0, "no fast copy was applied: {st:?}");
    assert!(st.duplicates_dropped > 0, "no second copy arrived: {st:?}");
    assert_eq!(st.bytes_skipped, 0, "{st:?}");
    conn.close().await;
    rig.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_the_ring_moved_on_gets_a_snapshot_and_continues() {
    let rig = Rig::start(BIN).await.unwrap();
    let conn = rig.connect().await.unwrap();
    conn.attach_with(&rig.pane, 100, 30, &compressed())
        .await
        .unwrap();
    let mut seen = Seen::default();
    conn.input(b"echo before-$((2*3))\r").await.unwrap();
    seen.until(&conn, "before-6", STEP).await;
    let point = go_away(&rig, conn, &mut seen).await;

    // More than the ring holds, read by the agent while no phone is there.
    type_in_pane(&rig, "seq 1 300000; echo FLO''OD");
    pane_shows(&rig, "FLOOD").await;

    let conn = rig.connect().await.unwrap();
    let a = conn.resume(&point, 100, 30, true).await.unwrap();
    assert!(!a.resumed, "resumed from a position the ring cannot hold");
    let head = a.offset.expect("attached with offsets");
    assert!(
        head - point.next > RESUME_RING_BYTES as u64,
        "the stream moved only {} bytes",
        head - point.next
    );
    let mut after = Seen::default();
    conn.input(b"echo after-$((3*4))\r").await.unwrap();
    after.until(&conn, "after-12", STEP).await;
    assert_eq!(after.snapshots.first(), Some(&true), "no snapshot first");
    assert!(
        !after.text.contains("\n150000\r\n"),
        "the flood was replayed"
    );
    let st = conn.stream_stats();
    eprintln!("{st:?}");
    // The attach snapshot, and perhaps the same screen again once settled
    // (the agent's handler/settle.rs), when the flood ended within 50 ms of it.
    assert!((1..=2).contains(&st.snapshots), "{st:?}");
    assert_eq!(st.bytes_skipped, head - point.next, "{st:?}");
    conn.close().await;
    rig.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_inside_the_ring_continues_the_stream_exactly() {
    let rig = Rig::start(BIN).await.unwrap();
    let conn = rig.connect().await.unwrap();
    conn.attach_with(&rig.pane, 100, 30, &compressed())
        .await
        .unwrap();
    let mut seen = Seen::default();
    conn.input(b"i=0; while [ $i -lt 5 ]; do echo N$i; i=$((i+1)); done\r")
        .await
        .unwrap();
    seen.until(&conn, "\nN4\r", STEP).await;
    let point = go_away(&rig, conn, &mut seen).await;

    type_in_pane(
        &rig,
        "i=5; while [ $i -lt 15 ]; do echo N$i; i=$((i+1)); done; echo EN''D",
    );
    pane_shows(&rig, "END").await;

    let conn = rig.connect().await.unwrap();
    let a = conn.resume(&point, 100, 30, true).await.unwrap();
    assert!(a.resumed, "not resumed: {a:?}");
    assert_eq!(a.offset, Some(point.next));
    let resumed_at = seen.snapshots.len();
    seen.until(&conn, "\nEND\r", STEP).await;
    assert_eq!(
        numbered_lines(&seen.text, 'N'),
        (0..15).collect::<Vec<_>>(),
        "{:?}",
        seen.text
    );
    let st = conn.stream_stats();
    assert_eq!((st.snapshots, st.bytes_skipped), (0, 0), "{st:?}");
    assert!(
        !seen.snapshots[resumed_at..].contains(&true),
        "a snapshot after resuming"
    );
    conn.close().await;
    rig.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_gives_up_on_a_black_hole_resumes_as_a_new_peer() {
    if !Netns::available() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    const LINES: usize = 200;
    let ns = Netns::create().unwrap();
    let options = RigOptions {
        server_bind: SocketAddr::from((ns.host_ip, 0)),
        agent_netns: Some(ns.name.clone()),
        // Host candidates on every local interface; only the veth reaches the agent.
        phone_rtc: RtcConfig::default(),
        ..RigOptions::default()
    };
    let rig = Rig::start_with(BIN, options).await.unwrap();
    let conn = rig.connect().await.unwrap();
    conn.attach_with(&rig.pane, 100, 30, &compressed())
        .await
        .unwrap();
    let script = format!(
        "i=0; while [ $i -lt {LINES} ]; do echo L$i; i=$((i+1)); sleep 0.05; done; echo EN''D\r"
    );
    conn.input(script.as_bytes()).await.unwrap();
    let mut seen = Seen::default();
    seen.until(&conn, "\nL10\r", STEP).await;

    ns.set_link(false).unwrap();
    let st = tokio::time::timeout(STEP, conn.state_until(|s| s != PeerState::Connected))
        .await
        .unwrap();
    eprintln!("phone's peer {st:?}: giving up on it");
    conn.close().await;
    seen.drain(&conn).await;
    let point = conn.resume_point().expect("attached with offsets");
    drop(conn);
    ns.set_link(true).unwrap();

    let conn = rig.connect().await.unwrap();
    let a = conn.resume(&point, 100, 30, true).await.unwrap();
    assert!(a.resumed, "not resumed: {a:?}");
    seen.until(&conn, "\nEND\r", Duration::from_secs(60)).await;
    assert_eq!(
        numbered_lines(&seen.text, 'L'),
        (0..LINES).collect::<Vec<_>>(),
        "pane stream lost, duplicated or reordered lines"
    );
    assert_eq!(conn.stream_stats().snapshots, 0);
    conn.close().await;
    rig.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_without_stream_v2_works_as_before() {
    let rig = Rig::start(BIN).await.unwrap();
    let mut config = rig.phone.config().clone();
    config.stream_v2 = false;
    let old = PhoneClient::open(config).unwrap();
    let conn = old
        .connect(rig.phone_signaling().await.unwrap())
        .await
        .unwrap();
    assert!(!conn.stream_v2());
    let a = conn
        .attach_with(&rig.pane, 100, 30, &compressed())
        .await
        .unwrap();
    assert_eq!((a.offset, a.resumed), (None, false));
    let mut seen = Seen::default();
    conn.input(b"echo old-$((6*7))\r").await.unwrap();
    seen.until(&conn, "old-42", STEP).await;
    assert_eq!(seen.text.matches("echo old-$((6*7))").count(), 1);
    assert!(!conn.fast_channel_open());
    assert_eq!(conn.stream_stats(), mobile_client::StreamStats::default());
    assert_eq!(conn.resume_point(), None);
    conn.close().await;
    rig.shutdown().await.unwrap();
}

/// The visible text of the viewer's pane.
fn viewer_screen(viewer: &Tmux) -> String {
    viewer
        .run(&["capture-pane", "-p", "-t", "view"])
        .unwrap_or_default()
}

/// Waits until the viewer's screen contains `needle`.
async fn viewer_shows(viewer: &Tmux, needle: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let text = blocking(|| viewer_screen(viewer));
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the viewer never showed {needle:?}:\n{text}"
        );
        // Nothing tells when a tmux screen changes; re-reading is the way.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn type_in_viewer(viewer: &Tmux, line: &str) {
    viewer
        .run(&["send-keys", "-t", "view", "-l", line])
        .unwrap();
    viewer.run(&["send-keys", "-t", "view", "Enter"]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_reconnects_when_its_connection_drops() {
    let mut rig = Rig::start(BIN).await.unwrap();
    // The viewer's terminal: a second private tmux server running the phone CLI.
    let viewer = Tmux::new();
    viewer.new_session("view", 100, 30).unwrap();
    let log = rig.phone_dir.path().join("viewer.log");
    let cmdline = format!(
        "RUST_LOG=mobile_client=debug MUXLINK_PHONE_DIR='{}' '{PHONE_CLI}' --loopback attach '{}' 2>'{}'",
        rig.phone_dir.path().display(),
        rig.pane,
        log.display()
    );
    type_in_viewer(&viewer, &cmdline);
    let pane = rig.pane.clone();
    let attached = |v: &serde_json::Value| v["peers"][0]["attachedPane"] == pane.as_str();
    let viewer_attached = async |rig: &Rig| {
        if let Err(e) = rig.status_until(STEP, attached).await {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{e}\nviewer:\n{}\nits log:\n{log}", viewer_screen(&viewer));
        }
    };
    viewer_attached(&rig).await;
    type_in_viewer(&viewer, "echo one-$((6*7))");
    viewer_shows(&viewer, "one-42").await;

    // The agent restarts: the viewer's connection closes under it.
    let restart = Instant::now();
    let st = blocking(|| rig.agent().terminate(STEP)).unwrap();
    eprintln!("agent stopped after {:?}", restart.elapsed());
    assert!(st.success());
    rig.agent = None;
    rig.start_agent().unwrap();
    eprintln!("agent ready after {:?}", restart.elapsed());
    viewer_attached(&rig).await;
    eprintln!("viewer attached again after {:?}", restart.elapsed());
    type_in_viewer(&viewer, "echo two-$((6*7))");
    viewer_shows(&viewer, "two-42").await;
    assert!(
        !viewer_screen(&viewer).contains("[connection closed]"),
        "the viewer gave up"
    );
    viewer
        .run(&["send-keys", "-t", "view", "-H", "1d"])
        .unwrap();
    viewer_shows(&viewer, "[detached]").await;
    rig.shutdown().await.unwrap();
}
