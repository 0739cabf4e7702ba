//! The handle: [`SignalingClient`]'s public API (`new`, `send`,
//! `signal_activity`, `suspend` / `resume`, `state`, `subscribe_state`,
//! `state_changes`, `jwt`, `close`), its construction-time [`ClientConfig`],
//! and what the handle shares with the [`SignalingDriver`]: the bounded
//! outgoing queue, the state watch, the cached JWT and the wake-up signals.
//! The loop itself is in `driver`, frame parsing in `classify`; every
//! decision is the sans-IO core's.

mod classify;
mod driver;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use signaling_proto::Signal;
use signaling_proto::consts::DEFAULT_API_VERSION;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::core::{ConnectionState, Core, CoreConfig};
use crate::error::SignalingError;
use crate::identity::Identity;

pub use driver::SignalingDriver;

/// Capacity of the outgoing message queue behind [`SignalingClient::send`].
pub const SEND_QUEUE_CAPACITY: usize = 64;
/// Default capacity of the incoming [`Signal`] channel
/// ([`ClientConfig::incoming_capacity`]).
pub const INCOMING_CAPACITY: usize = 64;
/// Capacity of the [`SignalingClient::state_changes`] broadcast.
pub const STATE_CHANGES_CAPACITY: usize = 64;
pub use crate::ws::HANDSHAKE_TIMEOUT;
/// Write deadline of the `auth` message (spec: 10 s).
const AUTH_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Write deadline of presence, ping and outgoing messages (spec: 5 s).
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// Write deadline of the close frame (spec: 2 s).
const CLOSE_WRITE_DEADLINE: Duration = Duration::from_secs(2);

/// Everything a [`SignalingClient`] is built with; nothing changes afterwards.
///
/// [`ClientConfig::new`] fills every knob with its default (the spec's
/// values); override fields with struct update syntax:
///
/// ```
/// # use signaling_client::{ClientConfig, Identity};
/// let config = ClientConfig {
///     api_version: "v2".into(),
///     hmac_secret: "deployment-secret".into(),
///     ..ClientConfig::new(Identity::generate(), "https://signal.example.net", "my-host")
/// };
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    /// This device's Ed25519 key.
    pub identity: Identity,
    /// Bare server URL such as `http://127.0.0.1:5000` (the API version is added).
    pub server_url: String,
    /// The name announced in `auth`.
    pub host_name: String,
    /// Signs every request; empty = unsigned.
    pub hmac_secret: String,
    /// API version prefix (default `v1`; empty = no prefix).
    pub api_version: String,
    /// Bound on TCP connect + WebSocket upgrade (default 15 s).
    pub handshake_timeout: Duration,
    /// Timing knobs of the sans-IO core (presence, backoff, deadlines, JWT
    /// refresh, dormancy); `Default` is the spec's values.
    pub core: CoreConfig,
    /// Capacity of the incoming [`Signal`] channel (default 64; at least 1).
    pub incoming_capacity: usize,
}

impl ClientConfig {
    /// A configuration for `identity` on `server_url`, announcing itself as
    /// `host_name`, unsigned, with every other knob at its default.
    pub fn new(identity: Identity, server_url: &str, host_name: &str) -> ClientConfig {
        ClientConfig {
            identity,
            server_url: server_url.to_owned(),
            host_name: host_name.to_owned(),
            hmac_secret: String::new(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            core: CoreConfig::default(),
            incoming_capacity: INCOMING_CAPACITY,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("ClientConfig")
            .field("device_id", &self.identity.device_id())
            .field("server_url", &self.server_url)
            .field("host_name", &self.host_name)
            .field("api_version", &self.api_version)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("core", &self.core)
            .field("incoming_capacity", &self.incoming_capacity)
            .finish_non_exhaustive()
    }
}

/// What the handle and the driver share.
struct Shared {
    device_id: String,
    server_url: String,
    jwt: Mutex<Option<String>>,
    state_tx: watch::Sender<ConnectionState>,
    changes: broadcast::Sender<ConnectionState>,
    outgoing_tx: mpsc::Sender<Signal>,
    activity: Notify,
    suspend: Notify,
    closed: CancellationToken,
}

/// The handle of the host's persistent signaling connection (token exchange,
/// WebSocket, `auth`, presence, reconnect, JWT refresh, dormancy).
///
/// [`new`](SignalingClient::new) returns it with its [`SignalingDriver`]
/// (spawn [`SignalingDriver::run`] once; it owns the socket and the loop)
/// and the receiver of every authenticated, non-error message from the
/// server, typed. The handle is a cheap `Clone`: use `send`,
/// `signal_activity`, `jwt`, `state` and `close` from any task.
#[derive(Clone)]
pub struct SignalingClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SignalingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingClient")
            .field("device_id", &self.shared.device_id)
            .field("server_url", &self.shared.server_url)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Locks a std mutex, ignoring poisoning: the guarded values are plain data
/// that stay consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SignalingClient {
    /// A client built from `config`: the handle, the driver that must run for
    /// anything to happen, and the bounded receiver of every authenticated,
    /// non-error message from the server, in arrival order.
    ///
    /// When that receiver is full the driver waits for room (bounded
    /// backpressure: nothing is lost, and the socket is not read meanwhile);
    /// a shutdown still ends the wait. Read it promptly: a reader that stalls
    /// longer than the read deadline costs the link. Once the receiver is
    /// dropped, incoming messages are discarded.
    pub fn new(config: ClientConfig) -> (SignalingClient, SignalingDriver, mpsc::Receiver<Signal>) {
        let (outgoing_tx, outgoing_rx) = mpsc::channel(SEND_QUEUE_CAPACITY);
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_capacity.max(1));
        let (changes, _) = broadcast::channel(STATE_CHANGES_CAPACITY);
        let shared = Arc::new(Shared {
            device_id: config.identity.device_id().to_owned(),
            server_url: config.server_url.clone(),
            jwt: Mutex::new(None),
            state_tx: watch::Sender::new(ConnectionState::Idle),
            changes,
            outgoing_tx,
            activity: Notify::new(),
            suspend: Notify::new(),
            closed: CancellationToken::new(),
        });
        let driver = SignalingDriver::new(shared.clone(), config, outgoing_rx, incoming_tx);
        (SignalingClient { shared }, driver, incoming_rx)
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.shared.device_id
    }

