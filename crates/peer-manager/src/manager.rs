//! `PeerManager`: admission of `connect_request`s, routing of answers and
//! candidates to per-peer tasks, peer map with identity checks, `close_all`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rtc_transport::{Candidate, RtcConfig};
use signaling_proto::SignalingMessage;
use signaling_proto::consts::MAX_SDP_LEN;
use terminal_protocol::{AUTH_TIMEOUT, AuthError, Event, NONCE_LEN};
use tokio_util::task::TaskTracker;

use crate::admission::{self, Admission, AdmissionRequest, RejectReason};
use crate::cleaner::{self, SweepReason};
use crate::driver;
use crate::error::PeerError;
use crate::handler::{MessageSender, ProtocolHandler};
use crate::ice_servers;
use crate::lifecycle::{ANSWER_WATCHDOG, DISCONNECT_GRACE};
use crate::peer::{Peer, PeerCmd};
use crate::throttle::ConnectThrottle;

/// Loads the 32-byte pairing secret of a mobile device id.
pub type SecretLoader = Arc<dyn Fn(&str) -> Option<[u8; 32]> + Send + Sync>;
/// Extra hook called with the device id when a current peer goes away.
pub type DisconnectHook = Arc<dyn Fn(&str) + Send + Sync>;
/// Returns the current signaling JWT (empty when none).
pub type JwtFn = Arc<dyn Fn() -> String + Send + Sync>;
/// Where the host's `auth_challenge` nonces come from (the OS CSPRNG; tests
/// swap in a failing source).
pub type NonceSource = fn() -> Result<[u8; NONCE_LEN], AuthError>;

/// Tunables; the defaults are the spec's values.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub max_peers: usize,
    pub rtc_override: Option<RtcConfig>,
    pub stun_url: String,
    pub relay_only: bool,
    pub auth_timeout: Duration,
    pub grace: Duration,
    pub watchdog: Duration,
    pub nonce: NonceSource,
}

struct Inner {
    peers: HashMap<String, Arc<Peer>>,
    allowed: String,
    settings: Settings,
    secret_loader: Option<SecretLoader>,
    on_disconnect: Option<DisconnectHook>,
    throttle: ConnectThrottle,
}

