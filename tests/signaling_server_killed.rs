//! The signaling server only introduces the two ends: when it dies mid-session
//! the established P2P channel keeps streaming, and when it comes back on the
//! same port and SQLite file the agent reconnects and the pairing still works.

#![allow(clippy::unwrap_used)]

use muxlink_e2e::faults::{Rig, STEP, closed_within, output_until};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_server_killed_mid_session() {
    let mut rig = Rig::start(BIN).await.unwrap();
    let conn = rig.connect().await.unwrap();
    conn.attach(&rig.pane, 80, 24, false, true).await.unwrap();
    conn.input(b"echo before-$((1+1))\r").await.unwrap();
    output_until(&conn, "before-2", STEP).await.unwrap();

    // Kill the server: the agent notices (its socket is closed) ...
    rig.stop_server().await;
    rig.status_until(STEP, |v| v["signaling"] != "connected")
        .await
        .unwrap();
    // ... and the phone's session keeps working over the P2P channel.
    conn.input(b"echo during-$((2+2))\r").await.unwrap();
    output_until(&conn, "during-4", STEP).await.unwrap();
    conn.ping().await.unwrap();

    // Same port, same SQLite file: the agent's client reconnects by itself
    // (the new server has a new JWT key, so it must also fetch a new token).
    rig.restart_server().await.unwrap();
    rig.status_until(STEP, |v| v["signaling"] == "connected")
        .await
        .unwrap();
    // The session never noticed.
    conn.input(b"echo after-$((3+3))\r").await.unwrap();
    output_until(&conn, "after-6", STEP).await.unwrap();

    // The pairing survived the restart: the server still routes this phone to
    // the host, and a new connect replaces the old peer.
    let conn2 = rig.connect().await.unwrap();
    assert!(
        closed_within(&conn, STEP).await,
        "the replaced connection stayed open"
    );
    let sessions = conn2.list_sessions().await.unwrap();
    assert!(sessions.iter().any(|s| s.name == "work"), "{sessions:?}");
    conn2.close().await;
    rig.shutdown().await.unwrap();
}
