//! The handle: [`SignalingClient`]'s public API (`new`, the knob setters,
//! `run`, `send`, `signal_activity`, `suspend` / `resume`, `state`,
//! `subscribe_state`, `state_changes`, `jwt`, `close`) and what those share
//! with the driver task: the settings, the bounded outgoing queue, the state
//! watch and the wake-up signals. The loop itself is in `driver`, frame
//! sorting in `classify`; every decision is the sans-IO core's.

mod classify;
mod driver;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use signaling_proto::SignalingMessage;
use signaling_proto::consts::DEFAULT_API_VERSION;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::core::{ConnectionState, Core, CoreConfig};
use crate::error::SignalingError;
use crate::identity::Identity;

/// Called with every authenticated, non-error message from the server, in
/// arrival order, on the task running [`SignalingClient::run`]. Keep it quick
/// (hand work to a channel); it must not block.
pub type MessageHandler = Arc<dyn Fn(SignalingMessage) + Send + Sync>;

/// Capacity of the outgoing message queue behind [`SignalingClient::send`].
pub const SEND_QUEUE_CAPACITY: usize = 64;
/// Capacity of the [`SignalingClient::state_changes`] broadcast.
pub const STATE_CHANGES_CAPACITY: usize = 64;
/// Default bound on TCP connect + WebSocket upgrade (spec: 15 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Write deadline of the `auth` message (spec: 10 s).
const AUTH_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Write deadline of presence, ping and outgoing messages (spec: 5 s).
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// Write deadline of the close frame (spec: 2 s).
const CLOSE_WRITE_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Settings {
    core: CoreConfig,
    api_version: String,
    handshake_timeout: Duration,
}

/// The host's persistent signaling connection: token exchange, WebSocket,
/// `auth`, presence, reconnect, JWT refresh, dormancy.
///
/// Create it with [`new`](SignalingClient::new), drive it with one
/// [`run`](SignalingClient::run) task, and use `send`, `signal_activity`,
/// `jwt`, `state` and `close` from any task. Knob setters take effect at the
/// next `run`.
pub struct SignalingClient {
    identity: Identity,
    server_url: String,
    host_name: String,
    handler: MessageHandler,
    hmac_secret: String,
    settings: Mutex<Settings>,
    jwt: Mutex<Option<String>>,
    state_tx: watch::Sender<ConnectionState>,
    changes: broadcast::Sender<ConnectionState>,
    outgoing_tx: mpsc::Sender<SignalingMessage>,
    outgoing_rx: tokio::sync::Mutex<mpsc::Receiver<SignalingMessage>>,
    activity: Notify,
    suspend: Notify,
    closed: CancellationToken,
    /// The wall clock (Unix seconds) the driver feeds the core: JWT expiry
    /// and host-sleep detection. `http::unix_now` except in tests, which
    /// move it to play a host that slept.
    wall_clock: fn() -> i64,
}

