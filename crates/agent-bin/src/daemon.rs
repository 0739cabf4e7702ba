//! `muxlink run`: the agent daemon. Wires the signaling client, the peer manager
//! and the protocol handler over the tmux bridge; handles SIGTERM/SIGINT (close
//! peers, release pane sizes, exit 0), SIGUSR2 (reload pairing) and SIGUSR1 (wake
//! signaling); keeps the status file current. One task reads the client's typed
//! signals and dispatches them by variant: the phone's new name to the store,
//! peer signaling to the peer manager.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peer_manager::{MessageSender, PeerManager, PeerManagerConfig, SendError};
use rtc_transport::RtcConfig;
use signaling_client::{ClientConfig, Identity, Signal, SignalingClient};
use tmux_bridge::{BridgeConfig, TmuxBridge};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::CliError;
use crate::handler::Handler;
use crate::pidfile;
use crate::status::{AgentStatus, PeerStatus};
use crate::store::{self, Store};

/// Bound on waiting for the signaling task at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Adapts the signaling client to the peer manager's sink.
struct SignalingSink(SignalingClient);

impl MessageSender for SignalingSink {
    fn send(&self, signal: Signal) -> Result<(), SendError> {
        self.0.send(signal).map_err(|e| SendError(e.to_string()))
    }
}

/// Runs the agent until SIGTERM/SIGINT or a permanent signaling error.
pub async fn run(cfg: Config) -> Result<(), CliError> {
    // Taken before anything is spawned, so no child inherits the pipe.
    let ready_notifier = crate::readiness::ReadyNotifier::from_env();
    let store = Store::new(&cfg.paths.data_dir);
    let key = store.load_identity()?;
    let server = cfg.require_server()?.to_string();
    // Unpaired, the server does not know this host yet and there is nobody to serve.
    if store.load_paired()?.is_none() {
        return Err(CliError::NotPaired);
    }
    let device_id = signaling_proto::device_id(&key.verifying_key().to_bytes());
    // Private dirs and files before anything is written (a warning per fix).
    store::secure_dirs(&cfg.paths)?;
    let _lock = pidfile::acquire(&cfg.paths.pid_file())?;
    let _data_lock = pidfile::lock_data_dir(&cfg.paths.data_dir)?;

    let bridge_cfg = BridgeConfig {
        pipe_helper: crate::pane_pipe::helper(),
        ..BridgeConfig::new(&cfg.tmux_socket)
    };
    let bridge = TmuxBridge::start_with(bridge_cfg).await.map_err(|e| {
        CliError::Other(format!(
            "cannot start the tmux bridge on socket {:?}: {e} (is tmux 3.2+ installed?)",
            cfg.tmux_socket
        ))
    })?;
    let handler = Handler::new(bridge.clone());

    let (client, driver, incoming) = SignalingClient::new(ClientConfig {
        hmac_secret: cfg.hmac_secret.clone(),
        api_version: cfg.api_version.clone(),
        ..ClientConfig::new(Identity::from_signing_key(key), &server, &cfg.host_name)
    });
    let jwt_fn: peer_manager::JwtFn = {
        let c = client.clone();
        Arc::new(move || c.jwt().unwrap_or_default())
    };
    let secret_loader: peer_manager::SecretLoader = {
        let store = store.clone();
        Arc::new(move |id: &str| store.load_secret(id))
    };
    let pm = PeerManager::new(
        PeerManagerConfig {
            hmac_secret: cfg.hmac_secret.clone(),
            api_version: cfg.api_version.clone(),
            max_peers: cfg.max_peers,
            relay_only: cfg.relay_only,
            stun_url: cfg.stun_url.clone(),
            rtc_override: cfg.loopback_only.then(|| RtcConfig {
                loopback_only: true,
                ..RtcConfig::default()
            }),
            allowed_device_id: store.allowed_device_id(),
            secret_loader: Some(secret_loader),
            ..PeerManagerConfig::new(&server)
        },
        Arc::new(SignalingSink(client.clone())),
        jwt_fn,
        Arc::new(handler.clone()),
    );
    // Reads what the server sends until the driver ends.
    let dispatcher = tokio::spawn(dispatch_signals(incoming, pm.clone(), store.clone()));

    let cancel = CancellationToken::new();
    // Subscribed before the client runs, so its first transitions (connecting,
    // connected) reach the status file instead of being missed.
    let mut sig_state = client.subscribe_state();
    // Peers connecting, changing state or going away refresh the status too.
    let mut peer_changes = pm.subscribe_changes();
    let mut run_task = tokio::spawn(driver.run(cancel.clone()));

    let sig = |k: SignalKind| {
        signal(k).map_err(|e| CliError::Other(format!("cannot install signal handlers: {e}")))
    };
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut usr1 = sig(SignalKind::user_defined1())?;
    let mut usr2 = sig(SignalKind::user_defined2())?;

    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let status_of = |pm: &PeerManager, client: &SignalingClient, handler: &Handler| {
        let attached: std::collections::HashMap<String, Option<String>> =
            handler.attachments().into_iter().collect();
        let mut peers: Vec<PeerStatus> = pm
            .peer_states()
            .into_iter()
            .map(|(id, state)| PeerStatus {
                attached_pane: attached.get(&id).cloned().flatten(),
                device_id: id,
                state,
            })
            .collect();
        peers.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        AgentStatus {
            pid: std::process::id(),
            version: crate::handler::AGENT_VERSION.to_string(),
            started_at: started_at.clone(),
            signaling: client.state().as_str().to_string(),
            allowed_device_id: pm.allowed_device_id(),
            peers,
        }
    };
    let status_path = cfg.paths.status_file();
    let mut last_status = status_of(&pm, &client, &handler);
    last_status.write(&status_path)?;
    tracing::info!(
        device_id = %device_id,
        server = %server,
        tmux_socket = %cfg.tmux_socket,
        "agent ready"
    );
    if let Some(notifier) = ready_notifier {
        notifier.ready();
    }

    // `sessions` pushed to the phones when tmux reports a tree change.
    let tree_watcher = handler.spawn_tree_watcher(cancel.clone());
    let outcome: Result<(), CliError> = loop {
        tokio::select! {
            _ = term.recv() => break Ok(()),
            _ = int.recv() => break Ok(()),
            _ = usr1.recv() => {
                tracing::debug!("SIGUSR1: waking signaling");
                client.signal_activity();
            }
            _ = usr2.recv() => {
                let allowed = store.allowed_device_id();
                tracing::info!(allowed = %allowed, "SIGUSR2: pairing reloaded");
                pm.set_allowed_device_id(&allowed);
                pm.close_all().await;
                handler.end_all().await;
                client.signal_activity();
                // The closed peers leave the status now, not at the next change.
                last_status = refresh(&status_path, status_of(&pm, &client, &handler), last_status);
            }
            r = &mut run_task => {
                break match r {
                    Ok(Ok(())) => Ok(()),
                    // The version error names its setting itself.
                    Ok(Err(e @ signaling_client::SignalingError::ApiNotServed { .. })) => {
                        Err(CliError::Other(format!("signaling stopped: {e}")))
                    }
                    Ok(Err(e)) => Err(CliError::Other(format!(
                        "signaling stopped: {e} (check the server URL, the request-signing secret MUXLINK_HMAC_SECRET or hmac_secret in config.toml, or run `muxlink init`)"
                    ))),
                    Err(e) => Err(CliError::Other(format!("signaling task failed: {e}"))),
                };
            }
            Ok(()) = sig_state.changed() => {
                let s = *sig_state.borrow_and_update();
                tracing::info!("signaling {}", s.as_str());
                last_status = refresh(&status_path, status_of(&pm, &client, &handler), last_status);
            }
            Ok(()) = peer_changes.changed() => {
                peer_changes.borrow_and_update();
                last_status = refresh(&status_path, status_of(&pm, &client, &handler), last_status);
            }
            _ = handler.changed() => {
                last_status = refresh(&status_path, status_of(&pm, &client, &handler), last_status);
            }
        }
    };

    tracing::info!("shutting down: closing peers and releasing panes");
    pm.close_all().await;
    handler.end_all().await;
    cancel.cancel();
    let _ = tree_watcher.await;
    client.close();
    if !run_task.is_finished() {
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, &mut run_task).await;
    }
    dispatcher.abort();
    let _ = std::fs::remove_file(&status_path);
    tracing::info!("agent stopped");
    outcome
}

