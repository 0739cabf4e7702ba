//! `SignalingClient`: the thin tokio driver around the signaling core. It
//! owns the socket, the token task and one sleep; every decision is the core's.

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use signaling_proto::consts::DEFAULT_API_VERSION;
use signaling_proto::{SignalingMessage, api_path, jwt_expiry_unverified, ws_url};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::{Action, ConnectionState, Core, CoreConfig, Failure, Inbound};
use crate::error::{HttpError, SignalingError};
use crate::http::{self, unix_now};
use crate::identity::Identity;
use crate::ws::{DialTarget, Ws, dial};

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

type DialFuture = Pin<Box<dyn Future<Output = Result<Ws, Failure<SignalingError>>> + Send>>;

/// The I/O the driver has in flight.
#[derive(Default)]
struct Link {
    ws: Option<Ws>,
    dialing: Option<DialFuture>,
    token_task: Option<JoinHandle<Result<String, HttpError>>>,
}

// One short-lived value per wake-up, moved once: the size of the socket it
// may carry (large since it can hold a TLS session) does not matter here.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Shutdown,
    Suspend,
    Activity,
    Timer,
    Token(Result<Result<String, HttpError>, tokio::task::JoinError>),
    Dialed(Result<Ws, Failure<SignalingError>>),
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Outgoing(Option<SignalingMessage>),
}

