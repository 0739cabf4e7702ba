//! [`SignalingDriver`], the loop behind the handle: one task that owns the
//! socket, the dial, the token exchange, the outgoing queue, the incoming
//! channel and one sleep until the core's next deadline (the shape of a
//! connection driver: the handle only queues and signals, the driver does
//! the I/O). Each wake-up (shutdown, suspend, activity, timer, token result,
//! dial result, frame, message to send) reads both clocks for the core's
//! host-sleep check, becomes one core input, and the core's actions are then
//! performed in order (`drain`). It decides nothing itself: when to dial,
//! re-authenticate, write, drop, deliver, close or give up is the core's call.

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use signaling_proto::{Signal, SignalingMessage, jwt_expiry_unverified};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::classify::{Frame, classify_frame};
use super::{AUTH_WRITE_DEADLINE, CLOSE_WRITE_DEADLINE, ClientConfig, Shared, WRITE_DEADLINE};
use crate::core::{
    Action, CloseReason, ConnectionState, Core, Failure, Inbound, auth_signal, classify,
};
use crate::error::{HttpError, SignalingError};
use crate::http;
use crate::ws::{DialTarget, Socket as Ws, dial};

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
    Frame(Option<Result<Message, tungstenite::Error>>),
    Outgoing(Option<Signal>),
}

fn now() -> std::time::Instant {
    // Through tokio's clock so tests can pause time.
    tokio::time::Instant::now().into_std()
}

/// The signaling connection's loop, returned by
/// [`SignalingClient::new`](super::SignalingClient::new). Spawn
/// [`run`](Self::run) once; it takes the driver by value, so a client can
/// only ever run once.
pub struct SignalingDriver {
    shared: Arc<Shared>,
    config: ClientConfig,
    outgoing: mpsc::Receiver<Signal>,
    incoming: mpsc::Sender<Signal>,
    /// The wall clock (Unix seconds) the driver feeds the core: JWT expiry
    /// and host-sleep detection. `http::unix_now` except in tests, which
    /// move it to play a host that slept.
    pub(super) wall_clock: fn() -> i64,
}

impl std::fmt::Debug for SignalingDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingDriver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SignalingDriver {
    pub(super) fn new(
        shared: Arc<Shared>,
        config: ClientConfig,
        outgoing: mpsc::Receiver<Signal>,
        incoming: mpsc::Sender<Signal>,
    ) -> SignalingDriver {
        SignalingDriver {
            shared,
            config,
            outgoing,
            incoming,
            wall_clock: http::unix_now,
        }
    }