/// Dispatches every signal from the server by variant until the driver ends:
/// the phone's new name to the store, `connect_request`, the phone's answer
/// and candidates (and presence acks) to the peer manager; the rest is
/// logged and ignored.
async fn dispatch_signals(
    mut incoming: mpsc::Receiver<Signal>,
    pm: Arc<PeerManager>,
    store: Store,
) {
    while let Some(signal) = incoming.recv().await {
        match signal {
            Signal::MobileNameUpdated { device_id, name } => update_name(&store, &device_id, &name),
            signal @ (Signal::ConnectRequest { .. }
            | Signal::SdpAnswer { .. }
            | Signal::IceCandidate { .. }
            | Signal::PresenceAck) => pm.handle_signaling_message(signal),
            other => tracing::debug!(kind = other.kind(), "signaling message ignored"),
        }
    }
}

/// Applies `mobile_name_updated` when it is about our paired device.
fn update_name(store: &Store, device_id: &str, name: &str) {
    let Ok(Some(mut record)) = store.load_paired() else {
        return;
    };
    if record.device_id != device_id || name.is_empty() {
        return;
    }
    let name = signaling_proto::truncate_name(name);
    if let Err(e) = signaling_proto::validate_name(&name) {
        tracing::warn!(
            name = %crate::printable::printable(&name),
            "the phone's new name is refused: {e}"
        );
        return;
    }
    if record.name.as_deref() == Some(name.as_str()) {
        return;
    }
    tracing::info!(name = %crate::printable::printable(&name), "the phone's name changed");
    record.name = Some(name);
    if let Err(e) = store.save_paired(Some(&record)) {
        tracing::warn!(error = %e, "cannot store the phone's new name");
    }
}

/// Writes the status file when it changed; returns the status now on disk.
fn refresh(path: &std::path::Path, now: AgentStatus, last: AgentStatus) -> AgentStatus {
    if now == last {
        return last;
    }
    if let Err(e) = now.write(path) {
        tracing::warn!(error = %e, "cannot write the status file");
    }
    now
}
