//! The whole product path with nothing mocked: the bundled server on
//! 127.0.0.1:0, the real `muxlink` binary (init, pair, run, unpair), tmux on a
//! private socket, and a mobile-client phone over real WebRTC loopback.
//!
//! pair → connect → list → attach → input → output → resize (pane really
//! resized, released on detach) → detach → reattach shows the current screen →
//! kill_session → session_ended → unpair → the phone is dropped and rejected →
//! SIGTERM exits 0.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mobile_client::{ClientError, Event, PhoneClient, PhoneConfig, PhoneConnection};
use muxlink_e2e::pairing::{
    Host, PAIR_ARGS, blocking, init, pair_phone, phone_config, start_pairing,
};
use muxlink_e2e::{Home, Tmux};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);

/// Reads output events until their text contains `needle`; other events are skipped.
async fn output_until(conn: &PhoneConnection, needle: &str) -> String {
    let mut text = String::new();
    tokio::time::timeout(T, async {
        loop {
            match conn.next_event().await {
                Some(Event::Output { data, .. }) => {
                    text.push_str(&String::from_utf8_lossy(&data));
                    if text.contains(needle) {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("connection closed while waiting for {needle:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in output: {text:?}"));
    text
}

/// `muxlink status --json` of `home`.
fn status(home: &Home) -> serde_json::Value {
    let o = home.output(&["status", "--json"], T).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Re-reads the status until `pred` holds (the agent writes it right after each
/// change); bounded by a deadline.
fn status_until(home: &Home, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + T;
    loop {
        let v = status(home);
        if pred(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never matched: {v:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_connect_attach_type_resize_detach_kill_unpair() {
    let Host {
        tmux,
        pane,
        server,
        home,
    } = Host::start(BIN, "work", 100, 30).await.unwrap();

    // Pair: the CLI prints the payload for scripts and waits for the phone,
    // then names the phone it paired.
    let (mut pair, payload) = start_pairing(&home, PAIR_ARGS, T).unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let cfg = phone_config(phone_dir.path(), "e2e-phone");
    let (phone, record) = pair_phone(cfg, &payload, &mut pair, T).await.unwrap();
    let st = blocking(|| pair.child.wait()).unwrap();
    assert!(st.success());
    let paired_json = std::fs::read_to_string(home.path().join("paired_devices.json")).unwrap();
    assert!(paired_json.contains("e2e-phone"), "{paired_json}");

    // The agent.
    let mut agent = home.spawn(&["run"]).unwrap();
    blocking(|| agent.wait_line(T, |_, l| l.contains("agent ready"))).unwrap();
    let sig = phone.signaling().await.unwrap();
    let mut online = sig.online_hosts();
    tokio::time::timeout(
        T,
        online.wait_for(|h| h.contains_key(&record.host_device_id)),
    )
    .await
    .expect("host never came online")
    .unwrap();

    let conn = phone.connect(sig.clone()).await.unwrap();
    let sessions = conn.list_sessions().await.unwrap();
    let work = sessions
        .iter()
        .find(|s| s.name == "work")
        .expect("session work");
    assert_eq!(work.windows[0].panes[0].id, pane);

    conn.attach(&pane, 80, 24, false, true).await.unwrap();
    assert_eq!(tmux.pane_size(&pane).unwrap(), "80x24");
    conn.input(b"echo e2e-$((6*7))-ok\r").await.unwrap();
    output_until(&conn, "e2e-42-ok").await;

    conn.resize(70, 20).await.unwrap();
    // Requests are handled in order: once the barrier is answered the resize is done.
    muxlink_e2e::faults::barrier(&conn).await;
    assert_eq!(tmux.pane_size(&pane).unwrap(), "70x20");

    // `muxlink status` sees the running agent, its signaling and the attached pane.
    let v = blocking(|| status_until(&home, |v| v["peers"][0]["attachedPane"] == pane.as_str()));
    assert_eq!(v["agentRunning"], true);
    assert_eq!(v["signaling"], "connected");
    assert_eq!(v["peers"][0]["deviceId"], phone.identity().device_id());

    conn.detach().await.unwrap();
    let forced = tmux
        .run(&["show-options", "-w", "-t", &pane, "window-size"])
        .unwrap();
    assert!(forced.is_empty(), "window-size still forced: {forced:?}");

    // Reattach: the first output is the current screen.
    conn.attach(&pane, 80, 24, true, false).await.unwrap();
    output_until(&conn, "e2e-42-ok").await;
    conn.detach().await.unwrap();

    conn.kill_session("work").await.unwrap();
    assert!(tmux.run(&["has-session", "-t", "work"]).is_err());

    // Unpair through the CLI: the agent reloads (SIGUSR2) and drops the phone,
    // and a new connection attempt is refused (the server deletes a phone left
    // without a pairing and closes its signaling socket, or the host says
    // `not_paired` if the request got there first).
    let o = blocking(|| home.output(&["unpair", "--yes"], T)).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    tokio::time::timeout(T, conn.closed())
        .await
        .expect("the agent kept the unpaired phone");
    match phone.connect(sig.clone()).await {
        Err(ClientError::Rejected(reason)) => assert_eq!(reason, "not_paired"),
        Err(ClientError::Signaling(_) | ClientError::AuthRejected(_)) => {}
        other => panic!("expected the unpaired phone to be refused, got {other:?}"),
    }

    let st = blocking(|| agent.terminate(T)).unwrap();
    assert!(st.success(), "agent exit {st:?}:\n{}", agent.transcript());
    assert!(!home.path().join("agent-status.json").exists());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_starts_the_background_agent_and_stop_stops_it() {
    let tmux = Tmux::new();
    let server = signaling_server::Server::start(signaling_server::ServerConfig::default())
        .await
        .unwrap();
    let mut home = Home::new(BIN, &tmux.socket).unwrap();
    home.server = Some(server.url());
    init(&home, T).unwrap();
    let (mut pair, payload) = start_pairing(&home, &["pair", "--payload-only"], T).unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let phone = PhoneClient::open(PhoneConfig::new(phone_dir.path())).unwrap();
    phone.pair(&payload).await.unwrap();
    assert!(blocking(|| pair.child.wait()).unwrap().success());

    // A tmux command through muxlink starts the agent first.
    let o = blocking(|| home.output(&["new-session", "-d", "-s", "bg", "sh"], T)).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(tmux.run(&["has-session", "-t", "bg"]).is_ok());
    let v = blocking(|| status(&home));
    assert_eq!(v["agentRunning"], true, "{v:#}");
    let pid = v["agentPid"].as_i64().unwrap();

    // A second start finds it; two agents never run.
    let o = blocking(|| home.output(&["start"], T)).unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("pid {pid}")));
    let o = blocking(|| home.output(&["run"], T)).unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already running"));

    let o = blocking(|| home.output(&["stop"], T)).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(blocking(|| status(&home))["agentRunning"], false);
    server.shutdown().await;
}
