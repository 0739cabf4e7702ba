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
//! The agent runs in its own network namespace, reached through a middle one
//! (root only; skipped otherwise; `Netns`). The black hole is a true one: the
//! middle namespace's two veth ends go down, so both endpoints only lose
//! carrier, keep their routes, and every packet (UDP and TCP, signaling
//! included: the restart offer rides TCP retransmission once the path is
//! back) is dropped without a send error on either side.
//!
//! What this does not cover: a drop that makes sends fail (a host's own
//! interface or route going away, ENETUNREACH). rtc-transport's driver counts
//! a failed send as a lost datagram (the earlier transport, webrtc 0.17.2,
//! ended the association instead); where the DataChannel does close, the
//! phone reconnects as a new peer and resumes exactly from its resume point
//! (stream v2's `resume`), which tests/stream_v2.rs covers
//! (`a_phone_that_gives_up_on_a_black_hole_resumes_as_a_new_peer`).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mobile_client::{ClientError, PhoneConnection, RtcConfig};
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
async fn keep_pinging(conn: &PhoneConnection) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        every.tick().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.ping()).await;
    }
}

/// Pings until a pong arrives, within `timeout`. One `ping` waits 10 s, and
/// the phone's pings after the black hole can wait longer: SCTP retransmits a
/// message lost while the agent's ICE restarted only at its retransmission
/// timer (at least 1 s, doubling per loss, up to 60 s), and every later
/// message waits behind it in the ordered stream.
async fn pong_within(conn: &PhoneConnection, timeout: Duration) -> Result<(), ClientError> {
    let pong = async {
        loop {
            match conn.ping().await {
                Err(ClientError::Timeout(_)) => {}
                other => return other.map(drop),
            }
        }
    };
    tokio::time::timeout(timeout, pong)
        .await
        .unwrap_or(Err(ClientError::Timeout("pong")))
}

/// The agent's log so far (its queued lines read first), for a failure message.
fn agent_log(rig: &mut Rig) -> String {
    let agent = rig.agent();
    let _ = agent.wait_line(Duration::from_millis(200), |_, _| false);
    format!("agent log:\n{}", agent.transcript())
}

/// What both ends log, in a failing run's output: ICE state changes and
/// candidates, and every SCTP retransmission timeout ("T3-rtx timed out",
/// with its doubling count) and SACK. A stall after the restart shows there as
/// a side whose next retransmission is still seconds away.
const WEBRTC_LOG: &str =
    "info,webrtc_ice=debug,webrtc_sctp::association::association_internal=debug";

/// The phone runs in this process: its log goes to the test's output, which
/// the harness shows only when the test fails.
fn log_phone() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(WEBRTC_LOG))
        .with_test_writer()
        .try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_path_black_holed_ice_restart_resumes_without_loss() {
    if !Netns::available() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    log_phone();
    let ns = Netns::create().unwrap();
    let options = RigOptions {
        server_bind: SocketAddr::from((ns.host_ip, 0)),
        agent_netns: Some(ns.name.clone()),
        // Host candidates on the path's address only: the agent has no route
        // to the others, and other tests' interfaces come and go.
        phone_rtc: RtcConfig {
            host_ips: vec![ns.host_ip.into()],
            ..RtcConfig::default()
        },
        agent_log: Some(WEBRTC_LOG.to_owned()),
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
    pong_within(&conn, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("no pong: {e}\n{}", agent_log(&mut rig)));
    let got = numbered_lines(&text);
    let want: Vec<usize> = (0..LINES).collect();
    assert_eq!(got, want, "pane stream lost, duplicated or reordered lines");
    rig.status_until(STEP, |v| v["peers"][0]["state"] == "connected")
        .await
        .unwrap();
    conn.close().await;
    rig.shutdown().await.unwrap();
}
