//! TURN relaying end to end, proven with a real coturn: a `turnserver` on
//! 127.0.0.1 (its own port and relay range, long-term credentials, loopback
//! peers allowed), the bundled signaling server handing its address and
//! credentials out on `/turn/credentials`, the real `muxlink run` agent with
//! `relay_only = true`, and the Rust phone with a relay-only `RtcConfig` built
//! from the same endpoint. Relay-only ICE gathers no host or reflexive
//! candidate at all, so the session can only run through coturn's relay; the
//! test also reads coturn's log for the successful allocations of both ends.
//!
//! Two cases: static credentials (`turn_urls` + `turn_username` +
//! `turn_credential`, coturn `--user`) and the server's time-limited TURN REST
//! credentials (`turn_secret`, coturn `--use-auth-secret`), where each end's
//! username is `<expiry>:<its device id>`, so coturn's log shows that each
//! end used the credentials the server computed for it.
//!
//! A third case runs `web/e2e/turn.mjs`: the web client in headless
//! Chromium, its peer connections forced to relay-only by the script's init
//! script (the page has no such switch), through the same kind of coturn;
//! the script checks that the selected candidate pair is relay on both sides.
//! It needs what `tests/browser.rs` needs and skips the same way (unless
//! `MUXLINK_REQUIRE_BROWSER` is set).
//!
//! Without `turnserver` on the PATH the tests print why and pass, unless
//! `MUXLINK_REQUIRE_TURN=1` (CI), where that is a failure.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mobile_client::{Event, PhoneClient, PhoneConnection, RtcConfig};
use muxlink_e2e::pairing::{
    Host, PAIR_ARGS, blocking, init, pair_phone, phone_config, start_pairing,
};
use muxlink_e2e::{Home, Tmux};
use rtc_transport::IceServer;
use signaling_server::{Server, ServerConfig, TurnConfig};
use test_support::wait_until_blocking;

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);
const REALM: &str = "muxlink";

/// Whether coturn is here; `None` = skip (with the reason printed).
fn turnserver() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("turnserver"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("MUXLINK_REQUIRE_TURN").as_deref() != Ok("1"),
            "MUXLINK_REQUIRE_TURN=1 but `turnserver` (Debian package coturn) is not installed"
        );
        eprintln!(
            "SKIPPED: `turnserver` is not installed (apt-get install coturn); set MUXLINK_REQUIRE_TURN=1 to make this a failure"
        );
    }
    found
}

/// A loopback port free for UDP and TCP alike (bound, then released for
/// coturn, which otherwise keeps retrying a TCP bind that fails).
fn free_udp_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// How coturn checks credentials.
enum Auth {
    /// `--lt-cred-mech --user=<user>:<password>`.
    Static { user: String, password: String },
    /// `--use-auth-secret --static-auth-secret=<secret>` (TURN REST).
    Rest { secret: String },
}

