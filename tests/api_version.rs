//! The API version is honoured end to end: against the real server serving
//! `v2` only, an agent configured with `api_version = "v2"` pairs a phone
//! (whose `PhoneConfig` says `v2` too), runs, and serves it; a client left on
//! `v1` stops at once with the permanent "does not serve API v1" error
//! instead of retrying forever on 404.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::time::Duration;

use muxlink_e2e::pairing::{PAIR_ARGS, blocking, init, pair_phone, phone_config, start_pairing};
use muxlink_e2e::{Home, Tmux, wait_output};
use signaling_server::{Server, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_server_serves_a_v2_agent_and_phone_and_refuses_v1_clearly() {
    let tmux = Tmux::new();
    let pane = tmux.new_session("work", 80, 24).unwrap();
    let server = Server::start(ServerConfig {
        api_version: "v2".into(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let v1_base = format!("{}/v1", server.url());

    // A v1 agent (the default) is told what to fix, in one line, at once.
    let mut v1 = Home::new(BIN, &tmux.socket).unwrap();
    v1.server = Some(server.url());
    init(&v1, T).unwrap();
    let o = blocking(|| v1.output(PAIR_ARGS, T)).unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "the server does not serve API v1 at {v1_base}: check api_version"
        )),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");

    // A v2 agent: `api_version` in config.toml.
    let mut home = Home::new(BIN, &tmux.socket).unwrap();
    home.server = Some(server.url());
    init(&home, T).unwrap();
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config.toml"))
        .unwrap();
    writeln!(config, "api_version = \"v2\"").unwrap();
    drop(config);
    let o = blocking(|| home.output(&["status"], T)).unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains(" (API v2)"), "{text}");

    let (mut pair, payload) = start_pairing(&home, PAIR_ARGS, T).unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let mut cfg = phone_config(phone_dir.path(), "v2-phone");
    cfg.api_version = "v2".into();
    let (phone, record) = pair_phone(cfg, &payload, &mut pair, T).await.unwrap();
    assert!(blocking(|| pair.child.wait()).unwrap().success());

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
    let work = sessions.iter().find(|s| s.name == "work").unwrap();
    assert_eq!(work.windows[0].panes[0].id, pane);
    drop(conn);

    // The same phone on v1 gets the same clear error from its token call.
    let mut cfg = phone_config(phone_dir.path(), "v2-phone");
    cfg.api_version = "v1".into();
    let v1_phone = mobile_client::PhoneClient::open(cfg).unwrap();
    let e = v1_phone.signaling().await.unwrap_err().to_string();
    assert!(e.contains("does not serve API v1"), "{e}");

    // The paired agent started on v1 (MUXLINK_API_VERSION over the file)
    // stops with the permanent error instead of retrying.
    assert!(blocking(|| agent.terminate(T)).unwrap().success());
    let child = home
        .cmd(&["run"])
        .env("MUXLINK_API_VERSION", "v1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = blocking(|| wait_output(child, T)).unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "the server does not serve API v1 at {v1_base}: check api_version"
        )),
        "{e}"
    );
}
