//! A phone that goes away without detaching: the agent ends its attachment,
//! releases the pane's forced size, forgets the peer, and serves the next connect.
//!
//! Two ways to vanish: the connection object dropped without `detach` (the
//! DataChannel closes: fast path), and the phone process SIGKILLed (nothing is
//! sent at all: the agent only learns it from ICE — disconnected after ~5 s of
//! silence, then the 10 s grace, the ICE restart and the 20 s answer watchdog or
//! ICE failure; about 30 s, the slowest test of the suite).

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use muxlink_e2e::faults::{Rig, STEP, blocking, output_until, sigkill, spawn_captured};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const PHONE_BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-phone");
/// Upper bound of the ICE path: disconnected (~5 s) + grace (10 s) + watchdog
/// (20 s), with room for a loaded CI machine.
const ICE_CLEANUP: Duration = Duration::from_secs(60);

/// After a vanished phone: no peer, pane size released, a new connect attaches and types.
async fn assert_recovered(rig: &Rig, timeout: Duration) {
    rig.status_until(timeout, |v| {
        v["peers"].as_array().is_some_and(|p| p.is_empty())
    })
    .await
    .unwrap();
    let forced = rig.forced_window_size().unwrap();
    assert!(forced.is_empty(), "window-size still forced: {forced:?}");

    let conn = rig.connect().await.unwrap();
    conn.attach(&rig.pane, 90, 25, false, true).await.unwrap();
    assert_eq!(rig.tmux.pane_size(&rig.pane).unwrap(), "90x25");
    conn.input(b"echo next-$((5*5))\r").await.unwrap();
    output_until(&conn, "next-25", STEP).await.unwrap();
    conn.detach().await.unwrap();
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_dropped_without_detach_releases_the_pane() {
    let rig = Rig::start(BIN).await.unwrap();
    let conn = rig.connect().await.unwrap();
    conn.attach(&rig.pane, 50, 15, false, false).await.unwrap();
    assert_eq!(rig.tmux.pane_size(&rig.pane).unwrap(), "50x15");
    assert!(!rig.forced_window_size().unwrap().is_empty());

    // No detach: the object is simply dropped (as an app that is swiped away).
    drop(conn);
    assert_recovered(&rig, STEP).await;
    rig.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_process_killed_is_cleaned_up_after_ice_gives_up() {
    let rig = Rig::start(BIN).await.unwrap();
    let mut cmd = Command::new(PHONE_BIN);
    cmd.arg(rig.phone_dir.path())
        .arg(&rig.pane)
        .args(["50", "15"]);
    let mut phone = spawn_captured(cmd).unwrap();
    blocking(|| phone.wait_line(STEP, |_, l| l == "ATTACHED")).unwrap();
    assert_eq!(rig.tmux.pane_size(&rig.pane).unwrap(), "50x15");
    rig.status_until(STEP, |v| v["peers"][0]["attachedPane"] == rig.pane.as_str())
        .await
        .unwrap();

    let killed = Instant::now();
    sigkill(phone.child.id()).unwrap();
    let _ = blocking(|| phone.child.wait());
    assert_recovered(&rig, ICE_CLEANUP).await;
    eprintln!(
        "killed phone cleaned up and next connect served after {:?}",
        killed.elapsed()
    );
    rig.shutdown().await.unwrap();
}
