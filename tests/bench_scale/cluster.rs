//! The deployment under load: N `muxlink-signaling-server` processes (the
//! release binary next to this one) sharing one PostgreSQL database, one JWT
//! secret and, when given, one NATS bus — every per-client cap raised, since
//! all the simulated devices come from 127.0.0.1. Instances log warnings to
//! files in a temp dir; each is SIGKILLed on drop or by [`Cluster::kill`].

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// The server binary's name.
const SERVER: &str = "muxlink-signaling-server";
/// How long an instance has to print its "listening on" line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Per-client caps above what 1000 devices on one address need.
const CLIENT_CAP: &str = "20000";

/// The running instances.
pub struct Cluster {
    /// Each instance's base URL, e.g. `http://127.0.0.1:41234`.
    pub urls: Vec<String>,
    children: Vec<Option<Child>>,
}

/// The signaling server built next to this executable (`--release` for the bench).
pub fn server_beside_me() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating this executable")?;
    let bin = me.with_file_name(SERVER);
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p signaling-server --bin {SERVER}`",
            bin.display()
        );
    }
    Ok(bin)
}

impl Cluster {
    /// Starts `n` instances of `bin` on `database` (and `bus`), one after
    /// the other (the first one runs the migrations). `dir` holds the shared
    /// JWT secret and the instances' logs.
    pub fn start(
        bin: &Path,
        n: usize,
        database: &str,
        bus: Option<&str>,
        dir: &Path,
    ) -> Result<Cluster> {
        let secret = dir.join("jwt-secret");
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&secret, hex).context("writing the JWT secret")?;
        let mut cluster = Cluster {
            urls: Vec::new(),
            children: Vec::new(),
        };
        for i in 0..n {
            let log = dir.join(format!("instance-{n}-{i}.log"));
            let mut cmd = Command::new(bin);
            cmd.args(["--bind", "127.0.0.1:0", "--stun-bind", "off"])
                .arg("--database")
                .arg(database)
                .arg("--jwt-secret-file")
                .arg(&secret)
                .args(["--rate-limits", "false"])
                .args(["--max-sockets-per-client", CLIENT_CAP])
                .args(["--max-connections-per-client", CLIENT_CAP])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).context("creating a log file")?);
            if let Some(bus) = bus {
                cmd.arg("--bus").arg(bus);
            }
            let mut child = cmd
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let stdout = child.stdout.take().context("the instance's stdout")?;
            cluster.children.push(Some(child));
            let url = listening_url(stdout).with_context(|| {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                format!("instance {i} did not start; its log:\n{tail}")
            })?;
            cluster.urls.push(url);
        }
        Ok(cluster)
    }

    /// SIGKILLs instance `i` and reaps it: its sockets are gone when this returns.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.children.get_mut(i).and_then(Option::take) {
            child.kill().context("killing an instance")?;
            child.wait().context("reaping an instance")?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            let _ = self.kill(i);
        }
    }
}

/// Reads the instance's stdout until "listening on `<url>`" (within
/// [`START_TIMEOUT`]); a thread keeps draining the pipe afterwards.
fn listening_url(stdout: std::process::ChildStdout) -> Result<String> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { return };
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().trim_end_matches('/').to_owned());
                break;
            }
        }
        lines.for_each(drop);
    });
    rx.recv_timeout(START_TIMEOUT)
        .context("no \"listening on\" line")
}
