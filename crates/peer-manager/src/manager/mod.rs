//! `PeerManager`: built once from a [`PeerManagerConfig`]; admission of
//! `connect_request`s, routing of this phone's answers and candidates to its
//! peer task (typed [`Signal`]s in, matched by variant), the peer map with
//! identity checks, the close reports coming up from the tasks, `close_all`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rtc_transport::RtcConfig;
use signaling_proto::{Signal, SignalingMessage};
use terminal_protocol::Event;
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

use crate::admission::{self, Admission, AdmissionRequest, RejectReason};
use crate::config::{
    DisconnectHook, NonceSource, PeerManagerConfig, PeerSettings, RtcSource, SecretLoader,
};
use crate::core::CoreConfig;
use crate::error::PeerError;
use crate::events::{EVENT_QUEUE, PeerEvent};
use crate::handler::{MessageSender, ProtocolHandler};
use crate::ice_servers;
use crate::map::PeerMap;
use crate::peer::Peer;
use crate::task::{self, PeerTask};
use crate::throttle::ConnectThrottle;

mod reports;

/// Returns the current signaling JWT (empty when none).
pub type JwtFn = Arc<dyn Fn() -> String + Send + Sync>;

/// The configuration in force, fixed at construction (the clamps applied).
#[derive(Debug, Clone)]
struct Settings {
    max_peers: usize,
    rtc_override: Option<RtcConfig>,
    stun_url: String,
    relay_only: bool,
    api_version: String,
    core: CoreConfig,
    nonce: NonceSource,
}

struct Inner {
    peers: PeerMap<Peer>,
    /// The one setting that changes at runtime (the agent re-reads the
    /// pairing on SIGUSR2).
    allowed: String,
    throttle: ConnectThrottle,
}

/// Manages the WebRTC peers of the host, one per mobile device.
///
/// Built once from a [`PeerManagerConfig`]. Feed it every signaling message
/// with [`handle_signaling_message`](Self::handle_signaling_message) (never
/// blocks); authenticated requests reach the [`ProtocolHandler`].
pub struct PeerManager {
    me: Weak<PeerManager>,
    signaling: Arc<dyn MessageSender>,
    server_url: String,
    jwt_fn: JwtFn,
    handler: Arc<dyn ProtocolHandler>,
    hmac_secret: String,
    settings: Settings,
    secret_loader: Option<SecretLoader>,
    on_disconnect: Option<DisconnectHook>,
    inner: Mutex<Inner>,
    tracker: TaskTracker,
    runtime: Option<tokio::runtime::Handle>,
    closing: AtomicBool,
    close_all_lock: tokio::sync::Mutex<()>,
    /// Where peer tasks report; the receiver moves into the report loop when
    /// the first peer is spawned.
    events_tx: mpsc::Sender<PeerEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<PeerEvent>>>,
    /// Bumped whenever the peer map or a peer's state changes.
    changes: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for PeerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManager")
            .field("server_url", &self.server_url)
            .field("peers", &self.peer_count())
            .finish_non_exhaustive()
    }
}

