//! Three signaling server processes (`muxlink serve`) on one PostgreSQL
//! database and one NATS bus, behind a test-local TCP balancer: the host
//! agent's socket on instance A, the phone's on instance B. Pair, connect,
//! attach and type through the real agent and tmux; then SIGKILL instance A.
//! A `connect_request` from the phone (still on B) gets `host_offline` at once
//! (nobody holds the host on the bus); the agent redials through the balancer,
//! now pointing at C, the phone sees `host_online` again, the pairing is
//! intact and the next connect, attach and typing work.
//!
//! The balancer stands in for a load balancer in front of the instances: new
//! connections go to the backend chosen now, established ones stay where
//! they are (so the phone stays on B while the agent moves).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use mobile_client::PhoneClient;
use muxlink_e2e::faults::{STEP, output_until, sigkill, spawn_captured};
use muxlink_e2e::pairing::{PAIR_ARGS, blocking, init, pair_phone, phone_config, start_pairing};
use muxlink_e2e::{Home, Running, Stream, Tmux};
use signaling_proto::Signal;
use test_support::{PrivateNats, PrivatePostgres};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");

/// A TCP balancer with one backend at a time (`None`: new connections are
/// closed at once, like a balancer with no healthy backend).
struct Balancer {
    url: String,
    backend: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    async fn start(backend: SocketAddr) -> Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let backend = Arc::new(Mutex::new(Some(backend)));
        let shared = Arc::clone(&backend);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(target) = *shared.lock().unwrap() else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Ok(Balancer { url, backend, task })
    }

    fn route_to(&self, backend: Option<SocketAddr>) {
        *self.backend.lock().unwrap() = backend;
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `muxlink serve` process and the address it listens on.
struct Instance {
    process: Running,
    addr: SocketAddr,
}

fn serve(home: &Home, config: &std::path::Path) -> Result<Instance> {
    let mut cmd = home.cmd(&["serve", "--bind", "127.0.0.1:0"]);
    cmd.env("MUXLINK_SERVER_CONFIG", config);
    let mut process = spawn_captured(cmd)?;
    let line = blocking(|| {
        process.wait_line(STEP, |s, l| {
            s == Stream::Stdout && l.starts_with("listening on ")
        })
    })?;
    let addr = line
        .trim_start_matches("listening on http://")
        .parse()
        .context("the server's address")?;
    Ok(Instance { process, addr })
}

/// `muxlink status --json` until `pred` holds (bounded by [`STEP`]).
async fn status_until(home: &Home, pred: impl Fn(&serde_json::Value) -> bool) -> Result<()> {
    let mut last = serde_json::Value::Null;
    let ok = test_support::wait_until(STEP, || {
        let o = blocking(|| home.output(&["status", "--json"], STEP));
        last = o
            .ok()
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
            .unwrap_or_default();
        let done = pred(&last);
        async move { done }
    })
    .await;
    anyhow::ensure!(ok, "status never matched: {last:#}");
    Ok(())
}

/// Connects the phone through `sig`, attaches to `pane` and types `n + n`.
async fn connect_and_type(
    phone: &PhoneClient,
    sig: Arc<mobile_client::Signaling>,
    pane: &str,
    n: u32,
) -> Result<mobile_client::PhoneConnection> {
    let conn = phone.connect(sig).await?;
    conn.attach(pane, 80, 24, false, true).await?;
    conn.input(format!("echo sum-$(({n}+{n}))\r").as_bytes())
        .await?;
    output_until(&conn, &format!("sum-{}", n + n), STEP).await?;
    Ok(conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_moves_to_another_instance_when_its_instance_is_killed() {
    let (Some(pg), Some(nats)) = (PrivatePostgres::start(), PrivateNats::start()) else {
        return;
    };
    let db = pg.create_database("signaling").unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("server.toml");
    // Every instance must verify the others' tokens: one JWT secret.
    let toml = format!(
        "database = {db:?}\nbus = {:?}\njwt_secret = \"scale-out-e2e-jwt-secret-0123456789abcdef\"\nrate_limits = false\n",
        nats.url()
    );
    std::fs::write(&config, toml).unwrap();

    let tmux = Tmux::new();
    let pane = tmux.new_session("work", 100, 30).unwrap();
    let mut home = Home::new(BIN, &tmux.socket).unwrap();
    let mut a = serve(&home, &config).unwrap();
    let b = serve(&home, &config).unwrap();
    let c = serve(&home, &config).unwrap();

    // Pairing and the agent go to A.
    let balancer = Balancer::start(a.addr).await.unwrap();
    home.server = Some(balancer.url.clone());
    init(&home, STEP).unwrap();
    let (mut pair, payload) = start_pairing(&home, PAIR_ARGS, STEP).unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let (phone, record) = pair_phone(
        phone_config(phone_dir.path(), "scale-phone"),
        &payload,
        &mut pair,
        STEP,
    )
    .await
    .unwrap();
    assert!(blocking(|| pair.child.wait()).unwrap().success());
    let mut agent = home.spawn(&["run"]).unwrap();
    blocking(|| agent.wait_line(STEP, |_, l| l.contains("agent ready"))).unwrap();
    status_until(&home, |v| v["signaling"] == "connected")
        .await
        .unwrap();

    // The phone goes to B: it learns from B that the host (on A) is online,
    // and connects, attaches and types through both instances and the bus.
    balancer.route_to(Some(b.addr));
    let sig = phone.signaling().await.unwrap();
    let host = record.host_device_id.clone();
    let mut online = sig.online_hosts();
    tokio::time::timeout(STEP, online.wait_for(|h| h.contains_key(&host)))
        .await
        .expect("the phone on B never saw the host on A online")
        .unwrap();
    let conn = connect_and_type(&phone, Arc::clone(&sig), &pane, 1)
        .await
        .unwrap();
    conn.close().await;

    // Instance A dies with the agent's socket; the balancer has no backend
    // for a moment, so the agent cannot come back yet.
    balancer.route_to(None);
    sigkill(a.process.child.id()).unwrap();
    let _ = blocking(|| a.process.child.wait());
    status_until(&home, |v| v["signaling"] != "connected")
        .await
        .unwrap();

    // The phone on B was never told; its connect_request finds nobody
    // holding the host on the bus and gets host_offline at once.
    let mut route = sig.route(&host);
    sig.send(Signal::ConnectRequest {
        target_device_id: host.clone(),
    })
    .await
    .unwrap();
    let reply = tokio::time::timeout(STEP, route.recv()).await.unwrap();
    assert!(
        matches!(&reply, Some(Signal::HostOffline { device_id }) if *device_id == host),
        "{reply:?}"
    );
    drop(route);
    assert!(!sig.online_hosts().borrow().contains_key(&host));

    // New connections go to C: the agent redials there, and the phone on B
    // sees the host online again.
    balancer.route_to(Some(c.addr));
    status_until(&home, |v| v["signaling"] == "connected")
        .await
        .unwrap();
    tokio::time::timeout(STEP, online.wait_for(|h| h.contains_key(&host)))
        .await
        .expect("the phone on B never saw the host come back on C")
        .unwrap();

    // The pairing is intact: connect, attach and type again (phone on B,
    // host on C).
    let conn = connect_and_type(&phone, Arc::clone(&sig), &pane, 20)
        .await
        .unwrap();
    conn.close().await;
    sig.close().await;
    let st = blocking(|| agent.terminate(STEP)).unwrap();
    assert!(st.success(), "agent exit {st:?}:\n{}", agent.transcript());
    drop((b, c));
}