    /// The cached JWT (for Bearer calls such as TURN credentials), if any.
    pub fn jwt(&self) -> Option<String> {
        lock(&self.shared.jwt).clone()
    }

    /// Where the link is now.
    pub fn state(&self) -> ConnectionState {
        *self.shared.state_tx.borrow()
    }

    /// A receiver that always holds the latest state (waits with `changed()`).
    pub fn subscribe_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state_tx.subscribe()
    }

    /// Every state transition in order (bounded; a slow reader sees `Lagged`).
    pub fn state_changes(&self) -> broadcast::Receiver<ConnectionState> {
        self.shared.changes.subscribe()
    }

    /// Queues `signal` for the server. Never blocks: fails at once with
    /// [`SignalingError::NotConnected`] when the link is not authenticated,
    /// [`SignalingError::QueueFull`] when 64 messages are already waiting,
    /// [`SignalingError::Closed`] after `close` or once the driver ended. A
    /// queued message that the link drops before it is written is logged as
    /// dropped.
    pub fn send(&self, signal: Signal) -> Result<(), SignalingError> {
        if self.shared.closed.is_cancelled() {
            return Err(SignalingError::Closed);
        }
        if self.state() != ConnectionState::Connected {
            return Err(SignalingError::NotConnected);
        }
        self.shared
            .outgoing_tx
            .try_send(signal)
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SignalingError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => SignalingError::Closed,
            })
    }

    /// Wakes a dormant or suspended client and cuts a backoff wait short.
    /// Callable from any task; cheap.
    pub fn signal_activity(&self) {
        self.shared.activity.notify_one();
    }

    /// The host is about to sleep (e.g. logind's `PrepareForSleep(true)`):
    /// close the link (close 1000, 2 s write deadline) and pause, with no
    /// timers, until [`resume`](Self::resume) or
    /// [`signal_activity`](Self::signal_activity). Without a call to it, a
    /// sleep is still noticed after the wake-up: the core sees the wall clock
    /// ran ahead of the monotonic one and replaces the link at once.
    pub fn suspend(&self) {
        self.shared.suspend.notify_one();
    }

    /// The host woke up: reconnect now with a fresh backoff (the same as
    /// [`signal_activity`](Self::signal_activity), spec signaling.md §7).
    pub fn resume(&self) {
        self.shared.activity.notify_one();
    }

    /// Shuts the client down: the driver's `run` sends close 1000 and returns
    /// `Ok(())` (at once if it has not started); later `send`s fail with
    /// [`SignalingError::Closed`].
    pub fn close(&self) {
        self.shared.closed.cancel();
    }
}

impl Shared {
    fn sync_jwt(&self, core: &Core<Signal, SignalingError>) {
        let mut jwt = lock(&self.jwt);
        if jwt.as_deref() != core.token() {
            *jwt = core.token().map(str::to_owned);
        }
    }

    fn publish(&self, core: &Core<Signal, SignalingError>) {
        let state = core.state();
        if *self.state_tx.borrow() != state {
            // Broadcast first: whoever saw the watch change and then
            // subscribes must not receive this transition again.
            let _ = self.changes.send(state); // no receivers is fine
            self.state_tx.send_replace(state);
        }
    }
}