impl std::fmt::Debug for SignalingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingClient")
            .field("device_id", &self.identity.device_id())
            .field("server_url", &self.server_url)
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
    /// A client for `identity` on `server_url` (bare URL such as
    /// `http://127.0.0.1:5000`; the API version is added), announcing itself
    /// as `host_name`. `hmac_secret` signs every request; empty = unsigned.
    pub fn new(
        identity: Identity,
        server_url: &str,
        host_name: &str,
        handler: MessageHandler,
        hmac_secret: &str,
    ) -> Arc<SignalingClient> {
        let (outgoing_tx, outgoing_rx) = mpsc::channel(SEND_QUEUE_CAPACITY);
        let (changes, _) = broadcast::channel(STATE_CHANGES_CAPACITY);
        Arc::new(SignalingClient {
            identity,
            server_url: server_url.to_owned(),
            host_name: host_name.to_owned(),
            handler,
            hmac_secret: hmac_secret.to_owned(),
            settings: Mutex::new(Settings {
                core: CoreConfig::default(),
                api_version: DEFAULT_API_VERSION.to_owned(),
                handshake_timeout: HANDSHAKE_TIMEOUT,
            }),
            jwt: Mutex::new(None),
            state_tx: watch::Sender::new(ConnectionState::Idle),
            changes,
            outgoing_tx,
            outgoing_rx: tokio::sync::Mutex::new(outgoing_rx),
            activity: Notify::new(),
            suspend: Notify::new(),
            closed: CancellationToken::new(),
            wall_clock: crate::http::unix_now,
        })
    }

    /// Presence interval (default 30 s; zero = default; clamped to ≤ 45 s).
    pub fn set_presence_interval(&self, interval: Duration) {
        lock(&self.settings).core.presence_interval = interval;
    }

    /// First reconnect wait (default 1 s; zero = default).
    pub fn set_initial_backoff(&self, backoff: Duration) {
        lock(&self.settings).core.initial_backoff = backoff;
    }

    /// Longest reconnect wait (default 30 s).
    pub fn set_max_backoff(&self, backoff: Duration) {
        lock(&self.settings).core.max_backoff = backoff;
    }

    /// Grace added to `2 × presence` for the read deadline (default 10 s).
    pub fn set_read_deadline_grace(&self, grace: Duration) {
        lock(&self.settings).core.read_deadline_grace = grace;
    }

    /// How long before `exp` the JWT is refreshed (default 5 min).
    pub fn set_token_refresh_margin(&self, margin: Duration) {
        lock(&self.settings).core.token_refresh_margin = margin;
    }

    /// Interval of the JWT expiry check while connected (default 30 s).
    pub fn set_token_check_interval(&self, interval: Duration) {
        lock(&self.settings).core.token_check_interval = interval;
    }

    /// Continuous failure before dormancy (default 5 min).
    pub fn set_dormancy_timeout(&self, timeout: Duration) {
        lock(&self.settings).core.dormancy_timeout = timeout;
    }

    /// Wait for the `auth` reply (default 10 s).
    pub fn set_auth_timeout(&self, timeout: Duration) {
        lock(&self.settings).core.auth_timeout = timeout;
    }

    /// Bound on TCP connect + WebSocket upgrade (default 15 s).
    pub fn set_handshake_timeout(&self, timeout: Duration) {
        lock(&self.settings).handshake_timeout = timeout;
    }

    /// API version prefix (default `v1`; empty = no prefix).
    pub fn set_api_version(&self, version: &str) {
        lock(&self.settings).api_version = version.to_owned();
    }

    /// All core knobs at once (tests and tuning).
    pub fn set_core_config(&self, config: CoreConfig) {
        lock(&self.settings).core = config;
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        self.identity.device_id()
    }

    /// The cached JWT (for Bearer calls such as TURN credentials), if any.
    pub fn jwt(&self) -> Option<String> {
        lock(&self.jwt).clone()
    }

    /// Where the link is now.
    pub fn state(&self) -> ConnectionState {
        *self.state_tx.borrow()
    }

    /// A receiver that always holds the latest state (waits with `changed()`).
    pub fn subscribe_state(&self) -> watch::Receiver<ConnectionState> {
        self.state_tx.subscribe()
    }

    /// Every state transition in order (bounded; a slow reader sees `Lagged`).
    pub fn state_changes(&self) -> broadcast::Receiver<ConnectionState> {
        self.changes.subscribe()
    }

    /// Queues `msg` for the server. Never blocks: fails at once with
    /// [`SignalingError::NotConnected`] when the link is not authenticated,
    /// [`SignalingError::QueueFull`] when 64 messages are already waiting,
    /// [`SignalingError::Closed`] after `close`. A queued message that the
    /// link drops before it is written is logged as dropped.
    pub fn send(&self, msg: SignalingMessage) -> Result<(), SignalingError> {
        if self.closed.is_cancelled() {
            return Err(SignalingError::Closed);
        }
        if self.state() != ConnectionState::Connected {
            return Err(SignalingError::NotConnected);
        }
        self.outgoing_tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SignalingError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SignalingError::Closed,
        })
    }

    /// Wakes a dormant or suspended client and cuts a backoff wait short.
    /// Callable from any task; cheap.
    pub fn signal_activity(&self) {
        self.activity.notify_one();
    }

    /// The host is about to sleep (e.g. logind's `PrepareForSleep(true)`):
    /// close the link (close 1000, 2 s write deadline) and pause, with no
    /// timers, until [`resume`](Self::resume) or
    /// [`signal_activity`](Self::signal_activity). Without a call to it, a
    /// sleep is still noticed after the wake-up: the core sees the wall clock
    /// ran ahead of the monotonic one and replaces the link at once.
    pub fn suspend(&self) {
        self.suspend.notify_one();
    }

    /// The host woke up: reconnect now with a fresh backoff (the same as
    /// [`signal_activity`](Self::signal_activity), spec signaling.md §7).
    pub fn resume(&self) {
        self.activity.notify_one();
    }

    /// Shuts the client down: `run` sends close 1000 and returns `Ok(())`;
    /// later `send`s fail with [`SignalingError::Closed`].
    pub fn close(&self) {
        self.closed.cancel();
    }

    fn sync_jwt(&self, core: &Core<SignalingMessage, SignalingError>) {
        let mut jwt = lock(&self.jwt);
        if jwt.as_deref() != core.token() {
            *jwt = core.token().map(str::to_owned);
        }
    }

    fn publish(&self, core: &Core<SignalingMessage, SignalingError>) {
        let state = core.state();
        if *self.state_tx.borrow() != state {
            // Broadcast first: whoever saw the watch change and then
            // subscribes must not receive this transition again.
            let _ = self.changes.send(state); // no receivers is fine
            self.state_tx.send_replace(state);
        }
    }
}