fn now() -> std::time::Instant {
    // Through tokio's clock so tests can pause time.
    tokio::time::Instant::now().into_std()
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

    /// The host is about to sleep: close the link (close 1000) and pause
    /// until [`signal_activity`](Self::signal_activity).
    pub fn suspend(&self) {
        self.suspend.notify_one();
    }

    /// Shuts the client down: `run` sends close 1000 and returns `Ok(())`;
    /// later `send`s fail with [`SignalingError::Closed`].
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Connects and keeps the link up until `cancel` fires or
    /// [`close`](Self::close) is called (then `Ok(())`), or a permanent error
    /// (signature rejected, device unknown) stops it (then that error).
    /// Transient failures never end it. Only one `run` at a time.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), SignalingError> {
        if self.closed.is_cancelled() {
            return Ok(());
        }
        let Ok(mut outgoing) = self.outgoing_rx.try_lock() else {
            return Err(SignalingError::AlreadyRunning);
        };
        let settings = lock(&self.settings).clone();
        let target = DialTarget {
            url: ws_url(&self.server_url, &settings.api_version),
            path: api_path(&settings.api_version, "/ws"),
            secret: self.hmac_secret.clone(),
            device_id: self.identity.device_id().to_owned(),
            handshake_timeout: settings.handshake_timeout,
        };
        let mut core: Core<SignalingMessage, SignalingError> = Core::new(settings.core.clone());
        let mut link = Link::default();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<std::time::Instant> = None;

        core.handle_start(now(), unix_now());
        let result = loop {
            if let Some(error) = self.drain(&mut core, &mut link, &target, &settings).await {
                break Err(error);
            }
            self.publish(&core);
            let deadline = core.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(at.into());
                }
                armed = deadline;
            }
            let Link {
                ws,
                dialing,
                token_task,
            } = &mut link;
            let wake = tokio::select! {
                biased;
                _ = cancel.cancelled() => Wake::Shutdown,
                _ = self.closed.cancelled() => Wake::Shutdown,
                _ = self.suspend.notified() => Wake::Suspend,
                _ = self.activity.notified() => Wake::Activity,
                r = async {
                    match token_task.as_mut() {
                        Some(task) => task.await,
                        None => pending().await,
                    }
                }, if token_task.is_some() => Wake::Token(r),
                r = async {
                    match dialing.as_mut() {
                        Some(d) => d.await,
                        None => pending().await,
                    }
                }, if dialing.is_some() => Wake::Dialed(r),
                f = async {
                    match ws.as_mut() {
                        Some(w) => w.next().await,
                        None => pending().await,
                    }
                }, if ws.is_some() => Wake::Frame(f),
                m = outgoing.recv() => Wake::Outgoing(m),
                _ = &mut sleep, if armed.is_some() => Wake::Timer,
            };
            match wake {
                Wake::Shutdown => {
                    core.handle_shutdown();
                    if let Some(error) = self.drain(&mut core, &mut link, &target, &settings).await
                    {
                        break Err(error);
                    }
                    break Ok(());
                }
                Wake::Suspend => core.handle_suspend(now()),
                Wake::Activity => core.handle_activity(now(), unix_now()),
                Wake::Timer => {
                    // The sleep has completed: force a reset next round.
                    armed = None;
                    core.handle_timeout(now(), unix_now());
                }
                Wake::Token(result) => {
                    link.token_task = None;
                    self.on_token(&mut core, result);
                }
                Wake::Dialed(result) => {
                    link.dialing = None;
                    match result {
                        Ok(ws) => {
                            link.ws = Some(ws);
                            core.handle_connected(now());
                        }
                        Err(failure) => {
                            if let Failure::Transient(e) = &failure {
                                debug!("signaling connect failed: {e}");
                            }
                            core.handle_connect_failed(now(), failure);
                        }
                    }
                }
                Wake::Frame(frame) => self.on_frame(&mut core, &mut link, frame),
                Wake::Outgoing(Some(msg)) => {
                    if core.state() == ConnectionState::Connected && link.ws.is_some() {
                        if !write(&mut link.ws, Message::text(msg.to_json()), WRITE_DEADLINE).await
                        {
                            warn!("signaling write failed; dropped a {} message", msg.kind);
                            link.ws = None;
                            core.handle_closed(now());
                        }
                    } else {
                        warn!(
                            "dropped a queued {} signaling message: the link went down",
                            msg.kind
                        );
                    }
                }
                // The client holds a sender, so the queue never closes.
                Wake::Outgoing(None) => {}
            }
        };
        if let Some(ws) = link.ws.take() {
            close_ws(ws).await;
        }
        let mut dropped = 0usize;
        while outgoing.try_recv().is_ok() {
            dropped += 1;
        }
        if dropped > 0 {
            warn!("dropped {dropped} queued signaling messages at shutdown");
        }
        self.publish(&core);
        result
    }

    /// Performs the core's queued actions in order. Returns the permanent
    /// error when the core stops.
    async fn drain(
        &self,
        core: &mut Core<SignalingMessage, SignalingError>,
        link: &mut Link,
        target: &DialTarget,
        settings: &Settings,
    ) -> Option<SignalingError> {
        while let Some(action) = core.poll_action() {
            match action {
                Action::FetchToken => {
                    let identity = self.identity.clone();
                    let server = self.server_url.clone();
                    let version = settings.api_version.clone();
                    let secret = self.hmac_secret.clone();
                    link.token_task = Some(tokio::task::spawn_blocking(move || {
                        http::fetch_token(&identity, &server, &version, &secret)
                    }));
                }
                Action::Connect => {
                    link.dialing = Some(Box::pin(dial(target.clone())));
                }
                Action::SendAuth { token } => {
                    let msg = SignalingMessage {
                        token,
                        name: self.host_name.clone(),
                        ..SignalingMessage::new("auth")
                    };
                    let text = Message::text(msg.to_json());
                    if !write(&mut link.ws, text, AUTH_WRITE_DEADLINE).await {
                        link.ws = None;
                        core.handle_closed(now());
                    }
                }
                Action::SendPresence => {
                    let presence = Message::text(SignalingMessage::new("presence").to_json());
                    let ok = write(&mut link.ws, presence, WRITE_DEADLINE).await
                        && write(
                            &mut link.ws,
                            Message::Ping(Default::default()),
                            WRITE_DEADLINE,
                        )
                        .await;
                    if !ok {
                        debug!("signaling presence write failed");
                        link.ws = None;
                        core.handle_closed(now());
                    }
                }
                Action::Close { reason } => {
                    debug!("closing signaling link: {reason:?}");
                    link.dialing = None;
                    if let Some(ws) = link.ws.take() {
                        close_ws(ws).await;
                    }
                }
                Action::Deliver(msg) => (self.handler)(msg),
                Action::GoDormant => {
                    info!(
                        "signaling server unreachable for the dormancy timeout; waiting for activity"
                    )
                }
                Action::Stop(error) => {
                    self.sync_jwt(core);
                    return Some(error);
                }
            }
        }
        self.sync_jwt(core);
        None
    }

    fn on_token(
        &self,
        core: &mut Core<SignalingMessage, SignalingError>,
        result: Result<Result<String, HttpError>, tokio::task::JoinError>,
    ) {
        let (now, unix) = (now(), unix_now());
        match result {
            Ok(Ok(token)) => {
                let exp = jwt_expiry_unverified(&token);
                core.handle_token_obtained(now, unix, token, exp);
            }
            Ok(Err(e)) => {
                let failure = match &e {
                    HttpError::Status { status, error, .. } => {
                        match SignalingError::permanent_from(*status, error, self.device_id()) {
                            Some(permanent) => Failure::Permanent(permanent),
                            None => Failure::Transient(SignalingError::Http(e.clone())),
                        }
                    }
                    _ => Failure::Transient(SignalingError::Http(e.clone())),
                };
                if let Failure::Transient(_) = failure {
                    warn!("signaling token exchange failed: {e}");
                }
                core.handle_token_failed(now, failure);
            }
            Err(join) => {
                warn!("signaling token task failed: {join}");
                core.handle_token_failed(
                    now,
                    Failure::Transient(SignalingError::WebSocket(join.to_string())),
                );
            }
        }
    }

    fn on_frame(
        &self,
        core: &mut Core<SignalingMessage, SignalingError>,
        link: &mut Link,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        let now = now();
        let inbound = match frame {
            Some(Ok(Message::Text(text))) => match SignalingMessage::parse(&text) {
                Ok(msg) => classify(msg),
                Err(e) => {
                    debug!("skipped a malformed signaling message: {e}");
                    Inbound::Ignored
                }
            },
            Some(Ok(Message::Pong(_))) => {
                core.handle_pong(now);
                return;
            }
            Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Frame(_))) => Inbound::Ignored,
            Some(Ok(Message::Close(frame))) => {
                debug!("signaling server closed the link: {frame:?}");
                link.ws = None;
                core.handle_closed(now);
                return;
            }
            Some(Err(e)) => {
                debug!("signaling read failed: {e}");
                link.ws = None;
                core.handle_closed(now);
                return;
            }
            None => {
                link.ws = None;
                core.handle_closed(now);
                return;
            }
        };
        if let Inbound::Error(e) = &inbound {
            match core.state() {
                ConnectionState::Authenticating => warn!("signaling auth failed: {e}"),
                _ => warn!("signaling server reported an error: {e}"),
            }
        }
        core.handle_message(now, inbound);
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