/// A running coturn, stopped (SIGKILL, its own child) when dropped.
struct Coturn {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Coturn {
    fn start(bin: &Path, auth: &Auth) -> Coturn {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        // A relay range of its own, away from the ephemeral ports of the
        // kernel (32768+ on Linux ends at 60999): coturn skips ports in use.
        let base = 20_000 + (u32::from(port) * 7919 % 9_000) as u16;
        let log = dir.path().join("turn.log");
        let mut cmd = Command::new(bin);
        cmd.args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            &format!("--listening-port={port}"),
            &format!("--min-port={base}"),
            &format!("--max-port={}", base + 200),
            &format!("--realm={REALM}"),
            "--no-tcp",
            "--no-tls",
            "--no-dtls",
            "--no-tcp-relay",
            "--allow-loopback-peers",
            "--no-cli",
            "--no-rfc5780",
            "--no-stun-backward-compatibility",
            &format!("--pidfile={}", dir.path().join("turn.pid").display()),
            &format!("--userdb={}", dir.path().join("turndb").display()),
            &format!("--log-file={}", log.display()),
            "--simple-log",
            "--no-stdout-log",
            "--verbose",
        ]);
        match auth {
            Auth::Static { user, password } => {
                cmd.args(["--lt-cred-mech", &format!("--user={user}:{password}")]);
            }
            Auth::Rest { secret } => {
                cmd.args([
                    "--use-auth-secret",
                    &format!("--static-auth-secret={secret}"),
                ]);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut coturn = Coturn {
            child,
            port,
            log,
            _dir: dir,
        };
        coturn.wait_ready();
        coturn
    }

    /// Bounded wait until coturn answers a STUN Binding request on its port.
    fn wait_ready(&mut self) {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Binding request: type 0x0001, length 0, magic cookie, transaction id.
        let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        req.extend_from_slice(b"muxlink-test");
        let deadline = Instant::now() + T;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("coturn exited ({status}):\n{}", self.log_text());
            }
            let _ = probe.send_to(&req, ("127.0.0.1", self.port));
            if let Ok((n, _)) = probe.recv_from(&mut buf)
                && n >= 20
                && buf[8..20] == req[8..20]
            {
                return;
            }
        }
        panic!(
            "coturn never answered on 127.0.0.1:{}:\n{}",
            self.port,
            self.log_text()
        );
    }

    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Users coturn logged a successful ALLOCATE for.
    fn allocated_users(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("ALLOCATE processed, success"))
            .filter_map(|l| {
                let rest = &l[l.find("user <")? + 6..];
                Some(rest[..rest.find('>')?].to_owned())
            })
            .collect()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `muxlink run` with ICE as configured in `config.toml` (not loopback-only:
/// the agent then fetches `/turn/credentials`), killed when dropped.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Agent {
    fn start(home: &Home) -> Agent {
        let mut child = home
            .cmd(&["run"])
            .env("MUXLINK_LOOPBACK_ONLY", "false")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::sync_channel(4096);
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut agent = Agent {
            child,
            lines,
            seen: Vec::new(),
        };
        agent.wait_line("agent ready");
        agent
    }

    fn wait_line(&mut self, needle: &str) {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no {needle:?} from the agent:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut status = None;
        let exited = wait_until_blocking(T, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        assert!(exited, "agent ignored SIGTERM");
        assert!(status.unwrap().success(), "agent exit {status:?}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads output events until their text contains `needle`.
async fn output_until(conn: &PhoneConnection, needle: &str) {
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
}

/// `GET /v1/turn/credentials` as the phone (paired, with its JWT).
async fn turn_credentials(server_url: &str, jwt: &str) -> IceServer {
    let url = format!("{server_url}/v1/turn/credentials");
    let auth = format!("Bearer {jwt}");
    let body: serde_json::Value = blocking(|| {
        ureq::get(&url)
            .header("Authorization", &auth)
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    });
    IceServer {
        urls: body["urls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect(),
        username: body["username"].as_str().unwrap().to_owned(),
        credential: body["credential"].as_str().unwrap().to_owned(),
    }
}

/// Pairs a phone with a relay-only agent on a server handing out `turn`,
/// then attaches, types and reads the output, all over TURN. Returns the
/// phone's and the host's device ids.
async fn relay_session(turn: TurnConfig, coturn: &Coturn) -> (String, String) {
    let tmux = Tmux::new();
    let pane = tmux.new_session("work", 80, 24).unwrap();
    let server = Server::start(ServerConfig {
        turn,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let mut home = Home::new(BIN, &tmux.socket).unwrap();
    home.server = Some(server.url());
    init(&home, T).unwrap();
    let host = Host {
        tmux,
        pane,
        server,
        home,
    };
    // The agent: relay-only ICE from its config file.
    let config = host.home.path().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap_or_default();
    text.push_str("\nrelay_only = true\n");
    std::fs::write(&config, text).unwrap();

    let (mut pair, payload) = start_pairing(&host.home, PAIR_ARGS, T).unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let cfg = phone_config(phone_dir.path(), "turn-phone");
    let (phone, record) = pair_phone(cfg.clone(), &payload, &mut pair, T)
        .await
        .unwrap();
    assert!(blocking(|| pair.child.wait()).unwrap().success());

    // The phone: relay-only, with what the server hands out.
    let jwt = phone.fetch_token().await.unwrap();
    let ice = turn_credentials(&host.server.url(), &jwt).await;
    assert_eq!(ice.urls, vec![coturn.url()]);
    drop(phone);
    let mut cfg = cfg;
    cfg.rtc = RtcConfig {
        ice_servers: vec![ice],
        relay_only: true,
        ..RtcConfig::default()
    };
    let phone = PhoneClient::open(cfg).unwrap();

    let agent = blocking(|| Agent::start(&host.home));
    let sig = phone.signaling().await.unwrap();
    let mut online = sig.online_hosts();
    tokio::time::timeout(
        T,
        online.wait_for(|h| h.contains_key(&record.host_device_id)),
    )
    .await
    .expect("host never came online")
    .unwrap();

    let conn = phone.connect(sig).await.unwrap();
    let sessions = conn.list_sessions().await.unwrap();
    assert!(sessions.iter().any(|s| s.name == "work"), "{sessions:?}");
    conn.attach(&host.pane, 80, 24, false, true).await.unwrap();
    conn.input(b"echo turn-$((6*7))-relayed\r").await.unwrap();
    output_until(&conn, "turn-42-relayed").await;
    conn.detach().await.unwrap();

    blocking(|| agent.stop());
    host.server.shutdown().await;
    (
        phone.identity().device_id().to_owned(),
        record.host_device_id,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_through_coturn_with_static_credentials() {
    let Some(bin) = turnserver() else { return };
    let (user, password) = ("muxlink-user".to_owned(), "muxlink-pass".to_owned());
    let coturn = Coturn::start(
        &bin,
        &Auth::Static {
            user: user.clone(),
            password: password.clone(),
        },
    );
    let turn = TurnConfig {
        urls: vec![coturn.url()],
        username: user.clone(),
        credential: password,
        ..ServerConfig::default().turn
    };
    relay_session(turn, &coturn).await;
    // Both ends allocated a relay with the static user (agent and phone).
    let users = coturn.allocated_users();
    assert!(
        users.iter().filter(|u| **u == user).count() >= 2,
        "allocations: {users:?}\n{}",
        coturn.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_through_coturn_with_rest_credentials() {
    let Some(bin) = turnserver() else { return };
    let secret = "muxlink-turn-rest-secret".to_owned();
    let coturn = Coturn::start(
        &bin,
        &Auth::Rest {
            secret: secret.clone(),
        },
    );
    let turn = TurnConfig {
        urls: vec![coturn.url()],
        secret,
        ..ServerConfig::default().turn
    };
    let (phone_id, host_id) = relay_session(turn, &coturn).await;
    // Each end allocated with the `<expiry>:<device id>` name the server
    // computed for it; coturn verified the HMAC with the shared secret.
    let users = coturn.allocated_users();
    for id in [&phone_id, &host_id] {
        assert!(
            users.iter().any(|u| u.ends_with(&format!(":{id}"))),
            "no allocation for {id}: {users:?}\n{}",
            coturn.log_text()
        );
    }
}

/// `muxlink-signaling-server` beside this test's binary (as in tests/browser.rs).
fn server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MUXLINK_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("muxlink-signaling-server"))
}

/// What the browser case lacks (as in tests/browser.rs), if anything.
fn browser_missing(web: &Path, chromium: &Path, server: Option<&Path>) -> Vec<String> {
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (Node.js 20+)".to_owned());
    }
    if !web.join("node_modules/playwright-core").is_dir() {
        missing.push("web/node_modules (run `cargo xtask web`)".to_owned());
    }
    if !web.join("dist/index.html").is_file() {
        missing.push("web/dist (run `cargo xtask web`, then rebuild)".to_owned());
    }
    if !chromium.is_file() {
        missing.push(format!("{} (apt install chromium)", chromium.display()));
    }
    if !server.is_some_and(Path::is_file) {
        missing.push("muxlink-signaling-server (cargo build -p signaling-server)".to_owned());
    }
    missing
}

#[test]
fn the_web_client_runs_through_coturn_relay_only_in_chromium() {
    let Some(bin) = turnserver() else { return };
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let server = server_bin();
    let missing = browser_missing(&web, &chromium, server.as_deref());
    if !missing.is_empty() {
        let text = format!("the browser TURN test needs: {}", missing.join(", "));
        assert!(
            std::env::var_os("MUXLINK_REQUIRE_BROWSER").is_none(),
            "{text}"
        );
        eprintln!("SKIPPED: {text}");
        return;
    }
    let (user, password) = ("muxlink-web".to_owned(), "muxlink-web-pass".to_owned());
    let coturn = Coturn::start(
        &bin,
        &Auth::Static {
            user: user.clone(),
            password: password.clone(),
        },
    );
    let status = Command::new("node")
        .arg("e2e/turn.mjs")
        .current_dir(&web)
        .env("MUXLINK_BIN", BIN)
        .env("MUXLINK_SERVER_BIN", server.unwrap_or_default())
        .env("CHROMIUM", &chromium)
        .env("TURN_PORT", coturn.port.to_string())
        .env("TURN_USER", &user)
        .env("TURN_PASSWORD", &password)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "web/e2e/turn.mjs failed ({status}); see its output above; coturn:\n{}",
        coturn.log_text()
    );
    // The browser and the agent both allocated on this coturn.
    let users = coturn.allocated_users();
    assert!(
        users.iter().filter(|u| **u == user).count() >= 2,
        "allocations: {users:?}"
    );
}
