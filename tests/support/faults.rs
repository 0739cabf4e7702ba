//! A ready-made rig for the fault and hostile-input tests: tmux with one pane,
//! the bundled server on a fixed port over a SQLite file (so it can be killed and
//! restarted in place), a paired phone and a running `muxlink run` agent.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mobile_client::{Event, PairingRecord, PhoneClient, PhoneConfig, PhoneConnection, RtcConfig};
use signaling_server::{RateLimits, RunningServer, Server, ServerConfig};

pub use crate::pairing::blocking;
use crate::pairing::{PAIR_ARGS, init, pair_phone, start_pairing};
use crate::{Home, Running, Tmux};

/// Bound of every single step of a rig (a wait, a command, a connect).
pub const STEP: Duration = Duration::from_secs(30);

/// Server, tmux, agent home, paired phone and (usually) a running agent.
pub struct Rig {
    /// Private tmux server.
    pub tmux: Tmux,
    /// The pane of session `work` (100×30, running `sh`).
    pub pane: String,
    /// The agent installation.
    pub home: Home,
    /// The paired phone (config dir in `phone_dir`).
    pub phone: PhoneClient,
    /// The phone's config directory (identity and pairing record).
    pub phone_dir: tempfile::TempDir,
    /// What the phone stored when pairing.
    pub record: PairingRecord,
    /// The running server; `None` while it is stopped.
    pub server: Option<RunningServer>,
    /// How to start the server again on the same port and SQLite file.
    pub server_config: ServerConfig,
    /// The running `muxlink run`; `None` when stopped.
    pub agent: Option<Running>,
    /// Where the agent runs and how the phone gathers candidates.
    pub options: RigOptions,
    _db_dir: tempfile::TempDir,
}

/// Non-default rig layouts (the default: everything on 127.0.0.1).
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// Server listen address (port 0: any).
    pub server_bind: std::net::SocketAddr,
    /// Run the agent inside this network namespace (`ip netns exec`), with
    /// loopback-only ICE off so it gathers its namespace's addresses.
    pub agent_netns: Option<String>,
    /// Phone WebRTC settings.
    pub phone_rtc: RtcConfig,
    /// The agent's `RUST_LOG` (`None`: the test's own, if set, else the
    /// agent's default: info for muxlink, warn for the rest). A failing test
    /// prints the agent's log ([`Running::transcript`]), so a test whose
    /// failures live in the WebRTC stack asks for that stack's log here.
    pub agent_log: Option<String>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            server_bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            agent_netns: None,
            phone_rtc: RtcConfig::loopback(),
            agent_log: None,
        }
    }
}

impl Rig {
    /// Starts everything, pairs the phone and starts the agent (`agent ready` seen).
    pub async fn start(bin: &str) -> Result<Rig> {
        Self::start_with(bin, RigOptions::default()).await
    }

    /// [`Rig::start`] with another layout.
    pub async fn start_with(bin: &str, options: RigOptions) -> Result<Rig> {
        let tmux = Tmux::new();
        let pane = tmux.new_session("work", 100, 30)?;
        let db_dir = tempfile::tempdir()?;
        let mut server_config = ServerConfig {
            database: Some(db_dir.path().join("signaling.db")),
            // Many connects from 127.0.0.1 in a short time are the point here.
            rate_limits: RateLimits::disabled(),
            bind: options.server_bind,
            ..ServerConfig::default()
        };
        let server = Server::start(server_config.clone()).await?;
        server_config.bind = server.local_addr();

        let mut home = Home::new(bin, &tmux.socket)?;
        home.server = Some(server.url());
        init(&home, STEP)?;
        let (mut pair, payload) = start_pairing(&home, PAIR_ARGS, STEP)?;
        let phone_dir = tempfile::tempdir()?;
        let mut cfg = phone_config(phone_dir.path().to_path_buf());
        cfg.rtc = options.phone_rtc.clone();
        let (phone, record) = pair_phone(cfg, &payload, &mut pair, STEP).await?;
        if !blocking(|| pair.child.wait())?.success() {
            bail!("muxlink pair failed:\n{}", pair.transcript());
        }
        let mut rig = Rig {
            tmux,
            pane,
            home,
            phone,
            phone_dir,
            record,
            server: Some(server),
            server_config,
            agent: None,
            options,
            _db_dir: db_dir,
        };
        rig.start_agent()?;
        Ok(rig)
    }

