//! The path between phone and agent black-holed mid-stream for ~15 s: ICE goes
//! disconnected, the agent's 10 s grace ends in an ICE restart over signaling,
//! the same DataChannel resumes, and the pane stream arrives with no byte lost
//! or duplicated.
//!
//! Why bytes survive: the DataChannel is one SCTP association (reliable,
//! ordered) carried by DTLS over whichever ICE pair is selected; an ICE restart
//! only changes the pair underneath, so SCTP keeps its sequence numbers and
//! retransmits what the outage swallowed, and the agent's bounded send queue
//! holds the pane output produced meanwhile (peer-lifecycle.md §4, §6).
//!
//! The agent runs in its own network namespace joined by a veth pair (root
//! only; skipped otherwise); `ip link set down` drops every packet both ways,
//! signaling included (the restart offer rides TCP retransmission once the
//! link is back).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mobile_client::RtcConfig;
use muxlink_e2e::faults::{Netns, Rig, RigOptions, STEP, blocking, output_until};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
/// Lines the pane prints, one every 50 ms (~20 s of output).
const LINES: usize = 400;

/// The `L<n>` lines of the pane stream, in arrival order.
fn numbered_lines(text: &str) -> Vec<usize> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.strip_prefix('L'))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Pings every 10 s, as a phone does to stay within the agent's idle limit;
/// a ping that cannot get through (the black hole) is abandoned after 10 s.
async fn keep_pinging(conn: &mobile_client::PhoneConnection) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        every.tick().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.ping()).await;
    }
}

/// The agent's log so far (its queued lines read first), for a failure message.
fn agent_log(rig: &mut Rig) -> String {
    let agent = rig.agent();
    let _ = agent.wait_line(Duration::from_millis(200), |_, _| false);
    format!("agent log:\n{}", agent.transcript())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_path_black_holed_ice_restart_resumes_without_loss() {
    if !Netns::available() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let ns = Netns::create().unwrap();
    let options = RigOptions {
        server_bind: SocketAddr::from((ns.host_ip, 0)),
        agent_netns: Some(ns.name.clone()),
        // Host candidates on every local interface; only the veth reaches the agent.
        phone_rtc: RtcConfig::default(),
    };
    let mut rig = Rig::start_with(BIN, options).await.unwrap();
    let conn = rig.connect().await.unwrap();
    conn.attach(&rig.pane, 100, 30, false, true).await.unwrap();
    let script = format!(
        "i=0; while [ $i -lt {LINES} ]; do echo L$i; i=$((i+1)); sleep 0.05; done; echo EN''D\r"
    );
    conn.input(script.as_bytes()).await.unwrap();
    let mut text = output_until(&conn, "\nL10\r", STEP)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", agent_log(&mut rig)));

    ns.set_link(false).unwrap();
    let agent = rig.agent();
    blocking(|| agent.wait_line(STEP, |_, l| l.contains("grace period started"))).unwrap();
    blocking(|| agent.wait_line(STEP, |_, l| l.contains("restarting ICE"))).unwrap();
    ns.set_link(true).unwrap();

    // Pinging like a real phone: the agent closes a phone that has not pinged
    // for 60 s, and this wait can pass that mark on a loaded machine (the
    // pane's 400 lines take longer than 20 s, and SCTP resumes only at its
    // next retransmission timeout, which backed off during the black hole).
    let rest = tokio::select! {
        rest = output_until(&conn, "END", Duration::from_secs(60)) => rest,
        () = keep_pinging(&conn) => unreachable!("keep_pinging never returns"),
    };
    text.push_str(&rest.unwrap_or_else(|e| panic!("{e}\n{}", agent_log(&mut rig))));
    assert!(!conn.is_closed(), "the session was replaced, not resumed");
    conn.ping().await.unwrap();
    let got = numbered_lines(&text);
    let want: Vec<usize> = (0..LINES).collect();
    assert_eq!(got, want, "pane stream lost, duplicated or reordered lines");
    rig.status_until(STEP, |v| v["peers"][0]["state"] == "connected")
        .await
        .unwrap();
    conn.close().await;
    rig.shutdown().await.unwrap();
}
