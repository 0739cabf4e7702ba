//! The first steps every end-to-end run shares: an initialised agent home on
//! the bundled server, `muxlink pair --payload-only` waiting for a phone, and a
//! loopback Rust phone paired from the payload it prints.
//!
//! The waits on child processes run through [`blocking`], so async callers need
//! the multi-thread runtime (every suite here uses it).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mobile_client::{PairingRecord, PhoneClient, PhoneConfig, RtcConfig};
use signaling_server::{RunningServer, Server, ServerConfig};

use crate::{Home, Running, Stream, Tmux};

/// `muxlink pair` for scripts: prints `PAIRING_PAYLOAD <text>`, no confirmation.
pub const PAIR_ARGS: &[&str] = &["pair", "--payload-only", "--yes"];

/// Blocking work (child processes, CLI calls) off the async workers
/// (needs the multi-thread runtime).
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// A host ready to pair: private tmux with one session, the bundled server
/// (in-memory, default settings) and an agent home initialised against it.
pub struct Host {
    /// Private tmux server.
    pub tmux: Tmux,
    /// The first pane of the session.
    pub pane: String,
    /// The running signaling server.
    pub server: RunningServer,
    /// The agent installation (`MUXLINK_SERVER` set to the server).
    pub home: Home,
}

impl Host {
    /// Starts tmux with session `session` of `cols`×`rows`, the server, and
    /// runs `muxlink init` for the binary `bin`.
    pub async fn start(bin: &str, session: &str, cols: u16, rows: u16) -> Result<Host> {
        let tmux = Tmux::new();
        let pane = tmux.new_session(session, cols, rows)?;
        let server = Server::start(ServerConfig::default())
            .await
            .context("starting the signaling server")?;
        let mut home = Home::new(bin, &tmux.socket)?;
        home.server = Some(server.url());
        init(&home, Duration::from_secs(30))?;
        Ok(Host {
            tmux,
            pane,
            server,
            home,
        })
    }
}

/// Runs `muxlink init` in `home`; fails with its stderr.
pub fn init(home: &Home, timeout: Duration) -> Result<()> {
    let out = blocking(|| home.output(&["init"], timeout))?;
    if !out.status.success() {
        bail!(
            "muxlink init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Spawns `muxlink <args>` (a `pair` that prints the payload, usually
/// [`PAIR_ARGS`]) and waits for its `PAIRING_PAYLOAD` line; returns the still
/// running command (it waits for the phone) and the payload text.
pub fn start_pairing(home: &Home, args: &[&str], timeout: Duration) -> Result<(Running, String)> {
    let mut pair = home.spawn(args)?;
    let line = blocking(|| {
        pair.wait_line(timeout, |s, l| {
            s == Stream::Stdout && l.starts_with("PAIRING_PAYLOAD ")
        })
    })?;
    let payload = line.trim_start_matches("PAIRING_PAYLOAD ").to_string();
    Ok((pair, payload))
}

/// Phone settings for tests: config in `dir`, device name `name`, WebRTC on
/// loopback only.
pub fn phone_config(dir: &Path, name: &str) -> PhoneConfig {
    let mut cfg = PhoneConfig::new(dir);
    cfg.name = name.into();
    cfg.rtc = RtcConfig::loopback();
    cfg
}

/// Opens a phone with `cfg`, pairs it from `payload`, and waits until `pair`
/// (the host's `muxlink pair`) prints `PAIRED` with this phone's device id.
pub async fn pair_phone(
    cfg: PhoneConfig,
    payload: &str,
    pair: &mut Running,
    timeout: Duration,
) -> Result<(PhoneClient, PairingRecord)> {
    let phone = PhoneClient::open(cfg)?;
    let record = phone.pair(payload).await.context("phone pairing")?;
    let paired = blocking(|| pair.wait_line(timeout, |_, l| l.starts_with("PAIRED ")))?;
    let expected = format!("PAIRED {}", phone.identity().device_id());
    if paired != expected {
        bail!("the host paired another device: {paired:?}, expected {expected:?}");
    }
    Ok((phone, record))
}