    /// Spawns `muxlink run` and waits for `agent ready`.
    pub fn start_agent(&mut self) -> Result<()> {
        let mut cmd = match &self.options.agent_netns {
            None => self.home.cmd(&["run"]),
            Some(ns) => {
                // Same environment as every other command of this home, run
                // through `ip netns exec`.
                let real = std::mem::replace(&mut self.home.bin, PathBuf::from("ip"));
                let bin = real.to_string_lossy().into_owned();
                let mut cmd = self.home.cmd(&["netns", "exec", ns, &bin, "run"]);
                self.home.bin = real;
                cmd.env("MUXLINK_LOOPBACK_ONLY", "false");
                cmd
            }
        };
        if let Some(filter) = &self.options.agent_log {
            cmd.env("RUST_LOG", filter);
        }
        let mut agent = spawn_captured(cmd)?;
        blocking(|| agent.wait_line(STEP, |_, l| l.contains("agent ready")))?;
        self.agent = Some(agent);
        Ok(())
    }

    /// The running agent (panics when none runs: a test bug).
    pub fn agent(&mut self) -> &mut Running {
        self.agent.as_mut().expect("the rig's agent is running")
    }

    /// Stops the server (every socket closed with 1001).
    pub async fn stop_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Starts the server again on the same port and SQLite file.
    pub async fn restart_server(&mut self) -> Result<()> {
        let deadline = Instant::now() + STEP;
        loop {
            match Server::start(self.server_config.clone()).await {
                Ok(s) => {
                    self.server = Some(s);
                    return Ok(());
                }
                // The old listener's port may take a moment to be free again.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("restarting the server"),
            }
        }
    }

    /// A fresh phone signaling session that has seen the host online.
    pub async fn phone_signaling(&self) -> Result<std::sync::Arc<mobile_client::Signaling>> {
        let sig = self.phone.signaling().await?;
        let mut online = sig.online_hosts();
        tokio::time::timeout(
            STEP,
            online.wait_for(|h| h.contains_key(&self.record.host_device_id)),
        )
        .await
        .context("the host never came online")??;
        Ok(sig)
    }

    /// Connects the phone (new signaling session) and authenticates.
    pub async fn connect(&self) -> Result<PhoneConnection> {
        let sig = self.phone_signaling().await?;
        Ok(self.phone.connect(sig).await?)
    }

    /// `muxlink status --json`.
    pub fn status(&self) -> Result<serde_json::Value> {
        let o = self.home.output(&["status", "--json"], STEP)?;
        if !o.status.success() {
            bail!("muxlink status: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(serde_json::from_slice(&o.stdout)?)
    }

    /// Re-reads the status until `pred` holds, within `timeout`.
    pub async fn status_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        // The agent rewrites the file on change; re-reading is the only way to see it.
        let mut last = Ok(serde_json::Value::Null);
        test_support::wait_until(timeout, || {
            last = blocking(|| self.status());
            // A status that cannot be read ends the wait at once.
            let done = last.as_ref().map_or(true, &pred);
            async move { done }
        })
        .await;
        let v = last?;
        if !pred(&v) {
            bail!("status never matched within {timeout:?}: {v:#}");
        }
        Ok(v)
    }

    /// The pane's window `window-size` option ("" when not forced by anyone).
    pub fn forced_window_size(&self) -> Result<String> {
        self.tmux
            .run(&["show-options", "-w", "-t", &self.pane, "window-size"])
    }

    /// The visible text of the pane.
    pub fn pane_text(&self) -> Result<String> {
        self.tmux.run(&["capture-pane", "-p", "-t", &self.pane])
    }

    /// Stops the agent with SIGTERM (bounded) and the server.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(mut a) = self.agent.take() {
            let st = blocking(|| a.terminate(STEP))?;
            if !st.success() {
                bail!("agent exit {st:?}:\n{}", a.transcript());
            }
        }
        self.stop_server().await;
        Ok(())
    }
}