/// Manages the WebRTC peers of the host, one per mobile device.
///
/// Feed it every signaling message with
/// [`handle_signaling_message`](Self::handle_signaling_message) (never blocks);
/// authenticated requests reach the [`ProtocolHandler`].
pub struct PeerManager {
    me: Weak<PeerManager>,
    pub(crate) signaling: Arc<dyn MessageSender>,
    pub(crate) server_url: String,
    pub(crate) jwt_fn: JwtFn,
    pub(crate) handler: Arc<dyn ProtocolHandler>,
    pub(crate) hmac_secret: String,
    inner: Mutex<Inner>,
    pub(crate) tracker: TaskTracker,
    runtime: Option<tokio::runtime::Handle>,
    closing: AtomicBool,
    close_all_lock: tokio::sync::Mutex<()>,
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
    /// A manager sending signaling through `signaling`, fetching TURN credentials
    /// from `server_url` with `jwt_fn`'s token, delivering requests to `handler`.
    pub fn new(
        signaling: Arc<dyn MessageSender>,
        server_url: &str,
        jwt_fn: JwtFn,
        handler: Arc<dyn ProtocolHandler>,
        hmac_secret: &str,
    ) -> Arc<PeerManager> {
        Arc::new_cyclic(|me| PeerManager {
            me: me.clone(),
            signaling,
            server_url: server_url.to_owned(),
            jwt_fn,
            handler,
            hmac_secret: hmac_secret.to_owned(),
            inner: Mutex::new(Inner {
                peers: HashMap::new(),
                allowed: String::new(),
                settings: Settings {
                    max_peers: admission::DEFAULT_MAX_PEERS,
                    rtc_override: None,
                    stun_url: ice_servers::default_stun_url(server_url),
                    relay_only: false,
                    auth_timeout: AUTH_TIMEOUT,
                    grace: DISCONNECT_GRACE,
                    watchdog: ANSWER_WATCHDOG,
                    nonce: terminal_protocol::try_new_nonce,
                },
                secret_loader: None,
                on_disconnect: None,
                throttle: ConnectThrottle::default(),
            }),
            tracker: TaskTracker::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            closing: AtomicBool::new(false),
            close_all_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Never held across an await; a poisoned lock still holds consistent data
        // because every critical section is a few plain assignments.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Simultaneous peers allowed (default 1, clamped to 1..=20).
    pub fn set_max_peers(&self, n: usize) {
        self.inner().settings.max_peers = admission::clamp_max_peers(n);
    }

    /// Use this WebRTC configuration for new peers and skip the TURN fetch (tests:
    /// loopback settings).
    pub fn set_rtc_config_override(&self, config: RtcConfig) {
        self.inner().settings.rtc_override = Some(config);
    }

    /// STUN URL used when TURN credentials cannot be fetched
    /// (default `stun:<server host>:3478`).
    pub fn set_stun_url(&self, url: &str) {
        self.inner().settings.stun_url = url.to_owned();
    }

    /// Force ICE transport policy `relay` (diagnostics).
    pub fn set_relay_only(&self, on: bool) {
        self.inner().settings.relay_only = on;
    }

    /// Key-possession deadline (default 10 s; tests shorten it).
    pub fn set_auth_timeout(&self, d: Duration) {
        self.inner().settings.auth_timeout = d;
    }

    /// Disconnect grace and ICE-restart answer watchdog (defaults 10 s and 20 s;
    /// tests shorten them).
    pub fn set_lifecycle_timers(&self, grace: Duration, watchdog: Duration) {
        let mut g = self.inner();
        g.settings.grace = grace;
        g.settings.watchdog = watchdog;
    }

    /// Per-phone `connect_request` rate: `burst` at once, then one per
    /// `interval` (defaults 6 and 1 s; see [`crate::throttle`]). Requests over
    /// it are dropped with a log line.
    pub fn set_connect_rate(&self, burst: u32, interval: Duration) {
        self.inner().throttle = ConnectThrottle::new(burst, interval);
    }

    /// Test seam: where `auth_challenge` nonces come from (default
    /// [`terminal_protocol::try_new_nonce`]). A failing source closes each
    /// peer whose channel opens, before anything reaches the handler.
    #[doc(hidden)]
    pub fn set_nonce_source(&self, source: NonceSource) {
        self.inner().settings.nonce = source;
    }

    /// The mobile device id allowed to connect (may be empty or a sentinel).
    pub fn allowed_device_id(&self) -> String {
        self.inner().allowed.clone()
    }

    /// Set the allowed mobile device id (empty or `!…` sentinel = nobody).
    pub fn set_allowed_device_id(&self, id: &str) {
        self.inner().allowed = id.to_owned();
    }

    /// Where the pairing secret of a device comes from (none = every device is
    /// `not_paired`).
    pub fn set_secret_loader(&self, loader: SecretLoader) {
        self.inner().secret_loader = Some(loader);
    }

    /// Also call `hook(device_id)` whenever the handler hears `peer_disconnected`
    /// (same once-per-peer rule).
    pub fn set_on_peer_disconnect(&self, hook: DisconnectHook) {
        self.inner().on_disconnect = Some(hook);
    }

    /// Tell the handler (and the hook) that `peer` went away, at most once per
    /// peer, and only while it is still its device's current peer.
    pub(crate) async fn report_disconnect(&self, peer: &Arc<Peer>) {
        if !self.is_current(peer) || peer.disconnect_reported.swap(true, Ordering::SeqCst) {
            return;
        }
        self.handler.peer_disconnected(&peer.device_id).await;
        let hook = self.inner().on_disconnect.clone();
        if let Some(hook) = hook {
            hook(&peer.device_id);
        }
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
        }
    }

    /// Close every peer and wait until all peer tasks and cleanups finished.
    /// Each current peer's handler hears `peer_disconnected` before this returns;
    /// nothing runs for these peers afterwards. New `connect_request`s are refused
    /// with `internal_error` while it runs and accepted again after.
    pub async fn close_all(&self) {
        let _serial = self.close_all_lock.lock().await;
        self.closing.store(true, Ordering::SeqCst);
        let peers: Vec<Arc<Peer>> = self.inner().peers.values().cloned().collect();
        for p in &peers {
            p.close();
        }
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
        // Peers whose task never started (no runtime) are dropped here.
        self.inner().peers.clear();
        self.closing.store(false, Ordering::SeqCst);
    }

    /// Handle one signaling message from the server. Never blocks: peer work runs
    /// in per-peer tasks.
    pub fn handle_signaling_message(&self, msg: SignalingMessage) {
        match msg.kind.as_str() {
            "connect_request" => self.on_connect_request(&msg.target_device_id),
            "sdp_answer" => self.on_answer(msg),
            "ice_candidate" => self.on_remote_candidate(msg),
            "presence_ack" => {}
            other => tracing::debug!(kind = other, "signaling message ignored"),
        }
    }

    fn on_connect_request(&self, device_id: &str) {
        if self.closing.load(Ordering::SeqCst) {
            // The phone is told at once instead of waiting for an offer; it retries.
            tracing::info!(device_id, "connect_request refused while closing all peers");
            self.reject(device_id, RejectReason::InternalError);
            return;
        }
        let (allowed, loader) = {
            let g = self.inner();
            (g.allowed.clone(), g.secret_loader.clone())
        };
        // Load the secret only for the allowed device (the loader may touch disk).
        let secret = if admission::is_allowed(&allowed, device_id) {
            loader
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
                has_peer: g.peers.contains_key(device_id),
                peer_count: g.peers.len(),
                max_peers: g.settings.max_peers,
            });
            match (decision, secret) {
                // Admitted, but building peers in a loop is refused (dropped,
                // see `throttle`: the spec has no reason to send for it).
                (Admission::Admit { .. }, Some(_))
                    if !g.throttle.allow(driver::now(), device_id) =>
                {
                    Ok(None)
                }
                (Admission::Admit { .. }, Some(secret)) => {
                    let (peer, cmd_rx) = Peer::new(device_id.to_owned());
                    let peer = Arc::new(peer);
                    let old = g.peers.insert(device_id.to_owned(), peer.clone());
                    let settings = g.settings.clone();
                    Ok(Some((old, peer, cmd_rx, secret, settings)))
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
            Ok(Some((old, peer, cmd_rx, secret, settings))) => {
                if let Some(old) = old {
                    // Reconnect: the old peer says nothing more and is torn down by
                    // its own (tracked) task, off the signaling path.
                    tracing::info!(device_id, "reconnect replaces the previous peer");
                    old.silence();
                    old.close();
                }
                let Some(me) = self.me.upgrade() else { return };
                let fut = driver::run_peer(me, peer.clone(), cmd_rx, secret, settings);
                match self.runtime_handle() {
                    Some(rt) => {
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

    pub(crate) fn reject(&self, device_id: &str, reason: RejectReason) {
        let mut m = SignalingMessage::new("connection_rejected");
        m.target_device_id = device_id.to_owned();
        m.reason = reason.as_str().to_owned();
        if let Err(e) = self.signaling.send(m) {
            tracing::warn!(device_id, "could not send connection_rejected: {e}");
        }
    }

    fn on_answer(&self, msg: SignalingMessage) {
        let device_id = msg.target_device_id;
        if msg.sdp.is_empty() || msg.sdp.len() > MAX_SDP_LEN {
            tracing::warn!(
                device_id,
                len = msg.sdp.len(),
                "sdp_answer refused: size out of range"
            );
            return;
        }
        self.route(&device_id, PeerCmd::Answer(msg.sdp));
    }

    fn on_remote_candidate(&self, msg: SignalingMessage) {
        if msg.candidate.is_empty() {
            return;
        }
        let candidate = if msg.candidate.starts_with("candidate:") {
            msg.candidate
        } else {
            format!("candidate:{}", msg.candidate)
        };
        let c = Candidate {
            candidate,
            sdp_mid: (!msg.sdp_mid.is_empty()).then_some(msg.sdp_mid),
            sdp_m_line_index: msg.sdp_m_line_index,
        };
        self.route(&msg.target_device_id, PeerCmd::Candidate(c));
    }

    fn route(&self, device_id: &str, cmd: PeerCmd) {
        let Some(peer) = self.peer(device_id) else {
            tracing::info!(device_id, "signaling for unknown peer dropped");
            return;
        };
        if let Err(e) = peer.cmd_tx.try_send(cmd) {
            tracing::warn!(device_id, "peer signaling queue full or closed: {e}");
        }
    }

    /// Send a signaling message on behalf of `peer` unless it was silenced.
    pub(crate) fn send_signal(&self, peer: &Peer, msg: SignalingMessage) -> bool {
        if peer.is_silenced() {
            return false;
        }
        match self.signaling.send(msg) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(device_id = peer.device_id, "signaling send failed: {e}");
                false
            }
        }
    }

    /// True when `peer` is still the map entry of its device.
    pub(crate) fn is_current(&self, peer: &Arc<Peer>) -> bool {
        self.inner()
            .peers
            .get(&peer.device_id)
            .is_some_and(|p| Arc::ptr_eq(p, peer))
    }

    /// Remove `peer` from the map only if it is still its device's entry
    /// (check and remove under one lock).
    pub(crate) fn remove_if_current(&self, peer: &Arc<Peer>) -> bool {
        let mut g = self.inner();
        if g.peers
            .get(&peer.device_id)
            .is_some_and(|p| Arc::ptr_eq(p, peer))
        {
            g.peers.remove(&peer.device_id);
            true
        } else {
            false
        }
    }

    /// One cleaner sweep at `now` (see [`cleaner::sweep`]).
    pub async fn sweep_once(&self, now: Instant) -> Vec<(String, SweepReason)> {
        let peers: Vec<Arc<Peer>> = self.inner().peers.values().cloned().collect();
        let snaps: Vec<_> = peers.iter().map(|p| p.snapshot()).collect();
        let verdicts = cleaner::sweep(now, &snaps);
        for (device_id, reason) in &verdicts {
            tracing::info!(device_id, ?reason, "connection cleaner closes peer");
            if let Some(p) = peers.iter().find(|p| &p.device_id == device_id) {
                // The peer's task reports `peer_disconnected` (if still current)
                // and removes it with the identity check.
                p.close();
            }
        }
        verdicts
    }
}
