//! The bench's world: the bundled server, a private tmux server, a paired
//! phone and the real `muxlink` agent in a temporary home, plus a scratch
//! directory for pipe sockets and generator sum files. Dropping it removes them all.
//! Also the phone's [`Keepalive`]: a ping every 10 s for a connection's
//! whole life, as muxlink-phone and the web client do.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mobile_client::{PhoneClient, PhoneConnection, Request, Signaling};
pub use muxlink_e2e::pairing::blocking;
use muxlink_e2e::pairing::{Host, PAIR_ARGS, pair_phone, phone_config, start_pairing};
use muxlink_e2e::{Home, Running, Tmux};

/// How long any one setup step may take.
pub const STEP: Duration = Duration::from_secs(30);
/// Size of every bench pane.
pub const COLS: u16 = 100;
/// Size of every bench pane.
pub const ROWS: u16 = 30;

/// How often the phone pings. The agent closes a peer that has not pinged
/// for 60 s; the apps ping every few seconds.
pub const PING_EVERY: Duration = Duration::from_secs(10);
/// Agent output lines printed when a phase fails.
const AGENT_TAIL: usize = 12;

/// Pings the host every [`PING_EVERY`] while the connection lives (the
/// pongs reach `next_event`, where the bench skips them); stops when
/// dropped or when the connection is gone.
pub struct Keepalive(tokio::task::JoinHandle<()>);

impl Keepalive {
    /// Starts pinging on `conn`.
    pub fn start(conn: &Arc<PhoneConnection>) -> Keepalive {
        let weak: Weak<PhoneConnection> = Arc::downgrade(conn);
        Keepalive(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PING_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(conn) = weak.upgrade() else { return };
                if conn.send_request(&Request::Ping).await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything the measurements need.
pub struct Rig {
    /// This executable (runs the generator inside panes).
    pub bench_exe: String,
    /// The `muxlink` binary (also the pane pipe helper of the tmux-alone runs).
    pub muxlink: String,
    /// Private tmux server.
    pub tmux: Tmux,
    /// The agent's home.
    pub home: Home,
    /// The running agent (`muxlink run`), once started.
    pub agent: Option<Running>,
    /// The paired phone.
    pub phone: PhoneClient,
    /// Its signaling connection, once the agent runs.
    pub signaling: Option<Arc<Signaling>>,
    /// The in-process signaling server.
    pub server: Option<signaling_server::RunningServer>,
    /// Pipe sockets and sum files.
    pub scratch: tempfile::TempDir,
    _phone_dir: tempfile::TempDir,
    panes_made: u32,
}

impl Rig {
    /// Starts the server and tmux, initialises and pairs an agent home (the
    /// agent itself is started by [`Rig::start_agent`]).
    pub async fn new(muxlink: &Path, bench_exe: &Path) -> Result<Rig> {
        // The agent's control client needs a session to exist: `bench-home`.
        let Host {
            tmux, server, home, ..
        } = Host::start(&muxlink.to_string_lossy(), "bench-home", COLS, ROWS).await?;

        let (mut pair, payload) = start_pairing(&home, PAIR_ARGS, STEP)?;
        let phone_dir = tempfile::tempdir()?;
        let cfg = phone_config(phone_dir.path(), "bench-phone");
        let (phone, _) = pair_phone(cfg, &payload, &mut pair, STEP).await?;
        drop(pair);

        Ok(Rig {
            bench_exe: bench_exe.to_string_lossy().into_owned(),
            muxlink: muxlink.to_string_lossy().into_owned(),
            tmux,
            home,
            agent: None,
            phone,
            signaling: None,
            server: Some(server),
            scratch: tempfile::tempdir()?,
            _phone_dir: phone_dir,
            panes_made: 0,
        })
    }

    /// Starts `muxlink run` and waits until the phone sees the host online.
    pub async fn start_agent(&mut self) -> Result<()> {
        let mut agent = self.home.spawn(&["run"])?;
        blocking(|| agent.wait_line(STEP, |_, l| l.contains("agent ready")))?;
        self.agent = Some(agent);
        let sig = self.phone.signaling().await.context("phone signaling")?;
        let host = self
            .phone
            .pairing()?
            .context("the phone lost its pairing")?
            .host_device_id;
        let mut online = sig.online_hosts();
        tokio::time::timeout(STEP, online.wait_for(|h| h.contains_key(&host)))
            .await
            .context("the host never came online at the server")??;
        self.signaling = Some(sig);
        Ok(())
    }

    /// Reads what the agent printed so far: its output goes through a
    /// bounded queue and pipes, which must never fill, or its logging would
    /// block it. Called between phases.
    pub fn drain_agent(&mut self) {
        if let Some(agent) = self.agent.as_mut() {
            // Ends with "no matching line" once 200 ms pass: nothing is matched.
            let _ = agent.wait_line(Duration::from_millis(200), |_, _| false);
        }
    }

    /// The agent's last lines, for a failure message.
    pub fn agent_tail(&mut self) -> Vec<String> {
        self.drain_agent();
        let Some(agent) = self.agent.as_ref() else {
            return Vec::new();
        };
        let start = agent.seen.len().saturating_sub(AGENT_TAIL);
        agent.seen[start..].iter().map(|(_, l)| l.clone()).collect()
    }

    /// The agent's process id.
    pub fn agent_pid(&self) -> Result<u32> {
        Ok(self.agent.as_ref().context("agent not started")?.child.id())
    }

    /// The tmux server's process id.
    pub fn tmux_pid(&self) -> Result<u32> {
        Ok(self
            .tmux
            .run(&["display-message", "-p", "#{pid}"])?
            .parse()?)
    }

    /// The phone's signaling connection.
    pub fn signaling(&self) -> Result<Arc<Signaling>> {
        self.signaling.clone().context("agent not started")
    }

    /// A new detached session of the bench size running `command`; returns its pane id.
    pub fn pane(&mut self, command: &str) -> Result<String> {
        self.panes_made += 1;
        let name = format!("bench-{}", self.panes_made);
        let (c, r) = (COLS.to_string(), ROWS.to_string());
        self.tmux.run(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            &c,
            "-y",
            &r,
            command,
        ])?;
        self.tmux
            .run(&["display-message", "-p", "-t", &name, "#{pane_id}"])
    }

    /// A second pane beside `pane` (same window) running `command`.
    pub fn sibling(&self, pane: &str, command: &str) -> Result<String> {
        self.tmux.run(&[
            "split-window",
            "-d",
            "-t",
            pane,
            "-P",
            "-F",
            "#{pane_id}",
            command,
        ])
    }

    /// Kills a pane (and its program); missing panes are fine.
    pub fn kill_pane(&self, pane: &str) {
        let _ = self.tmux.run(&["kill-pane", "-t", pane]);
    }

    /// A path in the scratch directory.
    pub fn scratch_file(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// Stops the agent (SIGTERM), the tmux server and the signaling server.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(sig) = self.signaling.take() {
            sig.close().await;
        }
        let mut status = None;
        if let Some(mut agent) = self.agent.take() {
            status = Some(blocking(|| agent.terminate(STEP))?);
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        drop(self);
        if let Some(st) = status
            && !st.success()
        {
            bail!("the agent exited with {st}");
        }
        Ok(())
    }
}