/// Sorts a parsed message for the core.
fn classify(msg: SignalingMessage) -> Inbound<SignalingMessage> {
    match msg.kind.as_str() {
        "auth" if msg.status == "ok" => Inbound::AuthOk,
        "auth" => Inbound::Error(format!("auth status {:?}", msg.status)),
        "error" => Inbound::Error(msg.error),
        _ => Inbound::Message(msg),
    }
}

/// Writes one frame within `deadline`; false on any failure or a missing link.
async fn write(ws: &mut Option<Ws>, msg: Message, deadline: Duration) -> bool {
    let Some(ws) = ws.as_mut() else {
        return false;
    };
    matches!(
        tokio::time::timeout(deadline, ws.send(msg)).await,
        Ok(Ok(()))
    )
}

/// Sends close 1000 within 2 s, then drops the socket.
async fn close_ws(mut ws: Ws) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = tokio::time::timeout(CLOSE_WRITE_DEADLINE, ws.close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use signaling_proto::consts;

    use super::*;
    use crate::core::*;

    #[test]
    fn core_defaults_are_the_proto_constants() {
        assert_eq!(DEFAULT_PRESENCE_INTERVAL, consts::PRESENCE_INTERVAL);
        assert_eq!(MAX_PRESENCE_INTERVAL, consts::MAX_PRESENCE_INTERVAL);
        assert_eq!(DEFAULT_READ_DEADLINE_GRACE, consts::READ_DEADLINE_GRACE);
        assert_eq!(DEFAULT_TOKEN_REFRESH_MARGIN, consts::TOKEN_REFRESH_MARGIN);
        assert_eq!(DEFAULT_TOKEN_LIFETIME, consts::JWT_LIFETIME);
        assert_eq!(DEFAULT_DORMANCY_TIMEOUT, consts::DORMANCY_TIMEOUT);
        assert_eq!(DEFAULT_INITIAL_BACKOFF, consts::INITIAL_BACKOFF);
        assert_eq!(DEFAULT_MAX_BACKOFF, consts::MAX_BACKOFF);
    }

    #[test]
    fn classify_sorts_auth_errors_and_messages() {
        let ok = SignalingMessage {
            status: "ok".into(),
            ..SignalingMessage::new("auth")
        };
        assert_eq!(classify(ok), Inbound::AuthOk);
        assert!(matches!(
            classify(SignalingMessage::error("Invalid token")),
            Inbound::Error(e) if e == "Invalid token"
        ));
        assert!(matches!(
            classify(SignalingMessage::new("auth")),
            Inbound::Error(_)
        ));
        let relay = SignalingMessage::new("connect_request");
        assert_eq!(classify(relay.clone()), Inbound::Message(relay));
    }

    #[test]
    fn send_fails_at_once_when_not_connected_or_closed() {
        let client = SignalingClient::new(
            Identity::generate(),
            "http://127.0.0.1:9",
            "h",
            Arc::new(|_| {}),
            "",
        );
        assert_eq!(
            client.send(SignalingMessage::new("sdp_offer")),
            Err(SignalingError::NotConnected)
        );
        client.close();
        assert_eq!(
            client.send(SignalingMessage::new("sdp_offer")),
            Err(SignalingError::Closed)
        );
    }

    #[tokio::test]
    async fn https_server_failing_tls_is_retried_not_a_permanent_stop() {
        use crate::ws::tests::{TLS_HANDSHAKE_RECORD, plain_tcp_server};
        let (addr, mut first_bytes) = plain_tcp_server().await;
        let url = format!("https://{addr}");
        let client = SignalingClient::new(Identity::generate(), &url, "h", Arc::new(|_| {}), "");
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (client, cancel) = (client.clone(), cancel.clone());
            async move { client.run(cancel).await }
        });
        // Two TLS attempts: the first failed handshake was transient, so the
        // client backed off and tried again instead of stopping.
        for _ in 0..2 {
            let first = tokio::time::timeout(Duration::from_secs(20), first_bytes.recv())
                .await
                .unwrap();
            assert_eq!(first, Some(TLS_HANDSHAKE_RECORD));
        }
        assert!(!task.is_finished());
        cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn permanent_errors_name_their_cause() {
        let e = SignalingError::permanent_from(401, "invalid client signature", "d").unwrap();
        assert_eq!(
            e.to_string(),
            "the signaling server rejected this agent's request signature (invalid client signature): check the HMAC secret"
        );
        let e = SignalingError::permanent_from(401, "unknown device", "abc").unwrap();
        assert!(e.to_string().contains("does not know this device (abc)"));
        assert_eq!(
            SignalingError::permanent_from(401, "request expired", "d"),
            None
        );
        assert_eq!(
            SignalingError::permanent_from(500, "invalid client signature", "d"),
            None
        );
    }
}