    /// Connects and keeps the link up until `cancel` fires or
    /// [`SignalingClient::close`](super::SignalingClient::close) is called
    /// (then `Ok(())`), or a permanent error (signature rejected, device
    /// unknown, API version not served) stops it (then that error).
    /// Transient failures never end it. This is the client's `run`: the
    /// handle has none, so it cannot be started twice.
    #[doc(alias = "SignalingClient::run")]
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), SignalingError> {
        if self.shared.closed.is_cancelled() {
            return Ok(());
        }
        let mut target = DialTarget::new(
            &self.config.server_url,
            &self.config.api_version,
            &self.config.hmac_secret,
            self.config.identity.device_id(),
        );
        target.handshake_timeout = self.config.handshake_timeout;
        let mut core: Core<Signal, SignalingError> = Core::new(self.config.core.clone());
        let mut link = Link::default();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<std::time::Instant> = None;

        core.handle_start(now(), (self.wall_clock)());
        let result = loop {
            if let Some(error) = self.drain(&mut core, &mut link, &target, &cancel).await {
                break Err(error);
            }
            self.shared.publish(&core);
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
            let shared = &self.shared;
            let wake = tokio::select! {
                biased;
                _ = cancel.cancelled() => Wake::Shutdown,
                _ = shared.closed.cancelled() => Wake::Shutdown,
                _ = shared.suspend.notified() => Wake::Suspend,
                _ = shared.activity.notified() => Wake::Activity,
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
                m = self.outgoing.recv() => Wake::Outgoing(m),
                _ = &mut sleep, if armed.is_some() => Wake::Timer,
            };
            // Every wake-up reads both clocks: a wall clock that ran ahead of
            // the monotonic one means the host slept, and the core has just
            // replaced the link (its `Close` is drained next round).
            let slept =
                !matches!(wake, Wake::Shutdown) && core.handle_clock(now(), (self.wall_clock)());
            match wake {
                Wake::Shutdown => {
                    core.handle_shutdown();
                    if let Some(error) = self.drain(&mut core, &mut link, &target, &cancel).await {
                        break Err(error);
                    }
                    break Ok(());
                }
                Wake::Suspend => core.handle_suspend(now()),
                Wake::Activity => core.handle_activity(now(), (self.wall_clock)()),
                Wake::Timer => {
                    // The sleep has completed: force a reset next round.
                    armed = None;
                    core.handle_timeout(now(), (self.wall_clock)());
                }
                Wake::Token(result) => {
                    link.token_task = None;
                    self.on_token(&mut core, result);
                }
                // A dial or frame of the link the core just replaced.
                Wake::Dialed(_) if slept => link.dialing = None,
                Wake::Frame(_) if slept => {}
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
                Wake::Frame(frame) => on_frame(&mut core, &mut link, frame),
                Wake::Outgoing(Some(signal)) => core.handle_outgoing(signal),
                // The handle holds a sender, so the queue never closes.
                Wake::Outgoing(None) => {}
            }
        };
        if let Some(ws) = link.ws.take() {
            close_ws(ws).await;
        }
        let mut dropped = 0usize;
        while self.outgoing.try_recv().is_ok() {
            dropped += 1;
        }
        if dropped > 0 {
            warn!("dropped {dropped} queued signaling messages at shutdown");
        }
        self.shared.publish(&core);
        result
    }

    /// Performs the core's queued actions in order. Returns the permanent
    /// error when the core stops.
    async fn drain(
        &self,
        core: &mut Core<Signal, SignalingError>,
        link: &mut Link,
        target: &DialTarget,
        cancel: &CancellationToken,
    ) -> Option<SignalingError> {
        while let Some(action) = core.poll_action() {
            match action {
                Action::FetchToken => {
                    let identity = self.config.identity.clone();
                    let server = self.config.server_url.clone();
                    let version = self.config.api_version.clone();
                    let secret = self.config.hmac_secret.clone();
                    link.token_task = Some(tokio::task::spawn_blocking(move || {
                        http::fetch_token(&identity, &server, &version, &secret)
                    }));
                }
                Action::Connect => {
                    let target = target.clone();
                    link.dialing = Some(Box::pin(async move { dial(&target).await }));
                }
                Action::SendAuth { token } => {
                    let auth = auth_signal(token, &self.config.host_name);
                    if !write(&mut link.ws, text(auth), AUTH_WRITE_DEADLINE).await {
                        link.ws = None;
                        core.handle_closed(now());
                    }
                }
                Action::SendPresence => {
                    let ok = write(&mut link.ws, text(Signal::Presence), WRITE_DEADLINE).await
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
                Action::Send(signal) => {
                    let kind = signal.kind().to_owned();
                    if !write(&mut link.ws, text(signal), WRITE_DEADLINE).await {
                        warn!("signaling write failed; dropped a {kind} message");
                        link.ws = None;
                        core.handle_closed(now());
                    }
                }
                Action::Discard(signal) => warn!(
                    "dropped a queued {} signaling message: the link went down",
                    signal.kind()
                ),
                Action::Close { reason } => {
                    match reason {
                        CloseReason::HostSlept => {
                            info!("the host slept; replacing the signaling link")
                        }
                        _ => debug!("closing signaling link: {reason:?}"),
                    }
                    link.dialing = None;
                    if let Some(ws) = link.ws.take() {
                        close_ws(ws).await;
                    }
                }
                Action::Deliver(signal) => self.deliver(signal, cancel).await,
                Action::GoDormant => {
                    info!(
                        "signaling server unreachable for the dormancy timeout; waiting for activity"
                    )
                }
                Action::Stop(error) => {
                    self.shared.sync_jwt(core);
                    return Some(error);
                }
            }
        }
        self.shared.sync_jwt(core);
        None
    }

    /// Hands one message to the receiver, waiting for room (bounded
    /// backpressure) unless the client is shut down meanwhile.
    pub(super) async fn deliver(&self, signal: Signal, cancel: &CancellationToken) {
        let kind = signal.kind().to_owned();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => debug!("shutting down; an incoming {kind} message was not delivered"),
            _ = self.shared.closed.cancelled() => debug!("closed; an incoming {kind} message was not delivered"),
            sent = self.incoming.send(signal) => {
                if sent.is_err() {
                    debug!("nobody reads incoming signaling messages; dropped a {kind} message");
                }
            }
        }
    }

    fn on_token(
        &self,
        core: &mut Core<Signal, SignalingError>,
        result: Result<Result<String, HttpError>, tokio::task::JoinError>,
    ) {
        let (now, unix) = (now(), (self.wall_clock)());
        match result {
            Ok(Ok(token)) => {
                let exp = jwt_expiry_unverified(&token);
                core.handle_token_obtained(now, unix, token, exp);
            }
            Ok(Err(e)) => {
                let device_id = self.config.identity.device_id();
                let failure = match SignalingError::permanent_from_http(&e, device_id) {
                    Some(permanent) => Failure::Permanent(permanent),
                    None => Failure::Transient(SignalingError::Http(e.clone())),
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
}

/// Feeds one frame read from the link to the core.
fn on_frame(
    core: &mut Core<Signal, SignalingError>,
    link: &mut Link,
    frame: Option<Result<Message, tungstenite::Error>>,
) {
    let now = now();
    match classify_frame(frame) {
        Frame::Pong => core.handle_pong(now),
        Frame::Closed => {
            link.ws = None;
            core.handle_closed(now);
        }
        Frame::Ignored => core.handle_message(now, Inbound::Ignored),
        Frame::Signal(signal) => {
            let inbound = classify(signal);
            if let Inbound::Error(e) = &inbound {
                match core.state() {
                    ConnectionState::Authenticating => warn!("signaling auth failed: {e}"),
                    ConnectionState::Connected if core.reauth_pending() => warn!(
                        "the signaling server refused to re-authenticate the open link ({e}); reconnecting with the new token"
                    ),
                    _ => warn!("signaling server reported an error: {e}"),
                }
            }
            core.handle_message(now, inbound);
        }
    }
}

/// The text frame of `signal`.
fn text(signal: Signal) -> Message {
    Message::text(SignalingMessage::from(signal).to_json())
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
