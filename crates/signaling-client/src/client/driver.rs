//! The driver loop behind [`SignalingClient::run`]: one task that owns the
//! socket, the dial, the token exchange and one sleep until the core's next
//! deadline. Each wake-up (shutdown, suspend, activity, timer, token result,
//! dial result, frame, message to send) reads both clocks for the core's
//! host-sleep check, becomes one core input, and the core's actions are then
//! performed in order (`drain`). It decides nothing itself: when to dial,
//! re-authenticate, close or give up is the core's call.

use std::future::{Future, pending};
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use signaling_proto::{SignalingMessage, jwt_expiry_unverified};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::classify::{Frame, classify_frame};
use super::{
    AUTH_WRITE_DEADLINE, CLOSE_WRITE_DEADLINE, Settings, SignalingClient, WRITE_DEADLINE, lock,
};
use crate::core::{Action, CloseReason, ConnectionState, Core, Failure, Inbound};
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
    Outgoing(Option<SignalingMessage>),
}

fn now() -> std::time::Instant {
    // Through tokio's clock so tests can pause time.
    tokio::time::Instant::now().into_std()
}

impl SignalingClient {
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
        let mut target = DialTarget::new(
            &self.server_url,
            &settings.api_version,
            &self.hmac_secret,
            self.identity.device_id(),
        );
        target.handshake_timeout = settings.handshake_timeout;
        let mut core: Core<SignalingMessage, SignalingError> = Core::new(settings.core.clone());
        let mut link = Link::default();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<std::time::Instant> = None;

        core.handle_start(now(), (self.wall_clock)());
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
            // Every wake-up reads both clocks: a wall clock that ran ahead of
            // the monotonic one means the host slept, and the core has just
            // replaced the link (its `Close` is drained next round).
            let slept =
                !matches!(wake, Wake::Shutdown) && core.handle_clock(now(), (self.wall_clock)());
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
                    let target = target.clone();
                    link.dialing = Some(Box::pin(async move { dial(&target).await }));
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
        let (now, unix) = (now(), (self.wall_clock)());
        match result {
            Ok(Ok(token)) => {
                let exp = jwt_expiry_unverified(&token);
                core.handle_token_obtained(now, unix, token, exp);
            }
            Ok(Err(e)) => {
                let failure = match SignalingError::permanent_from_http(&e, self.device_id()) {
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

    fn on_frame(
        &self,
        core: &mut Core<SignalingMessage, SignalingError>,
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
            Frame::Inbound(inbound) => {
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