/// The phone settings every fault test uses: loopback WebRTC.
pub fn phone_config(dir: PathBuf) -> PhoneConfig {
    crate::pairing::phone_config(&dir, "fault-phone")
}

/// Reads events until the output text contains `needle` (other events are
/// skipped); returns the text. Fails on close or after `timeout`.
pub async fn output_until(
    conn: &PhoneConnection,
    needle: &str,
    timeout: Duration,
) -> Result<String> {
    let mut text = String::new();
    let found = tokio::time::timeout(timeout, async {
        loop {
            match conn.next_event().await {
                Some(Event::Output { data, .. }) => {
                    text.push_str(&String::from_utf8_lossy(&data));
                    if text.contains(needle) {
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
        Ok(true) => Ok(text),
        Ok(false) => bail!("connection closed while waiting for {needle:?}; output: {text:?}"),
        Err(_) => bail!("no {needle:?} within {timeout:?}; output: {text:?}"),
    }
}

/// Events already queued on `conn` (it does not wait for new ones).
pub async fn queued_events(conn: &PhoneConnection) -> Vec<Event> {
    let mut out = Vec::new();
    // A zero timeout polls the future once: only what is already there.
    // Unconstrained, so tokio's cooperative budget (spent by whatever this
    // task did just before) cannot make a queued event look absent.
    while let Ok(Some(ev)) =
        tokio::task::unconstrained(tokio::time::timeout(Duration::ZERO, conn.next_event())).await
    {
        out.push(ev);
    }
    out
}

/// Waits until the host has handled every request sent before this one:
/// `kill_session` of a session that cannot exist is answered by the handler,
/// in order, with `kill_session_failed`. Neither `ping` (answered at once,
/// ahead of queued requests) nor `list_sessions` (a `sessions` event pushed
/// on a tmux tree change satisfies it early) can serve as this barrier.
pub async fn barrier(conn: &PhoneConnection) {
    match conn.kill_session("$4294967295").await {
        Err(mobile_client::ClientError::Remote { code, .. }) if code == "kill_session_failed" => {}
        other => panic!("barrier: expected kill_session_failed, got {other:?}"),
    }
}

/// Waits (bounded) for the DataChannel of `conn` to close.
pub async fn closed_within(conn: &PhoneConnection, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, conn.closed()).await.is_ok()
}

/// Sends SIGKILL to a process (no clean-up of any kind on its side).
pub fn sigkill(pid: u32) -> Result<()> {
    let st = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("kill -KILL {pid} failed");
    }
    Ok(())
}

/// Spawns `cmd` with stdout and stderr captured line by line (stdin closed).
pub fn spawn_captured(mut cmd: std::process::Command) -> Result<Running> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning a child process")?;
    Ok(Running::new(child))
}

/// A network namespace for the agent, joined to this one through a middle
/// namespace that bridges two veth pairs; both namespaces are deleted on drop.
/// Needs root. The host side is `10.201.<n>.1/24`, the agent's side `.2`; the
/// agent's namespace has no other route. A phone in this namespace that should
/// reach the agent over nothing but this path gathers on `host_ip` only
/// (`RtcConfig::host_ips`): its other addresses are unreachable from the
/// agent (ENETUNREACH), and other tests' interfaces come and go.
///
/// [`Netns::set_link`] takes down the two veth ends inside the middle
/// namespace, so both endpoints only lose carrier: their addresses and routes
/// stay, and what they send is dropped without an error, as on a path that
/// went dark somewhere between two hosts. (`ip link set down` on an
/// endpoint's own interface would instead flush its routes and make its sends
/// fail at once with ENETUNREACH.)
pub struct Netns {
    /// The agent's namespace.
    pub name: String,
    /// Host-side interface (it stays up; the black hole is in the middle).
    pub host_dev: String,
    /// Host-side address.
    pub host_ip: std::net::Ipv4Addr,
    /// Namespace-side address.
    pub ns_ip: std::net::Ipv4Addr,
    /// The middle namespace: a bridge between the two veth pairs.
    middle: String,
    /// The middle namespace's two bridge ports, set down to black-hole the path.
    middle_ports: [String; 2],
}

/// Runs `ip` with `args`; fails with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let o = std::process::Command::new("ip").args(args).output()?;
    if !o.status.success() {
        bail!("ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(())
}

impl Netns {
    /// Whether this process may create namespaces (root).
    pub fn available() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    /// Creates both namespaces and the path through them, all up.
    pub fn create() -> Result<Netns> {
        // Interface names are at most 15 bytes; the subnet starts from the pid
        // and skips subnets another test already uses.
        let pid = std::process::id();
        let in_use = |n: u32| {
            std::process::Command::new("ip")
                .args([
                    "-4",
                    "-o",
                    "addr",
                    "show",
                    "to",
                    &format!("10.201.{n}.0/24"),
                ])
                .output()
                .map_or(true, |o| !o.stdout.is_empty())
        };
        let n = (0..200)
            .map(|i| (pid + i) % 200 + 20)
            .find(|n| !in_use(*n))
            .context("no free 10.201.x.0/24 subnet")?;
        let n = u8::try_from(n).context("subnet number")?;
        let tag = pid % 1_000_000;
        let ns = Netns {
            name: crate::unique("mxl-ns"),
            host_dev: format!("mxh{tag}"),
            host_ip: std::net::Ipv4Addr::new(10, 201, n, 1),
            ns_ip: std::net::Ipv4Addr::new(10, 201, n, 2),
            middle: crate::unique("mxl-mid"),
            middle_ports: [format!("mxa{tag}"), format!("mxb{tag}")],
        };
        // From here on, a failure deletes whatever was made (drop).
        ip(&["netns", "add", &ns.middle])?;
        ip(&["netns", "add", &ns.name])?;
        let ns_dev = format!("mxp{tag}");
        let [port_a, port_b] = &ns.middle_ports;
        // host_dev (here) ── port_a [bridge] port_b (middle) ── ns_dev (agent)
        ip(&[
            "link",
            "add",
            &ns.host_dev,
            "type",
            "veth",
            "peer",
            "name",
            port_a,
            "netns",
            &ns.middle,
        ])?;
        ip(&[
            "-n", &ns.middle, "link", "add", port_b, "type", "veth", "peer", "name", &ns_dev,
            "netns", &ns.name,
        ])?;
        let mid = |args: &[&str]| {
            let mut a = vec!["-n", ns.middle.as_str()];
            a.extend_from_slice(args);
            ip(&a)
        };
        mid(&["link", "add", "br0", "type", "bridge"])?;
        for port in &ns.middle_ports {
            mid(&["link", "set", port, "master", "br0"])?;
            mid(&["link", "set", port, "up"])?;
        }
        mid(&["link", "set", "br0", "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_ip),
            "dev",
            &ns.host_dev,
        ])?;
        ip(&["link", "set", &ns.host_dev, "up"])?;
        let inside = |args: &[&str]| {
            let mut a = vec!["-n", ns.name.as_str()];
            a.extend_from_slice(args);
            ip(&a)
        };
        inside(&["addr", "add", &format!("{}/24", ns.ns_ip), "dev", &ns_dev])?;
        inside(&["link", "set", &ns_dev, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Black-holes (`false`) or restores (`true`) the path: both directions,
    /// UDP and TCP alike, dropped silently (see the type's doc).
    pub fn set_link(&self, up: bool) -> Result<()> {
        for port in &self.middle_ports {
            ip(&[
                "-n",
                &self.middle,
                "link",
                "set",
                port,
                if up { "up" } else { "down" },
            ])?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and with them their
        // peers; the host-side end goes with the middle namespace.
        for ns in [&self.name, &self.middle] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_dev])
            .stderr(Stdio::null())
            .status();
    }
}
