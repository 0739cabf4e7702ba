//! `muxlink status [--json]`: identity, server (with its API version when it
//! is not the default), pairing, and the running agent's state.

use serde::Serialize;

use crate::config::Config;
use crate::error::CliError;
use crate::pidfile;
use crate::status::{AgentStatus, PeerStatus};
use crate::store::{PairedDevice, Store};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    initialised: bool,
    device_id: Option<String>,
    server_url: Option<String>,
    api_version: String,
    tmux_socket: String,
    config_dir: String,
    data_dir: String,
    paired_device: Option<PairedDevice>,
    agent_running: bool,
    agent_pid: Option<i32>,
    signaling: Option<String>,
    peers: Vec<PeerStatus>,
}

/// Runs `status`. A corrupt identity is an error; everything else is reported.
pub fn status(cfg: &Config, json: bool) -> Result<(), CliError> {
    let store = Store::new(&cfg.paths.data_dir);
    let key = if store.has_identity() {
        Some(store.load_identity()?)
    } else {
        None
    };
    let paired = store.load_paired()?;
    let pid = pidfile::running_pid(&cfg.paths.pid_file());
    let agent = pid.and_then(|_| AgentStatus::read(&cfg.paths.status_file()));
    let report = Report {
        initialised: key.is_some(),
        device_id: key.map(|k| signaling_proto::device_id(&k.verifying_key().to_bytes())),
        server_url: cfg.server_url.clone(),
        api_version: cfg.api_version.clone(),
        tmux_socket: cfg.tmux_socket.clone(),
        config_dir: cfg.paths.config_dir.display().to_string(),
        data_dir: cfg.paths.data_dir.display().to_string(),
        paired_device: paired,
        agent_running: pid.is_some(),
        agent_pid: pid,
        signaling: agent.as_ref().map(|a| a.signaling.clone()),
        peers: agent.map(|a| a.peers).unwrap_or_default(),
    };
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Other(format!("cannot encode the status: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    // Everything below that came from a file is escaped: a name relayed by a
    // phone or a hand-edited record must not drive the terminal.
    let p = crate::printable::printable;
    match &report.device_id {
        Some(id) => println!("identity:  {id}"),
        None => println!("identity:  not initialised (run `muxlink init --server URL`)"),
    }
    let version = if report.api_version == signaling_proto::consts::DEFAULT_API_VERSION {
        String::new()
    } else if report.api_version.is_empty() {
        " (API without a version prefix)".to_owned()
    } else {
        format!(" (API {})", p(&report.api_version))
    };
    println!(
        "server:    {}{version}",
        p(report.server_url.as_deref().unwrap_or("not set"))
    );
    println!("tmux:      tmux -L {}", p(&report.tmux_socket));
    match &report.paired_device {
        Some(d) => println!(
            "paired:    {} ({}), since {}",
            p(d.name.as_deref().unwrap_or("unnamed phone")),
            p(&d.device_id),
            p(&d.paired_at)
        ),
        None => println!("paired:    no phone (run `muxlink pair`)"),
    }
    match report.agent_pid {
        Some(pid) => println!("agent:     running (pid {pid})"),
        None => println!("agent:     not running (`muxlink start` starts it)"),
    }
    if let Some(s) = &report.signaling {
        println!("signaling: {}", p(s));
    }
    if report.agent_running {
        if report.peers.is_empty() {
            println!("peers:     none connected");
        }
        for peer in &report.peers {
            let (id, state) = (p(&peer.device_id), p(&peer.state));
            match &peer.attached_pane {
                Some(pane) => println!("peer:      {id} {state} attached to {}", p(pane)),
                None => println!("peer:      {id} {state}"),
            }
        }
    }
    Ok(())
}
