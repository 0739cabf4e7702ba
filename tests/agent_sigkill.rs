//! The agent SIGKILLed mid-session (no clean-up at all) and started again: the
//! server reports the host offline then online, the phone reconnects with a new
//! `connect_request` and attaches again.
//!
//! What the killed agent leaves behind, pinned here: its forced `window-size`
//! (nobody could unset it; the next attach/detach of the pane releases it), its
//! `pipe-pane` writer, which tmux keeps until the pane prints (the restarted
//! agent recognises it by its `@muxlink-pipe` marker naming a dead pid and
//! replaces it at attach), and its FIFO directory (removed when the next agent
//! starts).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use mobile_client::{PhoneConnection, Signaling};
use muxlink_e2e::faults::{Rig, STEP, blocking, output_until, sigkill};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");

/// FIFO directories of process `pid` in the temp dir.
fn fifo_dirs_of(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("muxlink-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Rig with an attached session, the agent SIGKILLed and started again, and
/// the host back online; returns the phone's signaling and the dead connection.
async fn killed_and_restarted() -> (Rig, Arc<Signaling>, PhoneConnection) {
    let mut rig = Rig::start(BIN).await.unwrap();
    let host = rig.record.host_device_id.clone();
    let sig = rig.phone_signaling().await.unwrap();
    let conn = rig.phone.connect(sig.clone()).await.unwrap();
    conn.attach(&rig.pane, 60, 20, false, true).await.unwrap();
    conn.input(b"echo first-$((2*3))\r").await.unwrap();
    output_until(&conn, "first-6", STEP).await.unwrap();

    let killed_pid = rig.agent().child.id();
    sigkill(killed_pid).unwrap();
    let mut killed = rig.agent.take().unwrap();
    let _ = blocking(|| killed.child.wait());
    let mut online = sig.online_hosts();
    tokio::time::timeout(STEP, online.wait_for(|h| !h.contains_key(&host)))
        .await
        .expect("the server never saw the host go")
        .unwrap();
    // The override could not be unset by a killed process.
    let forced = rig.forced_window_size().unwrap();
    assert!(!forced.is_empty(), "expected the dead agent's override");
    assert_eq!(rig.tmux.pane_size(&rig.pane).unwrap(), "60x20");

    // The dead agent's pipe is still there, marked with its FIFO directory
    // (which a parallel test's agent start may already have removed).
    assert!(pane_piped(&rig), "expected the dead agent's pipe");
    let marker = pipe_marker(&rig);
    assert!(
        marker.starts_with(&format!("muxlink-{killed_pid}-")),
        "marker {marker:?}"
    );

    rig.start_agent().unwrap();
    let left = fifo_dirs_of(killed_pid);
    assert!(
        left.is_empty(),
        "dead agent's FIFO directories left: {left:?}"
    );
    tokio::time::timeout(STEP, online.wait_for(|h| h.contains_key(&host)))
        .await
        .expect("the restarted host never came online")
        .unwrap();
    (rig, sig, conn)
}

fn pipe_marker(rig: &Rig) -> String {
    rig.tmux
        .run(&["display", "-p", "-t", &rig.pane, "#{@muxlink-pipe}"])
        .unwrap()
}

fn pane_piped(rig: &Rig) -> bool {
    rig.tmux
        .run(&["display", "-p", "-t", &rig.pane, "#{pane_pipe}"])
        .unwrap()
        == "1"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sigkill_and_restart() {
    let (rig, sig, dead) = killed_and_restarted().await;
    // The app drops the dead connection and connects again.
    drop(dead);
    let conn = rig.phone.connect(sig.clone()).await.unwrap();
    let sessions = conn.list_sessions().await.unwrap();
    assert!(sessions.iter().any(|s| s.name == "work"), "{sessions:?}");

    // The dead agent's pipe is replaced at once: no output needed first.
    assert!(pane_piped(&rig), "expected the dead agent's pipe");
    conn.attach(&rig.pane, 70, 22, true, true).await.unwrap();
    assert_eq!(rig.tmux.pane_size(&rig.pane).unwrap(), "70x22");
    conn.input(b"echo second-$((3*3))\r").await.unwrap();
    output_until(&conn, "second-9", STEP).await.unwrap();
    conn.detach().await.unwrap();
    let forced = rig.forced_window_size().unwrap();
    assert!(forced.is_empty(), "window-size still forced: {forced:?}");
    assert!(!pane_piped(&rig) && pipe_marker(&rig).is_empty());
    conn.close().await;
    rig.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pane_of_a_killed_agent_attaches_at_once_after_restart() {
    let (rig, sig, dead) = killed_and_restarted().await;
    drop(dead);
    let conn = rig.phone.connect(sig.clone()).await.unwrap();
    let attached = tokio::time::timeout(
        Duration::from_secs(10),
        conn.attach(&rig.pane, 70, 22, true, true),
    )
    .await
    .unwrap();
    assert!(attached.is_ok(), "reattach after restart: {attached:?}");
    conn.close().await;
    rig.shutdown().await.unwrap();
}