impl PeerManager {
    /// A manager built from `config`, sending signaling through `signaling`,
    /// fetching TURN credentials with `jwt_fn`'s token, delivering requests
    /// to `handler`.
    pub fn new(
        config: PeerManagerConfig,
        signaling: Arc<dyn MessageSender>,
        jwt_fn: JwtFn,
        handler: Arc<dyn ProtocolHandler>,
    ) -> Arc<PeerManager> {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let PeerManagerConfig {
            server_url,
            hmac_secret,
            api_version,
            max_peers,
            relay_only,
            stun_url,
            rtc_override,
            core,
            connect_burst,
            connect_interval,
            allowed_device_id,
            secret_loader,
            on_peer_disconnect,
            nonce_source,
        } = config;
        let settings = Settings {
            max_peers: admission::clamp_max_peers(max_peers),
            rtc_override,
            stun_url: stun_url.unwrap_or_else(|| ice_servers::default_stun_url(&server_url)),
            relay_only,
            api_version,
            core,
            nonce: nonce_source,
        };
        Arc::new_cyclic(|me| PeerManager {
            me: me.clone(),
            signaling,
            server_url,
            jwt_fn,
            handler,
            hmac_secret,
            settings,
            secret_loader,
            on_disconnect: on_peer_disconnect,
            inner: Mutex::new(Inner {
                peers: PeerMap::default(),
                allowed: allowed_device_id,
                throttle: ConnectThrottle::new(connect_burst, connect_interval),
            }),
            tracker: TaskTracker::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            closing: AtomicBool::new(false),
            close_all_lock: tokio::sync::Mutex::new(()),
            events_tx,
            events_rx: Mutex::new(Some(events_rx)),
            changes: Arc::new(watch::Sender::new(0)),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Never held across an await; a poisoned lock still holds consistent data
        // because every critical section is a few plain assignments.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A version number bumped whenever a peer is added or removed or a
    /// peer's state changes; `muxlink status` can refresh on it.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Number of tracked peers.
    pub fn peer_count(&self) -> usize {
        self.inner().peers.len()
    }

    /// Device id → peer-connection state (`new`, `connecting`, `connected`,
    /// `disconnected`, `failed`, `closed`).
    pub fn peer_states(&self) -> HashMap<String, String> {
        self.inner()
            .peers
            .iter()
            .map(|(d, p)| (d.clone(), p.state_str().to_owned()))
            .collect()
    }

    /// Number of live background tasks (peer tasks and cleanups); 0 after
    /// [`close_all`](Self::close_all) returned with no new peer since.
    pub fn task_count(&self) -> usize {
        self.tracker.len()
    }

    /// The current peer of `device_id`.
    pub fn peer(&self, device_id: &str) -> Option<Arc<Peer>> {
        self.inner().peers.get(device_id).cloned()
    }

    /// Send `event` to the peer of `device_id` (see [`Peer::send_message`]).
    pub async fn send_to(&self, device_id: &str, event: &Event) -> Result<(), PeerError> {
        let peer = self
            .peer(device_id)
            .ok_or_else(|| PeerError::NotFound(device_id.to_owned()))?;
        peer.send_message(event).await
    }

    /// Remove and close the peer of `device_id` (no `peer_disconnected`).
    pub fn close_peer(&self, device_id: &str) {
        let removed = self.inner().peers.remove(device_id);
        if let Some(p) = removed {
            p.silence();
            p.close();
            self.bump();
        }
    }

    /// Close every peer and wait until all peer tasks and cleanups finished.
    /// Each current peer's handler hears `peer_disconnected` before this returns;
    /// nothing runs for these peers afterwards. New `connect_request`s are refused
    /// with `internal_error` while it runs and accepted again after.
    pub async fn close_all(&self) {
        let _serial = self.close_all_lock.lock().await;
        self.closing.store(true, Ordering::SeqCst);
        let peers: Vec<Arc<Peer>> = self.inner().peers.iter().map(|(_, p)| p.clone()).collect();
        for p in &peers {
            p.close();
        }
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
        // Peers whose task never started (no runtime) are dropped here.
        self.inner().peers.clear();
        self.bump();
        self.closing.store(false, Ordering::SeqCst);
    }

    /// The mobile device id allowed to connect (may be empty or a sentinel).
    pub fn allowed_device_id(&self) -> String {
        self.inner().allowed.clone()
    }

    /// Set the allowed mobile device id (empty or `!…` sentinel = nobody):
    /// the one setting that changes at runtime, when the agent re-reads the
    /// pairing. Peers already connected stay until closed.
    pub fn set_allowed_device_id(&self, id: &str) {
        self.inner().allowed = id.to_owned();
    }

    /// Handle one signaling message from the server. Never blocks: peer work runs
    /// in per-peer tasks. `connect_request` starts admission; the phone's
    /// `sdp_answer` and `ice_candidate` go to its peer's task; everything else
    /// is ignored (logged).
    pub fn handle_signaling_message(&self, signal: Signal) {
        match signal {
            Signal::ConnectRequest { target_device_id } => {
                self.on_connect_request(&target_device_id)
            }
            signal @ (Signal::SdpAnswer { .. } | Signal::IceCandidate { .. }) => {
                self.route(SignalingMessage::from(signal))
            }
            Signal::PresenceAck => {}
            other => tracing::debug!(kind = other.kind(), "signaling message ignored"),
        }
    }

    fn on_connect_request(&self, device_id: &str) {
        if self.closing.load(Ordering::SeqCst) {
            // The phone is told at once instead of waiting for an offer; it retries.
            tracing::info!(device_id, "connect_request refused while closing all peers");
            self.reject(device_id, RejectReason::InternalError);
            return;
        }
        let allowed = self.allowed_device_id();
        // Load the secret only for the allowed device (the loader may touch disk).
        let secret = if admission::is_allowed(&allowed, device_id) {
            self.secret_loader
                .as_ref()
                .and_then(|l| l(device_id))
                .filter(|s| s.iter().any(|b| *b != 0))
        } else {
            None
        };
        let decision = {
            let mut g = self.inner();
            let decision = admission::admit(&AdmissionRequest {
                allowed_device_id: &g.allowed,
                device_id,
                secret_loaded: secret.is_some(),
                has_peer: g.peers.contains(device_id),
                peer_count: g.peers.len(),
                max_peers: self.settings.max_peers,
            });
            match (decision, secret) {
                // Admitted, but building peers in a loop is refused (dropped,
                // see `throttle`: the spec has no reason to send for it).
                (Admission::Admit { .. }, Some(_)) if !g.throttle.allow(task::now(), device_id) => {
                    Ok(None)
                }
                (Admission::Admit { .. }, Some(secret)) => {
                    let (peer, inbox) = Peer::new(device_id.to_owned());
                    let peer = Arc::new(peer);
                    let old = g.peers.insert(device_id, peer.clone());
                    let settings = self.peer_settings();
                    Ok(Some((old, peer, inbox, secret, settings)))
                }
                (Admission::Reject(r), _) => Err(r),
                (Admission::Admit { .. }, None) => Err(RejectReason::NotPaired),
            }
        };
        match decision {
            Err(reason) => {
                tracing::info!(
                    device_id,
                    reason = reason.as_str(),
                    "connect_request rejected"
                );
                self.reject(device_id, reason);
            }
            Ok(None) => {
                tracing::info!(
                    device_id,
                    "connect_request dropped: more than the phone's connection rate"
                );
            }
            Ok(Some((old, peer, inbox, secret, settings))) => {
                if let Some(old) = old {
                    // Reconnect: the old peer says nothing more and is torn down by
                    // its own (tracked) task, off the signaling path.
                    tracing::info!(device_id, "reconnect replaces the previous peer");
                    old.silence();
                    old.close();
                }
                self.bump();
                let fut = task::run(PeerTask {
                    peer: peer.clone(),
                    inbox,
                    secret,
                    settings,
                    signaling: self.signaling.clone(),
                    handler: self.handler.clone(),
                    events: self.events_tx.clone(),
                    changes: self.changes.clone(),
                    tracker: self.tracker.clone(),
                });
                match self.runtime_handle() {
                    Some(rt) => {
                        self.start_report_loop(&rt);
                        self.tracker.spawn_on(fut, &rt);
                    }
                    None => {
                        tracing::error!("no tokio runtime to run the peer; rejecting");
                        self.remove_if_current(&peer);
                        self.reject(device_id, RejectReason::InternalError);
                    }
                }
            }
        }
    }

    fn runtime_handle(&self) -> Option<tokio::runtime::Handle> {
        tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
    }

    fn reject(&self, device_id: &str, reason: RejectReason) {
        let rejected = Signal::ConnectionRejected {
            target_device_id: device_id.to_owned(),
            reason: reason.as_str().to_owned(),
        };
        if let Err(e) = self.signaling.send(rejected) {
            tracing::warn!(device_id, "could not send connection_rejected: {e}");
        }
    }

    /// Hands a message of a phone to its peer's task (dropped with a log when
    /// the phone has no peer or its inbox is full).
    fn route(&self, msg: SignalingMessage) {
        let Some(peer) = self.peer(&msg.target_device_id) else {
            tracing::info!(
                device_id = msg.target_device_id,
                "signaling for unknown peer dropped"
            );
            return;
        };
        if let Err(e) = peer.inbox.try_send(msg) {
            tracing::warn!(
                device_id = peer.device_id,
                "peer signaling queue full or closed: {e}"
            );
        }
    }

    /// What a new peer's task gets.
    fn peer_settings(&self) -> PeerSettings {
        let s = &self.settings;
        let rtc = match &s.rtc_override {
            Some(c) => RtcSource::Fixed(c.clone()),
            None => RtcSource::Fetch {
                server_url: self.server_url.clone(),
                api_version: s.api_version.clone(),
                jwt: (self.jwt_fn)(),
                hmac_secret: self.hmac_secret.clone(),
                stun_url: s.stun_url.clone(),
                relay_only: s.relay_only,
            },
        };
        PeerSettings {
            core: s.core,
            rtc,
            nonce: s.nonce,
        }
    }

    /// Remove `peer` from the map only if it is still its device's entry
    /// (check and remove under one lock).
    fn remove_if_current(&self, peer: &Arc<Peer>) -> bool {
        let mut g = self.inner();
        g.peers.remove_if_current(&peer.device_id, peer)
    }
}
